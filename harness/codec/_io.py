"""Primitives (docs/format.md section 1) over binary streams, with byte-offset bookkeeping.

Each primitive is a reader/writer pair side by side: ``read_x(r, field)`` reads from a
:class:`Reader` and ``write_x(value)`` returns the bytes; each names its inverse.
:class:`Reader` knows how many bytes are left when the stream is seekable, so a length or
count that the rest of the file cannot hold is refused before anything is allocated.
Offsets in errors are absolute positions in the file (a file object handed over at
position p starts at p). :class:`MappedReader` reads a whole file mapped copy-on-write
(:func:`open_mapped`), so tensor data can be viewed in place instead of read.
"""
from __future__ import annotations

import contextlib
import io
import mmap
import os
import stat
import struct
from collections.abc import Iterator
from typing import IO, BinaryIO

from harness.codec.errors import (
    InvalidBoolError,
    InvalidLengthError,
    InvalidUtf8Error,
    InvalidValueError,
    LengthExceedsFileError,
    OverlongUlebError,
    TrailingBytesError,
    TruncatedError,
)

Stream = BinaryIO | IO[bytes]
Source = str | os.PathLike[str] | BinaryIO | IO[bytes]
Dest = str | os.PathLike[str] | BinaryIO | IO[bytes]

_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")
MAX_ULEB_BYTES = 10
U64_LIMIT = 1 << 64
CHUNK = 1 << 24  # 16 MiB: unbounded (non-seekable) streams are read, and big tensors written, in chunks


class Reader:
    """A binary stream plus the absolute offset of the next byte and, when the stream is
    seekable, the file's end (so :meth:`check_fits` can refuse impossible lengths)."""

    def __init__(self, f: Stream):
        self.f = f
        self.offset = 0
        self.end: int | None = None
        try:
            if f.seekable():
                start = f.tell()
                end = f.seek(0, os.SEEK_END)
                f.seek(start)
                self.offset, self.end = start, end
        except (OSError, AttributeError, ValueError):
            self.offset, self.end = 0, None

    @property
    def remaining(self) -> int | None:
        return None if self.end is None else self.end - self.offset

    def exact(self, n: int, field: str, start: int | None = None) -> bytes:
        """Read exactly ``n`` bytes (in chunks when large) or raise TruncatedError for ``field``."""
        at = self.offset if start is None else start
        if n <= CHUNK:
            data = self.f.read(n) if n else b""
        else:
            pieces, got = [], 0
            while got < n:
                piece = self.f.read(min(CHUNK, n - got))
                if not piece:
                    break
                pieces.append(piece)
                got += len(piece)
            data = b"".join(pieces)
        if data is None or len(data) < n:
            got = 0 if data is None else len(data)
            raise TruncatedError(field, at, f"file ends after {got} of the {n} bytes needed "
                                 f"({self.offset + got - at} byte(s) of the field were there)")
        self.offset += n
        return data

    def into(self, buf: memoryview, field: str, suffix: str = "") -> None:
        """Fill ``buf`` (bytes, 1-D) completely from the stream (its length was checked by the
        caller); errors name ``field + suffix``."""
        start, total, done = self.offset, len(buf), 0
        readinto = getattr(self.f, "readinto", None)
        if readinto is not None and total <= CHUNK:
            done = readinto(buf) or 0  # usually all of it at once
            if done == total:
                self.offset += total
                return
        while done < total:
            if readinto is not None:
                n = readinto(buf[done:done + CHUNK])
            else:
                chunk = self.f.read(min(total - done, CHUNK))
                n = len(chunk)
                buf[done:done + n] = chunk
            if not n:
                raise TruncatedError(field + suffix, start, f"file ends after {done} of the {total} bytes needed")
            done += n
        self.offset += total

    def check_fits(self, nbytes: int, field: str, start: int, what: str) -> None:
        """Refuse (before any allocation) a field that needs more bytes than the file has left."""
        left = self.remaining
        if left is not None and nbytes > left:
            raise LengthExceedsFileError(field, start, f"{what} needs {nbytes} bytes but only {left} remain")

    def expect_end(self, field: str) -> None:
        """Raise TrailingBytesError if anything follows the last record."""
        extra = self.f.read(1)
        if extra:
            left = self.remaining
            more = f"{left} byte(s)" if left is not None else "at least one byte"
            raise TrailingBytesError(field, self.offset, f"{more} after the last record")


