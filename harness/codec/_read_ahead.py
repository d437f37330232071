"""A read-only window over an unbuffered file: the state-dict reader reads a path through
it (harness/codec/state_dict.py), one read system call per WINDOW bytes instead of two per
small tensor."""
from __future__ import annotations

import contextlib
import ctypes
import io
import os
from collections.abc import Iterator
from typing import cast

from harness.codec._io import Source, Stream


class ReadAhead:
    """A read-only binary file over an unbuffered one (``open(path, "rb", buffering=0)``)
    that reads ``WINDOW`` bytes at a time into one reused buffer: what a state dict of many
    small tensors is read through. ``io.BufferedReader`` makes two ``read`` system calls per
    small tensor (its ``peek`` refills, then ``readinto`` of a tensor at least as big as its
    8 KiB buffer goes to the file), about 2.5 us each on the project's VM; a bigger
    BufferedReader does not help, because its ``peek`` copies out everything buffered. Here
    ``peek(n)`` copies at most ``n`` bytes, ``read``/``readinto`` copy from the window, and a
    request bigger than the window goes straight to the file after what is buffered. Same
    results as a BufferedReader: ``read(n)``/``readinto`` return fewer bytes only at the end
    of the file; ``seek``/``tell`` are file positions."""

    __slots__ = ("raw", "buf", "view", "pinned", "address", "pos", "end")

    def __init__(self, raw: io.RawIOBase, window: int = 0) -> None:
        self.raw = raw
        self.buf = bytearray(window or WINDOW)
        self.view = memoryview(self.buf)  # (also pins the buffer: a bytearray with exports cannot move)
        self.pinned = ctypes.c_char.from_buffer(self.buf)
        self.address = ctypes.addressof(self.pinned)
        self.pos = self.end = 0  # unread bytes: buf[pos:end]

    def seekable(self) -> bool:
        return bool(self.raw.seekable())

    def tell(self) -> int:
        return int(self.raw.tell()) - self.end + self.pos  # the raw file is at buf[end]

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset, whence = self.tell() + offset, os.SEEK_SET
        self.pos = self.end = 0
        return int(self.raw.seek(offset, whence))

    def _fill(self, want: int) -> None:
        """Keep the unread bytes (moved to the front) and read until ``want`` are buffered
        (fewer at the end of the file)."""
        keep = self.end - self.pos
        if keep and self.pos:
            self.buf[:keep] = self.buf[self.pos:self.end]
        self.pos, self.end = 0, keep
        while self.end < want:
            got = self.raw.readinto(self.view[self.end:])
            if not got:
                return
            self.end += got

    def peek(self, n: int = 1) -> bytearray:
        """At most ``n`` next bytes without consuming them (fewer only at the end of the file)."""
        if self.end - self.pos < n:
            self._fill(min(n, len(self.buf)))
        return self.buf[self.pos:min(self.end, self.pos + n)]

    def read(self, n: int = -1) -> bytes:
        pos = self.pos
        if 0 <= n <= self.end - pos:
            self.pos = pos + n
            return bytes(self.view[pos:pos + n])
        if n < 0:
            out = bytes(self.view[pos:self.end]) + (self.raw.read() or b"")
            self.pos = self.end = 0
            return out
        out = bytearray(n)
        got = self.readinto(memoryview(out))
        return bytes(out[:got]) if got < n else bytes(out)

    def skip(self, n: int) -> None:
        """Consume ``n`` bytes that a :meth:`peek` just returned."""
        self.pos += n

    def copy_to(self, address: int, n: int) -> int:
        """:meth:`readinto` the ``n`` bytes of memory at ``address`` (a fresh tensor's data,
        alive for the call): from the window with one ``memmove`` when it holds them (no
        memoryview or ctypes array made), else through :meth:`readinto`."""
        pos = self.pos
        if n <= self.end - pos:
            ctypes.memmove(address, self.address + pos, n)
            self.pos = pos + n
            return n
        return self.readinto(memoryview((ctypes.c_ubyte * n).from_address(address)).cast("B"))

    def readinto(self, b: memoryview | bytearray) -> int:
        view = memoryview(b).cast("B") if not isinstance(b, memoryview) or b.format != "B" else b
        n = len(view)
        pos, avail = self.pos, self.end - self.pos
        if n <= avail:
            view[:] = self.view[pos:pos + n]
            self.pos = pos + n
            return n
        view[:avail] = self.view[pos:self.end]
        self.pos = self.end = 0
        done = avail
        if n - done >= len(self.buf):  # big: straight into the caller's memory
            while done < n:
                got = self.raw.readinto(view[done:])
                if not got:
                    break
                done += got
            return done
        self._fill(n - done)
        take = min(n - done, self.end)
        view[done:done + take] = self.view[:take]
        self.pos = take
        return done + take


WINDOW = 1 << 18  # 256 KiB: a ReadAhead's buffer (one read system call per 32 tensors of 8 KiB)


@contextlib.contextmanager
def open_read_ahead(source: Source) -> Iterator[Stream]:
    """Like :func:`open_source`, but a path is read through a :class:`ReadAhead`."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb", buffering=0) as f:
            # (ReadAhead has what Reader uses: read, readinto, peek, seek, tell)
            yield cast(Stream, ReadAhead(cast(io.RawIOBase, f)))
    else:
        yield source
