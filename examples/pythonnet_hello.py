"""Runs inside the pythonnet host: python3 -m harness pythonnet examples/pythonnet_hello.py

TorchSharp from Python, no C#: build nn.Linear(3, 2) and print its state_dict keys.
.NET overloads are picked by .NET types, so sizes are passed as System.Int64.
(`import torch` is refused here: PyTorch's LibTorch cannot share the process.)
"""
import clr

assembly = clr.AddReference("TorchSharp")
import System  # noqa: E402  (a .NET namespace, importable once clr is loaded)
from TorchSharp import torch  # noqa: E402

linear = torch.nn.Linear(System.Int64(3), System.Int64(2))
print("TorchSharp", assembly.GetName().Version.ToString(3), "LibTorch", torch.__version__)
print("state_dict keys:", [str(k) for k in linear.state_dict().Keys])
