"""Dtype-aware bounds for computed numbers, and the output comparison against the reference.

Every bound is in the cell's own dtype: a ULP is a unit in the last place of that dtype, and
"eps" is its machine epsilon (float64 2^-52, float32 2^-23, float16 2^-10, bfloat16 2^-7).
A fixed ULP count means very different things per dtype (256 ULP is 3e-5 relative in float32
but a factor of 4 in bfloat16), so each dtype has its own, derived from how the outputs are
computed (docs/semantics.md, "Bounds", has the reasoning and the measured worst cases):

* two implementations' outputs: elementwise within ``OUTPUT_ULP[dtype]`` ULP, or within
  ``SCALE_EPS`` eps of the output's scale (the largest |reference| value: outputs near zero
  have tiny ULPs, and a difference far below the scale is rounding, not a bug);
* each side against the float64 reference (harness/verdicts/reference.py), the reference first
  rounded to the side's dtype: within ``REFERENCE_EPS[dtype]`` eps of the scale.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from harness.verdicts.ulp import bitwise_equal, max_ulp

EPS: dict[torch.dtype, float] = {torch.float64: 2.0 ** -52, torch.float32: 2.0 ** -23,
                                 torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}
# Elementwise ULP bound between two implementations' outputs, per dtype. float32/float64:
# kernels that sum in other orders (measured <= 96 ULP). float16/bfloat16 outputs are
# rounded from float32 accumulators: a neighbour or two, after a few layers a few more.
OUTPUT_ULP: dict[torch.dtype, float] = {torch.float64: 256, torch.float32: 256,
                                        torch.float16: 16, torch.bfloat16: 8}
# Or: |difference| within this many eps of the output's scale.
SCALE_EPS = 8.0
# ... or within this many times the closer side's distance from the float64 reference. A deep
# model's outputs can be far smaller than the activations they are computed from (torchvision's
# mobilenet_v3_small: outputs of ~1e-3 from O(1) activations), so its float32 rounding alone is
# several eps of the OUTPUT's scale; the side nearer the reference measures that rounding, and
# the sides may differ by a few times it. Where both sides sit on the reference the 8 eps stand.
NOISE_FACTOR = 4.0
# Each side's distance from the float64 reference, in eps of its dtype x the output's scale.
REFERENCE_EPS: dict[torch.dtype, float] = {torch.float64: 64, torch.float32: 64,
                                           torch.float16: 16, torch.bfloat16: 8}


def eps_of(dtype: torch.dtype) -> float:
    return EPS.get(dtype, 0.0)


@dataclass
class Distance:
    """A side's output against the reference: largest |difference| (finite elements), the
    bound it had, and how many elements are NaN/infinite where the reference is not (or
    the other way round)."""

    max_abs: float
    bound: float
    nonfinite_mismatch: int

    @property
    def ok(self) -> bool:
        return self.nonfinite_mismatch == 0 and self.max_abs <= self.bound

    def to_json(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, "bound": self.bound, "nonfinite_mismatch": self.nonfinite_mismatch,
                "within": self.ok}


def _finite_max(t: torch.Tensor) -> float:
    finite = t[torch.isfinite(t)]
    return float(finite.abs().max()) if finite.numel() else 0.0


def _nonfinite_pattern(t: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isnan(t), 2, torch.where(torch.isinf(t), torch.sign(t).to(torch.int64) * 3, 0))


def reference_scale(reference: torch.Tensor) -> float:
    return _finite_max(reference.to(torch.float64))


def distance(side: torch.Tensor, reference: torch.Tensor, scale: float) -> Distance:
    """``side`` against the float64 ``reference`` rounded to ``side``'s dtype (so both
    overflow alike), with the bound for that dtype."""
    rounded = reference.to(side.dtype).to(torch.float64) if side.is_floating_point() else reference.to(torch.float64)
    s = side.detach().to(torch.float64)
    both = torch.isfinite(s) & torch.isfinite(rounded)
    max_abs = float((s - rounded)[both].abs().max()) if bool(both.any()) else 0.0
    mismatch = int((_nonfinite_pattern(s) != _nonfinite_pattern(rounded)).sum())
    return Distance(max_abs, REFERENCE_EPS.get(side.dtype, 0.0) * eps_of(side.dtype) * scale, mismatch)


def compare_outputs(a: torch.Tensor, b: torch.Tensor, reference: torch.Tensor | None, a_name: str, b_name: str,
                    details: dict[str, Any]) -> str | None:
    """Two sides' outputs for the same input, each against the float64 reference: None when
    both agree with each other and each is within its bound of the reference, else the
    reason (the side off the reference named first, with its distance)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return f"output: {a_name} {a.dtype}{list(a.shape)}, {b_name} {b.dtype}{list(b.shape)}"
    bitwise = bitwise_equal(a, b)
    ulp = 0.0 if bitwise else max_ulp(a, b)
    x, y = a.detach().to(torch.float64), b.detach().to(torch.float64)
    scale = reference_scale(reference) if reference is not None else _finite_max(x)
    finite = torch.isfinite(x) & torch.isfinite(y)
    abs_diff = float((x - y)[finite].abs().max()) if bool(finite.any()) else 0.0
    ulp_bound = OUTPUT_ULP.get(a.dtype, 0.0)
    scale_bound = SCALE_EPS * eps_of(a.dtype) * scale
    bound_why = f"{SCALE_EPS:g} eps of the scale"
    problems: list[str] = []
    dists: dict[str, Distance] = {}
    if reference is not None:
        dists = {a_name: distance(a, reference, scale), b_name: distance(b, reference, scale)}
        noise = min(d.max_abs for d in dists.values())
        details["rounding_noise"] = noise
        if NOISE_FACTOR * noise > scale_bound:
            scale_bound = NOISE_FACTOR * noise
            bound_why = f"{NOISE_FACTOR:g} x the closer side's {noise:.3g} from the reference"
    details.update(dtype=str(a.dtype).replace("torch.", ""), bitwise=bitwise,
                   max_ulp=ulp if math.isfinite(ulp) else "inf", tolerance_ulp=ulp_bound,
                   max_abs_diff=abs_diff, output_scale=scale, tolerance_abs=scale_bound)
    if dists:
        details["reference"] = {name: d.to_json() for name, d in dists.items()}
        off = [name for name, d in dists.items() if not d.ok]
        for name in off:
            d = dists[name]
            what = (f"{d.nonfinite_mismatch} element(s) NaN/infinite unlike the reference"
                    if d.nonfinite_mismatch else f"{d.max_abs:.3g} from the float64 reference")
            others = [f"{n} {o.max_abs:.3g}" for n, o in dists.items() if n != name]
            problems.append(f"{name} is wrong: {what} (bound {d.bound:.3g} = {REFERENCE_EPS.get(a.dtype, 0):g} eps "
                            f"of {str(a.dtype).replace('torch.', '')} x output scale {scale:.3g}; "
                            f"{', '.join(others)})")
    same_nonfinite = bool(torch.equal(_nonfinite_pattern(x), _nonfinite_pattern(y)))
    if not bitwise and (ulp > ulp_bound or not same_nonfinite) and (abs_diff > scale_bound or not same_nonfinite):
        problems.append(f"outputs for the same input differ by {ulp:g} ULP of {str(a.dtype).replace('torch.', '')} "
                        f"(bound {ulp_bound:g}) and by {abs_diff:.3g} against an output scale of {scale:.3g} "
                        f"(bound {scale_bound:.3g}: {bound_why})")
    return "; ".join(problems) or None
