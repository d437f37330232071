"""The digest's promise: equal digests mean equal bytes, so every bit that differs shows."""
from __future__ import annotations

import hashlib

import pytest
import torch

from harness.verdicts.digest import TensorDigest, f64_hex, tensor_bytes


def _from_bits(bits: list[int], dtype: torch.dtype, int_dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(bits, dtype=torch.int64).to(int_dtype).view(dtype)


@pytest.mark.parametrize(("a", "b"), [
    (0x7FC00001, 0x7FC00002),   # NaN payloads
    (0x7FC00000, 0xFFC00000),   # +NaN vs -NaN
    (0x7F800001, 0x7FC00001),   # signalling vs quiet
    (0x00000000, 0x80000000),   # +0.0 vs -0.0
])
def test_float32_values_that_compare_alike_get_different_digests(a, b):
    x = torch.tensor([a], dtype=torch.int64).to(torch.int32).view(torch.float32)
    y = torch.tensor([b - (1 << 32) if b >= 1 << 31 else b], dtype=torch.int64).to(torch.int32).view(torch.float32)
    assert tensor_bytes(x) != tensor_bytes(y)
    assert TensorDigest.of(x) != TensorDigest.of(y)


@pytest.mark.parametrize(("dtype", "int_dtype", "a", "b"), [
    (torch.float16, torch.int16, 0x7E01, 0x7E02),
    (torch.bfloat16, torch.int16, 0x7FC1, 0x7FC2),
    (torch.float64, torch.int64, 0x7FF8000000000001, 0x7FF8000000000002),
])
def test_nan_payloads_of_every_float_dtype_stay_apart(dtype, int_dtype, a, b):
    x, y = _from_bits([a], dtype, int_dtype), _from_bits([b], dtype, int_dtype)
    assert bool(torch.isnan(x).all()) and bool(torch.isnan(y).all())
    assert TensorDigest.of(x) != TensorDigest.of(y)


def test_complex_nan_payloads_stay_apart():
    x = _from_bits([0x7FC00001, 0], torch.float32, torch.int32)
    y = _from_bits([0x7FC00002, 0], torch.float32, torch.int32)
    assert TensorDigest.of(torch.view_as_complex(x.view(1, 2))) != TensorDigest.of(torch.view_as_complex(y.view(1, 2)))


def test_same_bytes_other_shape_or_dtype_differ():
    t = torch.arange(6, dtype=torch.int32)
    assert TensorDigest.of(t) != TensorDigest.of(t.view(2, 3))
    assert TensorDigest.of(t) != TensorDigest.of(t.view(torch.float32))
    assert TensorDigest.of(t.view(2, 3).t()) == TensorDigest.of(t.view(2, 3).t().contiguous())


def test_a_quantized_tensor_is_digested_as_its_integer_values():
    q = torch.quantize_per_tensor(torch.tensor([-3.0, 0.0, 5.0]), 1.0, 0, torch.qint8)
    d = TensorDigest.of(q)
    assert (d.dtype, d.shape) == ("qint8", (3,))
    assert d.sha256 == hashlib.sha256(bytes([0xFD, 0x00, 0x05])).hexdigest()  # int8 -3, 0, 5


def test_option_bits_are_big_endian_hex_as_the_protocol_carries_them():
    assert [f64_hex(v) for v in (1.0, -0.0, 0.1)] == ["3ff0000000000000", "8000000000000000", "3fb999999999999a"]
