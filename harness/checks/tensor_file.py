"""Single-tensor files (TorchSharp's static Tensor.Save / Tensor.Load on the dat route;
PyBridge's one-entry dicts on the pth and safetensors routes).

``tensor_py2ts``  the route's Python side writes a file of edge values; TorchSharp loads it
                  and saves it again: it holds exactly those bytes and, on a route whose
                  writers are one format's (dat), re-saves the same file.
``tensor_ts2py``  TorchSharp writes the file; the route's Python side reads what it held.
``tensor_overwrite`` TorchSharp writes the file over an older, larger one at the same path;
                  the route's Python side reads exactly the new tensor.
"""
from __future__ import annotations

import torch

from harness.cases import inputs
from harness.cases import TensorCase
from harness.checks.registry import CheckFailed, Context, check
from harness.codecs import CodecFailure
from harness.verdicts.compare import same_bytes
from harness.verdicts.digest import TensorDigest


@check("tensor_py2ts", {"tensor"}, torchsharp_needs={"tensor_file"})
def tensor_py2ts(ctx: Context) -> None:
    """The codec's single-tensor file of edge values: TorchSharp's Tensor.Load holds those bytes and re-saves
    the same file."""
    assert isinstance(ctx.cell.case, TensorCase)
    t = inputs.make_tensor(ctx.cell.case)
    ctx.py.write_tensor_file(t, ctx.file("py_tensor"))
    got = ctx.ts.tensor_roundtrip(ctx.file("py_tensor"), ctx.file("ts_tensor"))
    expected = TensorDigest.of(t)
    if got != expected:
        raise CheckFailed(f"TorchSharp's Tensor.Load holds {got}, PyTorch wrote {expected}", ctx.details)
    same = same_bytes(ctx.file("py_tensor"), ctx.file("ts_tensor"))
    ctx.details["file_identical"] = same
    if not same and ctx.route.byte_stable:  # PyBridge's pickler is not torch.save's: bytes are a fact there
        raise CheckFailed("TorchSharp's Tensor.Save wrote other bytes than it loaded", ctx.details)


@check("tensor_ts2py", {"tensor"}, pytorch_needs={"read_tensor"}, torchsharp_needs={"tensor_file"})
def tensor_ts2py(ctx: Context) -> None:
    """TorchSharp's Tensor.Save file: the codec reads what TorchSharp held."""
    assert isinstance(ctx.cell.case, TensorCase)
    ctx.route.write_tensor(ctx.file("input"), inputs.make_tensor(ctx.cell.case))
    got = ctx.ts.tensor_roundtrip(ctx.file("input"), ctx.file("ts_tensor"))
    back = TensorDigest.of(ctx.py.read_tensor_file(ctx.file("ts_tensor")))
    if back != got:
        raise CheckFailed(f"the codec read {back} from TorchSharp's file; TorchSharp held {got}", ctx.details)


# What the user had saved at the path before: a float64 tensor of 32 KiB, larger than every small case.
OLDER_FILE_ELEMENTS = 4096


@check("tensor_overwrite", {"tensor"}, pytorch_needs={"read_tensor"}, torchsharp_needs={"tensor_file"},
       declines={"large": "the overwrite check runs on the small tensor cases (an older file larger than a "
                          "2 GiB tensor says nothing more)"})
def tensor_overwrite(ctx: Context) -> None:
    """TorchSharp saves a tensor over an older, larger file at the same path (a user re-saving under one
    name): the route's Python side reads exactly the new tensor, nothing of the old file."""
    case = ctx.cell.case
    assert isinstance(case, TensorCase)
    tensor = inputs.make_tensor(case)
    ctx.route.write_tensor(ctx.file("input"), tensor)
    older = ctx.file("ts_tensor")
    ctx.route.write_tensor(older, torch.arange(OLDER_FILE_ELEMENTS + tensor.numel(), dtype=torch.float64))
    ctx.details["older_file_bytes"] = older.stat().st_size
    got = ctx.ts.tensor_roundtrip(ctx.file("input"), older)
    ctx.details["file_bytes"] = older.stat().st_size
    try:
        back = TensorDigest.of(ctx.py.read_tensor_file(older))
    except CodecFailure as exc:
        raise CheckFailed(f"TorchSharp's save over an older, larger file left a file PyTorch cannot read "
                          f"({ctx.details['file_bytes']} bytes, the older file had {ctx.details['older_file_bytes']}): "
                          f"{exc}", ctx.details) from exc
    if back != got:
        raise CheckFailed(f"TorchSharp's save over an older, larger file: PyTorch reads {back}, TorchSharp held {got}",
                          ctx.details)
