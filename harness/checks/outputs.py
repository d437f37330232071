"""Output checks: the same input through both sides' models, and the float64 reference.

``functional``  PyTorch's trained state loaded into TorchSharp; both run the input in eval
                mode.
``jit_py2ts``   PyTorch traces its model (``torch.jit.trace``) and saves it; TorchSharp's
                ``torch.jit.load`` runs it: same state as PyTorch's own ScriptModule, same
                outputs.
``jit_ts2py``   TorchSharp ``torch.jit.save``s the script it loaded; PyTorch loads and runs it.

Outputs must agree with each other AND each with the float64 reference (harness/verdicts/reference.py,
harness/verdicts/bounds.py), so two equally wrong sides fail too.
"""
from __future__ import annotations

import torch

from harness.verdicts import bounds, reference
from harness import codec as trusted_codec  # snapshots of PyTorch's state for the reference
from harness.cases import ModelCase
from harness.checks.common import blame_road, forward_input, make_python_state, py_to_ts, road_changed
from harness.checks.registry import CheckFailed, CheckSkipped, Context, check, fail_if, kinds_of
from harness.verdicts.compare import compare_modules
from harness.verdicts.digest import TensorDigest
from harness.drivers.base import Digest
from harness.cases.zoo import require_scale


def reference_output(ctx: Context, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The float64 reference for ``x`` from the state PyTorch holds, and that state."""
    assert isinstance(ctx.cell.case, ModelCase)  # only model cases get output checks
    ctx.py.snapshot(ctx.d / "reference_state.dat", None)
    state = trusted_codec.read_state_dict(ctx.d / "reference_state.dat")
    return reference.forward(ctx.cell.case, state, x), state


def compare_outputs(ctx: Context, a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, a_name: str, b_name: str,
                    changed: list[str] | None = None) -> None:
    """``changed``: where the road changed the state ``b``'s side received (the reason then
    names the road first). A zoo cell on degenerate outputs is an error (harness/cases/zoo.py)."""
    ref, state = reference_output(ctx, x)
    if "zoo" in kinds_of(ctx.cell.case):
        require_scale(ref, ctx.details, state)  # a NaN output names the state's first non-finite entry
    problem = bounds.compare_outputs(a, b, ref, a_name, b_name, ctx.details)
    if problem:
        raise CheckFailed(blame_road(ctx, changed or [], b_name, problem), ctx.details)


@check("functional", {"model"})
def functional(ctx: Context) -> None:
    """The same input through both models (and the float64 reference) after loading PyTorch's state."""
    assert isinstance(ctx.cell.case, ModelCase)
    sent = py_to_ts(ctx, compare=False)
    changed = road_changed(ctx, Digest(sent.module), Digest(ctx.ts.digest().module), "PyTorch", "TorchSharp")
    x = forward_input(ctx.cell.case)
    try:
        py_out = ctx.py.forward(x)
    except (RuntimeError, NotImplementedError) as exc:
        if "not implemented for" not in str(exc):
            raise
        raise CheckSkipped(f"PyTorch {ctx.py.capabilities.version} cannot run this model on "
                           f"{ctx.cell.device}: {str(exc).splitlines()[0]}") from exc
    compare_outputs(ctx, py_out, ctx.ts.forward(x), x, "PyTorch", "TorchSharp", changed)


def _jit(ctx: Context, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, TensorDigest]]:
    """PyTorch's traced script run by TorchSharp: (PyTorch's output, TorchSharp's output,
    the state PyTorch's own ScriptModule of the file holds)."""
    d = ctx.d
    make_python_state(ctx)
    try:
        ctx.py.save_torchscript(d / "py_script.pt", x)
    except Exception as exc:  # tracing is PyTorch's business, not the conformance's
        raise CheckSkipped(f"PyTorch cannot trace this model: {str(exc).splitlines()[0][:300]}") from exc
    py_out = ctx.py.forward(x)
    state, ts_out = ctx.ts.jit_run(d / "py_script.pt", x, d / "ts_script.pt")
    # What PyTorch itself holds after torch.jit.load of the same file: a script's
    # state_dict also lists non-persistent buffers (TorchScript keeps no such flag).
    expected, _ = ctx.py.run_torchscript(d / "py_script.pt", x)
    eager = ctx.py.digest().module
    ctx.details["script_only_keys"] = sorted(set(expected) - set(eager))
    fail_if(compare_modules(eager, {k: v for k, v in expected.items() if k in eager}, "PyTorch model",
                            "PyTorch's own ScriptModule"), "PyTorch's script holds other state than its model",
            ctx.details)
    fail_if(compare_modules(expected, state, "PyTorch's ScriptModule", "TorchSharp's ScriptModule"),
            "TorchSharp's torch.jit.load holds other state", ctx.details)
    return py_out, ts_out, expected


@check("jit_py2ts", {"model"}, torchsharp_needs={"jit"}, route_independent=True)
def jit_py2ts(ctx: Context) -> None:
    """PyTorch's traced model run by TorchSharp's torch.jit.load: same state, same outputs."""
    assert isinstance(ctx.cell.case, ModelCase)
    x = forward_input(ctx.cell.case)
    py_out, ts_out, _ = _jit(ctx, x)
    compare_outputs(ctx, py_out, ts_out, x, "PyTorch", "TorchSharp's ScriptModule")


@check("jit_ts2py", {"model"}, torchsharp_needs={"jit"}, route_independent=True)
def jit_ts2py(ctx: Context) -> None:
    """The script TorchSharp re-saved, loaded and run by PyTorch: same state, same outputs."""
    assert isinstance(ctx.cell.case, ModelCase)
    x = forward_input(ctx.cell.case)
    py_out, _, script_state = _jit(ctx, x)
    try:
        state, back_out = ctx.py.run_torchscript(ctx.d / "ts_script.pt", x)
    except RuntimeError as exc:
        raise CheckFailed(f"PyTorch {ctx.py.capabilities.version} cannot torch.jit.load what TorchSharp "
                          f"saved: {str(exc).splitlines()[0][:300]}", ctx.details) from exc
    fail_if(compare_modules(script_state, state, "PyTorch's ScriptModule", "re-loaded script"),
            "the script TorchSharp saved holds other state", ctx.details)
    compare_outputs(ctx, py_out, back_out, x, "PyTorch", "TorchSharp-saved script")
