"""Module state dicts (``Module.save`` / ``Module.load``): ``uleb count, count x (str key, tensor)``."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from harness.codec import _hugepages
from harness.codec._io import (
    Dest,
    Reader,
    Source,
    check_mmap_flag,
    open_mapped,
    read_str,
    read_uleb,
    write_str,
    write_uleb,
)
from harness.codec._sink import open_dest
from harness.codec._read_ahead import ReadAhead, open_read_ahead
from harness.codec.dtypes import BYTES_VIEW, CODE_TO_DTYPE, DTYPE_TO_CODE, ITEMSIZE, QUANTIZED_REPR
from harness.codec.errors import DuplicateKeyError, InvalidValueError, TruncatedError
from harness.codec.tensor import (
    PLAIN_TENSOR_TYPES,
    byte_view,
    check_tensor,
    read_tensor_record,
    write_records,
)

MIN_ENTRY_BYTES = 3  # empty key (1) + dtype code (1) + ndim (1)
_ULEB1 = [bytes((n,)) for n in range(128)]  # one-byte ulebs: key lengths below 128
_STRIDED = torch.strided
_PEEK = 512  # bytes of an entry's key and header looked at in one go (a BufferedReader's peek)
_MAX_FAST_NDIM = 16
_FAST_MAX_BYTES = 1 << 24  # bigger tensors take the general path (their cost is the copy)


def read_state_dict(source: Source, *, mmap: bool = False) -> dict[str, torch.Tensor]:
    """Read a module state file, keeping the file's entry order; a key twice is a
    :class:`DuplicateKeyError`. Inverse of :func:`write_state_dict`.

    ``mmap=False`` (default): each tensor owns fresh, writable memory (read with ``readinto``).

    ``mmap=True``: zero-copy. ``source`` must be a path (a file object is an
    :class:`InvalidValueError`). The file is mapped with ``mmap.ACCESS_COPY`` (a private,
    copy-on-write mapping) and every tensor is a ``torch.frombuffer`` VIEW of its bytes in
    the mapping: loading costs the header parsing only; pages are read from disk when first
    touched. Exceptions, which own fresh memory instead: a record whose data offset is not a
    multiple of its element size (libtorch assumes naturally aligned elements; a misaligned
    complex128 view crashes ``clone()``), copied byte-wise; quantized records (codes 12-14),
    built from the integer view, which copies; empty tensors. Checks, errors and offsets are
    exactly those of the default mode (everything is checked against the mapped size before
    any view is made). Lifetime rules:

    - the mapping lives as long as any returned tensor (or a view/slice of one) does: each
      holds a buffer export of it; it is unmapped when the last one is freed, so the
      tensors may be used after everything else was dropped;
    - the tensors are writable; writes go to private copies of the touched pages and never
      reach the file (they cost memory for those pages only);
    - replacing the file (``os.replace``, as this codec's writers do; or unlink) while
      mapped is safe: the mapping keeps the old file's data;
    - modifying the file IN PLACE while mapped is undefined: writes by others may show
      through in pages not yet written here, and truncating it makes touching the lost pages
      kill the process with SIGBUS;
    - ``.clone()`` detaches a tensor from the mapping.
    """
    check_mmap_flag(mmap)
    if mmap:
        with open_mapped(source) as r:
            return _read_entries(r)
    with open_read_ahead(source) as f:
        return _read_entries(Reader(f))


def _read_entries(r: Reader) -> dict[str, torch.Tensor]:
    """Entries of a module state file from ``r`` (stream or mapping), then the end."""
    count_at = r.offset
    count = read_uleb(r, "entry count")
    r.check_fits(count * MIN_ENTRY_BYTES, "entry count", count_at,
                 f"{count} entries (at least {MIN_ENTRY_BYTES} bytes each)")
    out: dict[str, torch.Tensor] = {}
    # A buffered file's peek lets the common entry (short UTF-8 key, one-byte codes, known
    # non-quantized dtype, data present and inside the file) be parsed from one look at the
    # buffer instead of a read per field; anything else, valid or not, goes the general way
    # below from the same offset (nothing is consumed until the fast parse has succeeded),
    # so values, errors and offsets are exactly the general path's.
    peek = getattr(r.f, "peek", None) if type(r) is Reader and r.end is not None else None
    # Records that go into huge-page backed memory take the general path.
    hugepage_min = _hugepages.MIN_BYTES
    fast_max = _FAST_MAX_BYTES if hugepage_min is None else min(_FAST_MAX_BYTES, hugepage_min - 1)
    for i in range(count):
        if peek is not None:
            fast = _read_common_entry(r, peek, out, fast_max)
            if fast is not None:
                out[fast[0]] = fast[1]
                continue
        key_at = r.offset
        key = read_str(r, f"entry {i} key")
        if key in out:
            raise DuplicateKeyError(f"entry {i} key", key_at, f"key {key!r} appears twice")
        out[key] = read_tensor_record(r, f"tensor {key!r}")
    r.expect_end("end of state dict")
    return out


def _read_common_entry(r: Reader, peek: Callable[[int], bytes], seen: Mapping[str, torch.Tensor],
                       max_bytes: int) -> tuple[str, torch.Tensor] | None:
    """One entry in its common form, parsed from the stream's buffer; None (nothing read)
    when it is not that form, its data is over ``max_bytes``, or its key is in ``seen``
    (the general path raises for it).
    Same result as :func:`read_str` + :func:`read_tensor_record`."""
    head = peek(_PEEK)
    n = len(head)
    if not n or head[0] >= 0x80:
        return None
    p = 1 + head[0]
    if p + 2 > n:
        return None
    try:
        key = head[1:p].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if key in seen:
        return None
    code, ndim = head[p], head[p + 1]
    p += 2
    dtype = CODE_TO_DTYPE.get(code)
    if dtype is None or dtype in QUANTIZED_REPR or ndim > _MAX_FAST_NDIM:
        return None
    shape = []
    numel = 1
    for _ in range(ndim):
        value = shift = 0
        while True:
            if p >= n or shift > 49:
                return None
            b = head[p]
            p += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                if shift and not b:
                    return None  # non-canonical: the general path names it
                break
            shift += 7
        shape.append(value)
        numel *= value
    nbytes = numel * ITEMSIZE[code]
    end = r.end
    if not nbytes or nbytes > max_bytes or end is None or nbytes > end - r.offset - p:
        return None
    f: object = r.f  # (a ReadAhead where the reader opened a path; typed as a stream)
    storage = BYTES_VIEW.get(dtype, dtype)
    out = torch.empty(shape, dtype=storage)
    if type(f) is ReadAhead:
        # (the cheapest form of the same read: skip the header peeked, memmove the data)
        f.skip(p)
        r.offset += p
        got = f.copy_to(out.data_ptr(), nbytes)
        if got < nbytes:  # the file shrank since its size was taken: as Reader.into says it
            raise TruncatedError(f"tensor {key!r} data", r.offset,
                                 f"file ends after {got} of the {nbytes} bytes needed")
        r.offset += nbytes
    else:
        r.f.read(p)
        r.offset += p
        r.into(byte_view(out, nbytes), f"tensor {key!r}", " data")
    return key, (out.view(dtype) if storage is not dtype else out)


def write_state_dict(dest: Dest, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Write a module state file in the mapping's order (keys as UTF-8 with their BYTE
    length). Every key and tensor is checked before the destination is touched.
    Inverse of :func:`read_state_dict`."""
    if not isinstance(state_dict, Mapping):
        raise InvalidValueError("state dict", None, f"expected a mapping, got {type(state_dict).__name__}")
    records: list[tuple[bytes, torch.Tensor]] = []
    append = records.append
    plain = PLAIN_TENSOR_TYPES
    for key, tensor in state_dict.items():
        # The common case checked inline (same outcome as write_str + check_tensor, which
        # handle everything else and raise the errors).
        if type(key) is str and type(tensor) in plain and tensor.layout is _STRIDED and not tensor.is_meta \
                and not tensor.is_quantized and tensor.dtype in DTYPE_TO_CODE and key.isascii():
            raw = key.encode()
            n = len(raw)
            append(((_ULEB1[n] if n < 128 else write_uleb(n)) + raw, tensor))
            continue
        if not isinstance(key, str):
            raise InvalidValueError("state dict key", None, f"keys must be str, got {key!r}")
        raw_key = write_str(key, f"key {key!r}")
        check_tensor(tensor, f"tensor {key!r}")
        append((raw_key, tensor))
    with open_dest(dest) as f:
        f.write(write_uleb(len(records)))
        write_records(f, records)
