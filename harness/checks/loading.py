"""Loading semantics side by side: partial files, fresh builds, views that disagree.

Files here are made with the harness's own writer of the cell's route (harness/routes/):
these cells are about how each side loads, not about the codec under test.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch

from harness import codec as trusted_codec
from harness.cases import torch_build
from harness.cases import ModelCase
from harness.checks.common import make_python_state
from harness.checks.registry import CheckSkipped, Context, check, fail_if
from harness.verdicts.compare import compare_modules, label
from harness.verdicts.digest import TensorDigest
from harness.drivers.base import Driver


@check("partial_load", {"model"})
def partial_load(ctx: Context) -> None:
    """A file lacking the model's first key and carrying one unknown key, loaded
    non-strictly by both: each must load exactly the keys present and keep its own value
    for the missing one (PyTorch reports missing/unexpected keys; TorchSharp reads past
    the unknown key)."""
    case, d = ctx.cell.case, ctx.d
    assert isinstance(case, ModelCase)
    make_python_state(ctx)
    ctx.py.snapshot(d / "full.dat", None)
    full = trusted_codec.read_state_dict(d / "full.dat")
    if not full:
        raise CheckSkipped("the model has no state to load partially")
    digests = [TensorDigest.of(v) for v in full.values()]
    # Drop a key whose tensor has no alias: a tied twin would load it anyway, and a buffer
    # viewing it (or viewed by it) would write part of it.
    aliased = {n for v in case.views for n in v[:2]} | {n for t in case.tie for n in t}
    dropped = next((k for k, dg in zip(full, digests) if digests.count(dg) == 1 and k not in aliased),
                   next(iter(full)))
    extra = "unexpected-extra.weight"
    partial = {k: v for k, v in full.items() if k != dropped}
    partial[extra] = torch.zeros(2, 2)
    ctx.route.write_state(ctx.file("partial"), partial)
    expected = {k: TensorDigest.of(v) for k, v in full.items()}
    side: dict[str, Any] = {"dropped": dropped, "unexpected": extra}
    drivers: tuple[tuple[str, Driver], ...] = (("PyTorch", ctx.py), ("TorchSharp", ctx.ts))
    for name, drv in drivers:
        drv.build(case, ctx.cell.device)
        fresh = drv.digest().module
        drv.load_module(ctx.file("partial"), strict=False)
        got = drv.digest().module
        want = dict(expected)
        if dropped in fresh:
            want[dropped] = fresh[dropped]
        problems = compare_modules(want, got, "expected", name)  # (names a key the side lacks)
        side[name] = {"kept_own_value_for_missing": dropped in got and got.get(dropped) == fresh.get(dropped),
                      "loaded": sorted(k for k in got if k != dropped and got[k] == expected[k])}
        ctx.details["side_by_side"] = side
        fail_if(problems, f"{name}'s non-strict load did not load exactly the keys present", ctx.details)


@check("fresh_init", {"model"}, route_independent=True)
def fresh_init(ctx: Context) -> None:
    """A freshly built model, nothing loaded: every state tensor whose initial value does
    not depend on the seed in PyTorch (norm weights 1 and biases 0, running stats, zero
    biases, PReLU's 0.25, ...: found by building with two seeds) must start with the
    same bytes in TorchSharp. Loading hides a wrong initial value; a model trained from
    scratch in TorchSharp does not."""
    case = ctx.cell.case
    assert isinstance(case, ModelCase)
    if case.fill:
        raise CheckSkipped(f"the case overwrites its state when built (fill={case.fill!r})")
    a = torch_build.build_case_model(case).state_dict()
    b = torch_build.build_case_model(case, seed=case.seed + 1).state_dict()
    fixed = [k for k in a if k in b and TensorDigest.of(a[k]) == TensorDigest.of(b[k])]
    ctx.details["seed_independent"] = fixed
    if not fixed:
        raise CheckSkipped("no state tensor has a seed-independent initial value")
    ctx.py.build(case, ctx.cell.device)
    expected = {k: v for k, v in ctx.py.digest().module.items() if k in fixed}
    ctx.ts.build(case, ctx.cell.device)
    got = {k: v for k, v in ctx.ts.digest().module.items() if k in fixed}
    # a wrong initial value may be uninitialised memory, whose bytes differ from run to run: its
    # digest goes in the details, not in the reason (which must read the same in every run)
    ctx.details["torchsharp_fresh_sha256"] = {k: v.sha256 for k, v in got.items() if expected.get(k) != v}
    fail_if(compare_modules(expected, got, "PyTorch's fresh model", "TorchSharp's fresh model", actual_sha=False),
            "a freshly built TorchSharp model starts with other values than PyTorch's where PyTorch's "
            "initial value does not depend on the seed", ctx.details)


@check("view_load", {"views"})
def view_load(ctx: Context) -> None:
    """Buffers that view other state, loaded from a file where they DISAGREE with their
    bases (each view's entry holds new values): the file is self-contradictory, so what
    each side holds afterwards shows whether loading keeps the aliasing and in which
    order entries land. Both sides must end with the same bytes under every name; the
    side-by-side record says, per view, which of the file's two values the view and its
    base's slice hold."""
    case, d = ctx.cell.case, ctx.d
    assert isinstance(case, ModelCase)
    make_python_state(ctx)
    ctx.py.snapshot(d / "consistent.dat", None)
    full = trusted_codec.read_state_dict(d / "consistent.dat")
    conflicting = dict(full)
    for name, *_ in case.views:
        t = full[name]
        conflicting[name] = (torch.arange(t.numel(), dtype=torch.float64).reshape(t.shape) * 0.25 + 100).to(t.dtype)
    ctx.route.write_state(ctx.file("conflicting"), conflicting)
    held: dict[str, Mapping[str, TensorDigest]] = {}
    drivers: tuple[tuple[str, Driver], ...] = (("PyTorch", ctx.py), ("TorchSharp", ctx.ts))
    for side, drv in drivers:
        drv.build(case, ctx.cell.device)
        drv.load_module(ctx.file("conflicting"))
        held[side] = drv.digest().module
    record: dict[str, Any] = {}
    for name, of, dim, start, length in case.views:
        base_with_view = full[of].clone()
        base_with_view.narrow(dim, start, length).copy_(conflicting[name])
        base_labels = {TensorDigest.of(full[of]): "the file's base entry",
                       TensorDigest.of(base_with_view): "the file's base entry with the view's values written in"}
        view_labels = {TensorDigest.of(conflicting[name]): "the file's view entry",
                       TensorDigest.of(full[of].narrow(dim, start, length)): "the base's slice from the file"}
        record[name] = {side: {"view": label(view_labels, h.get(name)), f"base {of}": label(base_labels, h.get(of))}
                        for side, h in held.items()}
    ctx.details["side_by_side"] = record
    fail_if(compare_modules(held["PyTorch"], held["TorchSharp"], "PyTorch", "TorchSharp"),
            "after loading a file whose views disagree with their bases, PyTorch and TorchSharp hold "
            f"different state: {json.dumps(record)}", ctx.details)
