"""Tensor records and the single-tensor file (``Tensor.Save`` / static ``Tensor.Load``).

Record: ``uleb dtype, uleb ndim, uleb dim[ndim], numel * itemsize raw little-endian bytes``
in C order. Tensors read back are writable and own their memory.

Policies (see README.md):
- a dtype with no TorchSharp code is refused on write (:class:`UnsupportedDtypeError`);
  an unknown code on read is refused (:class:`UnknownDtypeError`) naming the dtype libtorch
  gives that number where there is one;
- quantized records (codes 12-14) carry no scale/zero point: read back as per-tensor
  quantized with scale 1.0 and zero point 0; a tensor with other quantization parameters
  (or per-channel) is refused on write (:class:`LossyTensorError`).
"""
from __future__ import annotations

import math
import sys
from typing import IO, BinaryIO

import torch

from harness.codec._io import CHUNK, Dest, Reader, Source, open_dest, open_source, uleb_bytes
from harness.codec.dtypes import (
    BYTES_VIEW,
    CODE_TO_DTYPE,
    DTYPE_TO_CODE,
    ITEMSIZE,
    KNOWN_UNNAMED,
    QUANTIZED_REPR,
)
from harness.codec.errors import InvalidLengthError, LossyTensorError, UnknownDtypeError, UnsupportedDtypeError

if sys.byteorder != "little":  # pragma: no cover - TorchSharp's format is little-endian
    raise ImportError("harness.codec writes raw little-endian element bytes; this host is big-endian")

MAX_DIM = (1 << 63) - 1


def _storage_dtype(dtype: torch.dtype) -> torch.dtype:
    return BYTES_VIEW.get(dtype, QUANTIZED_REPR.get(dtype, dtype))


def read_tensor_record(r: Reader, name: str = "tensor") -> torch.Tensor:
    """Read one tensor record. Inverse of :func:`write_tensor_record`."""
    start = r.offset
    code = r.uleb(f"{name} dtype code")
    dtype = CODE_TO_DTYPE.get(code)
    if dtype is None:
        known = f" ({KNOWN_UNNAMED[code]} in libtorch, which TorchSharp has no dtype for)" if code in KNOWN_UNNAMED else ""
        raise UnknownDtypeError(f"{name} dtype code", start, f"unknown dtype code {code}{known}")
    ndim_at = r.offset
    ndim = r.uleb(f"{name} ndim")
    r.check_fits(ndim, f"{name} ndim", ndim_at, f"a rank of {ndim} (one byte per dimension at least)")
    if r.remaining is None and ndim > 4096:
        raise InvalidLengthError(f"{name} ndim", ndim_at, f"rank {ndim} is beyond any tensor libtorch makes")
    shape = []
    for i in range(ndim):
        dim_at = r.offset
        d = r.uleb(f"{name} dim[{i}]")
        if d > MAX_DIM:
            raise InvalidLengthError(f"{name} dim[{i}]", dim_at, f"dimension {d} exceeds 2**63-1")
        shape.append(d)
    numel = math.prod(shape)
    nbytes = numel * ITEMSIZE[code]
    data_at = r.offset
    r.check_fits(nbytes, f"{name} data", data_at, f"shape {shape} of {dtype} ({numel} elements)")
    storage = _storage_dtype(dtype)
    if r.remaining is not None or nbytes <= CHUNK:
        out = torch.empty(shape, dtype=storage)
        if nbytes:
            r.into(memoryview(out.numpy()).cast("B"), f"{name} data")
    else:  # unbounded stream: grow chunk by chunk so a lying header cannot make us allocate
        buf = bytearray()
        while len(buf) < nbytes:
            piece = r.f.read(min(CHUNK, nbytes - len(buf)))
            if not piece:
                r.exact(nbytes - len(buf), f"{name} data")  # raises TruncatedError at the right offset
            buf += piece
            r.offset += len(piece)
        out = torch.frombuffer(buf, dtype=storage).reshape(shape) if numel else torch.empty(shape, dtype=storage)
    if dtype in BYTES_VIEW:
        out = out.view(dtype)
    elif dtype in QUANTIZED_REPR:
        out = torch._make_per_tensor_quantized_tensor(out, 1.0, 0)
    return out


def _header(code: int, shape: tuple[int, ...]) -> bytes:
    return uleb_bytes(code) + uleb_bytes(len(shape)) + b"".join(uleb_bytes(d) for d in shape)


def write_tensor_record(f: BinaryIO | IO[bytes], tensor: torch.Tensor, name: str = "tensor") -> None:
    """Write one tensor record, streaming its bytes. Inverse of :func:`read_tensor_record`."""
    if not isinstance(tensor, torch.Tensor):
        raise UnsupportedDtypeError(name, None, f"expected a torch.Tensor, got {type(tensor).__name__}")
    code = DTYPE_TO_CODE.get(tensor.dtype)
    if code is None:
        raise UnsupportedDtypeError(name, None, f"dtype {tensor.dtype} has no TorchSharp dtype code; "
                                    "refusing to write it with a made-up code")
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_quantized:
        if t.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric) \
                or t.q_scale() != 1.0 or t.q_zero_point() != 0:
            raise LossyTensorError(name, None, "a TorchSharp record carries no quantization scale or zero "
                                   f"point; this tensor has {t.qscheme()} (scale/zero point not 1.0/0)")
        t = t.int_repr()
    if t.is_complex():
        t = t.resolve_conj()
    t = t.resolve_neg().contiguous()
    if t.dtype in BYTES_VIEW:
        t = t.view(BYTES_VIEW[t.dtype])
    f.write(_header(code, tuple(t.shape)))
    if t.numel():
        f.write(memoryview(t.numpy()).cast("B"))


def read_tensor(source: Source) -> torch.Tensor:
    """Read a single-tensor file (``Tensor.Save`` form). Inverse of :func:`write_tensor`."""
    with open_source(source) as f:
        r = Reader(f)
        t = read_tensor_record(r)
        r.expect_end("end of tensor file")
        return t


def write_tensor(dest: Dest, tensor: torch.Tensor) -> None:
    """Write a single-tensor file (``Tensor.Save`` form). Inverse of :func:`read_tensor`."""
    with open_dest(dest) as f:
        write_tensor_record(f, tensor)
