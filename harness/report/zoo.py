"""The model zoo's section of a report, as plain data (rendered by markdown.py and html.py).

One row per zoo model (cases tagged ``zoo``: torchvision's model in PyTorch, TorchVision's in
TorchSharp): the outcomes of its checks summed over every implementation that ran it (PyTorch
version x TorchSharp driver x route), the eval output scale its trained state gives, and the
largest distance of either side from the float64 reference in eps of that scale. A second
table says what a user who follows TorchVision's documented path (the constructors'
``weights_file``) gets: which entries each way of loading left out, or why it was refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.report.model import Run
from harness.verdicts.outcomes import CellResult

EPS32 = 2.0 ** -23
# (column, check, whether the optimizer case's cells count instead of the model case's)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("structure", "zoo_structure", "model"),
    ("PyTorch → TorchSharp (eval)", "functional", "model"),
    ("TorchSharp → PyTorch (eval)", "zoo_outputs_ts2py", "model"),
    ("train-mode forward", "zoo_train_forward", "model"),
    ("weights_file", "zoo_weights_file", "model"),
    ("continued SGD", "continue_*", "sgd"),
    ("continued AdamW", "continue_*", "adamw"),
)


@dataclass
class ZooRow:
    model: str                                   # the case name, zoo_<arch>
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)   # column -> outcome -> cells
    findings: set[str] = field(default_factory=set)
    output_scale: float | None = None            # the smallest eval output scale seen
    farthest_eps: float | None = None            # the largest side-from-reference, eps of float32 x scale
    documented: dict[str, Any] = field(default_factory=dict)   # zoo_weights_file's documented_path


def _placed(cell: CellResult) -> tuple[str, str] | None:
    """(column, model case) of a zoo cell, None for a check the section does not show."""
    model, _, kind = cell.case.rpartition("_")
    optimizer = kind in ("sgd", "adamw")
    for name, check, wants in COLUMNS:
        if wants == "model" and not optimizer and cell.check == check:
            return name, cell.case
        if optimizer and wants == kind and cell.check.startswith("continue_"):
            return name, model
    return None


def zoo_rows(run: Run) -> list[ZooRow]:
    """Every zoo model that has a cell that ran (not skipped), in case-name order."""
    rows: dict[str, ZooRow] = {}
    for c in run.cells:
        if "zoo" not in c.features or c.outcome == "skip":
            continue
        placed = _placed(c)
        if placed is None:
            continue
        column, model = placed
        row = rows.setdefault(model, ZooRow(model))
        counts = row.outcomes.setdefault(column, {})
        counts[c.outcome] = counts.get(c.outcome, 0) + 1
        entry = c.details.get("expected_failure")
        if isinstance(entry, dict) and entry.get("finding"):
            row.findings.add(str(entry["finding"]))
        scale = c.details.get("zoo_output_scale")
        if isinstance(scale, (int, float)) and column.endswith("(eval)"):
            row.output_scale = scale if row.output_scale is None else min(row.output_scale, scale)
            for side in (c.details.get("reference") or {}).values():
                if isinstance(side, dict) and isinstance(side.get("max_abs"), (int, float)) and scale > 0:
                    eps = side["max_abs"] / (EPS32 * scale)
                    row.farthest_eps = eps if row.farthest_eps is None else max(row.farthest_eps, eps)
        if column == "weights_file" and isinstance(c.details.get("documented_path"), dict) and not row.documented:
            row.documented = dict(c.details["documented_path"])
    return [rows[k] for k in sorted(rows)]


def documented_text(value: Any) -> str:
    """One way of loading through ``weights_file``: what was left out, or the refusal."""
    if isinstance(value, dict):
        missing = value.get("not_loaded") or []
        loaded = value.get("loaded")
        return (f"{loaded} loaded" if loaded is not None else "loaded") + \
            (f"; not loaded: {', '.join(str(m) for m in missing)}" if missing else "; nothing left out")
    return str(value)
