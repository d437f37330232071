"""Zero-copy read mode (``read_state_dict(path, mmap=True)``, ``read_tensor(path, mmap=True)``):
values equal the default mode for every dtype, tensors view the mapping (their data pointer
lies in the file's mapping, at the record's data offset), writes never reach the file, the
mapping outlives the reader call and goes away with the last tensor, errors are those of the
default mode. Where the mapping is is read from /proc/self/maps (Linux; skipped elsewhere)."""
from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from harness import codec
from harness.codec import errors as E
from tests.codec._util import NonSeekable, assert_same_tensor, dotnet_str, raw_bytes, record, uleb
from tests.codec.test_tensors import DTYPES, EXAMPLES, QUANTIZED, tensor_from_bytes, tensors
from tests.codec.test_tensors import _itemsize as itemsize

CODE = {torch.uint8: 0, torch.int8: 1, torch.int16: 2, torch.int32: 3, torch.int64: 4, torch.float16: 5,
        torch.float32: 6, torch.float64: 7, torch.complex64: 9, torch.complex128: 10, torch.bool: 11,
        torch.qint8: 12, torch.quint8: 13, torch.qint32: 14, torch.bfloat16: 15}
PLAIN = [d for d in DTYPES if d not in QUANTIZED]
HAVE_MAPS = Path("/proc/self/maps").exists()
needs_maps = pytest.mark.skipif(not HAVE_MAPS, reason="needs /proc/self/maps (Linux) to see the mapping")


def _mappings(inode: int) -> list[tuple[int, int, int]]:
    """(start, end, file offset) of this process's mappings of the file with ``inode``."""
    out = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and int(parts[4]) == inode:
                start, end = (int(x, 16) for x in parts[0].split("-"))
                out.append((start, end, int(parts[2], 16)))
    return out


def _file_offset_of(t: torch.Tensor, inode: int) -> int | None:
    """The file offset ``t``'s data pointer maps to, or None when it is not in the file's mapping."""
    ptr = t.data_ptr()
    for start, end, off in _mappings(inode):
        if start <= ptr and ptr + t.numel() * t.element_size() <= end:
            return off + ptr - start
    return None


