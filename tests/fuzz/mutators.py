"""Hostile inputs for the codec's readers: valid seed files, mutators, and the reading harness.

Shared by ``tests/fuzz/test_hostile_input.py`` (seeded, bounded, CI) and
``benchmarks/fuzz_codec.py`` (on demand, 1e5 inputs). Uses only the codec's public API.

* :func:`seed_files` builds valid files in memory with the codec: a state dict of mixed
  dtypes (bool, bfloat16, float16, complex64/128, quantized, 0-dim, empty, a non-ASCII key),
  a single-tensor file, and optimizer files of small real ``torch.optim`` optimizers after
  one step (Adam with amsgrad, SGD with momentum, RMSprop centered with momentum, ASGD).
  Each seed also carries its *field map*: where every uleb, bool, f64/i64 and data field
  lies, found by :class:`_Walk`, an independent walker written from docs/format.md (not the
  codec's code), so the structured mutators hit real length/count/dtype fields.
* :data:`MUTATORS`: ``name -> f(data, rng, fields) -> bytes``. Random-position ones
  (truncate, flip_bit, overwrite_byte, delete_range, insert_bytes, duplicate_range,
  trailing_bytes, endless_uleb) and field-aware ones (huge_length, overlong_uleb,
  unknown_dtype, bad_bool). Field-aware mutators fall back to a random position once
  earlier mutations moved the fields past the end.
* :func:`read_one` feeds bytes to one reader, from a seekable ``BytesIO``, from a
  non-seekable stream (a pipe: the codec cannot know the size and takes its other path) or,
  where the reader has ``mmap=``, from a mapped temporary file (:func:`modes_for`); modes
  ending in ``+hugepage`` do the same with the codec's huge-page load path forced on for
  every record (``harness.codec._hugepages.MIN_BYTES = 1``, the one non-public knob used
  here, where the codec has it), and returns ``"ok"`` or ``"ErrorClass @ field"``. Anything
  that is not a
  ``codec.CodecError`` propagates: that is the bug the fuzzers look for. A value read
  back is checked too: its tensors cannot hold more bytes than the input had.
* :func:`memory_cap` lowers ``RLIMIT_AS`` to the current address space plus a headroom, so
  an allocation sized from a lying header fails loudly (torch's allocator is invisible to
  ``tracemalloc``, so tracemalloc cannot show it).
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import io
import os
import random
import re
import resource
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness import codec

try:  # the codec's huge-page load path (newer codec): forced on by the "+hugepage" modes
    from harness.codec import _hugepages
except ImportError:  # pragma: no cover - an older codec
    _hugepages = None  # type: ignore[assignment]

# --- the format, from docs/format.md (independent of the codec's own tables) ----------------
ITEMSIZE = {0: 1, 1: 1, 2: 2, 3: 4, 4: 8, 5: 2, 6: 4, 7: 8, 9: 8, 10: 16, 11: 1, 12: 1, 13: 1, 14: 4, 15: 2}
# optimizer class -> (kinds of the options after initial_lr and lr, kinds of the per-parameter state)
OPT_LAYOUT = {
    "SGD": (("f64", "f64", "f64", "bool", "bool"), ("cond",)),
    "Adam": (("f64", "f64", "f64", "f64", "bool", "bool"), ("i64", "tensor", "tensor", "cond")),
    "RMSProp": (("bool", "f64", "f64", "f64", "f64", "bool"), ("i64", "tensor", "cond", "cond")),
    "ASGD": (("bool", "f64", "f64", "f64", "f64"), ("i64", "f64", "f64", "tensor")),
}
UNKNOWN_DTYPE_CODES = (8, 16, 17, 23, 24, 25, 26, 27, 28, 29, 30, 127, 128, 4711, 2**32, 2**63)
HUGE_VALUES = (2**31 - 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, 2**63, 2**64 - 1)
ULEB_FIELDS = ("count", "length", "dtype", "ndim", "dim")


def uleb(value: int) -> bytes:
    """Canonical LEB128 (any non-negative int: values >= 2**64 give 10+ byte encodings)."""
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def uleb_padded(value: int, nbytes: int) -> bytes:
    """A non-canonical LEB128 of ``value`` stretched to ``nbytes`` with zero groups
    (``uleb_padded(3, 11)`` is an 11-byte uleb of 3)."""
    raw = bytearray(uleb(value))
    while len(raw) < nbytes:
        raw[-1] |= 0x80
        raw.append(0)
    return bytes(raw)


@dataclass(frozen=True)
class Field:
    kind: str   # count | length | dtype | ndim | dim | string | bool | f64 | i64 | data
    start: int
    end: int


@dataclass(frozen=True)
class Seed:
    name: str
    form: str                        # the matching reader: state_dict | tensor | optimizer
    data: bytes
    fields: tuple[Field, ...] = field(repr=False)


class _Walk:
    """Walks a VALID file and records where each field lies (docs/format.md, nothing of the codec)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.fields = data, 0, []  # type: ignore[var-annotated]

    def uleb(self, kind: str) -> int:
        start, value, shift = self.pos, 0, 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        self.fields.append(Field(kind, start, self.pos))
        return value

    def fixed(self, kind: str, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"walker: {kind} runs past the end")
        self.fields.append(Field(kind, self.pos, self.pos + n))
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def string(self) -> str:
        return self.fixed("string", self.uleb("length")).decode("utf-8")

    def tensor(self) -> None:
        code = self.uleb("dtype")
        numel = 1
        for _ in range(self.uleb("ndim")):
            numel *= self.uleb("dim")
        if numel:
            self.fixed("data", numel * ITEMSIZE[code])

    def done(self) -> tuple[Field, ...]:
        if self.pos != len(self.data):
            raise ValueError(f"walker stopped at {self.pos} of {len(self.data)} bytes")
        return tuple(self.fields)