class MappedReader(Reader):
    """A :class:`Reader` over a whole file mapped with ``mmap.ACCESS_COPY`` (private,
    copy-on-write: the process may write to the pages, the file never changes). Headers are
    parsed exactly as from a stream (``mmap`` has ``read``/``seek``); :meth:`take` hands
    out the position of a data block instead of reading it, for a zero-copy view. Each
    tensor made with ``torch.frombuffer(reader.buffer, ...)`` references the memoryview,
    which holds a buffer export of the mmap: the mapping stays until the last is freed."""

    def __init__(self, mapped: mmap.mmap):
        self.f = mapped  # type: ignore[assignment]  # read(n)/seek(n) are all the primitives use
        self.offset = 0
        self.end = len(mapped)
        self.buffer = memoryview(mapped)

    def take(self, nbytes: int) -> tuple[memoryview, int]:
        """Skip ``nbytes`` (already checked by :meth:`Reader.check_fits`); return the whole
        mapping as a memoryview and the block's offset in it."""
        at = self.offset
        self.offset += nbytes
        self.f.seek(self.offset)
        return self.buffer, at


# --- uleb -------------------------------------------------------------------------------------
def read_uleb(r: Reader, field: str, suffix: str = "") -> int:
    """Unsigned LEB128, strict: at most 10 bytes, value < 2**64, shortest form. Errors name
    ``field + suffix`` (joined only when raising). Inverse of :func:`write_uleb`."""
    b = r.f.read(1)
    if b and b[0] < 0x80:  # the common one-byte form (canonical and in range by itself)
        r.offset += 1
        return b[0]
    return _read_uleb_from(r, b, field + suffix)


def _read_uleb_from(r: Reader, first: bytes, field: str) -> int:
    """:func:`read_uleb` once its first byte was read (``first``, empty at the file's end)."""
    start = r.offset
    value = shift = 0
    for i in range(MAX_ULEB_BYTES):
        b = r.f.read(1) if i else first
        if not b:
            raise TruncatedError(field, start, f"file ends inside a LEB128 integer after {i} byte(s)")
        byte = b[0]
        r.offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if i > 0 and byte == 0:
                raise OverlongUlebError(field, start, f"non-canonical LEB128 ({i + 1} bytes, last one zero)")
            if value >= U64_LIMIT:
                raise OverlongUlebError(field, start, f"LEB128 value {value} does not fit 64 bits")
            return value
    raise OverlongUlebError(field, start, f"LEB128 integer longer than {MAX_ULEB_BYTES} bytes")


def write_uleb(value: int, field: str = "uleb") -> bytes:
    """Unsigned LEB128 bytes of ``value`` (0 <= value < 2**64). Inverse of :func:`read_uleb`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < U64_LIMIT:
        raise InvalidValueError(field, None, f"a uleb holds an integer in [0, 2**64), got {value!r}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# --- str --------------------------------------------------------------------------------------
def read_str(r: Reader, field: str) -> str:
    """.NET ``BinaryReader.ReadString``: uleb UTF-8 byte length, then the bytes (strict UTF-8).
    Inverse of :func:`write_str`."""
    start = r.offset
    n = read_uleb(r, field, " length")
    left = r.remaining
    if left is not None and n > left:
        r.check_fits(n, field, start, f"a string of {n} bytes")
    raw = r.exact(n, field, start)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidUtf8Error(field, start, f"not valid UTF-8 ({exc.reason} at byte {exc.start} of the "
                               f"string's {n})") from exc


def write_str(text: str, field: str = "string") -> bytes:
    """.NET ``BinaryWriter.Write(string)``: uleb UTF-8 BYTE length, then the bytes.
    Inverse of :func:`read_str`."""
    if not isinstance(text, str):
        raise InvalidValueError(field, None, f"expected a str, got {type(text).__name__}")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidUtf8Error(field, None, f"{text!r} cannot be encoded as UTF-8 ({exc.reason})") from exc
    return write_uleb(len(raw)) + raw


# --- f64 / i64 / bool ---------------------------------------------------------------------------
def read_f64(r: Reader, field: str) -> float:
    """8-byte little-endian IEEE double. Inverse of :func:`write_f64`."""
    return float(_F64.unpack(r.exact(8, field))[0])


def write_f64(value: float, field: str = "f64") -> bytes:
    """8-byte little-endian IEEE double. Inverse of :func:`read_f64`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidValueError(field, None, f"expected a float, got {type(value).__name__} {value!r}")
    return _F64.pack(float(value))


