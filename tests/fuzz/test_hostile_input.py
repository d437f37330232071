"""Hostile input: a mutated valid file only ever gives a value or the codec's typed error.

Every input goes to every reader (the matching one and the two others), from a seekable
``BytesIO``, from a seekable ``BufferedReader`` (the state-dict reader's peek fast path must then give
exactly what its general path gives), from a path (read through the state-dict reader's
own read-ahead window: the same again),
from a non-seekable stream (the codec's pipe path) and, where the reader takes ``mmap=``,
from a mapped temporary file; the seekable and mapped ways again with the huge-page load
path forced on for every record (its outcome must equal the plain path's exactly), under an
address-space cap (so an allocation sized from a lying header fails loudly) and a
per-input alarm (so a hang fails instead of blocking CI). Bounded and seeded for CI
(about 300 hypothesis examples in all, derandomized; the whole file runs in seconds);
``benchmarks/fuzz_codec.py --count 100000`` drives the same mutators at scale.
"""
from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness import codec

from .mutators import (
    HUGE_VALUES,
    MUTATORS,
    READERS,
    UNKNOWN_DTYPE_CODES,
    call_reader,
    exact_outcome,
    memory_cap,
    modes_for,
    mutate,
    open_input,
    read_one,
    seed_files,
    uleb,
    uleb_padded,
)

SEEDS = seed_files()
SEED_NAMES = sorted(SEEDS)
MUTATOR_NAMES = sorted(MUTATORS)
ALARM_S = 5.0


class Hang(BaseException):  # BaseException: no `except Exception` in the codec can swallow it
    pass


@pytest.fixture(autouse=True)
def guarded() -> Iterator[None]:
    """Address-space cap of +256 MiB and a SIGALRM after ALARM_S seconds, per test."""
    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"a read took more than {ALARM_S} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        with memory_cap(256 << 20):
            yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def read_everything(data: bytes) -> dict[str, str]:
    """Every reader, every way of feeding it (seekable, pipe, mmap where the reader has it);
    each read alarmed. Raises on anything untyped."""
    out = {}
    for reader in READERS:
        for mode in modes_for(reader):
            signal.setitimer(signal.ITIMER_REAL, ALARM_S)
            try:
                out[f"{reader} ({mode})"] = read_one(reader, data, mode)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    # The state-dict reader's fast path (BufferedReader.peek) must give exactly what the
    # general path gives: same values, or the same error at the same field and offset.
    assert exact_outcome("state_dict", data, "buffered") == exact_outcome("state_dict", data, "seekable")
    # ... and so must its read-ahead window over a path.
    assert exact_outcome("state_dict", data, "path") == exact_outcome("state_dict", data, "seekable")
    # The huge-page load path (forced on for every record) must give exactly what the
    # plain path gives: same values, or the same error at the same field and offset.
    for reader in READERS:
        for mode in modes_for(reader):
            if mode.endswith("+hugepage"):
                plain = mode[:-len("+hugepage")]
                assert exact_outcome(reader, data, mode) == exact_outcome(reader, data, plain), (reader, mode)
    return out


def test_seeds_are_valid_and_the_walker_agrees_with_the_writer() -> None:
    for seed in SEEDS.values():
        for mode in modes_for(seed.form):
            assert read_one(seed.form, seed.data, mode) == "ok", (seed.name, mode)
        assert seed.fields[-1].end == len(seed.data)  # the docs/format.md walker covered every byte


# --- hypothesis: random mutation chains over every seed ------------------------------------------
@settings(max_examples=250, derandomize=True, deadline=2000, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed_name=st.sampled_from(SEED_NAMES),
       chain=st.lists(st.sampled_from(MUTATOR_NAMES), min_size=1, max_size=3),
       rng_seed=st.integers(0, 2**32 - 1))
# one fixed example per mutation kind (and one chain), replayed on every run
@example(seed_name="state_dict", chain=["truncate"], rng_seed=0)
@example(seed_name="optimizer_adam", chain=["flip_bit"], rng_seed=1)
@example(seed_name="state_dict", chain=["overwrite_byte"], rng_seed=2)
@example(seed_name="optimizer_sgd", chain=["delete_range"], rng_seed=3)
@example(seed_name="tensor", chain=["insert_bytes"], rng_seed=4)
@example(seed_name="state_dict", chain=["duplicate_range"], rng_seed=5)
@example(seed_name="optimizer_sgd", chain=["trailing_bytes"], rng_seed=6)
@example(seed_name="state_dict", chain=["endless_uleb"], rng_seed=7)
@example(seed_name="state_dict", chain=["huge_length"], rng_seed=8)
@example(seed_name="optimizer_rmsprop", chain=["overlong_uleb"], rng_seed=9)
@example(seed_name="state_dict", chain=["unknown_dtype"], rng_seed=10)
@example(seed_name="optimizer_asgd", chain=["bad_bool"], rng_seed=11)
@example(seed_name="tensor_0dim_bf16", chain=["huge_length", "truncate", "trailing_bytes"], rng_seed=12)
def test_mutated_files_give_a_value_or_a_typed_error(seed_name: str, chain: list[str], rng_seed: int) -> None:
    read_everything(mutate(SEEDS[seed_name], chain, random.Random(rng_seed)))


