"""harness/cases/zoo.py require_scale: a zoo cell on outputs too small, or not finite, checks nothing:
an error saying which (and, given the state, its first non-finite entry)."""
from __future__ import annotations

import pytest
import torch

from harness.cases.zoo import MIN_OUTPUT_SCALE, DegenerateState, nonfinite_entries, require_scale


def test_the_scale_is_recorded_and_a_big_enough_one_passes():
    details: dict = {}
    require_scale(torch.tensor([[0.5, -2.0]], dtype=torch.float64), details)
    assert details == {"zoo_output_scale": 2.0, "zoo_min_output_scale": MIN_OUTPUT_SCALE}


def test_tiny_outputs_are_an_error_naming_the_scale():
    with pytest.raises(DegenerateState, match=r"output scale 1e-09 is below 0.0005"):
        require_scale(torch.tensor([1e-9], dtype=torch.float64), {})


def test_a_nan_reference_says_the_state_is_not_finite():
    with pytest.raises(DegenerateState) as exc:
        require_scale(torch.tensor([1.0, float("nan")], dtype=torch.float64), {})
    assert str(exc.value) == ("degenerate zoo state: output scale nan: the float64 reference output is NaN, so the "
                              "trained state holds or makes non-finite values")
    assert exc.value.as_verdict().outcome == "error"


def test_an_infinite_reference_is_an_error_too():
    # inf passes a plain "scale >= MIN_OUTPUT_SCALE" test: it must not
    with pytest.raises(DegenerateState, match=r"^degenerate zoo state: output scale inf: .* output is infinite"):
        require_scale(torch.tensor([1.0, -float("inf")], dtype=torch.float64), {})


def _state() -> dict[str, torch.Tensor]:
    return {"conv.weight": torch.ones(2, 2), "bn.running_mean": torch.tensor([0.0, float("nan")]),
            "bn.num_batches_tracked": torch.tensor(3), "fc.weight": torch.tensor([float("inf"), 1.0]),
            "fc.bias": torch.zeros(2)}


def test_nonfinite_entries_lists_the_floating_entries_with_nan_or_inf_in_order():
    assert nonfinite_entries(_state()) == ["bn.running_mean", "fc.weight"]
    assert nonfinite_entries({"w": torch.ones(3), "n": torch.tensor(7)}) == []


def test_given_the_state_a_nan_reference_names_its_first_nonfinite_entry():
    details: dict = {}
    with pytest.raises(DegenerateState) as exc:
        require_scale(torch.tensor([float("nan")], dtype=torch.float64), details, _state())
    assert str(exc.value) == ("degenerate zoo state: output scale nan: the float64 reference output is NaN, and the "
                              "trained state holds non-finite values (first: bn.running_mean; 2 of 5 entries)")
    assert details["zoo_nonfinite_state"] == ["bn.running_mean", "fc.weight"]


def test_given_a_finite_state_a_nan_reference_says_the_state_is_finite():
    details: dict = {}
    with pytest.raises(DegenerateState, match=r"NaN, though every entry of the trained state is finite$"):
        require_scale(torch.tensor([float("nan")], dtype=torch.float64), details, {"w": torch.ones(2)})
    assert details["zoo_nonfinite_state"] == []
