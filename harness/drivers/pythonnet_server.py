r"""The worker protocol (docs/protocol.md, version 1), served from Python INSIDE the pythonnet
host (dotnet/PyHost): a second TorchSharp driver, written apart from the C# worker, so
that the two can catch each other's mistakes.

```
 harness (PythonnetDriver)                 dotnet PyHost.dll pythonnet_server.py
 -------------------------                 --------------------------------------
  {"id":1,"op":"hello"}\n     ── stdin ──▶  embedded CPython ── clr ──▶ TorchSharp
                              ◀─ stdout ──  {"id":1,"status":"ok","result":{...}}\n
```

Runs as a script (``runpy.run_path``), never as ``harness.drivers.pythonnet_server``:
importing the ``harness.drivers`` package would import PyTorch, which must never be loaded
in the host's process (two LibTorch builds crash it; the host's import guard refuses it).
So this file uses the standard library and ``clr`` only.

What it can do is what ``hello`` lists (``modules``, ``optimizers``); a request for
anything else answers ``skipped`` with "pythonnet driver lacks ...", never a fake result.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import struct
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import IO, Any

PROTOCOL = 1
DRIVER = "pythonnet"
HASH_CHUNK = 16 << 20

# Protocol dtype names <-> TorchSharp's ScalarType member names.
DTYPES = {
    "uint8": "Byte", "int8": "Int8", "int16": "Int16", "int32": "Int32", "int64": "Int64",
    "float16": "Float16", "float32": "Float32", "float64": "Float64", "bfloat16": "BFloat16",
    "complex64": "ComplexFloat32", "complex128": "ComplexFloat64", "bool": "Bool",
    "qint8": "QInt8", "quint8": "QUInt8", "qint32": "QInt32",
}
NAME_OF_SCALAR = {v: k for k, v in DTYPES.items()}
QUANTIZED = {"QInt8", "QUInt8", "QInt32"}


class BadRequest(Exception):
    """The request does not follow the protocol: status ``parse_error``."""


class Declined(Exception):
    """TorchSharp (or this driver) cannot do this by design: status ``skipped``."""


def lacks(what: str) -> Declined:
    return Declined(f"pythonnet driver lacks {what}")


class Net:
    """The .NET namespaces, loaded once through pythonnet (after ``clr`` is imported)."""

    def __init__(self) -> None:
        clr: Any = importlib.import_module("clr")
        clr.AddReference("TorchSharp")
        self.System: Any = importlib.import_module("System")
        self.Generic: Any = importlib.import_module("System.Collections.Generic")
        self.IO: Any = importlib.import_module("System.IO")
        self.Interop: Any = importlib.import_module("System.Runtime.InteropServices")
        ts: Any = importlib.import_module("TorchSharp")
        self.TorchSharp = ts
        self.torch: Any = ts.torch
        self.Modules: Any = importlib.import_module("TorchSharp.Modules")
        self.ScalarType: Any = ts.torch.ScalarType

    def longs(self, xs: Any) -> Any:
        return self.System.Array[self.System.Int64]([int(x) for x in xs])

    def scalar_type(self, name: str) -> Any:
        if name not in DTYPES:
            raise BadRequest(f"unknown dtype {name!r} (known: {' '.join(DTYPES)})")
        return getattr(self.ScalarType, DTYPES[name])

    def dtype_name(self, scalar_type: Any) -> str:
        member = str(scalar_type)
        return NAME_OF_SCALAR.get(member, f"code{int(scalar_type)}")

    def disposing(self, disposable: Any) -> _Disposer:
        return _Disposer(disposable)


class _Disposer:
    """``with`` for a .NET IDisposable (no_grad scopes, dispose scopes)."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __enter__(self) -> Any:
        return self.obj

    def __exit__(self, *exc: object) -> None:
        self.obj.Dispose()


