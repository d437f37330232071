"""Primitives (FORMAT.md "Primitives") over binary streams, with byte-offset bookkeeping.

:class:`Reader` knows how many bytes are left when the stream is seekable, so a length or
count that the rest of the file cannot hold is refused before anything is allocated.
"""
from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from harness.codec.errors import (
    InvalidBoolError,
    InvalidLengthError,
    InvalidUtf8Error,
    OverlongUlebError,
    TrailingBytesError,
    TruncatedError,
)

Source = str | os.PathLike[str] | BinaryIO | IO[bytes]
Dest = str | os.PathLike[str] | BinaryIO | IO[bytes]

_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")
MAX_ULEB_BYTES = 10
CHUNK = 1 << 24  # 16 MiB: unbounded (non-seekable) streams are read in chunks of this size


class Reader:
    """Reads FORMAT.md primitives from a binary stream, tracking the absolute offset."""

    def __init__(self, f: BinaryIO | IO[bytes]):
        self.f = f
        self.offset = 0
        self.size: int | None = None
        try:
            if f.seekable():
                start = f.tell()
                end = f.seek(0, os.SEEK_END)
                f.seek(start)
                self.size = end - start
        except (OSError, AttributeError, ValueError):
            self.size = None

    @property
    def remaining(self) -> int | None:
        return None if self.size is None else self.size - self.offset

    def exact(self, n: int, field: str) -> bytes:
        data = self.f.read(n)
        if len(data) < n:
            raise TruncatedError(field, self.offset, f"file ends after {len(data)} of the {n} bytes needed")
        self.offset += n
        return data

    def into(self, buf: memoryview, field: str) -> None:
        """Fill ``buf`` completely from the stream (its length was checked by the caller)."""
        start, total, done = self.offset, len(buf), 0
        readinto = getattr(self.f, "readinto", None)
        while done < total:
            if readinto is not None:
                n = readinto(buf[done:])
            else:
                chunk = self.f.read(min(total - done, CHUNK))
                n = len(chunk)
                buf[done:done + n] = chunk
            if not n:
                raise TruncatedError(field, start, f"file ends after {done} of the {total} bytes needed")
            done += n
        self.offset += total

    def uleb(self, field: str) -> int:
        start = self.offset
        value = shift = 0
        for i in range(MAX_ULEB_BYTES):
            b = self.f.read(1)
            if not b:
                raise TruncatedError(field, start, f"file ends inside a LEB128 integer after {i} byte(s)")
            byte = b[0]
            self.offset += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if i > 0 and byte == 0:
                    raise OverlongUlebError(field, start, f"non-canonical LEB128 ({i + 1} bytes, last one zero)")
                if value >= 1 << 64:
                    raise OverlongUlebError(field, start, f"LEB128 value {value} does not fit 64 bits")
                return value
        raise OverlongUlebError(field, start, f"LEB128 integer longer than {MAX_ULEB_BYTES} bytes")

    def string(self, field: str) -> str:
        start = self.offset
        n = self.uleb(field + " length")
        self.check_fits(n, field, start, "string")
        raw = self.exact(n, field)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidUtf8Error(field, start, f"not valid UTF-8 ({exc.reason} at byte {exc.start} of the key)") from exc

    def f64(self, field: str) -> float:
        return float(_F64.unpack(self.exact(8, field))[0])

    def i64(self, field: str) -> int:
        return int(_I64.unpack(self.exact(8, field))[0])

    def boolean(self, field: str) -> bool:
        start = self.offset
        b = self.exact(1, field)[0]
        if b > 1:
            raise InvalidBoolError(field, start, f"bool byte is {b}, not 0 or 1")
        return b == 1

    def check_fits(self, nbytes: int, field: str, start: int, what: str) -> None:
        left = self.remaining
        if left is not None and nbytes > left:
            raise InvalidLengthError(field, start, f"{what} needs {nbytes} bytes but only {left} remain")

    def expect_end(self, field: str) -> None:
        extra = self.f.read(1)
        if extra:
            left = self.remaining
            more = f"{left} byte(s)" if left is not None else "at least one byte"
            raise TrailingBytesError(field, self.offset, f"{more} after the last record")


def uleb_bytes(value: int) -> bytes:
    """Encode an unsigned LEB128 integer (inverse of :meth:`Reader.uleb`)."""
    if value < 0:
        raise ValueError(f"LEB128 value must be non-negative, got {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string_bytes(text: str) -> bytes:
    """.NET BinaryWriter.Write(string): uleb UTF-8 byte length, then the bytes."""
    raw = text.encode("utf-8")
    return uleb_bytes(len(raw)) + raw


def f64_bytes(value: float) -> bytes:
    return _F64.pack(float(value))


def i64_bytes(value: int) -> bytes:
    return _I64.pack(int(value))


def bool_bytes(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


@contextlib.contextmanager
def open_source(source: Source) -> Iterator[BinaryIO | IO[bytes]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield f
    else:
        yield source


@contextlib.contextmanager
def open_dest(dest: Dest) -> Iterator[BinaryIO | IO[bytes]]:
    """A path is written atomically: a temporary file in the same folder, fsync'd and
    renamed into place only when everything was written; on any error it is removed and
    whatever file was there before is untouched. A file object is written as given."""
    if not isinstance(dest, (str, os.PathLike)):
        yield dest
        return
    path = Path(dest)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
