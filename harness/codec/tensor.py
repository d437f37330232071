"""Tensor records and the single-tensor file (``Tensor.Save`` / static ``Tensor.Load``).

Record: ``uleb dtype, uleb ndim, uleb dim[ndim], numel * itemsize raw little-endian bytes``
in C order. Reading streams each tensor's bytes straight into a freshly allocated tensor
(``readinto``), so tensors read back are writable and own their memory; writing streams
each tensor's bytes from a memoryview of its storage (non-contiguous tensors are written
in C order, GPU tensors copied to the CPU first). With ``mmap=True`` (paths only) the file
is mapped copy-on-write and each naturally aligned record is a view of it instead
(README.md, "Zero-copy reads").

Policies (README.md):
- a dtype with no TorchSharp code is refused on write (:class:`UnsupportedDtypeError`);
  an unknown code on read is refused (:class:`UnknownDtypeError`) naming the dtype libtorch
  gives that number where there is one;
- quantized records (codes 12-14) carry no scale/zero point: read back as per-tensor
  quantized with scale 1.0 and zero point 0; a tensor with other quantization parameters
  (or per-channel) is refused on write (:class:`LossyTensorError`).
"""
from __future__ import annotations

import ctypes
import sys

import torch

from harness.codec import _hugepages
from harness.codec._io import (
    CHUNK,
    Dest,
    MappedReader,
    Reader,
    Source,
    Stream,
    check_dim,
    check_mmap_flag,
    open_mapped,
    open_source,
    read_uleb,
    write_uleb,
)
from harness.codec._sink import SMALL_WRITE, Sink, open_dest, write_all
from harness.codec.dtypes import (
    BYTES_VIEW,
    CODE_TO_DTYPE,
    DTYPE_TO_CODE,
    ITEMSIZE,
    KNOWN_UNNAMED,
    QUANTIZED_REPR,
)
from harness.codec.errors import (
    InvalidLengthError,
    InvalidValueError,
    LossyTensorError,
    TruncatedError,
    UnknownDtypeError,
    UnsupportedDtypeError,
    UnsupportedTensorError,
)

if sys.byteorder != "little":  # pragma: no cover - TorchSharp's format is little-endian
    raise ImportError("harness.codec moves raw little-endian element bytes; this host is big-endian")

MAX_BYTES = (1 << 63) - 1
# Tensor types whose data_ptr() is trusted as their memory (a subclass may not have real memory)
PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
# Without a known file size (pipes) a rank above this is refused rather than read dim by dim.
MAX_NDIM_UNBOUNDED = 4096


_DIM_SUFFIXES = tuple(f" dim[{i}]" for i in range(8))


def _dim_suffix(i: int) -> str:
    return _DIM_SUFFIXES[i] if i < len(_DIM_SUFFIXES) else f" dim[{i}]"


def _storage_dtype(dtype: torch.dtype) -> torch.dtype:
    return BYTES_VIEW.get(dtype, QUANTIZED_REPR.get(dtype, dtype))


def byte_view(t: torch.Tensor, nbytes: int) -> memoryview:
    """A writable 1-D byte view of the memory of ``t``, a fresh contiguous CPU tensor of
    ``nbytes`` bytes (a few times cheaper than ``.numpy()``, which counts for small tensors).
    The view holds ``t`` (view -> ctypes array -> ``t``): its memory outlives any view."""
    array = (ctypes.c_ubyte * nbytes).from_address(t.data_ptr())
    setattr(array, "owner", t)  # noqa: B010 - (ctypes arrays take attributes; mypy's stubs do not say so)
    return memoryview(array).cast("B")


