"""Byte digests that both implementations report (docs/protocol.md "Value encodings").

Deliberately independent of the codec: a tensor's bytes are taken from PyTorch's own
memory (C order, little-endian), never from a .dat file, so a codec bug cannot hide
behind a digest computed by the same codec.
"""
from __future__ import annotations

import hashlib
import struct
import sys
from dataclasses import dataclass
from typing import Any

import numpy
import torch

from harness.cases.torch_build import DTYPE_NAMES

if sys.byteorder != "little":  # pragma: no cover - every supported machine is little-endian
    raise ImportError("harness.verdicts.digest assumes a little-endian host")

_REINTERPRET = {torch.bfloat16: torch.int16, torch.float16: torch.int16}


def tensor_buffer(t: torch.Tensor) -> memoryview:
    """The C-order little-endian element bytes of ``t`` (quantized: the integer values) as a
    flat byte view of PyTorch's own memory: no copy for a contiguous CPU tensor, so a
    digest of a 2 GiB tensor touches no new memory."""
    t = t.detach().cpu()
    if t.is_quantized:
        t = t.int_repr()
    t = t.contiguous()
    if t.dtype in _REINTERPRET:
        t = t.view(_REINTERPRET[t.dtype])
    return memoryview(t.numpy().reshape(-1).view(numpy.uint8))


def tensor_bytes(t: torch.Tensor) -> bytes:
    """:func:`tensor_buffer` copied into a ``bytes`` (small tensors, tests)."""
    return tensor_buffer(t).tobytes()


@dataclass(frozen=True)
class TensorDigest:
    dtype: str
    shape: tuple[int, ...]
    sha256: str

    @classmethod
    def of(cls, t: torch.Tensor) -> TensorDigest:
        return cls(DTYPE_NAMES[t.dtype], tuple(t.shape), hashlib.sha256(tensor_buffer(t)).hexdigest())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TensorDigest:
        return cls(str(data["dtype"]), tuple(int(d) for d in data["shape"]), str(data["sha256"]))

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape), "sha256": self.sha256}

    def __str__(self) -> str:
        return f"{self.dtype}{list(self.shape)} sha256:{self.sha256[:12]}"


def f64_hex(value: float) -> str:
    """IEEE-754 bits of a float64 as 16 lower-case hex digits (bitwise comparable)."""
    return struct.pack(">d", float(value)).hex()


def module_digest(state_dict: dict[str, torch.Tensor]) -> dict[str, TensorDigest]:
    return {k: TensorDigest.of(v) for k, v in state_dict.items()}


def module_digest_to_json(module: dict[str, TensorDigest]) -> list[dict[str, Any]]:
    """Named digests in order, as the worker protocol carries them ([{"name", "dtype",
    "shape", "sha256"}, ...]). Inverse of :func:`module_digest_from_json`."""
    return [{"name": k, **v.to_json()} for k, v in module.items()]


def module_digest_from_json(entries: list[dict[str, Any]]) -> dict[str, TensorDigest]:
    """Inverse of :func:`module_digest_to_json`."""
    return {str(e["name"]): TensorDigest.from_json(e) for e in entries}
