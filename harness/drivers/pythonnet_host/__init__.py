"""The second TorchSharp driver's server: runs INSIDE the pythonnet host (dotnet/PyHost),
standard library and ``clr`` only (server.py says why). Never import PyTorch here."""
