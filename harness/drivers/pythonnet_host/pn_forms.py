"""The routes' file forms inside the pythonnet host (docs/protocol.md "format"): "dat" is
TorchSharp's own Module.load/save, optimizer state-dict files and Tensor.Load/Save; "pth",
"safetensors" and "checkpoint" call TorchSharp.PyBridge's static extension classes, when the
host was built with it (PyHost.csproj pins it per TorchSharp version). Standard library and
``clr`` only, as every module of this host."""
from __future__ import annotations

import importlib
from typing import Any

if __package__:
    from .pn_common import BadRequest, Declined, Net
else:
    from pn_common import BadRequest, Declined, Net  # type: ignore[no-redef,import]

TENSOR_KEY = "tensor"  # a single tensor on PyBridge's roads: the one-entry dict {"tensor": t}


class Forms:
    def __init__(self, net: Net) -> None:
        self.net = net
        self.bridge: Any = None
        self.version: str | None = None
        try:
            clr: Any = importlib.import_module("clr")
            clr.AddReference("TorchSharp.PyBridge")
            self.bridge = importlib.import_module("TorchSharp.PyBridge")
        except Exception:  # built without PyBridge: only "dat"
            return
        asm = clr.GetClrType(self.bridge.PyBridgeModuleExtensions).Assembly
        attr_type = net.System.Reflection.AssemblyInformationalVersionAttribute
        for attr in asm.GetCustomAttributes(attr_type, False):
            self.version = str(attr.InformationalVersion)  # "1.4.4+<commit>": the commit it was built from
        self.version = self.version or str(asm.GetName().Version)

    @property
    def supported(self) -> list[str]:
        return ["dat", "pth", "safetensors", "checkpoint"] if self.bridge is not None else ["dat"]

    def of(self, req: Any, op: str, *allowed: str) -> str:
        """The request's ``format`` (default "dat"), one of ``allowed``."""
        form = req.text("format", "dat")
        if form not in allowed:
            raise BadRequest(f"{op}.format: {form!r} is not one of {', '.join(allowed)}")
        if form not in self.supported:
            raise Declined(f"format {form!r} needs TorchSharp.PyBridge, which this host was built without")
        return str(form)

    def _names(self, names: list[str]) -> Any:
        out = self.net.Generic.List[self.net.System.String]()
        for n in names:
            out.Add(n)
        return out

    def load_module(self, model: Any, form: str, path: str, strict: bool, skip: list[str]) -> None:
        names = self._names(skip)
        if form == "dat":
            model.load(path, strict, names)
            return
        ext = self.bridge.PyBridgeModuleExtensions
        if form == "pth":
            ext.load_py(model, path, strict, names, None)
        elif form == "safetensors":
            ext.load_safetensors(model, path, strict, names, None)
        else:  # checkpoint: a folder
            ext.load_checkpoint(model, path, None, strict, names, None, False)

    def save_module(self, model: Any, form: str, path: str) -> None:
        if form == "dat":
            model.save(path)
        elif form == "pth":
            self.bridge.PyBridgeModuleExtensions.save_py(model, path, None)
        else:
            self.bridge.PyBridgeModuleExtensions.save_safetensors(model, path, None)

    def load_optimizer(self, optimizer: Any, form: str, path: str) -> None:
        if form == "dat":
            optimizer.load_state_dict(path)
        else:
            self.bridge.PyBridgeOptimizerExtensions.load_py(optimizer, path)

    def save_optimizer(self, optimizer: Any, form: str, path: str) -> None:
        if form == "dat":
            optimizer.save_state_dict(path)
        else:
            self.bridge.PyBridgeOptimizerExtensions.save_py(optimizer, path)

    def roundtrip(self, form: str, source: str, target: str) -> Any:
        """Load the single tensor of ``source``, save it to ``target`` in the same form; the tensor."""
        torch = self.net.torch
        if form == "dat":
            t = torch.Tensor.Load(source)
            self.net.TorchSharp.TensorExtensionMethods.Save(t, target)
            return t
        if form == "pth":
            t = self._one(self.bridge.PyTorchUnpickler.UnpickleStateDict(source), source)
            self.bridge.PyTorchPickler.PickleStateDict(target, self._dict(t))
        else:
            t = self._one(self.bridge.Safetensors.LoadStateDict(source), source)
            self.bridge.Safetensors.SaveStateDict(target, self._dict(t))
        return t

    def _dict(self, tensor: Any) -> Any:
        d = self.net.Generic.Dictionary[self.net.System.String, self.net.torch.Tensor]()
        d[TENSOR_KEY] = tensor
        return d

    def _one(self, loaded: Any, path: str) -> Any:
        keys = sorted(str(k) for k in loaded.Keys)  # sorted: a Hashtable's order differs per process
        if keys != [TENSOR_KEY]:  # the same .NET exception and text as the C# worker's
            raise self.net.IO.InvalidDataException(
                f"{path}: a single-tensor file holds one tensor under '{TENSOR_KEY}'; it holds [{', '.join(keys)}]")
        return loaded[TENSOR_KEY]