def _sample(dtype: torch.dtype, n: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype is torch.bool:
        data = bytes(torch.randint(0, 2, (n,), generator=g, dtype=torch.uint8).tolist())
    else:
        data = bytes(torch.randint(0, 256, (n * itemsize(dtype),), generator=g, dtype=torch.uint8).tolist())
    return tensor_from_bytes(dtype, (n,), data)


def _one_entry_file(path: Path, t: torch.Tensor, key_len: int) -> int:
    """Write ``{"k" * key_len: t}`` (1-D, fewer than 128 elements); return its data offset."""
    assert t.dim() == 1 and t.numel() < 128 and key_len < 128
    codec.write_state_dict(path, {"k" * key_len: t})
    offset = len(uleb(1) + dotnet_str("k" * key_len)) + 3  # code, ndim, dim: one byte each
    assert path.read_bytes()[offset:] == raw_bytes(t)
    return offset


def _aligned_key_len(dtype: torch.dtype, misaligned: bool = False) -> int:
    size = itemsize(dtype)
    n = (-5) % size  # data offset = key_len + 5
    return n + 1 if misaligned else n


# --- values ------------------------------------------------------------------------------------------
@given(st.dictionaries(st.text(max_size=9), tensors(), max_size=5))
@example({"wéight-ü": torch.tensor([1.0, 2.0]), "": torch.tensor(1), "日本.bias": torch.zeros(2, 0)})
@example({str(i): t for i, t in enumerate(EXAMPLES)})
@example({"k" * i + str(d): _sample(d, 5, i) for i in range(17) for d in DTYPES})  # every dtype at every alignment
def test_mmap_values_equal_default_mode(sd: dict[str, torch.Tensor]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.dat"
        codec.write_state_dict(path, sd)
        default = codec.read_state_dict(path)
        mapped = codec.read_state_dict(path, mmap=True)
        assert list(mapped) == list(default) == list(sd)
        data = path.read_bytes()
        inode = path.stat().st_ino
        for k, t in sd.items():
            m = mapped[k]
            assert_same_tensor(m, default[k], k)
            assert_same_tensor(m, t, k)
            assert m.is_contiguous() and not m.requires_grad
            if m.is_quantized:
                assert (m.q_scale(), m.q_zero_point()) == (1.0, 0)
            elif HAVE_MAPS and m.numel():
                at = _file_offset_of(m, inode)
                if at is not None:  # a view: naturally aligned, and over the record's bytes
                    assert at % m.element_size() == 0, k
                    assert data[at:at + len(raw_bytes(t))] == raw_bytes(t), k


@pytest.mark.parametrize("t", EXAMPLES + [_sample(d, 9, 1) for d in DTYPES], ids=lambda t: str(t.dtype))
def test_read_tensor_mmap_round_trip(t: torch.Tensor, tmp_path) -> None:
    path = tmp_path / "t.dat"
    codec.write_tensor(path, t)
    back = codec.read_tensor(path, mmap=True)
    assert_same_tensor(back, t)
    assert_same_tensor(back, codec.read_tensor(path))


def test_default_mode_and_upstream_loader_still_own_memory(tmp_path) -> None:
    path = tmp_path / "m.dat"
    _one_entry_file(path, _sample(torch.uint8), 0)
    for t in (codec.read_state_dict(path)[""], codec.load_state_dict(str(path))[""]):
        if HAVE_MAPS:
            assert _file_offset_of(t, path.stat().st_ino) is None
        assert t.numpy().flags.writeable


# --- zero copy ---------------------------------------------------------------------------------------
@needs_maps
@pytest.mark.parametrize("dtype", PLAIN, ids=str)
def test_aligned_records_are_views_of_the_mapping(dtype: torch.dtype, tmp_path) -> None:
    t = _sample(dtype)
    path = tmp_path / "m.dat"
    offset = _one_entry_file(path, t, _aligned_key_len(dtype))
    back = codec.read_state_dict(path, mmap=True)["k" * _aligned_key_len(dtype)]
    assert_same_tensor(back, t)
    assert _file_offset_of(back, path.stat().st_ino) == offset  # no copy: the file's bytes themselves
    assert len(_mappings(path.stat().st_ino)) == 1


@needs_maps
@pytest.mark.parametrize("dtype", [d for d in PLAIN if itemsize(d) > 1], ids=str)
def test_misaligned_records_are_copied_into_aligned_memory(dtype: torch.dtype, tmp_path) -> None:
    # libtorch assumes naturally aligned elements (a misaligned complex128 view crashes clone()),
    # so a record whose offset is not a multiple of the element size is copied.
    t = _sample(dtype)
    path = tmp_path / "m.dat"
    offset = _one_entry_file(path, t, _aligned_key_len(dtype, misaligned=True))
    assert offset % itemsize(dtype) != 0
    back = codec.read_state_dict(path, mmap=True)["k" * _aligned_key_len(dtype, misaligned=True)]
    assert_same_tensor(back, t)
    assert _file_offset_of(back, path.stat().st_ino) is None
    assert back.data_ptr() % back.element_size() == 0


def test_no_misaligned_pointer_reaches_libtorch(tmp_path) -> None:
    # In a child process: a regression (a misaligned complex128 view) dies with SIGSEGV there.
    script = (
        "import sys, torch\n"
        "from harness import codec\n"
        "ref = torch.randn(33, dtype=torch.complex128)\n"
        "ref64 = torch.randn(33, dtype=torch.float64)\n"
        "for off in range(17):\n"
        "    p = sys.argv[1]\n"
        "    codec.write_state_dict(p, {'k' * off: ref, 'f' + 'k' * off: ref64})\n"
        "    sd = codec.read_state_dict(p, mmap=True)\n"
        "    for t, r in ((sd['k' * off], ref), (sd['f' + 'k' * off], ref64)):\n"
        "        assert t.data_ptr() % t.element_size() == 0\n"
        "        assert torch.equal(t.clone(), r) and torch.equal(t * 2, r * 2) and torch.allclose(t.sum(), r.sum())\n"
        "        assert torch.allclose(t.reshape(3, 11) @ t.reshape(3, 11).T, r.reshape(3, 11) @ r.reshape(3, 11).T)\n"
        "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.dat")], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr[-2000:])


