"""The writing side: a :class:`Sink` that coalesces small writes, and :func:`open_dest`, which
writes a path atomically (a temporary file, fsync'd and renamed into place only when
everything was written: a failed write never leaves a half file or loses the old one).
The reading side is harness/codec/_io.py."""
from __future__ import annotations

import contextlib
import ctypes
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.codec._io import CHUNK, Dest, Stream
from harness.codec.errors import InvalidValueError

SMALL_WRITE = 1 << 16  # 64 KiB: writes up to this size are coalesced by a Sink (copied into its buffer)
FLUSH_AT = 1 << 20  # 1 MiB: a Sink's buffer is written out once it holds this much


def write_all(f: Stream | Sink, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data`` (in chunks; loops over short writes of raw streams)."""
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    done, total = 0, len(view)
    while done < total:
        n = f.write(view[done:done + CHUNK])
        if n is None:  # non-blocking raw stream with nothing written
            raise InvalidValueError("destination", None, "the stream accepted no bytes (non-blocking?)")
        done += n


class Sink:
    """What the writers write to (:func:`open_dest` yields one): coalesces small writes
    (at most ``SMALL_WRITE`` bytes: headers, small tensors) into one bytearray that is written
    to the stream whenever it reaches ``FLUSH_AT`` bytes, before any larger write, and at
    the end. A larger write goes to the stream straight from the caller's buffer (no copy).
    So saving many small tensors costs one ``write`` call per MiB instead of several per
    tensor, and the extra memory stays below ``FLUSH_AT + SMALL_WRITE`` whatever the file."""

    __slots__ = ("f", "buf", "failed")

    def __init__(self, f: Stream):
        self.f = f
        self.buf = bytearray()
        self.failed = False  # a write to the stream raised: what reached it is unknown

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data) if type(data) is bytes else memoryview(data).nbytes
        if n <= SMALL_WRITE:
            self.buf += data
            if len(self.buf) >= FLUSH_AT:
                self.flush()
        else:
            self.flush()
            self._out(data)
        return n

    def copy_from(self, address: int, nbytes: int) -> None:
        """Append ``nbytes`` (at most ``SMALL_WRITE``) read from memory at ``address``, which
        the caller keeps alive for the duration of the call (a contiguous CPU tensor's
        ``data_ptr()``): one copy into the buffer, with no numpy array or memoryview made."""
        self.buf += (ctypes.c_char * nbytes).from_address(address)
        if len(self.buf) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write out the buffered bytes (a new buffer follows: the stream may keep a view)."""
        if self.buf:
            buf, self.buf = self.buf, bytearray()
            self._out(buf)

    def _out(self, data: bytes | bytearray | memoryview) -> None:
        self.failed = True
        write_all(self.f, data)
        self.failed = False


def _new_file_mode(path: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextlib.contextmanager
def open_dest(dest: Dest) -> Iterator[Sink]:
    """Yield a :class:`Sink` over the destination. A path is written atomically: a temporary
    file in the same folder (unbuffered: the Sink buffers), flushed, fsync'd and
    ``os.replace``d into place only when everything was written; on any error it is removed
    and whatever file was there before is untouched. A file object is written as given (not
    closed); the Sink is flushed into it at the end, and also when the writer fails for a
    reason other than the stream itself (so it holds what was written before the error, as
    if every write had gone straight to it)."""
    if not isinstance(dest, (str, os.PathLike)):
        sink = Sink(dest)
        try:
            yield sink
        except BaseException:
            if not sink.failed:
                with contextlib.suppress(Exception):
                    sink.flush()
            raise
        sink.flush()
        return
    path = Path(dest)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb", buffering=0) as f:
            sink = Sink(f)
            yield sink
            sink.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
