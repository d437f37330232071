"""The codec contract's judges (harness/verdicts/codec_contract.py) against hand-made loaders, one fault
each: the codec of this repository passes both contracts, and every fault is named."""
from __future__ import annotations

import io
import warnings
from typing import Any, BinaryIO

import numpy
import torch

from harness import codec
from harness.verdicts.codec_contract import clear_errors, damaged_variants, usable_tensors


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
    before = bytes(bytearray(DATA))
    problems = usable_tensors(via_getvalue, DATA)
    assert len(problems) == 1
    # named by address whether or not PyTorch warns (it warns once per process)
    assert problems[0].startswith("loaded tensors alias read-only memory (the immutable bytes the file's read() "
                                  "returned): ['all']")
    assert DATA == before  # the caller's bytes are never written through


def test_a_codec_writing_into_its_input_cannot_change_the_callers_bytes():
    def scribbler(stream: BinaryIO) -> Any:
        whole = stream.getvalue()  # type: ignore[attr-defined]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alias = torch.frombuffer(whole, dtype=torch.uint8)
        alias.add_(1)  # writes into the immutable bytes object it was handed
        return ours(io.BytesIO(bytes(alias.sub(1))))
    before = bytes(bytearray(DATA))
    usable_tensors(scribbler, DATA)
    assert DATA == before


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


def test_pytorchs_warning_alone_is_heard_in_a_fresh_process():
    # tensors over immutable bytes the stream never handed out: only PyTorch's not-writable
    # warning tells, and PyTorch gives it once per process, so this runs in a process of its own
    import subprocess
    import sys
    code = (
        "import io, numpy, torch\n"
        "from harness import codec\n"
        "from harness.verdicts.codec_contract import usable_tensors\n"
        "buf = io.BytesIO(); codec.write_state_dict(buf, {'w': torch.arange(6, dtype=torch.float32)})\n"
        "def copied(stream):\n"
        "    private = bytes(bytearray(stream.read()))\n"
        "    return {'all': torch.from_numpy(numpy.frombuffer(private, dtype=numpy.uint8))}\n"
        "print(usable_tensors(copied, buf.getvalue()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.returncode == 0, out.stderr
    assert "returned): []; PyTorch warned 'The given NumPy array is not writ" in out.stdout