# --- request fields ------------------------------------------------------------------------
class Req:
    """Typed access to one JSON object; a missing or mistyped field is a BadRequest naming it."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise BadRequest(f"{where}: expected a JSON object")
        self.data: dict[str, Any] = data
        self.where = where

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., what: str = "") -> Any:
        value = self.data.get(key)
        if value is None:
            if default is ...:
                raise BadRequest(f"{self.where}: missing field {key!r}")
            return default
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise BadRequest(f"{self.where}: field {key!r} must be {what or kind}, got {value!r}")
        if not isinstance(value, kind):
            raise BadRequest(f"{self.where}: field {key!r} must be {what or kind}, got {json.dumps(value)[:60]}")
        return value

    def text(self, key: str, default: Any = ...) -> Any:
        return self.get(key, str, default, "a string")

    def integer(self, key: str, default: Any = ...) -> Any:
        return self.get(key, int, default, "an integer")

    def number(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, (int, float), default, "a number")
        return float(value) if value is not None else None

    def flag(self, key: str, default: Any = ...) -> Any:
        return self.get(key, bool, default, "true or false")

    def ints(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, list, default, "a list of integers")
        if value is not None and not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise BadRequest(f"{self.where}: field {key!r} must be a list of integers")
        return value

    def names(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, list, default, "a list of strings")
        if value is not None and not all(isinstance(v, str) for v in value):
            raise BadRequest(f"{self.where}: field {key!r} must be a list of strings")
        return value

    def only(self, *known: str) -> None:
        unknown = sorted(k for k in self.data if k != "type" and k not in known)
        if unknown:
            raise BadRequest(f"{self.where}: unknown argument(s) {unknown} (known: {sorted(known)})")


# --- digests ---------------------------------------------------------------------------------
def f64_bits(value: float) -> str:
    return struct.pack(">d", float(value)).hex()


class Digests:
    """SHA-256 of a tensor's C-order little-endian element bytes, hashed here with hashlib:
    TorchSharp copies the bytes of a contiguous CPU copy into a reusable .NET MemoryStream,
    16 MiB at a time, which Python reads through the buffer protocol."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self._stream = net.IO.MemoryStream()

    def sha256(self, tensor: Any) -> str:
        net = self.net
        if sys.byteorder != "little":  # pragma: no cover - every supported machine is little-endian
            raise RuntimeError("the digest assumes a little-endian host")
        with net.disposing(net.torch.NewDisposeScope()):  # the copies made here die with it
            return self._sha256(tensor)

    def _sha256(self, tensor: Any) -> str:
        net = self.net
        x = tensor.detach().cpu()
        if str(x.dtype) in QUANTIZED:
            x = x.int_repr()
        flat = x.contiguous().reshape(net.longs([-1]))
        size = int(flat.element_size())
        count = int(flat.numel())
        per_chunk = max(1, HASH_CHUNK // max(size, 1))
        h = hashlib.sha256()
        at = 0
        while at < count:
            n = min(per_chunk, count - at)
            piece = flat.narrow(0, at, n).contiguous()
            self._stream.SetLength(0)
            piece.WriteBytesToStream(self._stream, 1 << 20)
            written = int(self._stream.Length)
            if written != n * size:
                raise RuntimeError(f"TorchSharp wrote {written} bytes for {n} elements of {size} bytes")
            h.update(memoryview(self._stream.GetBuffer())[:written])
            at += n
        return h.hexdigest()

    def of(self, tensor: Any) -> dict[str, Any]:
        return {"dtype": self.net.dtype_name(tensor.dtype), "shape": [int(d) for d in tensor.shape],
                "sha256": self.sha256(tensor)}


# --- modules ---------------------------------------------------------------------------------
class ModuleFactory:
    """Case module specs (PyTorch's constructor names and defaults) -> TorchSharp modules."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.stand_ins: list[Any] = []  # "Module" specs built as a Sequential
        self.makers: dict[str, Callable[[Req], Any]] = {
            "Sequential": self.sequential, "Module": self.module, "Linear": self.linear,
            "Conv1d": self.conv1d, "Conv2d": self.conv2d,
            "BatchNorm1d": self.batchnorm1d, "BatchNorm2d": self.batchnorm2d,
            "ReLU": self.relu, "Tanh": self.tanh, "MaxPool2d": self.maxpool2d, "Flatten": self.flatten,
            "Conv3d": self.conv3d, "BatchNorm3d": self.batchnorm3d, "PReLU": self.prelu, "GELU": self.gelu,
            "ConvTranspose2d": self.convtranspose2d, "LayerNorm": self.layernorm, "GroupNorm": self.groupnorm,
            "InstanceNorm2d": self.instancenorm2d,
        }

    def is_stand_in(self, module: Any) -> bool:
        return any(module.Equals(m) for m in self.stand_ins)

    def build(self, spec: Any, where: str) -> Any:
        req = Req(spec, where)
        kind = req.text("type")
        maker = self.makers.get(kind)
        if maker is None:
            raise lacks(f"module type {kind!r} (it builds: {', '.join(self.makers)})")
        return maker(req)

    def module(self, req: Req) -> Any:
        """A custom module whose fields are its children, run in order. pythonnet 3.2.1 cannot
        subclass TorchSharp's Module<Tensor, Tensor> (no parameterless constructor), so this is
        a Sequential: same keys, same order, same forward, when every child maps a tensor to a
        tensor. TorchSharp's Sequential leaves buffers registered on itself out of its
        state_dict (cases/expected_failures), so state put on such a container is declined."""
        seq = self.sequential(req)
        self.stand_ins.append(seq)
        return seq

    def sequential(self, req: Req) -> Any:
        req.only("children")
        children = req.get("children", list, what="a list of [name, spec]")
        seq = self.net.torch.nn.Sequential()
        for i, entry in enumerate(children):
            if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
                    or not isinstance(entry[1], dict)):
                raise BadRequest(f"{req.where}.children[{i}]: each child must be [name, spec]")
            name, spec = entry
            seq.append(name, self.build(spec, f"{req.where}/{name}"))
        return seq

    def linear(self, req: Req) -> Any:
        req.only("in_features", "out_features", "bias")
        return self.net.torch.nn.Linear(self.net.System.Int64(req.integer("in_features")),
                                        self.net.System.Int64(req.integer("out_features")), req.flag("bias", True))

    def _single(self, req: Req, key: str, default: int | None) -> int:
        value = req.data.get(key, default)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise lacks(f"{key}={json.dumps(value)} in {req.where} (only one integer per dimension)")
        return value

    def _square(self, req: Req, key: str, default: int | None) -> int:
        value = req.data.get(key, default)
        if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
            value = value[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise lacks(f"{key}={json.dumps(value)} in {req.where} (only square sizes)")
        return value

    def _conv(self, req: Req, factory: Any, size: Callable[[Req, str, int | None], int]) -> Any:
        req.only("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
        i64 = self.net.System.Int64
        if "kernel_size" not in req.data:
            raise BadRequest(f"{req.where}: missing field 'kernel_size'")
        return factory(i64(req.integer("in_channels")), i64(req.integer("out_channels")),
                       i64(size(req, "kernel_size", None)), i64(size(req, "stride", 1)),
                       i64(size(req, "padding", 0)), i64(size(req, "dilation", 1)),
                       self.net.TorchSharp.PaddingModes.Zeros, i64(req.integer("groups", 1)), req.flag("bias", True))

    def conv1d(self, req: Req) -> Any:
        return self._conv(req, self.net.torch.nn.Conv1d, self._single)

    def _pair(self, req: Req, key: str, default: int | None) -> tuple[int, int]:
        value = req.data.get(key, default)
        if value is None:
            raise BadRequest(f"{req.where}: missing field {key!r}")
        pair = [value, value] if isinstance(value, int) else value
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
            raise BadRequest(f"{req.where}: field {key!r} must be an integer or a list of 2 integers")
        return pair[0], pair[1]

    def _tuple(self, pair: tuple[int, int], nullable: bool = True) -> Any:
        System = self.net.System
        vt = System.ValueTuple[System.Int64, System.Int64](System.Int64(pair[0]), System.Int64(pair[1]))
        return System.Nullable[System.ValueTuple[System.Int64, System.Int64]](vt) if nullable else vt

    def conv2d(self, req: Req) -> Any:
        sizes = {k: self._pair(req, k, d) for k, d in
                 (("kernel_size", None), ("stride", 1), ("padding", 0), ("dilation", 1))}
        if all(a == b for a, b in sizes.values()):
            return self._conv(req, self.net.torch.nn.Conv2d, self._square)
        # A rectangular kernel, stride, padding or dilation: the (long, long) overload.
        req.only("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
        i64 = self.net.System.Int64
        return self.net.torch.nn.Conv2d(
            i64(req.integer("in_channels")), i64(req.integer("out_channels")),
            self._tuple(sizes["kernel_size"], nullable=False), self._tuple(sizes["stride"]),
            self._tuple(sizes["padding"]), self._tuple(sizes["dilation"]), self.net.TorchSharp.PaddingModes.Zeros,
            i64(req.integer("groups", 1)), req.flag("bias", True), None, None)

    def convtranspose2d(self, req: Req) -> Any:
        req.only("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups",
                 "bias", "dilation")
        i64 = self.net.System.Int64
        return self.net.torch.nn.ConvTranspose2d(
            i64(req.integer("in_channels")), i64(req.integer("out_channels")),
            self._tuple(self._pair(req, "kernel_size", None), nullable=False),
            self._tuple(self._pair(req, "stride", 1)), self._tuple(self._pair(req, "padding", 0)),
            self._tuple(self._pair(req, "output_padding", 0)), self._tuple(self._pair(req, "dilation", 1)),
            self.net.TorchSharp.PaddingModes.Zeros, i64(req.integer("groups", 1)), req.flag("bias", True), None, None)

    def _cube(self, req: Req, key: str, default: int | None) -> int:
        value = req.data.get(key, default)
        if isinstance(value, list) and len(value) == 3 and value[0] == value[1] == value[2]:
            value = value[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise lacks(f"{key}={json.dumps(value)} in {req.where} (only cubic sizes)")
        return value

    def conv3d(self, req: Req) -> Any:
        return self._conv(req, self.net.torch.nn.Conv3d, self._cube)

    def batchnorm3d(self, req: Req) -> Any:
        return self._batchnorm(req, self.net.torch.nn.BatchNorm3d)

    def prelu(self, req: Req) -> Any:
        req.only("num_parameters", "init")
        return self.net.torch.nn.PReLU(self.net.System.Int64(req.integer("num_parameters", 1)),
                                       req.number("init", 0.25),
                                       None, None)

    def gelu(self, req: Req) -> Any:
        req.only("approximate")
        if req.text("approximate", "none") != "none":
            raise lacks(f"GELU approximate={req.data['approximate']!r}")
        return self.net.torch.nn.GELU(False)

    def layernorm(self, req: Req) -> Any:
        req.only("normalized_shape", "eps", "elementwise_affine", "bias")
        shape = req.data.get("normalized_shape")
        dims = [shape] if isinstance(shape, int) and not isinstance(shape, bool) else req.ints("normalized_shape")
        return self.net.torch.nn.LayerNorm(self.net.longs(dims), req.number("eps", 1e-5),
                                           req.flag("elementwise_affine", True), req.flag("bias", True), None, None)

    def groupnorm(self, req: Req) -> Any:
        req.only("num_groups", "num_channels", "eps", "affine")
        i64 = self.net.System.Int64
        return self.net.torch.nn.GroupNorm(i64(req.integer("num_groups")), i64(req.integer("num_channels")),
                                           req.number("eps", 1e-5), req.flag("affine", True), None, None)

    def instancenorm2d(self, req: Req) -> Any:
        req.only("num_features", "eps", "momentum", "affine", "track_running_stats")
        # PyTorch's InstanceNorm defaults differ from BatchNorm's: no affine, no running stats.
        return self.net.torch.nn.InstanceNorm2d(self.net.System.Int64(req.integer("num_features")),
                                                req.number("eps", 1e-5), req.number("momentum", 0.1),
                                                req.flag("affine", False), req.flag("track_running_stats", False),
                                                None, None)

    def _batchnorm(self, req: Req, factory: Any) -> Any:
        req.only("num_features", "eps", "momentum", "affine", "track_running_stats")
        return factory(self.net.System.Int64(req.integer("num_features")), req.number("eps", 1e-5),
                       req.number("momentum", 0.1), req.flag("affine", True), req.flag("track_running_stats", True))

    def batchnorm1d(self, req: Req) -> Any:
        return self._batchnorm(req, self.net.torch.nn.BatchNorm1d)

    def batchnorm2d(self, req: Req) -> Any:
        return self._batchnorm(req, self.net.torch.nn.BatchNorm2d)

    def relu(self, req: Req) -> Any:
        req.only()
        return self.net.torch.nn.ReLU(False)

    def tanh(self, req: Req) -> Any:
        req.only()
        return self.net.torch.nn.Tanh(False)

    def maxpool2d(self, req: Req) -> Any:
        req.only("kernel_size", "stride")
        kernel = self._square(req, "kernel_size", None)
        stride = self._square(req, "stride", kernel)
        nullable = self.net.System.Nullable[self.net.System.Int64]
        return self.net.torch.nn.MaxPool2d(self.net.System.Int64(kernel), nullable(self.net.System.Int64(stride)))

    def flatten(self, req: Req) -> Any:
        req.only("start_dim", "end_dim")
        return self.net.torch.nn.Flatten(self.net.System.Int64(req.integer("start_dim", 1)),
                                         self.net.System.Int64(req.integer("end_dim", -1)))


# --- optimizers ------------------------------------------------------------------------------
# One row per optimizer, from PyTorch's signatures and docs/format.md's table: TorchSharp class,
# PyTorch kwargs with PyTorch's defaults, kwargs TorchSharp has no field for (accepted only
# when null/false), option fields after initial_lr/lr and per-parameter state fields.
_NO_FIELD = ("foreach", "capturable", "differentiable")
_BETAS = (0.9, 0.999)
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "SGD": {"cls": "SGD", "defaults": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
                                       "nesterov": False, "maximize": False},
            "no_field": ("foreach", "differentiable", "fused"),
            "options": ("momentum", "dampening", "weight_decay", "nesterov", "maximize"),
            "state": ("momentum_buffer",)},
    "ASGD": {"cls": "ASGD", "defaults": {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6, "weight_decay": 0.0,
                                         "maximize": False},
             "no_field": _NO_FIELD, "options": ("maximize", "lambd", "alpha", "weight_decay", "t0"),
             "state": ("step", "eta", "mu", "ax")},
    "Rprop": {"cls": "Rprop", "defaults": {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0),
                                           "maximize": False},
              "no_field": _NO_FIELD, "options": ("maximize", "etaminus", "etaplus", "min_step", "max_step"),
              "state": ("step", "prev", "step_size")},
    "RMSprop": {"cls": "RMSProp", "defaults": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
                                               "momentum": 0.0, "centered": False, "maximize": False},
                "no_field": _NO_FIELD,
                "options": ("maximize", "momentum", "alpha", "eps", "weight_decay", "centered"),
                "state": ("step", "square_avg", "momentum_buffer", "grad_avg")},
    "Adam": {"cls": "Adam", "defaults": {"lr": 1e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0,
                                         "amsgrad": False, "maximize": False},
             "no_field": (*_NO_FIELD, "fused", "decoupled_weight_decay"),
             "options": ("beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"),
             "state": ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")},
    "AdamW": {"cls": "AdamW", "defaults": {"lr": 1e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 1e-2,
                                           "amsgrad": False, "maximize": False},
              "no_field": (*_NO_FIELD, "fused"),
              "options": ("beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"),
              "state": ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")},
    "NAdam": {"cls": "NAdam", "defaults": {"lr": 2e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0,
                                           "momentum_decay": 4e-3},
              "no_field": (*_NO_FIELD, "maximize", "decoupled_weight_decay"),
              "options": ("beta1", "beta2", "eps", "weight_decay", "momentum_decay"),
              "state": ("step", "mu_product", "exp_avg", "exp_avg_sq")},
    "RAdam": {"cls": "RAdam", "defaults": {"lr": 1e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0},
              "no_field": (*_NO_FIELD, "maximize", "decoupled_weight_decay"),
              "options": ("beta1", "beta2", "eps", "weight_decay"), "state": ("step", "exp_avg", "exp_avg_sq")},
    "Adamax": {"cls": "Adamax", "defaults": {"lr": 2e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0},
               "no_field": (*_NO_FIELD, "maximize"),
               "options": ("beta1", "beta2", "eps", "weight_decay"), "state": ("step", "exp_avg", "exp_inf")},
    "Adadelta": {"cls": "Adadelta", "defaults": {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0,
                                                 "maximize": False},
                 "no_field": _NO_FIELD, "options": ("rho", "eps", "weight_decay", "maximize"),
                 "state": ("step", "square_avg", "acc_delta")},
    "Adagrad": {"cls": "Adagrad", "defaults": {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0,
                                               "initial_accumulator_value": 0.0, "eps": 1e-10},
                "no_field": ("foreach", "differentiable", "fused", "maximize"),
                "options": ("lr_decay", "initial_accumulator_value", "eps", "weight_decay"),
                "state": ("step", "sum")},
}
# PyTorch kwargs that hold two TorchSharp fields.
PAIRS = {"betas": ("beta1", "beta2"), "etas": ("etaminus", "etaplus"), "step_sizes": ("min_step", "max_step")}
LBFGS_DEFAULTS: dict[str, Any] = {"lr": 1.0, "max_iter": 20, "max_eval": None, "tolerance_grad": 1e-7,
                                  "tolerance_change": 1e-9, "history_size": 100, "line_search_fn": None}


def _kwargs(level: Any, known: set[str], where: str, kind: str) -> dict[str, Any]:
    if not isinstance(level, dict):
        raise BadRequest(f"{where}: expected an object of {kind} arguments")
    out = {}
    for key, value in level.items():
        if key == "params":
            continue
        if key not in known:
            raise BadRequest(f"{where}: {kind} has no argument {key!r} (known: {sorted(known)})")
        out[key] = value
    return out


class OptimizerFactory:
    def __init__(self, net: Net, digests: Digests) -> None:
        self.net = net
        self.digests = digests

    def build(self, spec: Any, parameters: dict[str, Any]) -> Any:
        req = Req(spec, "optimizer")
        req.only("defaults", "groups")
        kind = req.text("type")
        groups = req.get("groups", list, what="a list of groups")
        members = []
        for i, group in enumerate(groups):
            g = Req(group, f"optimizer.groups[{i}]")
            names = g.names("params")
            missing = [n for n in names if n not in parameters]
            if missing:
                raise BadRequest(f"{g.where}: no parameter named {missing[0]!r} (model has: {', '.join(parameters)})")
            members.append([parameters[n] for n in names])
        if kind == "LBFGS":
            return self._lbfgs(req, groups, members)
        row = OPTIMIZERS.get(kind)
        if row is None:
            raise lacks(f"optimizer type {kind!r} (it builds: {', '.join([*OPTIMIZERS, 'LBFGS'])})")
        known = set(row["defaults"]) | set(row["no_field"])
        defaults = {**row["defaults"], **_kwargs(req.data.get("defaults") or {}, known, "optimizer.defaults", kind)}
        cls = getattr(self.net.Modules, row["cls"])
        group_list = self.net.Generic.List[cls.ParamGroup]()
        for i, (group, params) in enumerate(zip(groups, members)):
            merged = {**defaults, **_kwargs(group, known, f"optimizer.groups[{i}]", kind)}
            options = cls.Options()
            for field, value in self._fields(kind, row, merged, f"optimizer.groups[{i}]"):
                if field == "lr":
                    options.LearningRate = value
                else:
                    if not hasattr(options, field):
                        raise RuntimeError(f"TorchSharp's {row['cls']}.Options has no field {field!r}")
                    setattr(options, field, value)
            plist = self.net.Generic.List[self.net.Modules.Parameter]()
            for p in params:
                plist.Add(p)
            group_list.Add(cls.ParamGroup(plist, options))
        lr = float(defaults["lr"])
        return cls(group_list, lr)

    @staticmethod
    def _fields(kind: str, row: dict[str, Any], kwargs: dict[str, Any], where: str) -> Iterator[tuple[str, Any]]:
        for key, value in kwargs.items():
            if key in row["no_field"]:
                if value is None or value is False:
                    continue
                raise Declined(f"TorchSharp's {row['cls']} has no option {key!r} (requested {json.dumps(value)})")
            if key in PAIRS:
                if (not isinstance(value, (list, tuple)) or len(value) != 2
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                    raise BadRequest(f"{where}: {key!r} must be a list of two numbers")
                yield PAIRS[key][0], float(value[0])
                yield PAIRS[key][1], float(value[1])
            elif isinstance(row["defaults"].get(key), bool):
                if not isinstance(value, bool):
                    raise BadRequest(f"{where}: {kind} option {key!r} must be true or false")
                yield key, value
            else:
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise BadRequest(f"{where}: {kind} option {key!r} must be a number")
                yield key, float(value)

    def _lbfgs(self, req: Req, groups: list[Any], members: list[list[Any]]) -> Any:
        known = set(LBFGS_DEFAULTS)
        if len(groups) != 1:
            raise Declined("TorchSharp's LBFGS takes a single parameter group")
        kw = {**LBFGS_DEFAULTS, **_kwargs(req.data.get("defaults") or {}, known, "optimizer.defaults", "LBFGS"),
              **_kwargs(groups[0], known, "optimizer.groups[0]", "LBFGS")}
        if kw["line_search_fn"] is not None:
            raise Declined(f"TorchSharp's LBFGS has no line_search_fn (requested {kw['line_search_fn']!r})")
        System = self.net.System
        plist = self.net.Generic.List[self.net.Modules.Parameter]()
        for p in members[0]:
            plist.Add(p)

        def whole(key: str) -> Any:
            value = kw[key]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadRequest(f"LBFGS {key!r} must be an integer")
            return System.Int64(value)

        max_eval = None if kw["max_eval"] is None else System.Nullable[System.Int64](whole("max_eval"))
        return self.net.torch.optim.LBFGS(plist, float(kw["lr"]), whole("max_iter"), max_eval,
                                          float(kw["tolerance_grad"]), float(kw["tolerance_change"]),
                                          whole("history_size"))

    def digest(self, opt: Any) -> dict[str, Any]:
        class_name = str(opt.GetType().Name)
        row = next((r for r in OPTIMIZERS.values() if r["cls"] == class_name), None)
        groups: list[dict[str, Any]] = []
        states: list[dict[str, Any]] = []
        if row is None:  # LBFGS: learning rates only; its state is native
            for g in opt.ParamGroups:
                groups.append({"initial_lr": f64_bits(g.InitialLearningRate), "lr": f64_bits(g.LearningRate)})
            return {"class": class_name, "groups": groups, "states": states}
        sd = opt.state_dict()
        for options in sd.Options:
            entry: dict[str, Any] = {"initial_lr": f64_bits(options.InitialLearningRate),
                                     "lr": None if options.LearningRate is None else f64_bits(options.LearningRate)}
            for name in row["options"]:
                entry[name] = self._value(getattr(options, name))
            groups.append(entry)
        for state in sd.State:
            states.append({name: self._value(getattr(state, name)) for name in row["state"]})
        return {"class": class_name, "groups": groups, "states": states}

    def _value(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return f64_bits(value)
        if hasattr(value, "WriteBytesToStream"):
            return self.digests.of(value)
        raise RuntimeError(f"unexpected optimizer field value of type {type(value).__name__}")


# --- the session -------------------------------------------------------------------------------
class Session:
    """One model, at most one optimizer (docs/protocol.md)."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.digests = Digests(net)
        self.modules = ModuleFactory(net)
        self.optimizers = OptimizerFactory(net, self.digests)
        self.model: Any = None
        self.optimizer: Any = None
        self.parameters: dict[str, Any] = {}
        self.device: Any = None
        self.ops: dict[str, Callable[[Req], dict[str, Any]]] = {
            "hello": self.hello, "build": self.build, "load_module": self.load_module,
            "save_module": self.save_module, "load_optimizer": self.load_optimizer,
            "save_optimizer": self.save_optimizer, "step": self.step, "train": self.train,
            "forward": self.forward, "tensor_roundtrip": self.tensor_roundtrip, "jit_run": self.jit_run,
            "digest": self.digest, "shutdown": lambda _: {},
        }

    # --- helpers ---
    def _model(self) -> Any:
        if self.model is None:
            raise RuntimeError("no model: send 'build' first")
        return self.model

    def _optimizer(self) -> Any:
        if self.optimizer is None:
            raise RuntimeError("no optimizer: 'build' was sent without one")
        return self.optimizer

    def _persistable(self) -> Any:
        opt = self._optimizer()
        if str(opt.GetType().Name) == "LBFGS":
            raise Declined("TorchSharp has no file form for LBFGS")
        return opt

    def _no_grad(self) -> _Disposer:
        return self.net.disposing(self.net.torch.no_grad())

    def _scope(self) -> _Disposer:
        return self.net.disposing(self.net.torch.NewDisposeScope())

    def _load_tensor(self, path: str) -> Any:
        return self.net.torch.Tensor.Load(path)

    def _save_tensor(self, tensor: Any, path: str) -> None:
        self.net.TorchSharp.TensorExtensionMethods.Save(tensor, path)

    # --- ops ---
    def hello(self, req: Req) -> dict[str, Any]:
        System = self.net.System
        assembly = System.Type.GetType("TorchSharp.torch, TorchSharp").Assembly
        attr_type = System.Reflection.AssemblyInformationalVersionAttribute
        informational = None
        for attr in assembly.GetCustomAttributes(attr_type, False):
            informational = str(attr.InformationalVersion)
        if informational is None:
            informational = str(assembly.GetName().Version)
        return {
            "protocol": PROTOCOL, "implementation": "TorchSharp", "driver": DRIVER,
            "version": informational.split("+")[0], "version_informational": informational,
            "libtorch": str(self.net.torch.__version__),
            "runtime": str(self.net.Interop.RuntimeInformation.FrameworkDescription),
            "python": sys.version.split()[0],
            "os": str(self.net.Interop.RuntimeInformation.OSDescription),
            "cuda": bool(self.net.torch.cuda.is_available()),
            "optimizers": [*OPTIMIZERS, "LBFGS"], "modules": list(self.modules.makers),
            "lacks": ["integer inputs ('input' of train)",
                      "module types beyond 'modules'"],
        }

    def build(self, req: Req) -> dict[str, Any]:
        spec = req.get("model", dict, what="a module spec")
        dtype = self.net.scalar_type(req.text("dtype"))
        device_name = req.text("device")
        seed = req.integer("seed")
        opt_spec = req.get("optimizer", dict, None, "an optimizer spec or null")
        tie = req.get("tie", list, [], "a list of [target, source]")
        buffers = req.get("buffers", list, [], "a list of buffer specs")
        frozen = req.names("frozen", [])
        views = req.get("views", list, [], "a list of view specs")
        if device_name == "cuda":
            if not self.net.torch.cuda.is_available():
                raise Declined("CUDA not available in this TorchSharp build/machine")
            device = self.net.torch.CUDA
        elif device_name == "cpu":
            device = self.net.torch.CPU
        else:
            raise BadRequest(f"build: device must be 'cpu' or 'cuda', got {device_name!r}")
        self._drop()
        self.modules.stand_ins.clear()
        self.net.torch.manual_seed(self.net.System.Int64(seed))
        model = self.modules.build(spec, "model")
        try:
            # Module.to is an extension method: pythonnet calls it as the static generic it is.
            to = self.net.TorchSharp.ModuleExtensionMethods.to[self.net.torch.nn.Module]
            to(model, dtype, False)
            to(model, device, False)
            # The case's extras, in the protocol's order: tie, buffers, frozen, views.
            self._tie(model, tie)
            self._buffers(model, buffers, dtype, device)
            self._freeze(model, frozen)
            self._views(model, views)
            params = {str(p.Item1): p.Item2 for p in model.named_parameters()}
            optimizer = self.optimizers.build(opt_spec, params) if opt_spec is not None else None
        except BaseException:
            model.Dispose()
            raise
        self.model, self.optimizer, self.parameters, self.device = model, optimizer, params, device
        return {"parameters": list(params), "state_keys": [str(k) for k in model.state_dict().Keys]}

    def _owner(self, model: Any, name: str, what: str) -> tuple[Any, str]:
        """The module that holds state ``name`` ("a.b.w" -> module "a.b", leaf "w")."""
        path, _, leaf = name.rpartition(".")
        owner = model if not path else self._find_module(model, path, name, what)
        if self.modules.is_stand_in(owner):
            raise lacks(f"{what}: state on a 'Module' container ({name!r}), which it builds as a Sequential")
        return owner, leaf

    @staticmethod
    def _find_module(model: Any, path: str, name: str, what: str) -> Any:
        for item in model.named_modules():
            if str(item.Item1) == path:
                return item.Item2
        raise BadRequest(f"{what}: no module {path!r} for {name!r}")

    def _tie(self, model: Any, pairs: list[Any]) -> None:
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise BadRequest(f"tie[{i}]: expected [target, source]")
            target, source = pair
            params = {str(p.Item1): p.Item2 for p in model.named_parameters()}
            if source not in params:
                raise BadRequest(f"tie[{i}]: no parameter named {source!r}")
            owner, leaf = self._owner(model, target, f"tie[{i}]")
            # A module whose parameter is a .NET property (Linear.weight) takes it through the
            # property, which re-registers it; any other gets it registered under the leaf name.
            if hasattr(owner, leaf):
                setattr(owner, leaf, params[source])
            else:
                owner.register_parameter(leaf, params[source])

    def _buffers(self, model: Any, buffers: list[Any], dtype: Any, device: Any) -> None:
        net = self.net
        for i, spec in enumerate(buffers):
            b = Req(spec, f"buffers[{i}]")
            b.only("name", "shape", "persistent", "fill")
            owner, leaf = self._owner(model, b.text("name"), b.where)
            fill = net.TorchSharp.ScalarExtensionMethods.ToScalar(net.System.Double(b.number("fill", 0.0)))
            value = net.torch.full(net.longs(b.ints("shape")), fill, dtype, device, False, None)
            owner.register_buffer(leaf, value, b.flag("persistent", True))

    def _freeze(self, model: Any, names: list[str]) -> None:
        params = {str(p.Item1): p.Item2 for p in model.named_parameters()}
        for name in names:
            if name not in params:
                raise BadRequest(f"frozen: no parameter named {name!r}")
            params[name].requires_grad = False

    def _views(self, model: Any, views: list[Any]) -> None:
        for i, spec in enumerate(views):
            v = Req(spec, f"views[{i}]")
            v.only("name", "of", "dim", "start", "length")
            state = {str(item.Key): item.Value for item in model.state_dict()}
            of = v.text("of")
            if of not in state:
                raise BadRequest(f"{v.where}: no parameter or buffer named {of!r}")
            owner, leaf = self._owner(model, v.text("name"), v.where)
            view = state[of].detach().narrow(v.integer("dim"), v.integer("start"), v.integer("length"))
            owner.register_buffer(leaf, view, True)

    def _drop(self) -> None:
        if self.optimizer is not None:
            self.optimizer.Dispose()
        if self.model is not None:
            self.model.Dispose()
        self.model, self.optimizer, self.parameters = None, None, {}

    def load_module(self, req: Req) -> dict[str, Any]:
        path = req.text("path")
        strict = req.flag("strict", True)
        skip = req.names("skip", [])
        model = self._model()
        skip_list = self.net.Generic.List[self.net.System.String]()
        for name in skip:
            skip_list.Add(name)
        model.load(path, strict, skip_list)
        return {}

    def save_module(self, req: Req) -> dict[str, Any]:
        self._model().save(req.text("path"))
        return {}

    def load_optimizer(self, req: Req) -> dict[str, Any]:
        path = req.text("path")
        self._persistable().load_state_dict(path)
        return {}

    def save_optimizer(self, req: Req) -> dict[str, Any]:
        path = req.text("path")
        self._persistable().save_state_dict(path)
        return {}

    def step(self, req: Req) -> dict[str, Any]:
        grads = req.get("grads", dict, what="an object of parameter name -> path")
        for name, path in grads.items():
            if not isinstance(path, str):
                raise BadRequest(f"step.grads: {name!r} must be a path string")
        self._model()
        unknown = [n for n in grads if n not in self.parameters]
        if unknown:
            raise BadRequest(f"step.grads: no parameter named {unknown[0]!r} (model has: {', '.join(self.parameters)})")
        opt = self._optimizer()
        if str(opt.GetType().Name) == "LBFGS":
            raise Declined("LBFGS steps need a closure; the 'step' op supplies fixed gradients")
        with self._no_grad():
            for name, param in self.parameters.items():
                if name in grads:
                    g = self._load_tensor(grads[name])
                    if str(g.dtype) != str(param.dtype) or str(g.device) != str(param.device):
                        g = g.to(param.dtype, param.device)
                    param.grad = g
                else:
                    param.grad = None
        opt.step()
        return {}

    def train(self, req: Req) -> dict[str, Any]:
        steps = req.integer("steps")
        seed = req.integer("seed")
        shape = req.ints("input_shape")
        if req.has("input"):
            raise lacks("integer inputs ('input' of train)")
        net = self.net
        model = self._model()
        generator = net.torch.Generator(net.System.UInt64(seed), None)
        model.train()
        params = list(model.parameters())
        losses: list[str] = []
        if not params:
            # Nothing to optimise: train-mode forwards still move buffers (running stats).
            floating = [t.dtype for t in (item.Value for item in model.state_dict()) if t.is_floating_point()]
            dtype = floating[0] if floating else net.ScalarType.Float32
            with self._no_grad():
                for _ in range(steps):
                    with self._scope():
                        x = net.torch.randn(net.longs(shape), net.ScalarType.Float32, None, False, generator, None)
                        model.call(x.to(dtype).to(self.device))
            return {"losses": losses}
        dtype = params[0].dtype
        owned = self.optimizer is None
        opt = net.torch.optim.SGD(model.parameters(), 0.01) if owned else self.optimizer
        is_lbfgs = str(opt.GetType().Name) == "LBFGS"
        for _ in range(steps):
            with self._scope():
                x = net.torch.randn(net.longs(shape), net.ScalarType.Float32, None, False, generator, None)
                x = x.to(dtype).to(self.device)
                if is_lbfgs:
                    def closure() -> Any:
                        opt.zero_grad()
                        value = model.call(x).square().mean()
                        value.backward()
                        return value
                    loss = opt.step(net.System.Func[net.torch.Tensor](closure))
                else:
                    loss = model.call(x).square().mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                losses.append(f64_bits(float(loss.detach().to(net.ScalarType.Float64).item[net.System.Double]())))
        opt.zero_grad()
        if owned:
            opt.Dispose()
        return {"losses": losses}

    def forward(self, req: Req) -> dict[str, Any]:
        source, target = req.text("input"), req.text("output")
        train = req.flag("train", False)
        model = self._model()
        if train:
            model.train()
        else:
            model.eval()
        with self._scope(), self._no_grad():
            x = self._load_tensor(source).to(self.device)
            y = model.call(x).detach().cpu().contiguous()
            self._save_tensor(y, target)
        return {}

    def tensor_roundtrip(self, req: Req) -> dict[str, Any]:
        source, target = req.text("input"), req.text("output")
        with self._scope():
            t = self._load_tensor(source)
            self._save_tensor(t, target)
            return self.digests.of(t)

    def jit_run(self, req: Req) -> dict[str, Any]:
        path, source, target = req.text("path"), req.text("input"), req.text("output")
        resave = req.text("resave", None)
        net = self.net
        T = net.torch.Tensor
        # torch.jit.load<Tensor, Tensor>(path): the generic overload on a file name, CPU.
        script = net.torch.jit.load[T, T](path, net.TorchSharp.DeviceType.CPU, net.System.Int64(-1))
        try:
            script.eval()
            state = [{"name": str(item.Key), **self.digests.of(item.Value)} for item in script.state_dict()]
            with self._scope(), self._no_grad():
                x = self._load_tensor(source)
                self._save_tensor(script.call(x), target)
            if resave is not None:
                net.torch.jit.save(script, resave)
        finally:
            script.Dispose()
        return {"module": state}

    def digest(self, req: Req) -> dict[str, Any]:
        model = self._model()
        module = []
        for item in model.state_dict():
            module.append({"name": str(item.Key), **self.digests.of(item.Value)})
        return {"module": module,
                "optimizer": None if self.optimizer is None else self.optimizers.digest(self.optimizer)}


# --- the loop ----------------------------------------------------------------------------------
def _protocol_stream() -> IO[str]:
    """The protocol's own copy of stdout; fd 1 then points at stderr, so whatever LibTorch,
    .NET or a stray print writes cannot corrupt the replies."""
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


def _error(exc: BaseException) -> dict[str, Any]:
    inner = getattr(exc, "InnerException", None)
    while inner is not None and type(exc).__name__ in ("TargetInvocationException", "TypeInitializationException"):
        exc, inner = inner, getattr(inner, "InnerException", None)
    name = type(exc).__name__
    net_type = getattr(exc, "GetType", None)
    if callable(net_type):
        try:
            name = str(net_type().FullName)
        except Exception:  # noqa: BLE001 - a Python exception named like .NET: keep the Python name
            pass
    message = str(getattr(exc, "Message", None) or exc)
    stack = "".join(traceback.format_exception(exc))[-6000:]
    return {"type": name, "message": message, "stack": stack}


def handle(session: Session, line: str) -> tuple[dict[str, Any], bool]:
    ident: Any = None
    op = "?"
    try:
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadRequest(f"a request must be a JSON object, got {type(data).__name__}")
        ident = data.get("id")
        op = Req(data, "request").text("op")
        action = session.ops.get(op)
        if action is None:
            raise BadRequest(f"unknown op {op!r} (known: {', '.join(session.ops)})")
        print(f"pythonnet worker: {op} (id {ident})", file=sys.stderr, flush=True)
        result = action(Req(data, op))
        return {"id": ident, "status": "ok", "result": result}, op == "shutdown"
    except BadRequest as exc:
        print(f"pythonnet worker: {op}: parse_error: {exc}", file=sys.stderr, flush=True)
        return {"id": ident, "status": "parse_error", "error": _error(exc)}, False
    except Declined as exc:
        print(f"pythonnet worker: {op}: skipped: {exc}", file=sys.stderr, flush=True)
        return {"id": ident, "status": "skipped", "reason": str(exc)}, False
    except Exception as exc:  # noqa: BLE001 - every failure of an op is a runtime_error answer
        print(f"pythonnet worker: {op}: runtime_error:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        return {"id": ident, "status": "runtime_error", "error": _error(exc)}, False


def serve(stdin: IO[str], stdout: IO[str]) -> int:
    session = Session(Net())
    for line in stdin:
        if not line.strip():
            continue
        response, done = handle(session, line)
        stdout.write(json.dumps(response, separators=(",", ":")) + "\n")
        stdout.flush()
        if done:
            break
    return 0


def main() -> int:
    out = _protocol_stream()
    return serve(sys.stdin, out)


if __name__ == "__main__":
    raise SystemExit(main())
