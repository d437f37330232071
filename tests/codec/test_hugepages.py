"""The huge-page load path (``harness/codec/_hugepages.py``): large records are read into a
private anonymous mapping advised ``MADV_HUGEPAGE``, and the result is indistinguishable
from the plain path's (``torch.empty`` + ``readinto``) but for where the memory lives.

Values are compared as bytes with the path forced on for every record (``MIN_BYTES = 1``)
and forced off (``None``), for every dtype (NaN payloads, -0.0 included). Where the memory
lives is read from /proc/self/smaps (Linux; skipped elsewhere): the tensor's data lies in
an anonymous mapping whose VmFlags carry ``hg`` (MADV_HUGEPAGE) on the path and not off it;
on a host whose THP mode allows it, the mapping is backed by huge pages (AnonHugePages)."""
from __future__ import annotations

import gc
import io
import mmap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from harness import codec
from harness.codec import _hugepages
from tests.codec._util import assert_same_tensor, raw_bytes
from tests.codec.test_tensors import DTYPES, EXAMPLES, QUANTIZED, tensor_from_bytes, tensors
from tests.codec.test_tensors import _itemsize as itemsize

HAVE_SMAPS = Path("/proc/self/smaps").exists()
needs_smaps = pytest.mark.skipif(not HAVE_SMAPS, reason="needs /proc/self/smaps (Linux) to see the mapping")
THP_ON = _hugepages.thp_mode() in ("always", "madvise") and hasattr(mmap, "MADV_HUGEPAGE")
MiB = 1 << 20


@pytest.fixture
def forced() -> Iterator[None]:
    saved = _hugepages.MIN_BYTES
    _hugepages.MIN_BYTES = 1
    yield
    _hugepages.MIN_BYTES = saved


def _read_both(path: Path, reader=codec.read_state_dict, **kw):
    """(path forced on for every record, path off) reads of ``path``."""
    saved = _hugepages.MIN_BYTES
    try:
        _hugepages.MIN_BYTES = 1
        on = reader(path, **kw)
        _hugepages.MIN_BYTES = None
        off = reader(path, **kw)
    finally:
        _hugepages.MIN_BYTES = saved
    return on, off


def _mapping_of(t: torch.Tensor) -> dict[str, str]:
    """The /proc/self/smaps entry (header fields and ``Key: value`` lines) holding the start
    of ``t``'s data (the advised part of a path mapping is an entry of its own: madvise
    splits the mapping's tail off)."""
    ptr = t.data_ptr()
    entry: dict[str, str] = {}
    found = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                if found:
                    break
                start, stop = (int(x, 16) for x in head[0].split("-"))
                found = start <= ptr < stop
                entry = {"range": head[0], "inode": head[4], "path": " ".join(head[5:])}
            elif found:
                key, _, value = line.partition(":")
                entry[key] = value.strip()
    assert found, "the tensor's data lies in no mapping"
    return entry


def _large(dtype: torch.dtype, nbytes: int, seed: int = 0) -> torch.Tensor:
    """A 1-D tensor of about ``nbytes`` random bytes (bools 0/1), with -0.0 and NaN payloads
    at the start for the float types."""
    n = nbytes // itemsize(dtype)
    g = torch.Generator().manual_seed(seed)
    if dtype is torch.bool:
        return torch.randint(0, 2, (n,), generator=g, dtype=torch.uint8).bool()
    data = bytearray(torch.randint(0, 256, (n * itemsize(dtype),), generator=g, dtype=torch.uint8).numpy().tobytes())
    special = {torch.float32: bytes.fromhex("00000080" "0100c07f" "ffffbfff"),
               torch.float64: bytes.fromhex("0000000000000080" "010000000000f07f"),
               torch.float16: bytes.fromhex("0080" "017e"), torch.bfloat16: bytes.fromhex("0080" "c17f")}
    head = special.get(dtype, b"")
    data[:len(head)] = head
    return tensor_from_bytes(dtype, (n,), bytes(data))


