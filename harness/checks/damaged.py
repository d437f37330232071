"""TorchSharp's side of a route reading damaged files (``damaged_load``).

PyTorch writes the case's state through the cell's route; the harness damages copies of the
file (truncated at points across it, its first 8 bytes garbled, an empty file, the same
state in another route's form, and the damaged forms the route itself declares,
``Route.damaged_forms``: e.g. safetensors' overlapping data_offsets) and a freshly built
TorchSharp model loads each. Every copy
must be refused with an exception. A copy that loads is a failure, and worse when the model
then holds other values than the undamaged file carries (silently wrong tensors); a copy that
kills the worker process is a failure too (the crash is isolated: the worker restarts and the
next copy goes on). What happened to each copy is in the cell's details.
"""
from __future__ import annotations

from pathlib import Path

from harness import codec as trusted_codec  # the state, for the same state in another route's form
from harness.checks.common import make_python_state
from harness.checks.registry import CheckSkipped, Context, check, fail_if
from harness.verdicts.compare import compare_modules
from harness.verdicts.digest import TensorDigest
from harness.drivers.protocol import WorkerCrash, WorkerRuntimeError, WorkerTimeout
from harness.routes import ROUTES

# Where copies are cut, as fractions of the file (plus 8 bytes in, and one byte short).
CUTS = (0.25, 0.5, 0.75)
# bytes XOR-ed with 0xFF: the start of every route's form is structure, never tensor data (the
# .dat entry count and first name length, the zip signature, the safetensors header length);
# garbled data bytes could not be noticed by any of the formats (none has a checksum of them)
GARBLE = range(0, 8)
OTHER_FORM = {"dat": "pth", "pth": "safetensors", "safetensors": "pth"}


def damaged_copies(data: bytes) -> list[tuple[str, bytes]]:
    """(what, bytes) for each damaged copy of a valid file's ``data``."""
    n = len(data)
    cuts = sorted({c for c in (8, *(int(n * f) for f in CUTS), n - 1) if 0 < c < n})
    out = [(f"truncated to {c} of {n} bytes", data[:c]) for c in cuts]
    if n > GARBLE.stop:
        out.append((f"bytes {GARBLE.start}-{GARBLE.stop - 1} garbled",
                    data[:GARBLE.start] + bytes(b ^ 0xFF for b in data[GARBLE.start:GARBLE.stop]) + data[GARBLE.stop:]))
    out.append(("an empty file", b""))
    return out


@check("damaged_load", {"model"})
def damaged_load(ctx: Context) -> None:
    """Damaged copies of the route's file (truncated, garbled, empty, another form, the route's own damaged
    forms): TorchSharp refuses each with an exception, never loads one or crashes."""
    make_python_state(ctx)
    valid = ctx.file("py_module")
    ctx.py.save_module(valid)
    expected = ctx.py.digest().module
    ctx.ts.build(ctx.cell.case, ctx.cell.device)
    try:
        ctx.ts.load_module(valid)
    except WorkerRuntimeError as exc:
        raise CheckSkipped(f"the undamaged file does not load (py2ts says why): {str(exc)[:200]}") from exc
    if compare_modules(expected, ctx.ts.digest().module, "PyTorch", "TorchSharp"):
        raise CheckSkipped("the undamaged file loads other state (py2ts says how): no baseline to damage")
    copies = damaged_copies(valid.read_bytes())
    other = ROUTES[OTHER_FORM[ctx.route.name]]
    other_path = ctx.d / f"other_form{other.suffix}"
    ctx.py.snapshot(ctx.d / "state.dat", None)
    other.write_state(other_path, trusted_codec.read_state_dict(ctx.d / "state.dat"))
    copies.append((f"the same state as a {other.name} file", other_path.read_bytes()))
    copies += ctx.route.damaged_forms(valid.read_bytes())   # what only this route's format can get wrong
    seen: dict[str, str] = {}
    problems: list[str] = []
    for i, (what, data) in enumerate(copies):
        path = ctx.d / f"damaged_{i}{ctx.route.suffix}"
        path.write_bytes(data)
        seen[what] = _load(ctx, path, expected, problems, what)
    ctx.details["damaged"] = seen
    fail_if(problems, "TorchSharp did not refuse every damaged file", ctx.details)


def _load(ctx: Context, path: Path, expected: dict[str, TensorDigest], problems: list[str], what: str) -> str:
    ctx.ts.build(ctx.cell.case, ctx.cell.device)
    try:
        ctx.ts.load_module(path)
    except WorkerRuntimeError as exc:
        return f"refused: {exc.error_type}: {' '.join(exc.error_message.split())[:200]}"
    except (WorkerCrash, WorkerTimeout) as exc:
        problems.append(f"{what}: the TorchSharp process died or hung ({exc.kind})")
        ctx.ts.ensure_alive()
        return f"{exc.kind}: {str(exc)[:200]}"
    diff = compare_modules(expected, ctx.ts.digest().module, "the undamaged file", "TorchSharp")
    if diff:
        problems.append(f"{what}: loaded without an error, holding other values (silently wrong tensors: "
                        f"{len(diff)} difference(s), e.g. {diff[0]})")
        return f"loaded, silently wrong: {diff[:3]}"
    problems.append(f"{what}: loaded without an error")
    return "loaded, same values as the undamaged file"
