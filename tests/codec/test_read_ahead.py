"""``_read_ahead.ReadAhead``, the window the state-dict reader reads a path through: every sequence of
``read``/``readinto``/``peek``/``tell``/``seek`` gives what ``io.BufferedReader`` over the same
bytes gives (windows of a few bytes, so refills, requests straddling the window and requests
bigger than it all happen), and state dicts read through it equal those read from a
``BytesIO``, values and errors alike."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness import codec
from harness.codec import _read_ahead
from tests.codec._util import assert_same_tensor
from tests.codec.test_tensors import EXAMPLES, tensors

OPS = st.lists(st.tuples(st.sampled_from(["read", "readinto", "peek", "tell", "seek"]), st.integers(0, 40)),
               max_size=30)


@given(data=st.binary(max_size=120), window=st.integers(1, 17), ops=OPS)
def test_behaves_as_a_buffered_reader(data: bytes, window: int, ops: list[tuple[str, int]]) -> None:
    ours = _read_ahead.ReadAhead(io.FileIO(_tmp_file(data), "rb"), window)
    ref = io.BufferedReader(io.BytesIO(data), 8)
    for op, n in ops:
        if op == "read":
            assert ours.read(n) == ref.read(n)
        elif op == "readinto":
            a, b = bytearray(n), bytearray(n)
            assert ours.readinto(memoryview(a)) == ref.readinto(b)
            assert a == b
        elif op == "peek":
            # at most n bytes, as many as the window holds: all of them but at the end of the file
            assert bytes(ours.peek(max(n, 1))) == data[ref.tell():][:min(max(n, 1), window)]
        elif op == "tell":
            assert ours.tell() == ref.tell()
        else:
            assert ours.seek(n) == ref.seek(n)
    assert ours.read() == ref.read()


_TMP: list[Path] = []


def _tmp_file(data: bytes) -> str:
    import tempfile
    f = tempfile.NamedTemporaryFile(delete=False, prefix="readahead-")
    f.write(data)
    f.close()
    _TMP.append(Path(f.name))
    return f.name


@pytest.fixture(autouse=True, scope="module")
def _cleanup():
    yield
    for p in _TMP:
        p.unlink(missing_ok=True)


@pytest.mark.parametrize("window", [1, 5, 64, 1 << 18])
@given(sd=st.dictionaries(st.text(max_size=9), tensors(), max_size=6))
def test_state_dicts_read_through_it_equal_a_bytes_io_read(window: int, sd: dict[str, torch.Tensor]) -> None:
    buf = io.BytesIO()
    codec.write_state_dict(buf, sd)
    data = buf.getvalue()
    path = _tmp_file(data)
    saved = _read_ahead.WINDOW
    try:
        _read_ahead.WINDOW = window
        back = codec.read_state_dict(path)
    finally:
        _read_ahead.WINDOW = saved
    assert list(back) == list(sd)
    for k, t in sd.items():
        assert_same_tensor(back[k], t, k)


@pytest.mark.parametrize("window", [3, 64, 1 << 18])
def test_errors_equal_a_bytes_io_read(window: int, tmp_path) -> None:
    path = tmp_path / "sd.dat"
    codec.write_state_dict(path, {str(i): t for i, t in enumerate(EXAMPLES) if not t.is_quantized})
    data = path.read_bytes()
    saved = _read_ahead.WINDOW
    try:
        _read_ahead.WINDOW = window
        for cut in list(range(0, len(data), 7)) + [len(data) - 1]:
            cut_path = tmp_path / "cut.dat"
            cut_path.write_bytes(data[:cut] + (b"\x00" if cut % 2 else b""))
            outcomes = []
            for source in (cut_path, io.BytesIO(cut_path.read_bytes())):
                try:
                    codec.read_state_dict(source)
                    outcomes.append("ok")
                except codec.CodecError as exc:
                    outcomes.append((type(exc), exc.field, exc.offset, str(exc)))
            assert outcomes[0] == outcomes[1] != "ok", cut
    finally:
        _read_ahead.WINDOW = saved
