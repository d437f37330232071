"""What a codec under test must give besides equal bytes: usable tensors and clear errors.

Two contracts, checked on a file TorchSharp wrote (the ``contract_usable`` and
``contract_damaged`` checks, harness/checks/contract.py):

* :func:`usable_tensors`: what ``load_state_dict`` returns owns writable memory. A tensor
  aliasing read-only bytes (``torch.from_numpy(np.frombuffer(stream.read(n)))``) is undefined
  to write into, and PyTorch says so with "The given NumPy array is not writable" / "The
  given buffer is not writable"; loaded tensors must not share memory with each other, and
  writing into them must not change what the next load of the same file returns.
* :func:`clear_errors`: a damaged file (truncated, a count or length that claims more than
  the file holds) raises an exception whose message says where (a byte offset or the field),
  never one of Python's programming-error types (TypeError, AttributeError, IndexError, ...,
  which say the reader tripped, not that the file is bad), and never returns a value.

Runs where the codec under test runs (the host's PyTorch or a PyTorch worker process).
"""
from __future__ import annotations

import ctypes
import io
import re
import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

import torch

from harness.codecs import CodecFailure

NOT_WRITABLE = re.compile(r"not writ(e)?able", re.IGNORECASE)
# A message that says where: a byte offset or position, or a named field of the format.
SAYS_WHERE = re.compile(r"offset|byte|position|\bat \d|field|key|entry|shape|dtype|length|count|truncat|end of",
                        re.IGNORECASE)
# Exceptions that say the reader itself tripped over the bytes, not what is wrong with them.
PROGRAMMING_ERRORS = (TypeError, AttributeError, IndexError, KeyError, NameError, ZeroDivisionError,
                      RecursionError, AssertionError, NotImplementedError, MemoryError, OverflowError)

Load = Callable[[BinaryIO], Any]


class _TrackingStream(io.BytesIO):
    """A file whose ``read`` results are remembered (address and length of each immutable
    ``bytes`` it handed out), so tensors built on top of them can be recognised."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.handed_out: list[bytes] = []

    def read(self, size: int | None = -1) -> bytes:
        out = super().read(size)
        self.handed_out.append(out)
        return out

    def read1(self, size: int | None = -1) -> bytes:
        out = super().read1(size)
        self.handed_out.append(out)
        return out

    def getvalue(self) -> bytes:
        # the whole file as one immutable bytes object (CPython hands out the very object the
        # stream was made from): tensors over it alias read-only memory as much as over read()'s
        out = super().getvalue()
        self.handed_out.append(out)
        return out

    def spans(self) -> list[tuple[int, int]]:
        return [(int(ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p).value or 0), len(b))
                for b in self.handed_out if b]


def _span(t: torch.Tensor) -> tuple[int, int]:
    storage = getattr(t, "untyped_storage", None) or t.storage  # PyTorch 2.x / 1.13
    return int(storage().data_ptr()), int(storage().nbytes())


def usable_tensors(load: Load, data: bytes) -> list[str]:
    """Problems with what ``load`` returns for a valid file's ``data`` (empty: none)."""
    problems: list[str] = []
    # each load gets a private copy: a codec that writes through the bytes it was handed must
    # change neither the caller's nor the next load's (PyTorch's not-writable warning comes
    # once per process, so it cannot be relied on to stop it)
    stream = _TrackingStream(bytes(bytearray(data)))
    with warnings.catch_warnings(record=True) as caught:  # PyTorch warns once per process
        warnings.simplefilter("always")
        first = dict(_valid_load(load, stream))
    tensors = {k: v for k, v in first.items() if isinstance(v, torch.Tensor) and v.numel()}
    read_only = stream.spans()
    aliasing = [k for k, t in tensors.items()
                if any(a <= _span(t)[0] < a + n for a, n in read_only)]
    warned = next((str(w.message).splitlines()[0] for w in caught if NOT_WRITABLE.search(str(w.message))), None)
    if aliasing or warned:
        problems.append("loaded tensors alias read-only memory (the immutable bytes the file's read() "
                        f"returned): {aliasing[:4]}{' ...' if len(aliasing) > 4 else ''}"
                        + (f"; PyTorch warned {warned!r}" if warned else ""))
        return problems  # writing into them would be undefined: stop here
    spans = sorted((start, start + n, k) for k, (start, n) in ((k, _span(t)) for k, t in tensors.items()))
    for (s0, e0, k0), (s1, _, k1) in zip(spans, spans[1:]):
        if s1 < e0:
            problems.append(f"loaded tensors {k0!r} and {k1!r} share memory")
    originals = {k: t.clone() for k, t in tensors.items()}
    for t in tensors.values():
        if t.is_floating_point() or t.is_complex():
            t.add_(1)
        elif t.dtype == torch.bool:
            t.logical_not_()
        else:
            t.add_(1)
    again = dict(_valid_load(load, io.BytesIO(bytes(bytearray(data)))))
    for k, t in originals.items():
        other = again.get(k)
        if not isinstance(other, torch.Tensor) or not _same_bits(other, t):
            problems.append(f"writing into the loaded {k!r} changed what the next load of the same bytes returns")
            break
    return problems


def _valid_load(load: Load, f: BinaryIO) -> Any:
    """``load`` of a valid file: what it raises is the codec's failure (a failed cell naming the
    codec), never a harness error."""
    try:
        return load(f)
    except Exception as exc:
        raise CodecFailure(f"codec load_state_dict raised {type(exc).__name__} on a valid file: {exc}") from exc


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.contiguous(), b.contiguous()
    if a.is_complex():
        a, b = torch.view_as_real(a), torch.view_as_real(b)
    if a.is_floating_point():
        width = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        a, b = a.view(width), b.view(width)
    return bool(torch.equal(a, b))


def damaged_variants(data: bytes) -> list[tuple[str, bytes]]:
    """Damaged copies of a valid state-dict file: truncations across the file, and an entry
    count that claims one more entry than the file holds."""
    n = len(data)
    cuts = sorted({c for c in (1, 2, n // 4, n // 2, (3 * n) // 4, n - 1) if 0 < c < n})
    out = [(f"truncated to {c} of {n} bytes", data[:c]) for c in cuts]
    if data and data[0] < 0x7F:
        out.append(("entry count one more than the entries present", bytes([data[0] + 1]) + data[1:]))
    return out


def clear_errors(load: Load, data: bytes) -> list[str]:
    """Problems with how ``load`` treats damaged copies of ``data`` (empty: none)."""
    problems: list[str] = []
    for what, damaged in damaged_variants(data):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load(io.BytesIO(damaged))
        except PROGRAMMING_ERRORS as exc:
            problems.append(f"{what}: unclear {type(exc).__name__}: {str(exc)[:160]!r}")
        except Exception as exc:  # noqa: BLE001 - judged by its message
            message = str(exc)
            if not SAYS_WHERE.search(message):
                problems.append(f"{what}: {type(exc).__name__} does not say where: {message[:160]!r}")
        else:
            problems.append(f"{what}: read without an error (returned a value for a damaged file)")
    return problems
