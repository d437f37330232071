"""Continued training compared (harness/verdicts/semantics.py): between the two sides in ULP with the
per-optimizer tolerance, exact where values must be exact, and each side against the float64
reference in eps of the scale. Hand-made states: no driver involved."""
from __future__ import annotations

import math

import pytest
import torch

from harness.verdicts import semantics
from harness.codec.optim_layouts import OptimizerRecord
from harness.verdicts.reference import OptimizerState

EPS32 = 2.0 ** -23


def _ulps_above(x: float, n: int) -> torch.Tensor:
    """float32 ``x`` and the value ``n`` float32 ULP above it."""
    t = torch.tensor([x], dtype=torch.float32)
    return torch.stack([t, (t.view(torch.int32) + n).view(torch.float32)]).reshape(2)


@pytest.mark.parametrize(("optimizer", "pytorch", "ulp"), [
    ("Adam", "1.13.1", 16), ("Adam", "2.6.0", 1024), ("Adamax", "2.6.0", 256), ("SGD", "2.6.0", 8),
    ("Adagrad", "1.13.1", 256), ("Unknown", "2.6.0", 64), ("Adam", "", 16)])
def test_tolerance_per_optimizer_and_pytorch_major(optimizer, pytorch, ulp):
    assert semantics.tolerance_for(optimizer, pytorch) == ulp


def test_tensors_within_the_tolerance_agree_and_one_ulp_more_does_not():
    v = semantics.Verdict(16.0)
    pair = _ulps_above(0.75, 16)
    v.tensor("module['w']", pair[:1], pair[1:])
    assert v.problems == [] and v.ulps == {"module['w']": 16.0} and not v.bitwise
    pair = _ulps_above(0.75, 17)
    v.tensor("state[0].exp_avg", pair[:1], pair[1:])
    assert v.problems == ["state[0].exp_avg: 17 ULP apart (tolerance 16)"]
    assert v.details()["max_ulp"] == 17.0


def test_exact_values_must_be_equal():
    v = semantics.Verdict(1e9)  # no tolerance applies to them
    v.value("group[0].lr", 0.1, 0.1 + 2 ** -55, exact=True)
    v.value("state[0].step", 3, 4, exact=False)  # integers are exact too
    v.value("group[0].amsgrad", True, True, exact=True)
    assert v.problems == ["group[0].lr: PyTorch 0.1, TorchSharp 0.10000000000000003", "state[0].step: PyTorch 3, "
                          "TorchSharp 4"]


def _asgd(eta: float, step: int = 3) -> OptimizerRecord:
    group = {"initial_lr": 0.05, "lr": 0.05, "maximize": False, "lambd": 1e-3, "alpha": 0.75,
             "weight_decay": 0.0, "t0": 2.0}
    return OptimizerRecord("ASGD", [group], [{"step": step, "eta": eta, "mu": 1.0, "ax": torch.zeros(2)}])


def test_pytorch_113s_float32_scalars_are_compared_at_float32():
    eta = 0.05 / (1 + 1e-3 * 0.05 * 3) ** 0.75
    as_float32 = float(torch.tensor(eta, dtype=torch.float32))  # what PyTorch 1.13 keeps
    assert as_float32 != eta
    module = {"w": torch.ones(2)}
    v = semantics.compare_continued("ASGD", module, module, _asgd(as_float32), _asgd(eta), "1.13.1")
    assert v.problems == [] and v.ulps["state[0].eta (as float32)"] == 0.0
    v = semantics.compare_continued("ASGD", module, module, _asgd(as_float32), _asgd(eta, step=4), "1.13.1")
    assert v.problems == ["state[0].step: PyTorch 3, TorchSharp 4"]


def _reference(w: torch.Tensor, step: int = 3) -> OptimizerState:
    return OptimizerState({"w": w}, [{}], [{"step": step, "exp_avg": w.clone()}], ["w"], [0])


def _record(step: int, exp_avg: torch.Tensor) -> OptimizerRecord:
    return OptimizerRecord("Adam", [{}], [{"step": step, "exp_avg": exp_avg}])


