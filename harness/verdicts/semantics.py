"""Does loaded state MEAN the same thing? Compare two sides after they continued training.

After both sides hold the same optimizer state they take the same steps on identical
gradients; a state that round-trips bitwise but is wired wrongly (two same-shaped
tensors swapped, lr written where initial_lr belongs) diverges here.

Agreement is bitwise where it holds; otherwise within the per-optimizer tolerance below,
in ULP of the tensor's dtype, and the max ULP distance is always reported. PyTorch 1.13
(host) and LibTorch 2.10 with optimizers written in C# (TorchSharp) evaluate the same
formulas in different orders, so exact agreement is a finding, not a given. Integer
values (step counts), booleans and the options in the param groups must match exactly.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from harness.verdicts.bounds import eps_of
from harness.verdicts.ulp import bitwise_equal, max_ulp, scalar_ulp

# Max ULP distance tolerated after CONTINUE_STEPS steps, per optimizer. Measured against
# TorchSharp 0.107.0 / LibTorch 2.10 vs PyTorch 1.13.1 on CPU; see docs/semantics.md.
TOLERANCE_ULP: dict[str, float] = {
    "SGD": 8, "ASGD": 8, "Rprop": 8, "RMSprop": 128, "Adam": 16, "AdamW": 16,
    "NAdam": 64, "RAdam": 64, "Adamax": 16, "Adadelta": 32, "Adagrad": 256,
}
DEFAULT_TOLERANCE_ULP = 64.0
# PyTorch 2.x updates the Adam family's moments with lerp / foreach kernels, TorchSharp with
# mul_/add_: their moments drift further apart (measured against PyTorch 2.6: <= 997 ULP).
TOLERANCE_ULP_TORCH2: dict[str, float] = {"Adam": 1024, "AdamW": 1024, "NAdam": 1024, "RAdam": 1024, "Adamax": 256}


def tolerance_for(optimizer_type: str, pytorch_version: str = "") -> float:
    if pytorch_version[:1].isdigit() and int(pytorch_version.split(".")[0]) >= 2:
        if optimizer_type in TOLERANCE_ULP_TORCH2:
            return TOLERANCE_ULP_TORCH2[optimizer_type]
    return TOLERANCE_ULP.get(optimizer_type, DEFAULT_TOLERANCE_ULP)


# A tensor's elements near zero have tiny ULPs: a parameter that an update carries close to zero
# (the difference of two numbers of the tensor's size) is rounded at the size of those numbers,
# and is then thousands of ULP from the other side's (torchvision's mobilenet_v3_small under
# AdamW). So an element more than the tolerance in ULP apart still agrees when the two differ by
# no more than the tolerance's ULPs would allow at the tensor's largest value: tolerance x
# SCALE_ULP x eps x that value (an ULP at value S is at least S x eps / 2).
SCALE_ULP = 0.5


# Scalars PyTorch 1.13 makes as float32 tensors where TorchSharp keeps a double: compared at
# float32 precision (both rounded to float32, distance in float32 ULP).
FLOAT32_SCALARS = {("ASGD", "eta"), ("ASGD", "mu"), ("NAdam", "mu_product")}


@dataclass
class Verdict:
    tolerance: float
    problems: list[str] = field(default_factory=list)
    ulps: dict[str, float] = field(default_factory=dict)
    # tensors past the tolerance in ULP but within it at their scale: eps of the scale apart
    scaled: dict[str, float] = field(default_factory=dict)

    @property
    def max_ulp(self) -> float:
        return max(self.ulps.values(), default=0.0)

    @property
    def bitwise(self) -> bool:
        return all(v == 0 for v in self.ulps.values()) and not any("bitwise" in p for p in self.problems)

    def details(self) -> dict[str, Any]:
        worst = sorted(self.ulps.items(), key=lambda kv: -kv[1])[:8]
        return {"max_ulp": self.max_ulp if math.isfinite(self.max_ulp) else "inf",
                "tolerance_ulp": self.tolerance, "bitwise": self.bitwise,
                "worst_ulp": {k: (v if math.isfinite(v) else "inf") for k, v in worst},
                "within_at_scale_eps": dict(sorted(self.scaled.items(), key=lambda kv: -kv[1])[:8])}

    def tensor(self, where: str, a: torch.Tensor | None, b: torch.Tensor | None) -> None:
        if a is None or b is None:
            if (a is None) != (b is None):
                self.problems.append(f"{where}: PyTorch {'absent' if a is None else 'present'}, "
                                     f"TorchSharp {'absent' if b is None else 'present'}")
            return
        if a.dtype != b.dtype or a.shape != b.shape:
            self.problems.append(f"{where}: PyTorch {a.dtype}{list(a.shape)}, TorchSharp {b.dtype}{list(b.shape)}")
            return
        u = 0.0 if bitwise_equal(a, b) else max_ulp(a, b)
        self.ulps[where] = u
        if u > self.tolerance and not self.within_scale(where, a, b):
            self.problems.append(f"{where}: {u:g} ULP apart (tolerance {self.tolerance:g})")

    def within_scale(self, where: str, a: torch.Tensor, b: torch.Tensor) -> bool:
        """Every element finite on both sides and within the tolerance's ULPs at the tensor's
        largest |value| (SCALE_ULP): the tensor is then recorded in ``scaled``."""
        if not a.is_floating_point() or a.numel() == 0:
            return False
        x, y = a.detach().to(torch.float64), b.detach().to(torch.float64)
        if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(y).all()):
            return False  # NaN/infinity (payloads included) stay with the ULP distance
        scale = max(float(x.abs().max()), float(y.abs().max()))
        allowed = self.tolerance * SCALE_ULP * eps_of(a.dtype) * scale
        diff = float((x - y).abs().max())
        if not diff <= allowed:
            return False
        self.scaled[where] = diff / (eps_of(a.dtype) * scale)
        return True

    def value(self, where: str, a: Any, b: Any, exact: bool, float32: bool = False) -> None:
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            self.tensor(where, a, b)
        elif exact or isinstance(a, bool) or isinstance(a, int) and isinstance(b, int):
            if a != b:
                self.problems.append(f"{where}: PyTorch {a!r}, TorchSharp {b!r}")
        elif a is None or b is None:
            if a is not b:
                self.problems.append(f"{where}: PyTorch {a!r}, TorchSharp {b!r}")
        elif float32:
            self.tensor(where + " (as float32)", torch.tensor([float(a)], dtype=torch.float32),
                        torch.tensor([float(b)], dtype=torch.float32))
        else:
            u = scalar_ulp(float(a), float(b))
            self.ulps[where] = u
            if u > self.tolerance:
                self.problems.append(f"{where}: {a!r} vs {b!r}, {u:g} ULP apart (tolerance {self.tolerance:g})")


def compare_continued(optimizer_type: str, py_module: Mapping[str, torch.Tensor],
                      ts_module: Mapping[str, torch.Tensor], py_record: Any, ts_record: Any,
                      pytorch_version: str = "") -> Verdict:
    v = Verdict(tolerance_for(optimizer_type, pytorch_version))
    if set(py_module) != set(ts_module):
        v.problems.append(f"module keys differ: only PyTorch {sorted(set(py_module) - set(ts_module))}, "
                          f"only TorchSharp {sorted(set(ts_module) - set(py_module))}")
    for key in py_module:
        if key in ts_module:
            v.tensor(f"module[{key!r}]", py_module[key], ts_module[key])
    if py_record.class_name != ts_record.class_name:
        v.problems.append(f"optimizer class: PyTorch {py_record.class_name}, TorchSharp {ts_record.class_name}")
    for what, py_list, ts_list, exact in (("group", py_record.groups, ts_record.groups, True),
                                          ("state", py_record.states, ts_record.states, False)):
        if len(py_list) != len(ts_list):
            v.problems.append(f"{what} count: PyTorch {len(py_list)}, TorchSharp {len(ts_list)}")
        for i, (a, b) in enumerate(zip(py_list, ts_list)):
            for k in sorted(set(a) | set(b)):
                v.value(f"{what}[{i}].{k}", a.get(k), b.get(k), exact,
                        float32=(py_record.class_name, k) in FLOAT32_SCALARS)
    return v


# Each side against the float64 reference after the continued steps (harness/verdicts/reference.py):
# per tensor, the largest |side - reference| (reference rounded to the side's dtype) in eps of
# that dtype times the tensor's scale (its largest |reference| value). ULPs are the wrong unit
# here: an exp_avg or a parameter that passes near zero has tiny ULPs, and float32 rounding
# of its inputs alone puts it hundreds of ULP from the exact value. Measured worst cases in
# docs/semantics.md ("Bounds").
REFERENCE_TOLERANCE_EPS = 16.0


@dataclass
class ReferenceDistance:
    """One side's state against the reference: eps-of-scale per tensor, exact mismatches."""

    tolerance: float
    eps: dict[str, float] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def max_eps(self) -> float:
        return max(self.eps.values(), default=0.0)

    @property
    def worst(self) -> str:
        return max(self.eps, key=lambda k: self.eps[k]) if self.eps else "-"

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.max_eps <= self.tolerance

    def summary(self) -> str:
        parts = [f"{self.max_eps:.3g} eps of scale at {self.worst}"] if self.eps else []
        return "; ".join(parts + self.mismatches[:3])

    def to_json(self) -> dict[str, Any]:
        worst = sorted(self.eps.items(), key=lambda kv: -kv[1])[:6]
        return {"max_eps_of_scale": self.max_eps if math.isfinite(self.max_eps) else "inf", "worst": self.worst,
                "tolerance_eps_of_scale": self.tolerance, "mismatches": self.mismatches, "within": self.ok,
                "largest": {k: (v if math.isfinite(v) else "inf") for k, v in worst}}


