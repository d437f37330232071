"""The model zoo's own checks (cases/zoo/, harness/cases/zoo.py); every other model and optimizer
check runs on zoo cases too (py2ts, ts2py, functional, continue_*, ...).

``zoo_structure``     Both libraries build the model fresh: the state dicts must list the same
                      names in the same order, with the same shapes and dtypes, and the same
                      entries as parameters (the rest are buffers, num_batches_tracked included).
``zoo_outputs_ts2py`` TorchSharp's own trained state loaded by PyTorch: eval outputs agree with
                      each other and with the float64 reference (``functional`` is the other way).
``zoo_train_forward`` PyTorch's trained state loaded into TorchSharp; one train-mode forward on
                      both sides (and the float64 reference): outputs and the updated BatchNorm
                      running statistics agree, num_batches_tracked exactly.

A zoo model case also gets ``REUSED`` (py2ts, ts2py, functional); a zoo optimizer case every
optimizer check (continue_py2ts / continue_ts2py: SGD with momentum and AdamW continued on both
sides). Every output comparison of a zoo cell requires an output scale of at least
``harness.cases.zoo.MIN_OUTPUT_SCALE``: below it the cell is an error (it would check nothing).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from harness.verdicts import bounds, reference
from harness import codec as trusted_codec  # snapshots of both sides' state
from harness.cases import ModelCase
from harness.checks.common import forward_input, py_to_ts, ts_makes_state
from harness.checks.outputs import compare_outputs
from harness.checks.registry import REGISTRY, CheckFailed, Context, check, fail_if
from harness.codecs import CodecFailure
from harness.verdicts.digest import TensorDigest
from harness.drivers.pytorch_worker import PyTorchUnavailable
from harness.cases.zoo import require_scale


def structure_differences(py: Mapping[str, TensorDigest], ts: Mapping[str, TensorDigest],
                          py_params: Sequence[str], ts_params: Sequence[str]) -> list[str]:
    """Each difference between two libraries' fresh state dicts, named exactly."""
    problems = [f"only PyTorch has {n} {py[n].dtype}{list(py[n].shape)}" for n in py if n not in ts]
    problems += [f"only TorchSharp has {n} {ts[n].dtype}{list(ts[n].shape)}" for n in ts if n not in py]
    for name in (n for n in py if n in ts):
        a, b = py[name], ts[name]
        if a.shape != b.shape:
            problems.append(f"{name}: shape {list(a.shape)} in PyTorch, {list(b.shape)} in TorchSharp")
        if a.dtype != b.dtype:
            problems.append(f"{name}: dtype {a.dtype} in PyTorch, {b.dtype} in TorchSharp")
        if (name in py_params) != (name in ts_params):
            kinds = ["a parameter" if name in p else "a buffer" for p in (py_params, ts_params)]
            problems.append(f"{name}: {kinds[0]} in PyTorch, {kinds[1]} in TorchSharp")
    # TorchSharp's state_dict lists every parameter before every buffer (any model, a known
    # fact: checks/state.py), so the order is compared among parameters and among buffers.
    split = (("parameters", [n for n in py if n in py_params], [n for n in ts if n in ts_params]),
             ("buffers", [n for n in py if n not in py_params], [n for n in ts if n not in ts_params]))
    for kind, in_py, in_ts in split:
        common_py = [n for n in in_py if n in in_ts]
        common_ts = [n for n in in_ts if n in in_py]
        if common_py != common_ts:
            at = next(i for i, (x, y) in enumerate(zip(common_py, common_ts)) if x != y)
            problems.append(f"order of {kind}: entry {at} is {common_py[at]} in PyTorch, {common_ts[at]} in TorchSharp")
    return problems


# The model checks a zoo case also gets (the others test the codec or the harness's own
# modules, which the catalogue's cases cover; a zoo model costs seconds per cell).
REUSED = ("py2ts", "ts2py", "functional")
for _name in REUSED:
    REGISTRY[_name] = dataclasses.replace(REGISTRY[_name], kinds=REGISTRY[_name].kinds | {"zoo"})


@check("zoo_structure", {"zoo"}, route_independent=True)
def zoo_structure(ctx: Context) -> None:
    """torchvision's and TorchVision's fresh state dicts: same names, order, shapes, dtypes, parameters."""
    case, device = ctx.cell.case, ctx.cell.device
    ctx.py.build(case, device)
    ctx.ts.build(case, device)
    py, ts = ctx.py.digest().module, ctx.ts.digest().module
    py_params, ts_params = ctx.py.parameter_names(), ctx.ts.parameter_names()
    ctx.details.update(pytorch_entries=len(py), torchsharp_entries=len(ts), pytorch_parameters=len(py_params),
                       torchsharp_parameters=len(ts_params), same_order_overall=list(py) == list(ts))
    fail_if(structure_differences(py, ts, py_params, ts_params),
            "TorchVision builds other state than torchvision", ctx.details)


@check("zoo_outputs_ts2py", {"zoo"})
def zoo_outputs_ts2py(ctx: Context) -> None:
    """TorchSharp's own trained state loaded by PyTorch: eval outputs agree (and with the float64 reference)."""
    case = ctx.cell.case
    assert isinstance(case, ModelCase)
    ts_makes_state(ctx, case.train_steps)
    ctx.py.build(case, ctx.cell.device)
    try:
        ctx.py.load_module(ctx.file("ts_module"))
    except RuntimeError as exc:
        if isinstance(exc, (CodecFailure, PyTorchUnavailable)):  # the codec's or the harness's failure
            raise
        raise CheckFailed(f"PyTorch's load_state_dict refused TorchSharp's state: {exc}", ctx.details) from exc
    x = forward_input(case)
    compare_outputs(ctx, ctx.py.forward(x), ctx.ts.forward(x), x, "PyTorch", "TorchSharp")