def walk(form: str, data: bytes) -> tuple[Field, ...]:
    """The field map of a valid file of ``form``."""
    w = _Walk(data)
    if form == "tensor":
        w.tensor()
    elif form == "state_dict":
        for _ in range(w.uleb("count")):
            w.string()
            w.tensor()
    else:
        options, states = OPT_LAYOUT[w.string()]
        ngroups, nstates = w.uleb("count"), w.uleb("count")
        for _ in range(ngroups):
            for kind in ("f64", "f64", *options):
                w.fixed(kind, 1 if kind == "bool" else 8)
        for _ in range(nstates):
            for kind in states:
                if kind in ("i64", "f64"):
                    w.fixed(kind, 8)
                elif kind == "tensor":
                    w.tensor()
                elif w.fixed("bool", 1) == b"\x01":
                    w.tensor()
    return w.done()


def _optimizer_file(cls: type[torch.optim.Optimizer], **kw: object) -> bytes:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    opt = cls(model.parameters(), **kw)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    buf = io.BytesIO()
    codec.save_optimizer(opt, buf)
    return buf.getvalue()


def seed_files() -> dict[str, Seed]:
    """Valid files of every form, each with its field map (cross-checked by reading it back)."""
    torch.manual_seed(0)
    sd = {
        "conv-1.weight": torch.randn(2, 3),
        "wé-ü": torch.tensor(True),                                        # non-ASCII key, 0-dim bool
        "mask": torch.tensor([True, False, True]),
        "bf": torch.randn(5).bfloat16(),
        "half": torch.randn(2, 2).half(),
        "c64": torch.randn(2, dtype=torch.complex64),
        "c128": torch.randn(1, 2, dtype=torch.complex128),
        "empty": torch.zeros(0, 3),
        "n": torch.tensor(7),                                              # 0-dim int64
        "u8": torch.arange(4, dtype=torch.uint8),
        "i8": torch.arange(-2, 2, dtype=torch.int8),
        "i16": torch.arange(3, dtype=torch.int16),
        "i32": torch.arange(3, dtype=torch.int32),
        "f64": torch.randn(3, dtype=torch.float64),
        "q": torch.quantize_per_tensor(torch.arange(4.0), 1.0, 0, torch.qint8),
        "": torch.ones(1),                                                 # empty key
    }
    raw: dict[str, tuple[str, bytes]] = {}
    buf = io.BytesIO()
    codec.write_state_dict(buf, sd)
    raw["state_dict"] = ("state_dict", buf.getvalue())
    buf = io.BytesIO()
    codec.write_tensor(buf, torch.arange(6, dtype=torch.float64).reshape(2, 3))
    raw["tensor"] = ("tensor", buf.getvalue())
    buf = io.BytesIO()
    codec.write_tensor(buf, torch.tensor(1.5, dtype=torch.bfloat16))
    raw["tensor_0dim_bf16"] = ("tensor", buf.getvalue())
    raw["optimizer_adam"] = ("optimizer", _optimizer_file(torch.optim.Adam, amsgrad=True))
    raw["optimizer_sgd"] = ("optimizer", _optimizer_file(torch.optim.SGD, lr=0.1, momentum=0.9))
    raw["optimizer_rmsprop"] = ("optimizer", _optimizer_file(torch.optim.RMSprop, momentum=0.5, centered=True))
    raw["optimizer_asgd"] = ("optimizer", _optimizer_file(torch.optim.ASGD))
    seeds = {}
    for name, (form, data) in raw.items():
        read_one(form, data)  # each seed is valid for its own reader (raises otherwise)
        seeds[name] = Seed(name, form, data, walk(form, data))
    return seeds


# --- mutators: (data, rng, fields) -> bytes ---------------------------------------------------
Mutator = Callable[[bytes, random.Random, tuple[Field, ...]], bytes]


