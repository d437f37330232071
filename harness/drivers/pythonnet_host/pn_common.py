"""What the pythonnet server's parts share: request fields, .NET helpers, digests (standard
library and ``clr`` only)."""
from __future__ import annotations

import hashlib
import importlib
import json
import struct
import sys
from typing import Any

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
