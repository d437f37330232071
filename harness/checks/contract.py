"""The codec under test's contract on a file TorchSharp wrote (harness/verdicts/codec_contract.py).

``contract_usable``   what it reads owns writable memory, unshared, and writing into it does
                      not change the next load.
``contract_damaged``  damaged copies of the file give an error that says where, never a
                      programming error (TypeError, IndexError, ...) or a value.
"""
from __future__ import annotations

from harness.checks.common import ts_makes_state
from harness.checks.registry import Context, check, fail_if
from harness.drivers.base import model_case_of


def _contract(ctx: Context, which: str, what: str) -> None:
    ts_makes_state(ctx, model_case_of(ctx.cell.case).train_steps)
    fail_if(ctx.py.codec_contract(ctx.file("ts_module"), which), what, ctx.details)


@check("contract_usable", {"model"}, route_needs={"codec"})
def contract_usable(ctx: Context) -> None:
    """What the codec reads from TorchSharp's file owns writable, unshared memory."""
    _contract(ctx, "usable", f"codec {ctx.py.codec_name!r} returns tensors that are not safely usable")


@check("contract_damaged", {"model"}, route_needs={"codec"})
def contract_damaged(ctx: Context) -> None:
    """Damaged copies of TorchSharp's file give an error that says where, never a programming error or a value."""
    _contract(ctx, "damaged", f"codec {ctx.py.codec_name!r} gives no clear error for a damaged file")