def _train_reference(case: ModelCase, state: Mapping[str, torch.Tensor],
                     x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The float64 model holding ``state``: one train-mode forward on ``x`` (no gradients),
    its output and the state after (running statistics updated)."""
    model = reference.float64_model(case, state)
    model.train()
    with torch.no_grad():
        out = model(x.to(torch.float64))
    result: torch.Tensor = out[0] if isinstance(out, tuple) else out
    return result, {k: v.detach() for k, v in model.state_dict().items()}


# A train-mode forward normalises by batch statistics of few values per channel (batch 2,
# maps of 2x2 deep in the net), which magnifies float32 rounding well past the eval-mode bound
# (PyTorch itself: up to ~400 eps of the output scale). So PyTorch's own distance from the
# float64 reference measures the computation's conditioning: TorchSharp may be off by up to
# TRAIN_MODE_FACTOR times it (at least the eval bound); PyTorch may be off by TRAIN_MODE_LIMIT
# of the scale at most, else it is the side reported wrong.
TRAIN_MODE_FACTOR = 4.0
TRAIN_MODE_LIMIT = 1e-3


def train_mode_problem(py: torch.Tensor, ts: torch.Tensor, ref: torch.Tensor, what: str,
                       details: dict[str, Any], scale_floor: float = 0.0) -> str | None:
    """None when both sides' train-mode values are close enough to the float64 reference.
    ``scale_floor``: the magnitude the values are computed from when larger than their own (a
    running mean near 0 is a mean of activations of spread sqrt(running_var))."""
    if py.shape != ts.shape or py.shape != ref.shape:
        return f"{what}: shapes PyTorch {list(py.shape)}, TorchSharp {list(ts.shape)}, reference {list(ref.shape)}"
    r = ref.to(torch.float64)
    scale = max(float(r.abs().max()) if r.numel() else 0.0, scale_floor, 1e-30)
    d_py = float((py.to(torch.float64) - r).abs().max()) if r.numel() else 0.0
    d_ts = float((ts.to(torch.float64) - r).abs().max()) if r.numel() else 0.0
    floor = bounds.SCALE_EPS * bounds.eps_of(py.dtype) * scale
    limit = max(floor, TRAIN_MODE_FACTOR * d_py)
    details[what] = {"scale": scale, "pytorch_from_reference": d_py, "torchsharp_from_reference": d_ts,
                     "torchsharp_bound": limit, "pytorch_bound": TRAIN_MODE_LIMIT * scale}
    if not d_py <= TRAIN_MODE_LIMIT * scale:
        return f"{what}: PyTorch is wrong: {d_py:.3g} from the float64 reference (scale {scale:.3g})"
    if not d_ts <= limit:
        return (f"{what}: TorchSharp is wrong: {d_ts:.3g} from the float64 reference (bound {limit:.3g}: "
                f"{TRAIN_MODE_FACTOR:g} x PyTorch's {d_py:.3g}, scale {scale:.3g})")
    return None


_NO_DROPOUT_ARGUMENT = ("TorchVision's mobilenet_v3 constructors take no dropout (Dropout(0.2) in its "
                        "classifier): a train-mode forward draws different masks on the two sides")


@check("zoo_train_forward", {"zoo"}, declines={f"zoo-{arch}": _NO_DROPOUT_ARGUMENT
                                               for arch in ("mobilenet_v3_small", "mobilenet_v3_large")})
def zoo_train_forward(ctx: Context) -> None:
    """One train-mode forward from PyTorch's state loaded into TorchSharp: outputs and running statistics agree."""
    case = ctx.cell.case
    assert isinstance(case, ModelCase)
    py_to_ts(ctx, compare=False)
    ctx.py.snapshot(ctx.d / "start_state.dat", None)
    x = forward_input(case)
    start = trusted_codec.read_state_dict(ctx.d / "start_state.dat")
    ref_out, ref_state = _train_reference(case, start, x)
    require_scale(ref_out, ctx.details, start)  # a NaN output names the state's first non-finite entry
    problem = train_mode_problem(ctx.py.train_forward(x), ctx.ts.train_forward(x), ref_out, "train-mode output",
                                 ctx.details)
    if problem:
        raise CheckFailed(problem, ctx.details)
    ctx.py.snapshot(ctx.d / "py_after.dat", None)
    ctx.ts.snapshot(ctx.d / "ts_after.dat", None)
    py_after = trusted_codec.read_state_dict(ctx.d / "py_after.dat")
    ts_after = trusted_codec.read_state_dict(ctx.d / "ts_after.dat")
    problems: list[str] = []
    stats: dict[str, Any] = {}
    for name, ref in ref_state.items():
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        if name not in ts_after or name not in py_after:
            side = "PyTorch" if name not in py_after else "TorchSharp"
            problems.append(f"{name}: missing after the forward ({side})")
        elif not ref.is_floating_point():
            got = {"PyTorch": int(py_after[name]), "TorchSharp": int(ts_after[name]), "reference": int(ref)}
            if len(set(got.values())) != 1:
                problems.append(f"{name}: {got}")
        else:
            var = ref_state.get(name[:-len("mean")] + "var") if name.endswith("running_mean") else None
            floor = float(var.abs().max().sqrt()) if var is not None and var.numel() else 0.0
            why = train_mode_problem(py_after[name], ts_after[name], ref, name, stats, floor)
            if why:
                problems.append(why)
    ctx.details["running_statistics"] = len(stats)
    fail_if(problems, "running statistics after one train-mode forward", ctx.details)