@needs_maps
def test_quantized_records_are_copies_with_unit_scale(tmp_path) -> None:
    path = tmp_path / "q.dat"
    sd = {d: _sample(d, 8, 3) for d in QUANTIZED}
    codec.write_state_dict(path, {str(d): t for d, t in sd.items()})
    back = codec.read_state_dict(path, mmap=True)
    for d, t in sd.items():
        q = back[str(d)]
        assert_same_tensor(q, t)
        assert (q.q_scale(), q.q_zero_point()) == (1.0, 0)
        assert _file_offset_of(q, path.stat().st_ino) is None


@needs_maps
def test_one_mapping_per_file_shared_by_its_tensors(tmp_path) -> None:
    path = tmp_path / "m.dat"
    codec.write_state_dict(path, {f"k{i}": torch.arange(64, dtype=torch.uint8) + i for i in range(20)})
    back = codec.read_state_dict(path, mmap=True)
    inode = path.stat().st_ino
    assert len(_mappings(inode)) == 1
    assert all(_file_offset_of(t, inode) is not None for t in back.values())


# --- writes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("aligned", [True, False])
def test_writing_into_mapped_tensors_never_touches_the_file(aligned: bool, tmp_path) -> None:
    path = tmp_path / "m.dat"
    sd = {"k" * _aligned_key_len(d, misaligned=not aligned) + str(d): _sample(d, 8, 5) for d in DTYPES}
    codec.write_state_dict(path, sd)
    original = path.read_bytes()
    back = codec.read_state_dict(path, mmap=True)
    for t in back.values():
        if t.is_quantized:
            continue
        if t.dtype is torch.bool:
            t.fill_(True)
        else:
            t.view(torch.uint8).fill_(1)
        t.reshape(-1)[0] = 0  # writable, in place
    assert path.read_bytes() == original
    again = codec.read_state_dict(path, mmap=True)
    for k, t in sd.items():
        assert_same_tensor(again[k], t, k)
        if not t.is_quantized:
            assert raw_bytes(back[k]) != raw_bytes(t), k  # the writes stayed in the private copy


# --- lifetime ----------------------------------------------------------------------------------------
def _load_slice(path: Path, key: str) -> torch.Tensor:
    sd = codec.read_state_dict(path, mmap=True)
    return sd[key][3:9]  # a view of a view; the dict and the reader are gone after return


@needs_maps
def test_mapping_outlives_the_reader_and_goes_with_the_last_tensor(tmp_path) -> None:
    path = tmp_path / "m.dat"
    ref = torch.arange(16, dtype=torch.float64) * 1.5
    codec.write_state_dict(path, {"www": ref, "b": torch.arange(8, dtype=torch.uint8)})  # www's data at 8: a view
    inode = path.stat().st_ino
    part = _load_slice(path, "www")
    sd = codec.read_state_dict(path, mmap=True)
    arr = sd["www"].numpy()[10:]
    b = sd["b"]
    del sd
    gc.collect()
    junk = [torch.full((1000,), 7.0) for _ in range(200)]
    del junk
    gc.collect()
    assert _file_offset_of(part, inode) == 8 + 3 * 8
    assert torch.equal(part, ref[3:9]) and torch.equal(b, torch.arange(8, dtype=torch.uint8))
    assert (arr == ref.numpy()[10:]).all()
    del part, b
    gc.collect()
    assert len(_mappings(inode)) == 2 - 1  # the second read's mapping, held by the numpy array
    assert (arr == ref.numpy()[10:]).all()
    del arr
    gc.collect()
    assert _mappings(inode) == []  # unmapped with the last tensor: no leak


@needs_maps
def test_nothing_stays_mapped_after_an_error_or_an_all_empty_file(tmp_path) -> None:
    path = tmp_path / "m.dat"
    path.write_bytes(uleb(2) + dotnet_str("a") + record(0, (4,), b"abcd") + dotnet_str("a") + record(0, (1,), b"x"))
    with pytest.raises(E.DuplicateKeyError):
        codec.read_state_dict(path, mmap=True)
    gc.collect()
    assert _mappings(path.stat().st_ino) == []
    codec.write_state_dict(path, {"e": torch.zeros(0, 3), "f": torch.zeros(2, 0)})
    back = codec.read_state_dict(path, mmap=True)
    gc.collect()
    assert _mappings(path.stat().st_ino) == []
    assert back["e"].shape == (0, 3)