# --- deterministic sweeps ----------------------------------------------------------------------
@pytest.mark.parametrize("seed_name", SEED_NAMES)
def test_every_strict_prefix_is_a_truncation(seed_name: str) -> None:
    """Truncation at ANY offset: the matching reader must say TruncatedError (the format is
    self-delimiting, so no strict prefix of a valid file is itself valid), never a value."""
    seed = SEEDS[seed_name]
    for cut in range(len(seed.data)):
        prefix = seed.data[:cut]
        for mode in modes_for(seed.form):
            with pytest.raises(codec.TruncatedError) as info:
                call_reader(seed.form, prefix, mode)
            assert info.value.offset is not None and 0 <= info.value.offset <= cut
        read_everything(prefix)


@pytest.mark.parametrize("seed_name", SEED_NAMES)
def test_every_uleb_field_set_huge_fails_fast(seed_name: str) -> None:
    """Every count / length / ndim / dim of every seed set to 2**31 .. 2**64-1 (and to
    non-canonical and never-ending forms): a typed error, within the memory cap, quickly."""
    seed = SEEDS[seed_name]
    start = time.monotonic()
    for f in seed.fields:
        if f.kind not in ("count", "length", "ndim", "dim", "dtype"):
            continue
        head, tail = seed.data[:f.start], seed.data[f.end:]
        value = sum((b & 0x7F) << (7 * k) for k, b in enumerate(seed.data[f.start:f.end]))
        variants = [uleb(v) for v in HUGE_VALUES] + [uleb_padded(value, 11), uleb(2**64), b"\x80" * 4096]
        for enc in variants:
            outcomes = read_everything(head + enc + tail)
            assert outcomes[f"{seed.form} (seekable)"] != "ok" or f.kind == "dim", (f, enc.hex(), outcomes)
    assert time.monotonic() - start < 15


@pytest.mark.parametrize("code", UNKNOWN_DTYPE_CODES)
def test_unknown_dtype_codes_are_refused_where_they_stand(code: int) -> None:
    seed = SEEDS["state_dict"]
    f = next(f for f in seed.fields if f.kind == "dtype")
    data = seed.data[:f.start] + uleb(code) + seed.data[f.end:]
    with pytest.raises(codec.UnknownDtypeError) as info:
        codec.read_state_dict(open_input(data))
    assert info.value.offset == f.start
    assert "dtype code" in info.value.field


@pytest.mark.parametrize("claim", [2**31, 2**33, 2**40, 2**62])
@pytest.mark.parametrize("mode", modes_for("tensor"))
def test_a_huge_claimed_size_fails_fast_without_allocating(claim: int, mode: str) -> None:
    """A float32 record claiming ``claim`` elements, followed by 64 bytes. Under the +256 MiB
    address-space cap (the autouse fixture) an allocation sized from the claim fails with an
    untyped RuntimeError/MemoryError, so passing shows nothing of that size was allocated.
    (tracemalloc cannot show this: torch's allocator bypasses Python's.)"""
    data = bytes([6, 1]) + uleb(claim) + b"\0" * 64
    start = time.monotonic()
    # 2**62 float32 elements overflow a 64-bit byte count: InvalidLengthError; others: truncated
    with pytest.raises((codec.TruncatedError, codec.InvalidLengthError)):
        call_reader("tensor", data, mode)
    assert time.monotonic() - start < 1.0


def test_the_memory_cap_does_catch_a_big_allocation() -> None:
    # the detector itself: under the autouse +256 MiB cap, a 1 GiB tensor cannot be made
    with pytest.raises((RuntimeError, MemoryError)):
        torch.empty(1 << 30, dtype=torch.uint8)


def test_a_uleb_that_never_ends_is_refused_after_ten_bytes() -> None:
    data = b"\x80" * (1 << 20)
    for reader in ("state_dict", "tensor"):
        for mode in modes_for(reader):
            with pytest.raises(codec.OverlongUlebError) as info:
                call_reader(reader, data, mode)
            assert info.value.offset == 0
    # the optimizer file starts with a string: its length is the endless uleb
    with pytest.raises(codec.OverlongUlebError):
        call_reader("optimizer", data)


def test_an_overlong_eleven_byte_uleb_is_refused() -> None:
    # an 11-byte uleb of 1 as the entry count, then a valid entry
    data = uleb_padded(1, 11) + uleb(1) + b"k" + bytes([0, 0]) + b"\x01"
    with pytest.raises(codec.OverlongUlebError):
        codec.read_state_dict(open_input(data))
    assert codec.read_state_dict(open_input(uleb(1) + uleb(1) + b"k" + bytes([0, 0]) + b"\x01"))["k"].item() == 1


def test_an_empty_shape_whose_other_dims_overflow_is_a_typed_error() -> None:
    # Found by the first version of this fuzzer: numel is 0, but libtorch still multiplies
    # the other sizes and threw a bare RuntimeError ("Storage size calculation overflowed").
    data = bytes([6, 3]) + uleb(0) + uleb(2**62) + uleb(4)
    for mode in modes_for("tensor"):
        with pytest.raises(codec.InvalidLengthError) as info:
            call_reader("tensor", data, mode)
        assert info.value.field == "tensor shape"