# --- values ---------------------------------------------------------------------------------------
@given(st.dictionaries(st.text(max_size=9), tensors(), max_size=5))
@example({str(i): t for i, t in enumerate(EXAMPLES)})
def test_values_equal_the_plain_path_for_every_dtype(sd: dict[str, torch.Tensor]) -> None:
    buf = io.BytesIO()
    codec.write_state_dict(buf, sd)
    saved = _hugepages.MIN_BYTES
    try:
        _hugepages.MIN_BYTES = 1
        on = codec.read_state_dict(io.BytesIO(buf.getvalue()))
        _hugepages.MIN_BYTES = None
        off = codec.read_state_dict(io.BytesIO(buf.getvalue()))
    finally:
        _hugepages.MIN_BYTES = saved
    assert list(on) == list(off) == list(sd)
    for k, t in sd.items():
        assert_same_tensor(on[k], off[k], k)
        assert_same_tensor(on[k], t, k)
        assert on[k].is_contiguous()


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d not in QUANTIZED], ids=str)
def test_large_records_of_every_dtype_equal_the_plain_path(dtype: torch.dtype, tmp_path) -> None:
    # 2 MiB + 3 elements: one whole huge page and a partial one (the rounded-up mapping)
    t = _large(dtype, 2 * MiB + 3 * itemsize(dtype))
    path = tmp_path / "t.dat"
    codec.write_state_dict(path, {"w": t, "x": torch.tensor([1.5, -0.0])})
    on, off = _read_both(path)
    for k in ("w", "x"):
        assert_same_tensor(on[k], off[k], k)
    assert raw_bytes(on["w"]) == raw_bytes(t)
    assert raw_bytes(codec.read_tensor(_tensor_file(tmp_path, t))) == raw_bytes(t)


def _tensor_file(tmp_path: Path, t: torch.Tensor) -> Path:
    path = tmp_path / "single.dat"
    codec.write_tensor(path, t)
    return path


@pytest.mark.parametrize("t", EXAMPLES, ids=lambda t: str(t.dtype))
def test_read_tensor_and_mmap_copies_equal_the_plain_path(t: torch.Tensor, tmp_path) -> None:
    path = _tensor_file(tmp_path, t)
    on, off = _read_both(path, codec.read_tensor)
    assert_same_tensor(on, off)
    on, off = _read_both(path, codec.read_tensor, mmap=True)
    assert_same_tensor(on, off)


def test_errors_equal_the_plain_path(tmp_path) -> None:
    path = tmp_path / "t.dat"
    codec.write_state_dict(path, {"a": torch.arange(10.0), "b": torch.arange(6, dtype=torch.int16)})
    data = path.read_bytes()
    for cut in range(len(data)):
        outcomes = []
        for min_bytes in (1, None):
            saved = _hugepages.MIN_BYTES
            _hugepages.MIN_BYTES = min_bytes
            try:
                codec.read_state_dict(io.BytesIO(data[:cut]))
            except codec.CodecError as exc:
                outcomes.append((type(exc), exc.field, exc.offset, str(exc)))
            finally:
                _hugepages.MIN_BYTES = saved
        assert len(outcomes) == 2 and outcomes[0] == outcomes[1], cut


# --- memory: where it lives, writable, lifetime -------------------------------------------------------
@needs_smaps
def test_a_large_record_lives_in_an_advised_anonymous_mapping(tmp_path) -> None:
    t = _large(torch.float32, 6 * MiB + 12)
    path = tmp_path / "m.dat"
    codec.write_state_dict(path, {"w": t})
    saved = _hugepages.MIN_BYTES
    try:
        _hugepages.MIN_BYTES = _hugepages.DEFAULT_MIN_BYTES
        on = codec.read_state_dict(path)["w"]
        _hugepages.MIN_BYTES = None
        off = codec.read_state_dict(path)["w"]
    finally:
        _hugepages.MIN_BYTES = saved
    if not THP_ON:
        pytest.skip(f"the path is off on this host: {codec.hugepage_loads()}")
    m = _mapping_of(on)
    assert m["inode"] == "0" and m["path"] == "", m  # anonymous
    start, stop = (int(x, 16) for x in m["range"].split("-"))
    assert on.data_ptr() == start and stop - start == 6 * MiB  # the tensor's own; whole huge pages advised
    assert "hg" in m["VmFlags"].split(), m  # advised MADV_HUGEPAGE
    # 6 MiB + 12 B cover 3 whole huge pages: at least one must be backed by a huge page (the
    # kernel falls back on small pages where it finds no free huge page even after compaction)
    assert int(m["AnonHugePages"].split()[0]) >= 2048, m
    assert "hg" not in _mapping_of(off)["VmFlags"].split()
    assert raw_bytes(on) == raw_bytes(off) == raw_bytes(t)


def test_tensors_own_writable_memory(tmp_path, forced) -> None:
    path = tmp_path / "m.dat"
    codec.write_state_dict(path, {"w": torch.arange(8.0), "b": torch.tensor([True, False])})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # frombuffer warns over read-only memory
        sd = codec.read_state_dict(path)
    sd["w"].add_(1)
    sd["b"][1] = True
    assert sd["w"].tolist() == [float(i + 1) for i in range(8)] and sd["b"].tolist() == [True, True]
    assert codec.read_state_dict(path)["w"].tolist() == [float(i) for i in range(8)]  # the file is untouched
    big = codec.read_tensor(_tensor_file(tmp_path, torch.zeros(1 << 19)))
    big.numpy()[-1] = 3.0  # numpy agrees it is writable
    assert big[-1].item() == 3.0


