"""What several checks do the same way: make PyTorch's state, carry it into TorchSharp."""
from __future__ import annotations

import torch

from harness.cases import torch_build
from harness.cases import CORPUS_DIR, ModelCase, OptimizerCase
from harness.checks.registry import CheckFailed, Context, fail_if
from harness.verdicts.compare import compare_modules, compare_optimizers
from harness.drivers.base import Digest, model_case_of

# The forward input of the output checks comes from a generator seeded case.seed + this, so it
# is not one of the inputs the model was trained on (those use case.seed).
INPUT_SEED_OFFSET = 7
# TorchSharp trains from case.seed + this: the state it saves then differs from any state
# PyTorch made from the case's seed, so a reader that handed back PyTorch's own values (or a
# cell that compared PyTorch with itself) could not pass ts2py.
TS_TRAIN_SEED_OFFSET = 1000


def forward_input(case: ModelCase) -> torch.Tensor:
    """The input both sides (and the float64 reference) run the model on."""
    return torch_build.make_input(case.input_shape, torch.Generator().manual_seed(case.seed + INPUT_SEED_OFFSET),
                                  torch_build.DTYPES[case.dtype], case.input, draw=torch.float64)


def make_python_state(ctx: Context) -> None:
    """PyTorch makes the case's state: a model case trains; an optimizer case steps on fixed
    gradients (or loads a corpus file made by another PyTorch)."""
    case = ctx.cell.case
    ctx.py.build(case, ctx.cell.device)
    mc = model_case_of(case)
    if isinstance(case, OptimizerCase) and case.state_from:
        path = CORPUS_DIR / case.state_from
        if not path.exists():
            raise CheckFailed(f"corpus file {path} is missing (cases/corpus/ is part of the repository)")
        ctx.py.load_saved_state(path)
    elif isinstance(case, OptimizerCase):
        params = torch_build.reference_parameters(mc)
        for step in range(case.steps):
            ctx.py.step(torch_build.make_gradients(params, mc.seed, step, skip=case.no_grad))
            ctx.py.advance_schedule()
    else:
        ctx.py.train(mc.train_steps, mc.seed, mc.input_shape, mc.input)


def py_to_ts(ctx: Context, compare: bool = True) -> Digest:
    """PyTorch's state, written by the codec under test, loaded by TorchSharp; with
    ``compare``, TorchSharp's digests must equal PyTorch's. Returns PyTorch's digest."""
    case = ctx.cell.case
    is_opt = isinstance(case, OptimizerCase)
    make_python_state(ctx)
    ctx.py.save_module(ctx.file("py_module"))
    if is_opt:
        ctx.py.save_optimizer(ctx.file("py_optimizer"))
    # TorchSharp loads before PyTorch's digest is taken: an optimizer TorchSharp has no file form
    # for (LBFGS) is declined by TorchSharp, whatever road wrote the file
    ctx.ts.build(case, ctx.cell.device)
    ctx.ts.load_module(ctx.file("py_module"))
    if is_opt:
        ctx.ts.load_optimizer(ctx.file("py_optimizer"))
    expected = ctx.py.digest()
    if not compare:
        return expected
    got = ctx.ts.digest()
    ctx.details["tensors"] = len(expected.module)
    ctx.details["torchsharp_order_matches"] = list(expected.module) == list(got.module)
    problems = compare_modules(expected.module, got.module, "PyTorch", "TorchSharp")
    problems += compare_optimizers(expected.optimizer, got.optimizer, "TorchSharp")
    fail_if(problems, "TorchSharp holds other state than PyTorch exported", ctx.details)
    return expected


def road(ctx: Context) -> str:
    """The road the cell's state took, as a reason names it when it is at fault."""
    if ctx.route.name == "dat":
        return f"the codec {ctx.py.codec_name!r} (route dat)"
    return f"route {ctx.route.name} ({ctx.route.title})"


def road_changed(ctx: Context, held: Digest, received: Digest, source: str, dest: str) -> list[str]:
    """Where the state ``dest`` holds after loading differs from what ``source`` held when it
    saved (module tensors by bytes, optimizer values): the road changed it. Recorded in the
    details as ``road_changed``; empty when the road delivered every byte."""
    problems = compare_modules(held.module, received.module, source, dest)
    if held.optimizer is not None:
        problems += compare_optimizers(held.optimizer, received.optimizer, dest)
    if problems:
        ctx.details["road_changed"] = problems
    return problems


def blame_road(ctx: Context, changed: list[str], dest: str, problem: str) -> str:
    """A failing reason with the road named first when it changed the state on the way: what
    the receiving side then computed is not its own fault."""
    if not changed:
        return problem
    return (f"{road(ctx)} is wrong: {dest} received other state than was sent "
            f"({'; '.join(changed[:3])}{'; ...' if len(changed) > 3 else ''}); on it: {problem}")


def ts_makes_state(ctx: Context, steps: int) -> None:
    """TorchSharp builds the case and trains it (its own forward, backward and step), then
    saves module (and optimizer) files ts_module.dat / ts_optimizer.dat."""
    mc = model_case_of(ctx.cell.case)
    ctx.ts.build(ctx.cell.case, ctx.cell.device)
    ctx.ts.train(steps, mc.seed + TS_TRAIN_SEED_OFFSET, mc.input_shape, mc.input)
    ctx.ts.save_module(ctx.file("ts_module"))
    if isinstance(ctx.cell.case, OptimizerCase):
        ctx.ts.save_optimizer(ctx.file("ts_optimizer"))