def test_replacing_the_file_keeps_mapped_tensors_intact(tmp_path) -> None:
    path = tmp_path / "m.dat"
    old = {"a": torch.arange(8, dtype=torch.uint8), "b": torch.full((4,), 2.5)}
    codec.write_state_dict(path, old)
    mapped = codec.read_state_dict(path, mmap=True)
    codec.write_state_dict(path, {"a": torch.zeros(8, dtype=torch.uint8)})  # os.replace: a new inode
    gc.collect()
    for k, t in old.items():
        assert_same_tensor(mapped[k], t, k)
    assert list(codec.read_state_dict(path, mmap=True)) == ["a"]


# --- errors ------------------------------------------------------------------------------------------
def _outcome(fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
    except E.CodecError as err:
        return (type(err), err.field, err.offset, str(err))
    return ("ok", {k: raw_bytes(v) for k, v in result.items()} if isinstance(result, dict) else raw_bytes(result))


VALID = (uleb(3) + dotnet_str("conv-1.weight") + record(6, (2,), b"\x00\x00\x80\x3f" * 2)
         + dotnet_str("wé") + record(15, (), b"\x80\x3f") + dotnet_str("c") + record(10, (1,), bytes(range(16))))
CORRUPT = {
    "trailing byte": VALID + b"\x00",
    "unknown dtype": VALID.replace(record(6, (2,), b"")[:1], uleb(4711), 1),
    "huge count": uleb(2 ** 40) + VALID[1:],
    "huge dim": VALID.replace(b"\x06\x01\x02", b"\x06\x01\xff\xff\xff\xff\x0f", 1),
    "overlong uleb": b"\x83\x00" + VALID[1:],
    "bad utf-8": VALID.replace("wé".encode(), b"w\xff", 1),
    "duplicate key": VALID.replace(dotnet_str("c"), dotnet_str("wé"), 1),
    "empty file": b"",
    "zero entries": uleb(0),
}


@pytest.mark.parametrize("case", [f"cut{n}" for n in range(len(VALID))] + list(CORRUPT))
def test_mmap_errors_equal_default_mode(case: str, tmp_path) -> None:
    data = VALID[:int(case[3:])] if case.startswith("cut") else CORRUPT[case]
    path = tmp_path / "m.dat"
    path.write_bytes(data)
    expected = _outcome(codec.read_state_dict, io.BytesIO(data))
    assert _outcome(codec.read_state_dict, path) == expected
    assert _outcome(codec.read_state_dict, path, mmap=True) == expected
    if case.startswith("cut") or case == "empty file":
        assert expected[0] != "ok" and issubclass(expected[0], E.TruncatedError)


@pytest.mark.parametrize("cut", range(len(record(7, (3,), bytes(24))) + 2))
def test_mmap_tensor_file_errors_equal_default_mode(cut: int, tmp_path) -> None:
    data = (record(7, (3,), bytes(range(24))) + b"\x01\x02")[:cut]
    path = tmp_path / "t.dat"
    path.write_bytes(data)
    expected = _outcome(codec.read_tensor, io.BytesIO(data))
    assert _outcome(codec.read_tensor, path, mmap=True) == expected


@pytest.mark.parametrize("reader", [codec.read_state_dict, codec.read_tensor])
def test_mmap_refuses_file_objects_and_non_bool_flags(reader, tmp_path) -> None:
    path = tmp_path / "m.dat"
    if reader is codec.read_tensor:
        codec.write_tensor(path, torch.ones(2))
    else:
        codec.write_state_dict(path, {"a": torch.ones(2)})
    with open(path, "rb") as f:
        for src in (f, io.BytesIO(path.read_bytes()), NonSeekable(path.read_bytes())):
            with pytest.raises(E.InvalidValueError) as info:
                reader(src, mmap=True)
            assert info.value.field == "source" and "path" in str(info.value)
    for flag in (1, "yes", None):
        with pytest.raises(E.InvalidValueError) as info:
            reader(path, mmap=flag)
        assert info.value.field == "mmap"
    with pytest.raises(TypeError):
        reader(path, True)  # keyword-only
    reader(os.fspath(path), mmap=True)  # str paths too


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_mmap_refuses_a_fifo_without_blocking(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(E.InvalidValueError, match="regular file"):
        codec.read_state_dict(fifo, mmap=True)


def test_mmap_missing_file_and_directory_are_os_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        codec.read_state_dict(tmp_path / "nope.dat", mmap=True)
    with pytest.raises(IsADirectoryError):
        codec.read_state_dict(tmp_path, mmap=True)