def test_a_side_is_within_16_eps_of_the_scale_of_the_reference_not_more():
    ref_w = torch.tensor([2.0, 0.5], dtype=torch.float64)
    near = torch.tensor([2.0, 0.5 + 10 * 2 * EPS32], dtype=torch.float32)  # 10 eps of the scale (2.0)
    far = torch.tensor([2.0, 0.5 + 20 * 2 * EPS32], dtype=torch.float32)
    ok = semantics.reference_distance({"w": near}, _record(3, near), _reference(ref_w))
    assert ok.ok and ok.eps == {"module['w']": 10.0, "state[0].exp_avg": 10.0}
    off = semantics.reference_distance({"w": far}, _record(3, near), _reference(ref_w))
    assert not off.ok and off.worst == "module['w']" and off.max_eps == 20.0
    assert off.summary() == "20 eps of scale at module['w']"
    assert off.to_json()["within"] is False and off.to_json()["tolerance_eps_of_scale"] == 16.0


def test_nan_where_the_reference_is_finite_is_infinitely_far():
    ref_w = torch.tensor([1.0, 0.5], dtype=torch.float64)
    nan = torch.tensor([1.0, float("nan")], dtype=torch.float32)
    assert semantics.eps_of_scale(nan, ref_w) == math.inf
    d = semantics.reference_distance({"w": nan}, _record(3, ref_w.float()), _reference(ref_w))
    assert not d.ok and d.to_json()["max_eps_of_scale"] == "inf"


def test_a_step_count_the_reference_does_not_have_is_a_mismatch():
    w = torch.tensor([1.0, 0.5], dtype=torch.float64)
    d = semantics.reference_distance({"w": w.float()}, _record(0, w.float()), _reference(w, step=3))
    assert d.mismatches == ["state[0].step is 0, the reference 3"] and not d.ok
    assert d.summary() == "0 eps of scale at module['w']; state[0].step is 0, the reference 3"


def test_an_element_near_zero_is_measured_at_the_tensors_scale():
    # an update carries one element of a tensor of size ~0.5 close to zero: the two sides' float32
    # roundings of the numbers it came from are then thousands of its own ULPs apart
    a = torch.tensor([0.5, -0.25, 3e-7], dtype=torch.float32)
    b = a.clone()
    b[2] = 3e-7 + 4 * EPS32 * 0.5  # 4 eps of the tensor's scale: thousands of ULP at 3e-7
    v = semantics.Verdict(16.0)
    v.tensor("module['w']", a, b)
    assert v.ulps["module['w']"] > 1000 and v.problems == []
    assert v.scaled == {"module['w']": pytest.approx(4.0, rel=1e-3)}
    assert v.details()["within_at_scale_eps"] == v.scaled
    # 9 eps of the scale: more than the tolerance allows at the scale (16 x 0.5 x eps x 0.5, 8 eps of it)
    b[2] = 3e-7 + 9 * EPS32 * 0.5
    v = semantics.Verdict(16.0)
    v.tensor("module['w']", a, b)
    assert len(v.problems) == 1 and v.problems[0].startswith("module['w']: ") and v.scaled == {}


def test_the_scale_never_loosens_the_largest_element():
    # at the tensor's largest value the ULP rule alone decides: 17 ULP of 1.0 fail at tolerance 16
    a = torch.tensor([1.0, 1e-3], dtype=torch.float32)
    b = a.clone()
    b[0] = 1.0 + 17 * EPS32
    v = semantics.Verdict(16.0)
    v.tensor("module['w']", a, b)
    assert v.problems == ["module['w']: 17 ULP apart (tolerance 16)"]


def test_a_nan_is_never_near_at_scale():
    a = torch.tensor([1.0, float("nan")], dtype=torch.float32)
    b = torch.tensor([1.0, float("-nan")], dtype=torch.float32)
    v = semantics.Verdict(16.0)
    v.tensor("state[0].exp_avg", a, b)
    assert v.problems and v.scaled == {}


def test_an_infinity_is_never_near_at_scale():
    a = torch.tensor([1.0, float("inf")], dtype=torch.float32)
    b = torch.tensor([1.0, 3.0], dtype=torch.float32)
    v = semantics.Verdict(16.0)
    v.tensor("module['w']", a, b)
    assert v.problems and v.scaled == {}
