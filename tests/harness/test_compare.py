"""What two sides hold, compared (harness/verdicts/compare.py): every difference is a named problem."""
from __future__ import annotations

import torch

from harness.verdicts.compare import compare_modules, compare_optimizers, same_bytes
from harness.verdicts.digest import TensorDigest
from harness.drivers.base import OptimizerDigest

W = TensorDigest.of(torch.arange(6, dtype=torch.float32).reshape(2, 3))
B = TensorDigest.of(torch.zeros(3))


def test_equal_modules_have_no_problem():
    assert compare_modules({"w": W, "b": B}, {"b": B, "w": W}, "PyTorch", "TorchSharp") == []


def test_missing_extra_and_different_tensors_are_each_named():
    other_bytes = TensorDigest.of(torch.ones(3))
    problems = compare_modules({"w": W, "b": B, "gone": B}, {"w": W, "b": other_bytes, "new": B},
                               "PyTorch", "TorchSharp")
    assert problems == ["TorchSharp lacks key(s) ['gone']", "TorchSharp has unexpected key(s) ['new']",
                        f"'b': bytes differ (PyTorch sha256 {B.sha256[:12]}, TorchSharp {other_bytes.sha256[:12]})"]
    assert compare_modules({"b": B}, {"b": other_bytes}, "PyTorch", "TorchSharp", actual_sha=False) == [
        f"'b': bytes differ (PyTorch sha256 {B.sha256[:12]}; TorchSharp's in the details)"]


def test_dtype_and_shape_are_named_before_bytes():
    as_double = TensorDigest.of(torch.zeros(3, dtype=torch.float64))
    reshaped = TensorDigest.of(torch.zeros(1, 3))
    assert compare_modules({"b": B}, {"b": as_double}, "P", "T") == ["'b': dtype P float32, T float64"]
    assert compare_modules({"b": B}, {"b": reshaped}, "P", "T") == ["'b': shape P [3], T [1, 3]"]


def _adam(*states: dict, cls: str = "Adam", beta1: str = "3feccccccccccccd") -> OptimizerDigest:
    return OptimizerDigest(cls, [{"lr": "3f847ae147ae147b", "beta1": beta1, "amsgrad": False}], list(states))


def test_optimizer_records_compare_class_counts_and_every_field():
    s0, s1 = {"step": 3, "exp_avg": W}, {"step": 3, "exp_avg": B}
    assert compare_optimizers(_adam(s0, s1), _adam(s0, s1), "TorchSharp") == []
    assert compare_optimizers(_adam(s0, s1), _adam(s0, s1, cls="AdamW"), "TorchSharp") == [
        "optimizer class: expected Adam, TorchSharp AdamW"]
    assert compare_optimizers(_adam(s0, s1), _adam(s0), "TorchSharp") == [
        "parameter states: expected 2, TorchSharp 1"]
    assert compare_optimizers(_adam(s0), _adam({"step": 4, "exp_avg": W}, beta1="3fe0000000000000"), "TS") == [
        "group[0].beta1: expected 3feccccccccccccd, TS 3fe0000000000000", "state[0].step: expected 3, TS 4"]
    assert compare_optimizers(_adam(s0), _adam({"exp_avg": W, "extra": 1}), "TS") == [
        "state[0].extra: TS reports an unexpected field", "state[0].step: TS does not report it"]
    assert compare_optimizers(None, None, "TS") == []
    assert compare_optimizers(_adam(s0), None, "TS") == [f"optimizer: expected {_adam(s0)}, TS None"]


def test_files_compare_byte_for_byte(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"\x00\x01\x02\x03")
    b.write_bytes(b"\x00\x01\x02\x03")
    assert same_bytes(a, b)
    b.write_bytes(b"\x00\x01\x02\x04")
    assert not same_bytes(a, b)
    b.write_bytes(b"\x00\x01\x02")
    assert not same_bytes(a, b)