def fresh_tensor(shape: list[int], storage: torch.dtype, numel: int, nbytes: int,
                 dtype: torch.dtype) -> torch.Tensor:
    """A new contiguous tensor of ``shape`` and ``storage`` dtype (``nbytes`` bytes, read
    as ``dtype``) whose memory the caller fills: a huge-page advised anonymous mapping for a
    large non-quantized record (:mod:`harness.codec._hugepages`; the tensor holds the
    mapping), else ``torch.empty``."""
    big = _hugepages.new_buffer(nbytes) if nbytes and dtype not in QUANTIZED_REPR else None
    if big is None:
        return torch.empty(shape, dtype=storage)
    return torch.frombuffer(big, dtype=storage, count=numel).reshape(shape)


def _read_header(r: Reader, name: str) -> tuple[int, torch.dtype, list[int], int, int, int]:
    """A record's dtype code, dtype, shape, element count, byte count and data offset, each
    checked against what libtorch and the file can hold."""
    # (field names are built only when raising: this runs once per tensor)
    code_at = r.offset
    code = read_uleb(r, name, " dtype code")
    dtype = CODE_TO_DTYPE.get(code)
    if dtype is None:
        known = (f" ({KNOWN_UNNAMED[code]} in libtorch, which TorchSharp has no dtype for)"
                 if code in KNOWN_UNNAMED else "")
        raise UnknownDtypeError(f"{name} dtype code", code_at, f"unknown dtype code {code}{known}")
    ndim_at = r.offset
    ndim = read_uleb(r, name, " ndim")
    left = r.remaining
    if left is None:
        if ndim > MAX_NDIM_UNBOUNDED:
            raise InvalidLengthError(f"{name} ndim", ndim_at, f"rank {ndim} is beyond any tensor libtorch makes")
    elif ndim > left:
        r.check_fits(ndim, f"{name} ndim", ndim_at, f"rank {ndim} (one byte per dimension at least)")
    shape: list[int] = []
    for i in range(ndim):
        dim_at = r.offset
        d = read_uleb(r, name, _dim_suffix(i))
        if d > MAX_BYTES:
            check_dim(d, f"{name} dim[{i}]", dim_at)
        shape.append(d)
    numel = 1
    for d in shape:
        numel *= d
    extent = 1
    for d in shape:
        extent *= d or 1
    if extent * ITEMSIZE[code] > MAX_BYTES:
        # Even with a zero dimension, libtorch multiplies every size and refuses an overflow.
        raise InvalidLengthError(f"{name} shape", ndim_at, f"shape {shape} overflows libtorch's 64-bit "
                                 "storage size")
    nbytes = numel * ITEMSIZE[code]
    data_at = r.offset
    if nbytes > MAX_BYTES:
        raise InvalidLengthError(f"{name} shape", ndim_at, f"shape {shape} of {dtype} needs {nbytes} bytes, "
                                 "more than any file or libtorch tensor can hold")
    left = r.remaining
    if left is not None and nbytes > left:
        r.check_fits(nbytes, f"{name} data", data_at, f"shape {shape} of {dtype} ({numel} elements)")
    return code, dtype, shape, numel, nbytes, data_at


def read_tensor_record(r: Reader, name: str = "tensor") -> torch.Tensor:
    """Read one tensor record. Inverse of :func:`write_tensor_record`."""
    code, dtype, shape, numel, nbytes, data_at = _read_header(r, name)
    storage = _storage_dtype(dtype)
    if isinstance(r, MappedReader) and nbytes:
        buffer, at = r.take(nbytes)
        if at % ITEMSIZE[code] == 0:
            # Zero-copy: a view of the mapping (the tensor references the memoryview, which
            # holds a buffer export of the mmap: it stays mapped while the tensor lives).
            out = torch.frombuffer(buffer, dtype=storage, count=numel, offset=at).reshape(shape)
        else:
            # The mapping is page-aligned, so the data pointer is as aligned as the file
            # offset; libtorch assumes naturally aligned elements (alignof == element size,
            # c10::complex<double> is alignas(16)): a misaligned complex128 view crashes
            # clone() with SIGSEGV. Such a record is copied (byte-wise) into fresh memory.
            out = fresh_tensor(shape, storage, numel, nbytes, dtype)
            out.reshape(-1).view(torch.uint8).copy_(
                torch.frombuffer(buffer, dtype=torch.uint8, count=nbytes, offset=at))
    elif r.remaining is not None or nbytes <= CHUNK:
        # A size checked against the file may go into huge-page backed memory (allocated
        # before the bytes arrive); from a pipe only small records are allocated up front.
        out = (fresh_tensor(shape, storage, numel, nbytes, dtype) if r.remaining is not None
               else torch.empty(shape, dtype=storage))
        if nbytes:
            r.into(byte_view(out, nbytes), name, " data")
    else:
        out = _read_from_pipe(r, name, shape, storage, nbytes, data_at)
    if dtype in BYTES_VIEW:
        out = out.view(dtype)
    elif dtype in QUANTIZED_REPR:
        # (from a mapping this copies: a quantized tensor cannot view foreign memory)
        out = torch._make_per_tensor_quantized_tensor(out, 1.0, 0)
    return out