def _load_slice(path: Path) -> torch.Tensor:
    return codec.read_state_dict(path)["w"][5:9]  # a view; the dict and the reader are gone after return


@needs_smaps
def test_the_mapping_outlives_reader_and_file_and_goes_with_the_last_tensor(tmp_path, forced) -> None:
    path = tmp_path / "m.dat"
    ref = torch.arange(3 * MiB // 8, dtype=torch.float64)
    codec.write_state_dict(path, {"w": ref})
    part = _load_slice(path)
    arr = codec.read_tensor(_tensor_file(tmp_path, ref)).numpy()[7:]
    path.unlink()
    (tmp_path / "single.dat").unlink()
    gc.collect()
    junk = [torch.full((1 << 16,), 7.0) for _ in range(100)]
    del junk
    gc.collect()
    assert part.tolist() == [5.0, 6.0, 7.0, 8.0]
    assert (arr == ref.numpy()[7:]).all()
    where = _mapping_of(part)["range"]
    del part
    gc.collect()
    assert where not in Path("/proc/self/maps").read_text().split()  # unmapped with the last view
    del arr
    gc.collect()


# --- fallback -----------------------------------------------------------------------------------------
def test_forced_off_uses_torch_empty(tmp_path) -> None:
    path = tmp_path / "m.dat"
    codec.write_state_dict(path, {"w": _large(torch.float32, 3 * MiB)})
    saved = _hugepages.MIN_BYTES
    calls = []
    real = _hugepages.new_buffer

    def spy(nbytes: int):
        out = real(nbytes)
        calls.append(out is not None)
        return out

    try:
        _hugepages.MIN_BYTES = None
        _hugepages.new_buffer = spy  # type: ignore[assignment]
        t = codec.read_state_dict(path)["w"]
        said = codec.hugepage_loads()
    finally:
        _hugepages.MIN_BYTES = saved
        _hugepages.new_buffer = real  # type: ignore[assignment]
    assert True not in calls  # no mapping handed out: the plain path ran
    if HAVE_SMAPS:
        assert "hg" not in _mapping_of(t)["VmFlags"].split()
    assert said.startswith("plain ("), said
    t.resize_(t.numel() + 1)  # torch.empty's memory is resizable (a mapping's is not)


@pytest.mark.parametrize("text, expect", [
    ("always [madvise] never\n", "THP [madvise]"),
    ("[always] madvise never\n", "THP [always]"),
    ("always madvise [never]\n", "transparent huge pages are [never]"),
])
def test_the_thp_mode_decides(text: str, expect: str, tmp_path) -> None:
    f = tmp_path / "enabled"
    f.write_text(text)
    min_bytes, why = _hugepages._configure("auto", str(f))
    assert why == expect
    assert (min_bytes is None) == ("never" in expect)
    assert min_bytes in (None, _hugepages.DEFAULT_MIN_BYTES)


def test_no_thp_file_or_settings_switch_it_off(tmp_path) -> None:
    assert _hugepages._configure("auto", str(tmp_path / "missing"))[0] is None
    assert _hugepages._configure("off")[0] is None
    assert _hugepages._configure("nonsense")[0] is None
    assert _hugepages._configure("0")[0] is None
    if THP_ON:
        assert _hugepages._configure("12345")[0] == 12345


def test_a_platform_without_madvise_hugepage_falls_back(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_hugepages, "_MADV_HUGEPAGE", None)
    assert _hugepages._configure("auto")[0] is None
    monkeypatch.setattr(_hugepages, "MIN_BYTES", 1)
    assert _hugepages.new_buffer(4 * MiB) is None
    _assert_plain_round_trip(tmp_path, torch.int32)


def _assert_plain_round_trip(tmp_path: Path, dtype: torch.dtype) -> None:
    """With huge pages unavailable, a large record still loads, bit for bit."""
    path = tmp_path / "m.dat"
    t = _large(dtype, 3 * MiB)
    codec.write_state_dict(path, {"w": t})
    assert raw_bytes(codec.read_state_dict(path)["w"]) == raw_bytes(t)


def test_an_advice_the_kernel_refuses_falls_back(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(_hugepages, "_MADV_HUGEPAGE", 4711)  # no such advice: madvise fails with EINVAL
    monkeypatch.setattr(_hugepages, "MIN_BYTES", 1)
    assert _hugepages.new_buffer(4 * MiB) is None
    _assert_plain_round_trip(tmp_path, torch.int16)
