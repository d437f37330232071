"""Distances in units in the last place (ULP) between two tensors of the same dtype.

Floats are mapped to integers that order like the floats (sign-magnitude -> two's
complement), so the distance counts representable values in between. +0.0 and -0.0 are
0 ULP apart but not bitwise equal; a NaN against anything but the identical NaN bits is
an infinite distance. Integer and bool tensors: the largest absolute difference.
"""
from __future__ import annotations

import math

import torch

_INT_VIEW = {torch.float16: (torch.int16, 15), torch.bfloat16: (torch.int16, 15),
             torch.float32: (torch.int32, 31), torch.float64: (torch.int64, 63)}


def _ordered(t: torch.Tensor) -> torch.Tensor:
    view, bits = _INT_VIEW[t.dtype]
    i = t.contiguous().view(view).to(torch.int64)
    magnitude = i & ((1 << bits) - 1)
    return torch.where(i < 0, -magnitude, magnitude)


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.detach().cpu().contiguous(), b.detach().cpu().contiguous()
    if a.is_complex():
        a, b = torch.view_as_real(a), torch.view_as_real(b)
    if a.dtype in _INT_VIEW:
        view = _INT_VIEW[a.dtype][0]
        return bool(torch.equal(a.view(view), b.view(view)))
    return bool(torch.equal(a, b))


def max_ulp(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest ULP distance between corresponding elements (0.0 for empty tensors)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        raise ValueError(f"cannot compare {a.dtype}{list(a.shape)} with {b.dtype}{list(b.shape)}")
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.numel() == 0:
        return 0.0
    if a.is_complex():
        return max_ulp(torch.view_as_real(a), torch.view_as_real(b))
    if a.dtype not in _INT_VIEW:
        return float((a.to(torch.float64) - b.to(torch.float64)).abs().max())
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
    if bool((nan_a | nan_b).any()):
        view = _INT_VIEW[a.dtype][0]
        same = a.contiguous().view(view) == b.contiguous().view(view)
        if bool(((nan_a | nan_b) & ~same).any()):
            return math.inf
    keep = ~(nan_a | nan_b)
    if not bool(keep.any()):
        return 0.0
    oa, ob = _ordered(a)[keep], _ordered(b)[keep]
    # Same sign: the int64 difference is exact. Opposite signs: add magnitudes as floats
    # (an int64 difference could overflow there, and such distances are huge anyway).
    opposite = (oa < 0) != (ob < 0)
    same_max = float((oa[~opposite] - ob[~opposite]).abs().max()) if bool((~opposite).any()) else 0.0
    opp_max = float((oa[opposite].abs().double() + ob[opposite].abs().double()).max()) if bool(opposite.any()) else 0.0
    return max(same_max, opp_max)


def scalar_ulp(a: float, b: float) -> float:
    """ULP distance of two float64 values."""
    return max_ulp(torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64))
