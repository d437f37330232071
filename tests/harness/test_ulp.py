"""ULP distances and bitwise equality, with the edge cases pinned."""
import math
import struct

import torch
from hypothesis import example, given
from hypothesis import strategies as st

from harness.verdicts.ulp import bitwise_equal, max_ulp, scalar_ulp


def f32(bits: int) -> torch.Tensor:
    return torch.tensor([struct.unpack("<f", struct.pack("<I", bits))[0]], dtype=torch.float32)


def test_adjacent_and_signed_zero():
    one = torch.tensor([1.0])
    nxt = torch.nextafter(one, torch.tensor([2.0]))
    assert max_ulp(one, nxt) == 1.0
    assert max_ulp(torch.tensor([0.0]), torch.tensor([-0.0])) == 0.0
    assert not bitwise_equal(torch.tensor([0.0]), torch.tensor([-0.0]))
    smallest = f32(1)
    assert max_ulp(smallest, -smallest) == 2.0  # across zero


def test_nan_payloads():
    a, b = f32(0x7FC00001), f32(0x7FC00002)
    assert max_ulp(a, a.clone()) == 0.0
    assert max_ulp(a, b) == math.inf
    assert not bitwise_equal(a, b)
    assert bitwise_equal(a, a.clone())


def test_other_dtypes_and_empty():
    assert max_ulp(torch.tensor([1, 5]), torch.tensor([1, 2])) == 3.0
    assert max_ulp(torch.zeros(0), torch.zeros(0)) == 0.0
    h = torch.tensor([1.0], dtype=torch.bfloat16)
    assert max_ulp(h, torch.nextafter(h.float(), torch.tensor([2.0])).bfloat16()) in (0.0, 1.0)
    assert scalar_ulp(0.1, math.nextafter(0.1, 1.0)) == 1.0


@given(st.floats(width=32, allow_nan=False), st.integers(0, 1000))
@example(0.0, 1)
@example(-1.5, 7)
def test_stepping_n_times_is_n_ulp(x, n):
    if math.isinf(x):
        return
    t = torch.tensor([x], dtype=torch.float32)
    direction = torch.tensor([math.inf], dtype=torch.float32)
    y = t.clone()
    for _ in range(n):
        y = torch.nextafter(y, direction)
    if torch.isinf(y).any() and not torch.isinf(t).any():
        return
    assert max_ulp(t, y) == n