def _read_from_pipe(r: Reader, name: str, shape: list[int], storage: torch.dtype, nbytes: int,
                    data_at: int) -> torch.Tensor:
    """A big record from a stream of unknown size: the bytes are collected chunk by chunk, so
    a lying header cannot make us allocate more than the stream actually delivered."""
    pieces = []
    got = 0
    while got < nbytes:
        piece = r.f.read(min(CHUNK, nbytes - got))
        if not piece:
            raise TruncatedError(f"{name} data", data_at, f"file ends after {got} of the {nbytes} bytes needed")
        pieces.append(piece)
        got += len(piece)
    r.offset += nbytes
    out = torch.empty(shape, dtype=storage)
    flat = out.reshape(-1).view(torch.uint8).numpy()
    pos = 0
    for piece in pieces:
        flat[pos:pos + len(piece)] = memoryview(piece)
        pos += len(piece)
    return out


def check_tensor(tensor: torch.Tensor, name: str = "tensor") -> int:
    """Refuse (cheaply, without copying) a tensor the format cannot hold; return its dtype code."""
    if not isinstance(tensor, torch.Tensor):
        raise InvalidValueError(name, None, f"expected a torch.Tensor, got {type(tensor).__name__}")
    code = DTYPE_TO_CODE.get(tensor.dtype)
    if code is None:
        raise UnsupportedDtypeError(name, None, f"dtype {tensor.dtype} has no TorchSharp dtype code; "
                                    "refusing to write it with a made-up code")
    if tensor.layout != torch.strided:
        raise UnsupportedTensorError(name, None, f"layout {tensor.layout} has no TorchSharp record form "
                                     "(convert with .to_dense() first)")
    if tensor.device.type == "meta":
        raise UnsupportedTensorError(name, None, "a 'meta' tensor has no data to write")
    if tensor.is_quantized:
        if tensor.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            raise LossyTensorError(name, None, "a TorchSharp record carries no quantization parameters; "
                                   f"this tensor is {tensor.qscheme()} (per-channel scales would be lost)")
        if tensor.q_scale() != 1.0 or tensor.q_zero_point() != 0:
            raise LossyTensorError(name, None, "a TorchSharp record carries no quantization scale or zero point; "
                                   f"this tensor has scale {tensor.q_scale()} and zero point "
                                   f"{tensor.q_zero_point()} (only 1.0 and 0 survive a round trip)")
    return code


def _bytes_source(tensor: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU tensor whose raw bytes are the record's data (a copy only when the
    tensor is non-contiguous, on another device, quantized, or a conj/neg view)."""
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_quantized:
        t = t.int_repr()
    if t.is_complex():
        t = t.resolve_conj()
    t = t.resolve_neg().contiguous()
    if t.dtype in BYTES_VIEW:
        t = t.view(BYTES_VIEW[t.dtype])
    return t


def write_tensor_record(f: Stream | Sink, tensor: torch.Tensor, name: str = "tensor") -> None:
    """Write one tensor record, streaming its bytes. Inverse of :func:`read_tensor_record`."""
    code = check_tensor(tensor, name)
    t = _bytes_source(tensor)
    f.write(record_header(code, t.shape))
    if t.numel():
        _write_data(f, t)


def record_header(code: int, shape: tuple[int, ...]) -> bytes:
    """``uleb dtype, uleb ndim, uleb dim[ndim]``: a record's bytes before its data."""
    return write_uleb(code) + write_uleb(len(shape)) + b"".join(write_uleb(d) for d in shape)


