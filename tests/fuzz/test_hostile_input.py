"""Hostile input: a mutated valid file only ever gives a value or the codec's typed error.

Bounded and seeded for CI; ``benchmarks/fuzz_codec.py --count 100000`` runs the same
mutators at scale.
"""
from __future__ import annotations

import random
import tracemalloc

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness import codec

from .mutators import MUTATORS, read_any, seed_files

SEEDS = seed_files()


@settings(max_examples=300, derandomize=True, deadline=2000, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(SEEDS)), st.sampled_from(sorted(MUTATORS)), st.integers(0, 2**32), st.integers(1, 3))
@example("state_dict", "truncate", 0, 1)
@example("state_dict", "huge_uleb", 1, 1)
@example("tensor", "overlong_uleb", 2, 1)
@example("tensor", "unknown_code", 3, 1)
@example("optimizer_adam", "flip_bit", 4, 2)
@example("optimizer_sgd", "trailing", 5, 1)
@example("optimizer_adam", "delete_range", 6, 3)
@example("state_dict", "overwrite", 7, 3)
def test_mutated_files_give_a_value_or_a_typed_error(seed_name: str, mutator: str, seed: int, rounds: int) -> None:
    rng = random.Random(seed)
    data = SEEDS[seed_name]
    for _ in range(rounds):
        if data:
            data = MUTATORS[mutator](data, rng)
    read_any(data)  # raises (and fails the test) on anything but a CodecError


@pytest.mark.parametrize("claim", [2**31, 2**40, 2**62])
def test_a_huge_claimed_size_fails_fast_without_allocating(claim: int) -> None:
    # one uint8 tensor record claiming `claim` elements, followed by 8 bytes
    data = bytes([0, 1]) + bytes(mutator_uleb(claim)) + b"\0" * 8
    tracemalloc.start()
    try:
        with pytest.raises(codec.CodecError):
            codec.read_tensor(__import__("io").BytesIO(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # nothing near the claimed size was allocated


def mutator_uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_an_empty_shape_whose_other_dims_overflow_is_a_typed_error() -> None:
    # Found by this fuzzer: numel is 0, but libtorch still multiplies the other sizes and
    # threw a bare RuntimeError ("Storage size calculation overflowed").
    data = bytes([6, 3]) + mutator_uleb(0) + mutator_uleb(2**62) + mutator_uleb(4)
    with pytest.raises(codec.InvalidLengthError) as info:
        codec.read_tensor(__import__("io").BytesIO(data))
    assert info.value.field == "tensor shape"
