"""Tensors that cross a process boundary travel as .dat files written by the harness's own
codec; this is the one place that writes them, calls, reads the answers and cleans up."""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import torch

from harness import codec as trusted_codec  # plumbing only: never the codec under test

T = TypeVar("T")


def write_scratch_tensor(path: Path | str, t: torch.Tensor) -> None:
    """A tensor file that the harness itself reads back (an input or an answer crossing a
    process boundary): written straight into ``path``, without the codec's fsync and rename,
    which cost seconds per GiB and protect nothing here (the file is transient, and the
    reader is told of it only after this returns). Inverse of :func:`read_scratch_tensor`."""
    with open(path, "wb", buffering=0) as f:
        trusted_codec.write_tensor(f, t)


def read_scratch_tensor(path: Path | str) -> torch.Tensor:
    """A tensor file the harness wrote or asked for, mapped copy-on-write (the trusted codec's
    ``mmap=True``): its bytes are the page cache's, no new memory is touched for a 2 GiB
    tensor, and the mapping outlives the file's removal. Inverse of :func:`write_scratch_tensor`."""
    return trusted_codec.read_tensor(path, mmap=True)


class Scratch:
    """Unique scratch files in one folder (several drivers and processes may share it)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._n = itertools.count(1)

    def path(self, stem: str) -> Path:
        return self.folder / f"{stem}-{os.getpid()}-{id(self):x}-{next(self._n)}.dat"

    def exchange(self, inputs: Mapping[str, torch.Tensor], outputs: Sequence[str],
                 call: Callable[[dict[str, Path]], T]) -> tuple[T, dict[str, torch.Tensor]]:
        """Write ``inputs`` to files, ``call`` with every file's path by name, read the files
        named in ``outputs`` back; every file is removed afterwards, whatever happens."""
        paths = {name: self.path(name) for name in [*inputs, *outputs]}
        try:
            for name, t in inputs.items():
                write_scratch_tensor(paths[name], t)
            answer = call(paths)
            return answer, {name: read_scratch_tensor(paths[name]) for name in outputs}
        finally:
            for p in paths.values():
                p.unlink(missing_ok=True)
