"""Dtype-aware output bounds: a wrong output fails in every dtype, rounding passes."""
from __future__ import annotations

import pytest
import torch

from harness.verdicts import bounds


def _pair(dtype: torch.dtype, scale_one: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    ref = torch.linspace(-1.5, 2.0, 24, dtype=torch.float64) * scale_one
    return ref, ref.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_rounding_alone_passes(dtype):
    ref, out = _pair(dtype)
    details: dict = {}
    assert bounds.compare_outputs(out, out.clone(), ref, "A", "B", details) is None
    assert details["bitwise"] is True and details["reference"]["A"]["within"] is True


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_a_neighbour_value_passes(dtype):
    ref, out = _pair(dtype)
    nudged = out.clone()
    nudged[5] = torch.nextafter(out[5].float(), torch.tensor(9.0)).to(dtype) if dtype != torch.float32 \
        else torch.nextafter(out[5], torch.tensor(9.0))
    assert bounds.compare_outputs(out, nudged, ref, "A", "B", {}) is None


def test_a_bfloat16_output_three_times_too_big_fails_and_names_the_side():
    ref, out = _pair(torch.bfloat16)
    wrong = out.clone()
    wrong[20] = wrong[20] * 3  # 1.0 vs 2.9 is 186 bfloat16 ULP: under the old 256-ULP bound
    reason = bounds.compare_outputs(out, wrong, ref, "PyTorch", "TorchSharp", {})
    assert reason is not None and reason.startswith("TorchSharp is wrong: ")
    assert "PyTorch" in reason and "PyTorch is wrong" not in reason


def test_a_float16_output_off_by_a_quarter_fails():
    ref, out = _pair(torch.float16)
    wrong = out.clone()
    wrong[3] = wrong[3] * 1.25
    assert bounds.compare_outputs(out, wrong, ref, "PyTorch", "TorchSharp", {}).startswith("TorchSharp is wrong")


def test_without_a_reference_the_sides_bound_still_catches_it():
    _, out = _pair(torch.bfloat16)
    wrong = out.clone()
    wrong[20] = wrong[20] * 3
    reason = bounds.compare_outputs(out, wrong, None, "A", "B", {})
    assert reason is not None and "ULP of bfloat16" in reason


def test_two_equally_wrong_sides_fail_against_the_reference():
    ref, out = _pair(torch.bfloat16)
    wrong = out * 2
    reason = bounds.compare_outputs(wrong, wrong.clone(), ref, "PyTorch", "TorchSharp", {})
    assert reason is not None and "PyTorch is wrong" in reason and "TorchSharp is wrong" in reason


def test_nan_where_the_reference_is_finite_is_wrong_and_overflow_like_the_reference_is_not():
    ref = torch.tensor([1.0, 1e39, -2.0], dtype=torch.float64)  # 1e39 overflows float32 to inf
    out = ref.to(torch.float32)
    assert bounds.compare_outputs(out, out.clone(), ref, "A", "B", {}) is None
    nan = out.clone()
    nan[0] = float("nan")
    assert "NaN/infinite unlike the reference" in bounds.compare_outputs(out, nan, ref, "A", "B", {})


def test_distance_is_measured_against_the_output_scale():
    ref = torch.tensor([1000.0, 1e-6], dtype=torch.float64)
    out = ref.to(torch.float32)
    tiny = out.clone()
    tiny[1] = 3e-6  # thousands of ULP near zero, nothing against a scale of 1000
    assert bounds.compare_outputs(out, tiny, ref, "A", "B", {}) is None


EPS32 = 2.0 ** -23


def test_the_between_sides_bound_is_8_eps_of_the_output_scale():
    # float32, scale 1.0; one element near zero, where a few eps of the scale are thousands of ULP
    ref = torch.tensor([1.0, 1e-3], dtype=torch.float64)
    a = ref.to(torch.float32)
    details: dict = {}
    b = a.clone()
    b[1] += 4 * EPS32  # 4 eps of the scale: rounding
    assert bounds.compare_outputs(a, b, ref, "A", "B", details) is None
    assert details["tolerance_abs"] == 8 * EPS32 and details["output_scale"] == 1.0
    b = a.clone()
    b[1] += 20 * EPS32  # 20 eps: both sides within the reference's 64 eps, but not of each other
    reason = bounds.compare_outputs(a, b, ref, "A", "B", {})
    assert reason is not None and reason.startswith("outputs for the same input differ by ")
    assert "against an output scale of 1 (bound 9.54e-07: 8 eps of the scale)" in reason
    assert "is wrong" not in reason


def test_the_between_sides_bound_grows_with_the_closer_sides_rounding_noise():
    # mobilenet_v3_small's shape of numbers (zoo, 2026-12-05): outputs of ~1.36e-3 computed from
    # O(1) activations; each side within 64 eps of the scale of the reference, PyTorch 1.40e-9
    # from it, TorchSharp 7.6e-10, the two 1.40e-9 apart: over 8 eps of the scale (1.29e-9)
    ref = torch.tensor([1.36e-3, 2e-4, -5e-4], dtype=torch.float64)
    py = (ref + torch.tensor([0, 1.40e-9, 0], dtype=torch.float64)).to(torch.float32)
    ts = (ref + torch.tensor([0, 0, 7.6e-10], dtype=torch.float64)).to(torch.float32)
    details: dict = {}
    assert bounds.compare_outputs(py, ts, ref, "PyTorch", "TorchSharp", details) is None
    noise = details["rounding_noise"]
    assert 6e-10 < noise < 9e-10 and details["tolerance_abs"] == 4 * noise
    assert details["tolerance_abs"] > 8 * EPS32 * details["output_scale"]
    # the same closer side, the other one 5x farther out than the noise allows: they disagree
    far = (ref + torch.tensor([0, 5e-9, 0], dtype=torch.float64)).to(torch.float32)
    reason = bounds.compare_outputs(far, ts, ref, "PyTorch", "TorchSharp", {})
    assert reason is not None and reason.startswith("outputs for the same input differ by ")
    assert "x the closer side's" in reason and "is wrong" not in reason


def test_the_reference_bound_of_float32_is_64_eps_of_the_scale():
    ref = torch.tensor([1.0, 0.5], dtype=torch.float64)
    near = ref.to(torch.float32)
    near[1] += 60 * EPS32  # both sides equally off: only the reference can tell
    assert bounds.compare_outputs(near, near.clone(), ref, "PyTorch", "TorchSharp", {}) is None
    far = ref.to(torch.float32)
    far[1] += 100 * EPS32
    details: dict = {}
    reason = bounds.compare_outputs(far, far.clone(), ref, "PyTorch", "TorchSharp", details)
    assert reason is not None and reason.startswith("PyTorch is wrong: 1.19e-05 from the float64 reference "
                                                    "(bound 7.63e-06 = 64 eps of float32 x output scale 1; ")
    assert details["reference"]["TorchSharp"] == {"max_abs": 100 * EPS32, "bound": 64 * EPS32,
                                                  "nonfinite_mismatch": 0, "within": False}


def test_float32_outputs_may_differ_by_256_ulp_not_more():
    a = torch.tensor([1.0, 0.25], dtype=torch.float32)  # no reference: the scale is a's largest, 1.0
    for ulps, ok in ((200, True), (256, True), (300, False)):
        b = a.clone()
        b[0] = 1.0 + ulps * EPS32  # at 1.0 a float32 ULP is one eps: also ulps eps of the scale
        reason = bounds.compare_outputs(a, b, None, "A", "B", {})
        assert (reason is None) == ok, (ulps, reason)
    assert reason == ("outputs for the same input differ by 300 ULP of float32 (bound 256) and by 3.58e-05 "
                      "against an output scale of 1 (bound 9.54e-07: 8 eps of the scale)")