def _pick(data: bytes, rng: random.Random, fields: tuple[Field, ...], kinds: tuple[str, ...]) -> tuple[int, int]:
    """A field of one of ``kinds`` that still lies inside ``data`` (else a random byte)."""
    hits = [f for f in fields if f.kind in kinds and f.end <= len(data)]
    if hits:
        f = rng.choice(hits)
        return f.start, f.end
    i = rng.randrange(len(data) + 1)
    return i, min(i + 1, len(data))


def truncate(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    return data[:rng.randrange(len(data))] if data else data


def flip_bit(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    i = rng.randrange(len(b))
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def overwrite_byte(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    if not data:
        return data
    b = bytearray(data)
    i = _pick(data, rng, fields, (*ULEB_FIELDS, "bool"))[0] if rng.random() < 0.5 else rng.randrange(len(b))
    b[min(i, len(b) - 1)] = rng.choice((0x00, 0xFF, 0x80, 0x7F, 0x01))
    return bytes(b)


def delete_range(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.choice((1, 2, 3, 8, 16, 64)):]


def insert_bytes(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + bytes(rng.randrange(256) for _ in range(rng.choice((1, 2, 4, 8)))) + data[i:]


def duplicate_range(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randrange(1, 64))
    return data[:j] + data[i:j] + data[j:]


def trailing_bytes(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    tail = rng.choice((b"\x00", b"\xff", b"\x80" * 12, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 17)))))
    return data + tail


def endless_uleb(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    """A run of 0x80 (a uleb that never ends) at a uleb field, to the end of the file or not."""
    i, j = _pick(data, rng, fields, ULEB_FIELDS)
    run = b"\x80" * rng.choice((10, 11, 12, 64, 4096, 1 << 20))
    return data[:i] + run + (data[j:] if rng.random() < 0.5 else b"")


def huge_length(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    """A count / string length / ndim / dim replaced by a huge value (2**31 .. 2**64-1)."""
    i, j = _pick(data, rng, fields, ("count", "length", "ndim", "dim"))
    return data[:i] + uleb(rng.choice(HUGE_VALUES)) + data[j:]


def overlong_uleb(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    """A uleb field re-encoded non-canonically (up to 11 bytes), or as a value >= 2**64."""
    i, j = _pick(data, rng, fields, ULEB_FIELDS)
    value = 0
    for k, b in enumerate(data[i:j]):
        value |= (b & 0x7F) << (7 * k)
    choice = rng.randrange(3)
    if choice == 0:
        enc = uleb_padded(value, rng.choice((j - i + 1, 10, 11, 12)))
    elif choice == 1:
        enc = uleb(rng.choice((2**64, 2**64 + value, 2**70)))      # 10 or 11 bytes, >= 2**64
    else:
        enc = b"\xff" * 9 + b"\x02"                                  # 10 bytes, value 2**64 + 2**63 - 1
    return data[:i] + enc + data[j:]


def unknown_dtype(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    i, j = _pick(data, rng, fields, ("dtype",))
    return data[:i] + uleb(rng.choice(UNKNOWN_DTYPE_CODES)) + data[j:]


def bad_bool(data: bytes, rng: random.Random, fields: tuple[Field, ...]) -> bytes:
    if not data:
        return data
    i, _ = _pick(data, rng, fields, ("bool",))
    b = bytearray(data)
    b[min(i, len(b) - 1)] = rng.choice((0x02, 0x7F, 0x80, 0xFF))
    return bytes(b)


MUTATORS: dict[str, Mutator] = {f.__name__: f for f in (
    truncate, flip_bit, overwrite_byte, delete_range, insert_bytes, duplicate_range, trailing_bytes,
    endless_uleb, huge_length, overlong_uleb, unknown_dtype, bad_bool)}


def mutate(seed: Seed, names: list[str], rng: random.Random) -> bytes:
    """Apply the mutators ``names`` in turn to ``seed``."""
    data = seed.data
    for name in names:
        data = MUTATORS[name](data, rng, seed.fields)
    return data


# --- reading --------------------------------------------------------------------------------
READERS: dict[str, Callable[..., object]] = {
    "state_dict": codec.read_state_dict,
    "tensor": codec.read_tensor,
    "optimizer": codec.read_optimizer,
}


@functools.lru_cache(maxsize=None)
def modes_for(reader: str) -> tuple[str, ...]:
    """How ``reader`` is fed: from a seekable BytesIO, a seekable BufferedReader (what
    ``open(path, "rb")`` gives: it has ``peek``, which the state-dict reader's fast path
    uses), a non-seekable stream (the codec's pipe path), a path (the state-dict reader
    reads a path through its own read-ahead window) and, where the reader takes
    ``mmap=`` (newer codec), a mapped temporary file."""
    has_mmap = "mmap" in inspect.signature(READERS[reader]).parameters
    modes = ("seekable", "buffered", "pipe", "path", "mmap") if has_mmap else ("seekable", "buffered", "pipe", "path")
    if _hugepages is not None:
        modes += ("seekable+hugepage", "mmap+hugepage") if has_mmap else ("seekable+hugepage",)
    return modes


@contextlib.contextmanager
def _forced_hugepages() -> Iterator[None]:
    """Every non-empty record the codec allocates for goes the huge-page load path (an
    anonymous mapping per record) for the duration."""
    assert _hugepages is not None
    saved = _hugepages.MIN_BYTES
    _hugepages.MIN_BYTES = 1
    try:
        yield
    finally:
        _hugepages.MIN_BYTES = saved


_TMP = Path(tempfile.mkdtemp(prefix="codec-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


class _Pipe(io.RawIOBase):
    """A non-seekable byte stream (like a pipe): the reader cannot learn the file size."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = memoryview(data), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def,override]
        n = min(len(b), len(self._data) - self._pos, 1 << 16)  # short reads, as a pipe gives
        b[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n


def open_input(data: bytes, seekable: bool = True) -> io.IOBase:
    return io.BytesIO(data) if seekable else io.BufferedReader(_Pipe(data))


def call_reader(reader: str, data: bytes, mode: str = "seekable") -> object:
    """``reader`` over ``data`` fed as ``mode``; returns the value or raises what the reader raises."""
    if mode.endswith("+hugepage"):
        with _forced_hugepages():
            return call_reader(reader, data, mode[:-len("+hugepage")])
    if mode == "buffered":
        return READERS[reader](io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    if mode not in ("mmap", "path"):
        return READERS[reader](open_input(data, mode == "seekable"))
    path = _TMP / f"{reader}-{os.getpid()}.dat"
    path.write_bytes(data)
    try:
        return READERS[reader](path, mmap=True) if mode == "mmap" else READERS[reader](path)
    finally:
        path.unlink()  # a mapping still held by returned views stays valid (Linux)


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NUMBER = re.compile(r"\d+")


def field_label(exc: codec.CodecError) -> str:
    """``"ErrorClass @ field"`` with keys and indices normalised (``tensor '…' dim[N]``)."""
    name = _NUMBER.sub("N", _QUOTED.sub("'…'", str(exc.field)))
    return f"{type(exc).__name__} @ {name}"


def _tensors(value: object) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, codec.OptimizerRecord):
        for d in (*value.groups, *value.states):
            yield from _tensors(d)


def exact_outcome(reader: str, data: bytes, mode: str) -> tuple[object, ...]:
    """Everything a read gives, for comparing two ways of feeding the same bytes: the
    error's class, field, offset and message, or every value's key, dtype, shape and bytes."""
    try:
        value = call_reader(reader, data, mode)
    except codec.CodecError as exc:
        return (type(exc).__name__, exc.field, exc.offset, str(exc))
    items = value.items() if isinstance(value, dict) else [("", value)]
    return tuple((k, str(t.dtype), tuple(t.shape), _raw(t)) if isinstance(t, torch.Tensor) else (k, repr(t))
                 for k, t in items)


def _raw(t: torch.Tensor) -> bytes:
    t = t.int_repr() if t.is_quantized else t
    return bytes(t.contiguous().reshape(-1).view(torch.uint8).numpy()) if t.numel() else b""


def read_one(reader: str, data: bytes, mode: str = "seekable") -> str:
    """Read ``data`` with one reader fed as ``mode`` (:func:`modes_for`): ``"ok"`` or
    ``"ErrorClass @ field"``. Any other exception propagates; so does an AssertionError
    when a value read back is impossible (wrong type, or tensors holding more bytes than
    the input had)."""
    try:
        value = call_reader(reader, data, mode)
    except codec.CodecError as exc:
        assert isinstance(exc.field, str) and exc.field, f"{type(exc).__name__} without a field"
        assert exc.offset is None or 0 <= exc.offset <= len(data), f"offset {exc.offset} outside the input"
        return field_label(exc)
    expected = {"state_dict": dict, "tensor": torch.Tensor, "optimizer": codec.OptimizerRecord}[reader]
    assert isinstance(value, expected), f"{reader} returned {type(value).__name__}"
    nbytes = sum(t.numel() * t.element_size() for t in _tensors(value))
    assert nbytes <= len(data), f"{reader} returned {nbytes} tensor bytes from a {len(data)}-byte input"
    return "ok"


def vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def memory_cap(headroom: int = 256 << 20) -> Iterator[None]:
    """Cap the address space at its current size plus ``headroom`` (restored afterwards): an
    allocation sized from a lying header then fails (torch's RuntimeError, MemoryError)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = vm_size() + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
