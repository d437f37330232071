"""Round trips of tensor records: every dtype with a TorchSharp code, any shape, any bit
pattern (compared as BYTES), as single-tensor files and in state dicts."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from harness import codec
from tests.codec._util import QUANTIZED, NonSeekable, assert_same_tensor, raw_bytes, uleb

DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16, torch.float32,
          torch.float64, torch.complex64, torch.complex128, torch.bool, torch.qint8, torch.quint8, torch.qint32,
          torch.bfloat16]
_STORAGE = {torch.bfloat16: torch.int16, torch.float16: torch.int16, **QUANTIZED}


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=_STORAGE.get(dtype, dtype)).element_size()


def tensor_from_bytes(dtype: torch.dtype, shape: tuple[int, ...], data: bytes, transpose: bool = False) -> torch.Tensor:
    storage = _STORAGE.get(dtype, dtype)
    if len(data):
        t = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(storage).clone()
    else:
        t = torch.empty(0, dtype=storage)
    t = t.reshape(shape)
    if dtype in QUANTIZED:
        t = torch._make_per_tensor_quantized_tensor(t, 1.0, 0)
    elif storage is not dtype:
        t = t.view(dtype)
    if transpose and t.dim() >= 2:
        t = t.transpose(0, 1)  # non-contiguous; its C-order is what the file must hold
    return t


@st.composite
def tensors(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
    numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if dtype is torch.bool:
        data = bytes(draw(st.lists(st.integers(0, 1), min_size=numel, max_size=numel)))
    else:
        data = draw(st.binary(min_size=numel * _itemsize(dtype), max_size=numel * _itemsize(dtype)))
    return tensor_from_bytes(dtype, shape, data, transpose=draw(st.booleans()))


F32_NAN_PAYLOADS = struct.pack("<3I", 0x7FC00001, 0xFFBFFFFF, 0x7F800001)
F64_NAN_PAYLOAD = struct.pack("<2Q", 0x7FF0000000000001, 0xFFF8DEADBEEF0001)
EXAMPLES = [
    torch.tensor(3.25),                                            # 0-dim
    torch.empty((0, 3)),                                           # empty
    torch.empty((0, 2 ** 40)),                                     # huge shape, zero numel
    torch.tensor([-0.0, 0.0, float("inf"), -float("inf")]),        # signed zero, infinities
    tensor_from_bytes(torch.float32, (3,), F32_NAN_PAYLOADS),      # NaN payloads survive
    tensor_from_bytes(torch.float64, (2,), F64_NAN_PAYLOAD),
    tensor_from_bytes(torch.bfloat16, (2,), struct.pack("<2H", 0x7FC1, 0xFF81)),  # bf16 NaN payloads
    torch.tensor([1.5, -2.25, 3e38], dtype=torch.bfloat16),
    torch.tensor([65504.0, -0.0, 6e-8], dtype=torch.float16),
    torch.tensor([True, False, True]),
    torch.tensor([1 + 2j, -0.0 - 3.5j], dtype=torch.complex64),
    torch.tensor([1e300 + 1e-300j], dtype=torch.complex128),
    torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),       # non-contiguous (transposed)
    torch.arange(24, dtype=torch.int64).reshape(2, 3, 4)[:, ::2, 1:],  # strided slice
    torch._make_per_tensor_quantized_tensor(torch.tensor([-128, 0, 127], dtype=torch.int8), 1.0, 0),
    torch._make_per_tensor_quantized_tensor(torch.tensor([0, 255], dtype=torch.uint8), 1.0, 0),
    torch._make_per_tensor_quantized_tensor(torch.tensor([-2 ** 31, 2 ** 31 - 1], dtype=torch.int32), 1.0, 0),
    torch.tensor([-(2 ** 63), 2 ** 63 - 1]),
]


def _with_examples(fn):
    for t in EXAMPLES:
        fn = example(t)(fn)
    return fn


@_with_examples
@given(tensors())
def test_single_tensor_round_trip(t: torch.Tensor) -> None:
    buf = io.BytesIO()
    codec.write_tensor(buf, t)
    back = codec.read_tensor(io.BytesIO(buf.getvalue()))
    assert_same_tensor(back, t)
    assert back.is_contiguous()
    if back.is_quantized:
        assert (back.q_scale(), back.q_zero_point()) == (1.0, 0)


@_with_examples
@given(tensors())
def test_record_bytes_are_header_plus_c_order_data(t: torch.Tensor) -> None:
    from tests.codec._util import record
    code = {dt: i for i, dt in enumerate([torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
                                          torch.float16, torch.float32, torch.float64])}
    code.update({torch.complex64: 9, torch.complex128: 10, torch.bool: 11, torch.qint8: 12, torch.quint8: 13,
                 torch.qint32: 14, torch.bfloat16: 15})
    buf = io.BytesIO()
    codec.write_tensor(buf, t)
    assert buf.getvalue() == record(code[t.dtype], tuple(t.shape), raw_bytes(t))


@given(st.dictionaries(st.text(min_size=0, max_size=8), tensors(), max_size=4))
@example({"wéight-ü": torch.tensor([1.0, 2.0]), "": torch.tensor(1), "日本.bias": torch.zeros(2, 0)})
def test_state_dict_round_trip_keeps_order_and_bytes(sd: dict[str, torch.Tensor]) -> None:
    buf = io.BytesIO()
    codec.write_state_dict(buf, sd)
    back = codec.read_state_dict(io.BytesIO(buf.getvalue()))
    assert list(back) == list(sd)
    for k in sd:
        assert_same_tensor(back[k], sd[k], k)
    # the same bytes come through a non-seekable stream (size unknown: chunked path)
    again = codec.read_state_dict(NonSeekable(buf.getvalue()))
    for k in sd:
        assert_same_tensor(again[k], sd[k], k)
    # and through a BufferedReader (as open(path, "rb") gives: the peek fast path)
    buffered = codec.read_state_dict(io.BufferedReader(io.BytesIO(buf.getvalue())))
    assert list(buffered) == list(sd)
    for k in sd:
        assert_same_tensor(buffered[k], sd[k], k)


def test_entries_outside_the_fast_path_read_the_same_from_a_file(tmp_path) -> None:
    # long keys (2-byte length), huge dims (multi-byte), a header straddling the peek
    # window, bfloat16, an empty tensor, a quantized one: every entry kind from a path
    sd = {"k" * 200: torch.arange(3.0), "x": torch.zeros(1, 70000, dtype=torch.bfloat16),
          "e": torch.zeros(0, 3), "q": torch.quantize_per_tensor(torch.arange(4.0), 1.0, 0, torch.qint8),
          "p" * 500: torch.arange(5, dtype=torch.int64), "ü": torch.tensor(True)}
    codec.write_state_dict(tmp_path / "m.dat", sd)
    back = codec.read_state_dict(tmp_path / "m.dat")
    assert list(back) == list(sd)
    for k in sd:
        assert_same_tensor(back[k], sd[k], k[:10])


def test_non_ascii_key_length_is_utf8_byte_count() -> None:
    buf = io.BytesIO()
    codec.write_state_dict(buf, {"wéight-ü": torch.zeros(1, dtype=torch.uint8)})
    data = buf.getvalue()
    key = "wéight-ü".encode()
    assert len(key) == 10 and len("wéight-ü") == 8
    assert data[:2 + len(key)] == b"\x01" + bytes([len(key)]) + key


def test_read_tensors_are_writable_and_own_their_memory(tmp_path) -> None:
    sd = {str(d): tensor_from_bytes(d, (2, 3), bytes(6 * _itemsize(d))) for d in DTYPES}
    path = tmp_path / "m.dat"
    codec.write_state_dict(path, sd)
    original = path.read_bytes()
    for src in (path, io.BytesIO(original), NonSeekable(original)):
        back = codec.read_state_dict(src)
        for k, t in back.items():
            assert t.is_contiguous() and t.storage_offset() == 0, k
            plain = t.int_repr() if t.is_quantized else t
            raw = plain.view(torch.int16) if plain.dtype in (torch.bfloat16, torch.float16) else plain
            arr = raw.numpy()
            assert arr.flags.writeable and arr.flags.c_contiguous, k
            assert arr.base is None or not isinstance(arr.base, bytes), k
            if not t.is_quantized:  # in-place writes work and never reach the source
                arr[...] = 1
                assert raw_bytes(t) != bytes(len(raw_bytes(t))), k
    assert path.read_bytes() == original


def test_read_tensor_storage_is_fresh_per_tensor() -> None:
    buf = io.BytesIO()
    codec.write_state_dict(buf, {"a": torch.ones(4), "b": torch.ones(4)})
    back = codec.read_state_dict(io.BytesIO(buf.getvalue()))
    assert back["a"].data_ptr() != back["b"].data_ptr()
    back["a"].zero_()
    assert back["b"].sum().item() == 4.0


def test_requires_grad_and_cpu_copy() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    buf = io.BytesIO()
    codec.write_state_dict(buf, {"p": p})
    back = codec.read_state_dict(io.BytesIO(buf.getvalue()))["p"]
    assert not back.requires_grad
    assert_same_tensor(back, p.detach())


def test_conj_and_neg_views_are_written_resolved() -> None:
    z = torch.tensor([1 + 2j, 3 - 4j])
    buf = io.BytesIO()
    codec.write_tensor(buf, z.conj())
    assert_same_tensor(codec.read_tensor(io.BytesIO(buf.getvalue())), z.conj().resolve_conj())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_gpu_tensor_is_written_from_the_cpu() -> None:  # pragma: no cover - CPU-only machines
    t = torch.arange(6.0, device="cuda").reshape(2, 3).t()
    buf = io.BytesIO()
    codec.write_tensor(buf, t)
    assert_same_tensor(codec.read_tensor(io.BytesIO(buf.getvalue())), t.cpu())


def test_big_tensor_streams_through_file(tmp_path) -> None:
    t = torch.arange(3 * (1 << 20), dtype=torch.float64)  # 24 MiB: more than one 16 MiB chunk
    path = tmp_path / "big.dat"
    codec.write_tensor(path, t)
    assert path.stat().st_size == 1 + 1 + len(uleb(t.numel())) + 8 * t.numel()  # code, ndim, dim, data
    assert_same_tensor(codec.read_tensor(path), t)
    assert_same_tensor(codec.read_tensor(NonSeekable(path.read_bytes())), t)
