"""Semantic checks: both sides continue training from the same state and must agree.

A state that round-trips bitwise but is wired wrongly (two same-shaped moments swapped, lr
written where initial_lr belongs) diverges here. ``continue_py2ts`` starts from PyTorch's
state loaded into TorchSharp (no digest comparison: this check stands on its own);
``continue_ts2py`` from TorchSharp's trained state loaded into PyTorch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import codec as trusted_codec  # reads both sides' snapshots for value-level comparison
from harness.verdicts import reference, semantics
from harness.cases import torch_build
from harness.cases import OptimizerCase
from harness.checks.common import blame_road, py_to_ts, road_changed, ts_makes_state
from harness.drivers.base import Digest
from harness.checks.registry import Context, check, fail_if

CONTINUE_STEPS = 3
# The continued steps' gradients are gradient stream 100 + steps + k (make_gradients), far
# from the streams 0 .. steps-1 that made the state, so no continued step repeats one.
CONTINUED_GRADIENT_STREAM = 100


def _finite(v: float) -> float | str:
    return v if v != float("inf") else "inf"


def _snapshots(ctx: Context) -> dict[str, tuple[Any, Any]]:
    """Both sides' current module and optimizer state, read back as values."""
    d = ctx.d
    ctx.ts.snapshot(d / "ts_continued_module.dat", d / "ts_continued_optimizer.dat")
    ctx.py.snapshot(d / "py_continued_module.dat", d / "py_continued_optimizer.dat")
    return {side: (trusted_codec.read_state_dict(d / f"{tag}_continued_module.dat"),
                   trusted_codec.read_optimizer(d / f"{tag}_continued_optimizer.dat"))
            for side, tag in (("PyTorch", "py"), ("TorchSharp", "ts"))}


def _continue_both(ctx: Context, start: tuple[Path, Path], changed: list[str], receiver: str) -> None:
    """Both sides hold the same state (``start``: the files of the side that made it): take
    CONTINUE_STEPS steps on identical gradients (every parameter gets one now), the float64
    reference too. After each step both sides' parameters, buffers and optimizer state are
    compared with each other (bitwise, else within the optimizer's tolerance) and with the
    reference; the record per step shows where a side leaves the reference."""
    case = ctx.cell.case
    assert isinstance(case, OptimizerCase)
    mc = case.model_case
    ref = reference.start_state(trusted_codec.read_state_dict(start[0]), trusted_codec.read_optimizer(start[1]),
                                [list(g["params"]) for g in case.optimizer["groups"]])
    params = torch_build.reference_parameters(mc)
    per_step: list[dict[str, Any]] = []
    sides: dict[str, semantics.ReferenceDistance] = {}
    verdict = semantics.Verdict(0.0)
    first_off: dict[str, int] = {}
    for k in range(CONTINUE_STEPS):
        grads = torch_build.make_gradients(params, mc.seed, CONTINUED_GRADIENT_STREAM + case.steps + k)
        ctx.py.step(grads)
        ctx.ts.step(grads)
        reference.optimizer_steps(case.optimizer_type, ref, [grads])
        held = _snapshots(ctx)
        verdict = semantics.compare_continued(case.optimizer_type, held["PyTorch"][0], held["TorchSharp"][0],
                                              held["PyTorch"][1], held["TorchSharp"][1], ctx.cell.pytorch)
        sides = {side: semantics.reference_distance(m, r, ref) for side, (m, r) in held.items()}
        step_no = ref.states[0].get("step") if ref.states else None
        label = step_no if isinstance(step_no, int) else case.steps + k + 1
        for side, dist in sides.items():
            if not dist.ok:
                first_off.setdefault(side, label)
        per_step.append({"step": label, "between_ulp": _finite(verdict.max_ulp),
                         **{f"{side}_from_reference_eps": _finite(dist.max_eps) for side, dist in sides.items()},
                         **{f"{side}_off_reference": not dist.ok for side, dist in sides.items()}})
    ctx.details.update(verdict.details())
    ctx.details["per_step"] = per_step
    ctx.details["reference"] = {side: dist.to_json() for side, dist in sides.items()}
    problems = []
    for side, dist in sides.items():
        if not dist.ok:
            others = ", ".join(f"{o} {x.max_eps:.3g}" for o, x in sides.items() if o != side)
            before = [s["step"] for s in per_step if s["step"] != first_off[side] and not s[f"{side}_off_reference"]]
            problems.append(f"{side} is wrong: {dist.summary()} from the float64 reference (bound "
                            f"{dist.tolerance:g}; {others}); off the reference from step {first_off[side]}"
                            + (f", within it at step(s) {before}" if before else ""))
    problems += verdict.problems
    if problems and changed:
        problems = [blame_road(ctx, changed, receiver, problems[0]), *problems[1:]]
    fail_if(problems, f"after {CONTINUE_STEPS} more steps on identical gradients (max {verdict.max_ulp:g} ULP "
            f"apart, tolerance {verdict.tolerance:g})", ctx.details)


@check("continue_py2ts", {"optimizer"})
def continue_py2ts(ctx: Context) -> None:
    """From PyTorch's state loaded into TorchSharp, both continue on identical gradients and must agree (and
    with the float64 reference)."""
    sent = py_to_ts(ctx, compare=False)
    changed = road_changed(ctx, sent, ctx.ts.digest(), "PyTorch", "TorchSharp")
    ctx.py.snapshot(ctx.d / "start_module.dat", ctx.d / "start_optimizer.dat")
    _continue_both(ctx, (ctx.d / "start_module.dat", ctx.d / "start_optimizer.dat"), changed, "TorchSharp")


@check("continue_ts2py", {"optimizer"}, pytorch_needs={"read_optimizer"})
def continue_ts2py(ctx: Context) -> None:
    """From TorchSharp's trained state loaded into PyTorch, both continue and must agree (and with the float64
    reference)."""
    assert isinstance(ctx.cell.case, OptimizerCase)
    ts_makes_state(ctx, ctx.cell.case.steps)
    ctx.py.build(ctx.cell.case, ctx.cell.device)
    ctx.py.load_module(ctx.file("ts_module"))
    ctx.py.load_optimizer(ctx.file("ts_optimizer"))
    # module tensors only: PyTorch's optimizer load_state_dict casts state by design (a finding of its own)
    changed = road_changed(ctx, Digest(ctx.ts.digest().module), Digest(ctx.py.digest().module), "TorchSharp",
                           "PyTorch")
    ctx.ts.snapshot(ctx.d / "start_module.dat", ctx.d / "start_optimizer.dat")  # the state it saved, as .dat
    _continue_both(ctx, (ctx.d / "start_module.dat", ctx.d / "start_optimizer.dat"), changed, "PyTorch")
