"""State checks: PyTorch -> TorchSharp, there and back, TorchSharp -> PyTorch (bytes).

``py2ts``     PyTorch makes state (trains / steps on fixed gradients), the codec under
              test writes it, TorchSharp loads it; TorchSharp's digests of everything it
              holds equal PyTorch's (module tensors by bytes; optimizer options and state by
              the oracle, harness/verdicts/oracle.py).
``py2ts2py``  ... then TorchSharp saves, the codec reads back: every tensor's bytes equal
              the original. Whole-file byte identity is recorded as a separate fact
              (TorchSharp lists parameters before buffers, so it may legitimately differ).
``ts2py``     TorchSharp builds and trains, saves; the codec reads; digests equal
              TorchSharp's, and PyTorch's model/optimizer accept the state.
"""
from __future__ import annotations

from harness.cases import OptimizerCase
from harness.checks.common import py_to_ts, ts_makes_state
from harness.checks.registry import CheckFailed, CheckSkipped, Context, check, fail_if
from harness.codecs import CodecFailure
from harness.verdicts.compare import compare_modules, compare_optimizers, same_bytes
from harness.drivers.base import model_case_of


@check("py2ts", {"model", "optimizer"})
def py2ts(ctx: Context) -> None:
    """PyTorch's state, written by the codec under test, loaded by TorchSharp: TorchSharp holds the same bytes
    and values."""
    py_to_ts(ctx)


@check("py2ts2py", {"model", "optimizer"})
def py2ts2py(ctx: Context) -> None:
    """... then TorchSharp saves and the codec reads back: every tensor's bytes equal the original."""
    expected = py_to_ts(ctx)
    is_opt = isinstance(ctx.cell.case, OptimizerCase)
    ctx.ts.save_module(ctx.file("ts_module"))
    back = ctx.py.read_module(ctx.file("ts_module"))
    ctx.details["module_file_identical"] = same_bytes(ctx.file("py_module"), ctx.file("ts_module"))
    problems = compare_modules(expected.module, back, "original", "read back")
    if is_opt:
        ctx.ts.save_optimizer(ctx.file("ts_optimizer"))
        ctx.details["optimizer_file_identical"] = same_bytes(ctx.file("py_optimizer"), ctx.file("ts_optimizer"))
    fail_if(problems, "state read back from TorchSharp's file differs from the original", ctx.details)
    if is_opt:
        if "read_optimizer" not in ctx.py.capabilities.features:
            raise CheckSkipped(f"module state round-tripped; codec {ctx.py.codec_name!r} cannot read "
                               "optimizer files, so the optimizer half is not checked")
        ctx.py.build(ctx.cell.case, ctx.cell.device)
        ctx.py.load_optimizer(ctx.file("ts_optimizer"))
        fail_if(compare_optimizers(expected.optimizer, ctx.py.digest().optimizer, "read back"),
                "optimizer state read back from TorchSharp's file differs from the original", ctx.details)


@check("ts2py", {"model", "optimizer"})
def ts2py(ctx: Context) -> None:
    """TorchSharp trains and saves; the codec reads what TorchSharp holds, and PyTorch accepts it."""
    case = ctx.cell.case
    is_opt = isinstance(case, OptimizerCase)
    ts_makes_state(ctx, case.steps if isinstance(case, OptimizerCase) else model_case_of(case).train_steps)
    got = ctx.ts.digest()
    problems = compare_modules(got.module, ctx.py.read_module(ctx.file("ts_module")), "TorchSharp", "codec")
    fail_if(problems, "the codec read other state than TorchSharp holds", ctx.details)
    ctx.py.build(case, ctx.cell.device)
    try:
        ctx.py.load_module(ctx.file("ts_module"))
    except RuntimeError as exc:
        if isinstance(exc, CodecFailure):
            raise
        raise CheckFailed(f"PyTorch's load_state_dict refused TorchSharp's state: {exc}", ctx.details) from exc
    fail_if(compare_modules(got.module, ctx.py.digest().module, "TorchSharp", "PyTorch model"),
            "PyTorch's model holds other state after loading", ctx.details)
    if is_opt:
        if "read_optimizer" not in ctx.py.capabilities.features:
            raise CheckSkipped(f"module state checked; codec {ctx.py.codec_name!r} cannot read "
                               "optimizer files, so the optimizer half is not checked")
        ctx.py.load_optimizer(ctx.file("ts_optimizer"))
        fail_if(compare_optimizers(got.optimizer, ctx.py.digest().optimizer, "PyTorch"),
                "PyTorch's optimizer holds other state than TorchSharp saved", ctx.details)