def eps_of_scale(side: torch.Tensor, ref: torch.Tensor) -> float:
    """max |side - ref| over (eps of side's dtype x max |ref|), ref rounded to side's dtype;
    NaN/infinity where the other has none: infinite. An all-zero reference: the scale is 1."""
    rounded = ref.to(side.dtype).to(torch.float64)
    s = side.detach().to(torch.float64)
    if s.numel() == 0:
        return 0.0
    if not torch.equal(torch.isfinite(s), torch.isfinite(rounded)):
        return math.inf
    finite = torch.isfinite(s)
    if not bool(finite.any()):
        return 0.0
    scale = float(rounded[finite].abs().max()) or 1.0
    return float((s - rounded)[finite].abs().max()) / (eps_of(side.dtype) * scale)


def reference_distance(module: Mapping[str, torch.Tensor], record: Any, ref: Any) -> ReferenceDistance:
    """A side's module and optimizer record against a :class:`harness.verdicts.reference.OptimizerState`."""
    out = ReferenceDistance(REFERENCE_TOLERANCE_EPS)
    for name, value in ref.params.items():
        if name not in module:
            out.mismatches.append(f"module[{name!r}] absent")
            continue
        out.eps[f"module[{name!r}]"] = eps_of_scale(module[name], value)
    for j, (want, have) in enumerate(zip(ref.states, record.states)):
        for k, v in want.items():
            where, got = f"state[{j}].{k}", have.get(k)
            if isinstance(v, torch.Tensor) and isinstance(got, torch.Tensor):
                out.eps[where] = eps_of_scale(got, v)
            elif isinstance(v, int) and not isinstance(v, bool):
                if got != v:
                    out.mismatches.append(f"{where} is {got!r}, the reference {v!r}")
            elif isinstance(v, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
                as32 = (record.class_name, k) in FLOAT32_SCALARS
                out.eps[where + (" (as float32)" if as32 else "")] = eps_of_scale(
                    torch.tensor([float(got)], dtype=torch.float32 if as32 else torch.float64),
                    torch.tensor([v], dtype=torch.float64))
            elif (v is None) != (got is None):
                out.mismatches.append(f"{where}: {'absent' if got is None else 'present'}, the reference "
                                      f"{'absent' if v is None else 'present'}")
    return out
