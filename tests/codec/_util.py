"""Helpers shared by the codec tests: byte-exact tensor comparison, docs/format.md bytes built by
hand (independent of the codec), a non-seekable stream, the corpus location."""
from __future__ import annotations

import io
import struct

import torch

from harness.cases import CORPUS_DIR

QUANTIZED = {torch.qint8: torch.int8, torch.quint8: torch.uint8, torch.qint32: torch.int32}


def raw_bytes(t: torch.Tensor) -> bytes:
    """The C-order element bytes of ``t`` (bit patterns, NaN payloads included)."""
    t = t.detach().cpu()
    if t.is_quantized:
        t = t.int_repr()
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def assert_same_tensor(a: torch.Tensor, b: torch.Tensor, what: str = "tensor") -> None:
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} != {b.dtype}"
    assert tuple(a.shape) == tuple(b.shape), f"{what}: shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert raw_bytes(a) == raw_bytes(b), f"{what}: bytes differ"


# --- docs/format.md bytes built by hand (independent of the codec) ---------------------------------
def uleb(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def dotnet_str(s: str) -> bytes:
    raw = s.encode("utf-8")
    return uleb(len(raw)) + raw


def f64(x: float) -> bytes:
    return struct.pack("<d", x)


def i64(x: int) -> bytes:
    return struct.pack("<q", x)


def boolb(x: bool) -> bytes:
    return b"\x01" if x else b"\x00"


def record(code: int, shape: tuple[int, ...], data: bytes) -> bytes:
    return uleb(code) + uleb(len(shape)) + b"".join(uleb(d) for d in shape) + data


def to_bytes(fn, *args) -> bytes:
    buf = io.BytesIO()
    fn(buf, *args)
    return buf.getvalue()


class NonSeekable(io.RawIOBase):
    """A pipe-like reader: no seek/tell, so the codec cannot know the file size."""

    def __init__(self, data: bytes):
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        return self._buf.readinto(b)


CORPUS = CORPUS_DIR  # cases/corpus/ (part of the repository)
