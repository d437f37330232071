"""harness/zoo.py require_scale: a zoo cell on outputs too small, or NaN, checks nothing: an error saying which."""
from __future__ import annotations

import pytest
import torch

from harness.zoo import MIN_OUTPUT_SCALE, DegenerateState, require_scale


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
    assert str(exc.value).startswith("degenerate zoo state: output scale nan: the float64 reference output is NaN")
    assert exc.value.as_verdict().outcome == "error"