def read_i64(r: Reader, field: str) -> int:
    """8-byte little-endian signed integer. Inverse of :func:`write_i64`."""
    return int(_I64.unpack(r.exact(8, field))[0])


def write_i64(value: int, field: str = "i64") -> bytes:
    """8-byte little-endian signed integer. Inverse of :func:`read_i64`."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(1 << 63) <= value < (1 << 63):
        raise InvalidValueError(field, None, f"expected an int64, got {value!r}")
    return _I64.pack(value)


def read_bool(r: Reader, field: str) -> bool:
    """One byte, 0 or 1; anything else is InvalidBoolError (.NET would accept any non-zero).
    Inverse of :func:`write_bool`."""
    start = r.offset
    b = r.exact(1, field)[0]
    if b > 1:
        raise InvalidBoolError(field, start, f"bool byte is {b}, not 0 or 1")
    return b == 1


def write_bool(value: bool, field: str = "bool") -> bytes:
    """One byte, 0 or 1. Inverse of :func:`read_bool`."""
    if not isinstance(value, bool):
        raise InvalidValueError(field, None, f"expected a bool, got {type(value).__name__} {value!r}")
    return b"\x01" if value else b"\x00"


def check_dim(value: int, field: str, at: int) -> int:
    if value >= 1 << 63:
        raise InvalidLengthError(field, at, f"dimension {value} exceeds 2**63-1")
    return value


# --- sources and destinations ---------------------------------------------------------------------
@contextlib.contextmanager
def open_source(source: Source) -> Iterator[Stream]:
    """A path is opened for reading (and closed); a binary file object is read as given."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield f
    else:
        yield source


def check_mmap_flag(flag: object) -> None:
    """The readers' ``mmap`` argument must be a real bool (a typo'd value is refused, not guessed)."""
    if not isinstance(flag, bool):
        raise InvalidValueError("mmap", None, f"mmap must be True or False, got {flag!r}")


@contextlib.contextmanager
def open_mapped(source: Source) -> Iterator[Reader]:
    """Map the file at path ``source`` copy-on-write (``mmap.ACCESS_COPY``) and yield a
    :class:`MappedReader` over it (an empty file, which cannot be mapped, gets a plain
    :class:`Reader` over no bytes: the same errors follow). The file descriptor is closed
    at once (the mapping does not need it). A file object, or a path that is no regular
    file (FIFO, device), is an :class:`InvalidValueError`: a file object's position, size and
    lifetime belong to the caller."""
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidValueError("source", None, "mmap=True needs a path (str or os.PathLike), got a "
                                f"{type(source).__name__}; read file objects with mmap=False")
    if not stat.S_ISREG(mode := os.stat(source).st_mode) and not stat.S_ISDIR(mode):  # (open refuses a dir)
        # a FIFO or device has no fixed bytes to map (and opening a FIFO would block)
        raise InvalidValueError("source", None, f"mmap=True needs a regular file; {os.fspath(source)!r} is not one")
    with open(source, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            mapped = None
        else:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    if mapped is None:
        yield Reader(io.BytesIO(b""))
        return
    # Never closed here: torch.frombuffer keeps a reference to the memoryview (not a buffer
    # export), so closing or releasing anything would leave tensors pointing at unmapped
    # memory. The memoryview holds an export of the mmap (which therefore refuses close()),
    # and everything is unmapped by reference counting once the last tensor is freed.
    yield MappedReader(mapped)
