"""A tensor past every 32-bit limit (2**31 + 17 uint8 elements: more than 2**31 elements AND
bytes) round-trips bit for bit through write_tensor/read_tensor and write_state_dict/
read_state_dict, default and mmap mode, with a record after it (offsets past 2 GiB).

Cost on a 2-core box: ~15-25 s, ~4.5 GiB RAM peak (the tensor, one read-back copy; mapped
pages are page cache), ~2 GiB of disk at a time in pytest's tmp folder (removed at once).
Skipped, with the reason, where RAM or disk is short. ``HARNESS_SKIP_LARGE_TESTS=1`` skips it."""
from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import pytest
import torch

from harness import codec
from harness.running.memory import available_bytes
from tests.codec._util import dotnet_str, uleb

# with pytest-xdist (tox.ini): on the worker that runs the large-tensor cells, never beside them
pytestmark = pytest.mark.xdist_group("large")

N = 2 ** 31 + 17
GiB = 1 << 30


def _skip_reason(folder: Path) -> str | None:
    if os.environ.get("HARNESS_SKIP_LARGE_TESTS") == "1":
        return "HARNESS_SKIP_LARGE_TESTS=1"
    ram = available_bytes()
    if ram and ram < 7 * GiB:
        return f"needs ~7 GiB of available RAM, {ram / GiB:.1f} GiB here"
    free = shutil.disk_usage(folder).free
    if free < 3 * GiB:
        return f"needs ~3 GiB of free disk in {folder}, {free / GiB:.1f} GiB there"
    return None


def _pattern(n: int) -> torch.Tensor:
    """n bytes repeating 0..250 (251 is prime: every 16 MiB chunk, and any shifted or
    reordered block, has different bytes), with the last 17 bytes set apart."""
    base = torch.arange(251, dtype=torch.uint8)
    t = torch.empty(n, dtype=torch.uint8)
    full = n // 251
    t[:full * 251].view(full, 251).copy_(base.expand(full, 251))
    t[full * 251:] = base[:n - full * 251]
    t[-17:] = torch.arange(17, dtype=torch.uint8) + 0xE0
    return t


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    if (why := _skip_reason(tmp_path_factory.getbasetemp())) is not None:
        pytest.skip(why)
    return _pattern(N)


def test_large_single_tensor_file(big: torch.Tensor, tmp_path: Path) -> None:
    path = tmp_path / "big.dat"
    try:
        codec.write_tensor(path, big)
        assert path.stat().st_size == 2 + len(uleb(N)) + N  # code, ndim, dim, data: nothing else
        with open(path, "rb") as f:
            assert f.read(2 + len(uleb(N))) == b"\x00\x01" + uleb(N)
            f.seek(-17, os.SEEK_END)
            assert f.read() == bytes(range(0xE0, 0xE0 + 17))
        back = codec.read_tensor(path)
        assert _equal(back, big)
        del back
        gc.collect()
        mapped = codec.read_tensor(path, mmap=True)  # uint8 is always aligned: a view
        assert _equal(mapped, big)
        del mapped
    finally:
        path.unlink(missing_ok=True)


def test_large_state_dict_default_and_mmap(big: torch.Tensor, tmp_path: Path) -> None:
    path = tmp_path / "big_sd.dat"
    head = torch.tensor([1.5, -2.0], dtype=torch.float64)
    tail = torch.arange(5, dtype=torch.int64) - 2  # its record starts past 2 GiB
    sd = {"head": head, "big.weight": big, "tail": tail}
    try:
        codec.write_state_dict(path, sd)
        head_bytes = 1 + len(dotnet_str("head")) + 3 + 16
        big_bytes = len(dotnet_str("big.weight")) + 2 + len(uleb(N)) + N
        assert path.stat().st_size == head_bytes + big_bytes + len(dotnet_str("tail")) + 3 + 40
        for mmap in (False, True):
            back = codec.read_state_dict(path, mmap=mmap)
            assert list(back) == list(sd)
            for k, t in sd.items():
                assert _equal(back[k], t), (k, mmap)
            del back
            gc.collect()
    finally:
        path.unlink(missing_ok=True)
