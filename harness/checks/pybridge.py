"""Checks of the PyBridge roads only: the other forms of a ``torch.save`` file that users hold,
and Hugging Face checkpoint folders (harness/routes/; each declares the route capability it
needs, so it is skipped with the reason on a route that lacks it).

``pth_protocols``       module state saved by ``torch.save`` in the zip format with pickle
                        protocols 3, 4 and 5 (2 is the route's own): PyBridge's ``load_py``
                        holds the same bytes for each.
``pth_legacy``          the same state in the legacy (pre-1.6, non-zip) format, as
                        ``_use_new_zipfile_serialization=False`` writes it, with protocols 2
                        and 4: loaded with the same bytes, or refused with a clear error.
``checkpoint``          a save_pretrained folder with one file (``pytorch_model.bin`` /
                        ``model.safetensors``) through PyBridge's ``load_checkpoint``.
``checkpoint_sharded``  the same state in two shards and their ``*.index.json``.
"""
from __future__ import annotations

from harness.checks.common import make_python_state
from harness.checks.registry import CheckFailed, CheckSkipped, Context, check, fail_if
from harness.verdicts.compare import compare_modules
from harness.drivers.protocol import WorkerRuntimeError
from harness.routes.binding import bound_variant

PROTOCOL_VARIANTS = ("p3", "p4", "p5")
LEGACY_VARIANTS = ("legacy", "legacy-p4")


def _forms(ctx: Context, variants: tuple[str, ...], what: str) -> None:
    """PyTorch saves its state in each file form; TorchSharp loads each into a fresh model."""
    make_python_state(ctx)
    expected = ctx.py.digest().module
    results, problems = {}, []
    for v in variants:
        path = ctx.file(f"py_module_{v}")
        with bound_variant(ctx.py, f"{ctx.route.name}:{v}"):
            ctx.py.save_module(path)
        ctx.ts.build(ctx.cell.case, ctx.cell.device)
        try:
            ctx.ts.load_module(path)
        except WorkerRuntimeError as exc:  # an answer; a dead or stuck worker stays the cell's error
            results[v] = f"refused: {exc}"
            problems.append(f"form {v}: TorchSharp refused it: {' '.join(str(exc).split())[:300]}")
            continue
        diff = compare_modules(expected, ctx.ts.digest().module, "PyTorch", f"TorchSharp ({v})")
        results[v] = "same bytes" if not diff else f"other state: {diff[:3]}"
        problems += [f"form {v}: {p}" for p in diff]
    ctx.details["forms"] = results
    fail_if(problems, f"TorchSharp does not hold PyTorch's state from every {what}", ctx.details)


@check("pth_protocols", {"model"}, route_needs={"pickle_forms"})
def pth_protocols(ctx: Context) -> None:
    """torch.save's zip format with pickle protocols 3, 4 and 5: PyBridge's load_py holds the same bytes."""
    _forms(ctx, PROTOCOL_VARIANTS, "pickle protocol (3, 4, 5)")


@check("pth_legacy", {"model"}, route_needs={"pickle_forms"})
def pth_legacy(ctx: Context) -> None:
    """torch.save's legacy (non-zip) format, protocols 2 and 4: PyBridge's load_py holds the same bytes."""
    _forms(ctx, LEGACY_VARIANTS, "legacy-format file")


def _checkpoint(ctx: Context, shards: int) -> None:
    make_python_state(ctx)
    expected = ctx.py.digest().module
    if shards > 1 and len(expected) < shards:
        raise CheckSkipped(f"the model has {len(expected)} state tensor(s): too few to shard")
    folder = ctx.d / f"checkpoint_{shards}"
    ctx.details["checkpoint_files"] = ctx.py.save_checkpoint(folder, shards)
    ctx.ts.build(ctx.cell.case, ctx.cell.device)
    ctx.ts.load_checkpoint(folder)
    got = ctx.ts.digest().module
    fail_if(compare_modules(expected, got, "PyTorch", "TorchSharp"),
            f"TorchSharp's load_checkpoint of a {'sharded ' if shards > 1 else ''}checkpoint folder holds other "
            "state than PyTorch saved", ctx.details)
    if shards > 1 and len(ctx.details["checkpoint_files"]) < 3:
        raise CheckFailed(f"the state split into fewer than two shards: {ctx.details['checkpoint_files']}",
                          ctx.details)


@check("checkpoint", {"model"}, route_needs={"checkpoint"})
def checkpoint(ctx: Context) -> None:
    """A save_pretrained folder with one file, loaded with PyBridge's load_checkpoint: the same bytes."""
    _checkpoint(ctx, 1)


@check("checkpoint_sharded", {"model"}, route_needs={"checkpoint"})
def checkpoint_sharded(ctx: Context) -> None:
    """The state in two shards and their index.json, loaded with load_checkpoint: the same bytes."""
    _checkpoint(ctx, 2)