def _direct(tensor: torch.Tensor) -> bool:
    """Whether ``tensor``'s own memory is already the record's data, C order: a contiguous CPU
    tensor, not quantized, no conj/neg bit, no grad (else :func:`_bytes_source` makes one)."""
    return (tensor.is_cpu  # type: ignore[attr-defined]  # (torch 1.13's stubs lack it)
            and tensor.is_contiguous() and not tensor.is_quantized and not tensor.requires_grad
            and not tensor.is_conj() and not tensor.is_neg())


def _write_data(f: Stream | Sink, t: torch.Tensor) -> None:
    """Write a contiguous CPU tensor's raw bytes (not empty): a small one is copied into the
    Sink's buffer straight from its memory; a larger one (or to a plain stream) is streamed
    from a memoryview of it (no copy)."""
    nbytes = t.numel() * t.element_size()
    if nbytes <= SMALL_WRITE and type(f) is Sink and type(t) in PLAIN_TENSOR_TYPES:
        f.copy_from(t.data_ptr(), nbytes)  # t (alive for the call) is contiguous on the CPU
    else:
        write_all(f, memoryview(t.reshape(-1).view(torch.uint8).numpy()))


def write_records(f: Sink, records: list[tuple[bytes, torch.Tensor]]) -> None:
    """Write ``prefix + record`` for each (prefix, already checked tensor), e.g. a state
    dict's encoded keys. Same bytes as :func:`write_tensor_record` per tensor, with the
    per-tensor work cut down for many small tensors: one header build per (dtype, shape),
    one buffer append for the prefix and header, and a tensor whose memory already holds its
    record's data (:func:`_direct`) is not converted."""
    headers: dict[tuple[torch.dtype, tuple[int, ...]], bytes] = {}
    buf_write = f.write
    for prefix, tensor in records:
        t = tensor if _direct(tensor) else _bytes_source(tensor)
        shape = tensor.shape
        key = (tensor.dtype, shape)
        header = headers.get(key)
        if header is None:
            header = headers[key] = record_header(DTYPE_TO_CODE[tensor.dtype], shape)
        buf_write(prefix + header)
        if t.numel():
            _write_data(f, t)


def read_tensor(source: Source, *, mmap: bool = False) -> torch.Tensor:
    """Read a single-tensor file (``Tensor.Save`` form: one record, no key, nothing after).
    Inverse of :func:`write_tensor`.

    ``mmap=False`` (default): the tensor owns fresh, writable memory. ``mmap=True`` (``source``
    must be a path, else :class:`InvalidValueError`): the file is mapped copy-on-write and the
    tensor VIEWS the mapping, no element bytes copied (except a record whose data offset is
    not a multiple of its element size, and quantized dtypes: copied), with the same checks
    and errors. Alignment and lifetime rules: see :func:`harness.codec.read_state_dict`."""
    check_mmap_flag(mmap)
    if mmap:
        with open_mapped(source) as r:
            t = read_tensor_record(r)
            r.expect_end("end of tensor file")
            return t
    with open_source(source) as f:
        r = Reader(f)
        t = read_tensor_record(r)
        r.expect_end("end of tensor file")
        return t


def write_tensor(dest: Dest, tensor: torch.Tensor) -> None:
    """Write a single-tensor file (``Tensor.Save`` form). Inverse of :func:`read_tensor`."""
    check_tensor(tensor, "tensor")  # refuse before touching the destination
    with open_dest(dest) as f:
        write_tensor_record(f, tensor)
