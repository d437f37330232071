"""The codec contract's judges (harness/codec_contract.py) against hand-made loaders, one fault
each: the codec of this repository passes both contracts, and every fault is named."""
from __future__ import annotations

import io
import warnings
from typing import Any, BinaryIO

import numpy
import torch

from harness import codec
from harness.codec_contract import clear_errors, damaged_variants, usable_tensors


def _file() -> bytes:
    buf = io.BytesIO()
    codec.write_state_dict(buf, {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3),
                                 "n": torch.tensor([1, 2, 3], dtype=torch.int64)})
    return buf.getvalue()


DATA = _file()


def ours(stream: BinaryIO) -> Any:
    return codec.read_state_dict(stream)


def test_this_codec_keeps_both_contracts():
    assert usable_tensors(ours, DATA) == []
    assert clear_errors(ours, DATA) == []


def test_tensors_over_the_bytes_read_are_caught_without_pytorchs_warning():
    def quiet_aliasing(stream: BinaryIO) -> Any:
        raw = stream.read()
        with warnings.catch_warnings():  # the loader hides PyTorch's own warning
            warnings.simplefilter("ignore")
            return {"all": torch.frombuffer(raw, dtype=torch.uint8)}
    assert usable_tensors(quiet_aliasing, DATA) == [
        "loaded tensors alias read-only memory (the immutable bytes the file's read() returned): ['all']"]


def test_pytorchs_not_writable_warning_is_caught_where_the_bytes_were_not_read():
    def via_getvalue(stream: BinaryIO) -> Any:
        return {"all": torch.from_numpy(numpy.frombuffer(stream.getvalue(), dtype=numpy.uint8))}  # type: ignore
    problems = usable_tensors(via_getvalue, DATA)
    assert len(problems) == 1
    assert problems[0].startswith("loaded tensors alias read-only memory (the immutable bytes the file's read() "
                                  "returned): []; PyTorch warned 'The given NumPy array is not writ")


def test_two_keys_sharing_memory_are_named():
    def shared(stream: BinaryIO) -> Any:
        w = ours(stream)["w"]
        return {"a": w, "b": w.view(6)}
    assert usable_tensors(shared, DATA) == ["loaded tensors 'a' and 'b' share memory"]


def test_writes_that_reach_the_next_load_are_named():
    cache: dict[str, torch.Tensor] = {}

    def cached(stream: BinaryIO) -> Any:
        if not cache:
            cache.update(ours(stream))
        return cache
    assert usable_tensors(cached, DATA) == [
        "writing into the loaded 'w' changed what the next load of the same bytes returns"]


def test_damaged_copies_are_truncations_and_a_count_too_big():
    n = len(DATA)
    assert [what for what, _ in damaged_variants(DATA)] == [
        *(f"truncated to {c} of {n} bytes" for c in sorted({1, 2, n // 4, n // 2, 3 * n // 4, n - 1})),
        "entry count one more than the entries present"]
    assert damaged_variants(DATA)[-1][1] == b"\x03" + DATA[1:]


def test_an_error_that_does_not_say_where_is_named():
    def vague(stream: BinaryIO) -> Any:
        raise ValueError("bad file")
    problems = clear_errors(vague, DATA)
    assert len(problems) == len(damaged_variants(DATA))
    assert problems[0] == "truncated to 1 of %d bytes: ValueError does not say where: 'bad file'" % len(DATA)


def test_a_programming_error_is_unclear_even_when_it_names_a_byte():
    def tripped(stream: BinaryIO) -> Any:
        raise TypeError("unsupported operand at byte 3")
    problems = clear_errors(tripped, DATA)
    assert problems[-1] == ("entry count one more than the entries present: unclear TypeError: "
                            "'unsupported operand at byte 3'")


def test_a_value_returned_for_a_damaged_file_is_named():
    def lenient(stream: BinaryIO) -> Any:
        return {}
    assert clear_errors(lenient, DATA) == [f"{what}: read without an error (returned a value for a damaged file)"
                                           for what, _ in damaged_variants(DATA)]
