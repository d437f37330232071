"""Compare two runs (two matrix.json files) cell by cell.

A *regression* is a cell present in both runs whose outcome went from good (pass, xfail,
skip) to bad (fail, error, xpass), or a new cell that is bad. ``main_diff`` exits 1 when
there is one, else 0 (2 when a file cannot be read). Also reported, without failing:
fixes (fail/error/xpass/xfail -> pass), lost coverage (anything -> skip), other outcome
changes, changed reasons (same outcome, different reason), cells added and removed.

``diff_columns`` compares two TorchSharp columns (of one run or of two), e.g. the NuGet
0.107.0 column with a source build "0.107.0+radam-fix": cells are paired by everything but
the TorchSharp version, and compared by their *raw* outcomes (an expected failure counts as
the failure it is, an unexpected pass as a pass), so the answer is what the change fixed or
broke, whichever expected failures applied to each column.

``OLD`` may be ``last``: the run recorded before NEW in reports/history.jsonl
(harness/report/history.py).
"""
from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.verdicts.outcomes import BAD_OUTCOMES, CellResult
from harness.paths import REPORTS_DIR
from harness.report.history import HISTORY_NAME, HistoryError, previous_matrix
from harness.report.model import ReportSchemaError, Run

GOOD_OUTCOMES = frozenset({"pass", "xfail", "skip"})
REASON_LIMIT = 300


@dataclass(frozen=True)
class CellChange:
    id: str
    old_outcome: str | None  # None: the cell is new
    new_outcome: str
    old_reason: str
    new_reason: str


@dataclass
class RunDiff:
    old_run_id: str
    new_run_id: str
    regressions: list[CellChange] = field(default_factory=list)  # good -> bad, and new bad cells
    fixes: list[CellChange] = field(default_factory=list)  # bad or xfail -> pass
    lost_coverage: list[CellChange] = field(default_factory=list)  # not skip -> skip
    other_changes: list[CellChange] = field(default_factory=list)  # any other outcome change
    changed_reasons: list[CellChange] = field(default_factory=list)  # same outcome, new reason
    added: list[CellResult] = field(default_factory=list)
    removed: list[CellResult] = field(default_factory=list)

    @property
    def has_regression(self) -> bool:
        return bool(self.regressions)


def _change(old: CellResult | None, new: CellResult) -> CellChange:
    return CellChange(new.id, old.outcome if old else None, new.outcome, old.reason if old else "", new.reason)


def diff_runs(old: Run, new: Run) -> RunDiff:
    d = RunDiff(old.run_id, new.run_id)
    before = {c.id: c for c in old.cells}
    after = {c.id: c for c in new.cells}
    for cell in new.cells:
        prev = before.get(cell.id)
        if prev is None:
            d.added.append(cell)
            if cell.outcome in BAD_OUTCOMES:
                d.regressions.append(_change(None, cell))
        elif prev.outcome == cell.outcome:
            if prev.reason != cell.reason:
                d.changed_reasons.append(_change(prev, cell))
        elif prev.outcome in GOOD_OUTCOMES and cell.outcome in BAD_OUTCOMES:
            d.regressions.append(_change(prev, cell))
        elif cell.outcome == "pass" and (prev.outcome in BAD_OUTCOMES or prev.outcome == "xfail"):
            d.fixes.append(_change(prev, cell))
        elif cell.outcome == "skip":
            d.lost_coverage.append(_change(prev, cell))
        else:
            d.other_changes.append(_change(prev, cell))
    d.removed = [c for c in old.cells if c.id not in after]
    return d


def _column_name(column: str) -> str:
    return column[2:] if column.startswith("ts") else column


def _raw(cell: CellResult, new_id: str) -> CellResult:
    """The cell as measured, before expected failures applied (outcomes.ExpectedFailures).
    A crash's reason keeps its first line without the worker's path: the stderr tail after
    it holds the worker's earlier requests (and is cut at different points), which differ
    between two columns for the same crash."""
    outcome, reason = cell.outcome, cell.reason
    if outcome == "xfail":
        outcome = str(cell.details.get("raw_outcome", "fail"))
        reason = reason.split(" | actual: ", 1)[1] if " | actual: " in reason else reason
    elif outcome == "xpass":
        outcome, reason = "pass", ""
    reason = re.sub(r"\S*/Worker\.dll", "Worker.dll", reason.split("\n--- stderr tail ---", 1)[0])
    return dataclasses.replace(cell, id=new_id, outcome=outcome, reason=reason)


class ColumnError(ValueError):
    """A column named for ``diff --columns`` has no cell in its run."""


def column_view(run: Run, column: str, as_column: str | None = None) -> Run:
    """The cells of TorchSharp ``column`` ("0.107.0" or "ts0.107.0"), raw outcomes, with their
    ids renamed to ``as_column`` (so two columns' cells pair up)."""
    col = _column_name(column)
    shown = _column_name(as_column or column)
    cells = [_raw(c, "::".join(f"ts{shown}" if part == f"ts{col}" else part for part in c.id.split("::")))
             for c in run.cells if c.torchsharp == col]
    if not cells:
        have = sorted({c.torchsharp for c in run.cells})
        raise ColumnError(f"run {run.run_id} has no cell of TorchSharp column {col!r} (columns: "
                          f"{', '.join('ts' + h for h in have) or 'none'})")
    return Run(run_id=f"{run.run_id} ts{col}", started=run.started, provenance=run.provenance, cells=cells)


def diff_columns(old: Run, old_column: str, new: Run, new_column: str) -> RunDiff:
    """Column ``old_column`` of ``old`` against column ``new_column`` of ``new`` (the same run
    for a NuGet column against a source build), by raw outcomes; ids shown are the new column's."""
    return diff_runs(column_view(old, old_column, new_column), column_view(new, new_column))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT - 1] + "…"


def _outcomes(c: CellChange) -> str:
    return f"{c.old_outcome or '(new cell)'} -> {c.new_outcome}"


def render_diff(d: RunDiff) -> str:
    """Plain Markdown, fit for a terminal or a CI job summary."""
    lines = [f"# Matrix diff: {d.old_run_id} -> {d.new_run_id}", ""]
    counts: list[tuple[str, Sequence[object]]] = [
        ("regressions", d.regressions), ("fixes", d.fixes), ("lost coverage", d.lost_coverage),
        ("other outcome changes", d.other_changes), ("changed reasons", d.changed_reasons),
        ("cells added", d.added), ("cells removed", d.removed)]
    lines += [", ".join(f"{len(items)} {name}" for name, items in counts), ""]
    lines += ["**REGRESSION**" if d.has_regression else "No regression.", ""]

    def section(title: str, changes: list[CellChange], show_old_reason: bool = False) -> None:
        if not changes:
            return
        lines.extend([f"## {title}", ""])
        for c in changes:
            line = f"- `{c.id}`: {_outcomes(c)}"
            if c.new_reason:
                line += f" — {_short(c.new_reason)}"
            lines.append(line)
            if show_old_reason:
                lines.append(f"  - was: {_short(c.old_reason) or '(no reason)'}")
        lines.append("")

    section("New failures (regressions)", d.regressions)
    section("Fixes", d.fixes, show_old_reason=True)
    section("Lost coverage (now skipped)", d.lost_coverage)
    section("Other outcome changes", d.other_changes, show_old_reason=True)
    section("Changed reasons", d.changed_reasons, show_old_reason=True)
    for title, cells in (("Cells added", d.added), ("Cells removed", d.removed)):
        if cells:
            lines += [f"## {title}", "", *(f"- `{c.id}`: {c.outcome}" for c in cells), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _load(path: Path) -> Run:
    return Run.load(path / "matrix.json" if path.is_dir() else path)


LAST = "last"


def _history_of(new_path: Path) -> Path:
    """The history of the reports folder NEW's run lies in (``<reports>/<run>/matrix.json``),
    else the checkout's reports/history.jsonl."""
    run_dir = new_path if new_path.is_dir() else new_path.parent
    beside = run_dir.parent / HISTORY_NAME
    return beside if beside.is_file() else REPORTS_DIR / HISTORY_NAME


def main_diff(old_path: Path | str, new_path: Path | None = None, columns: Sequence[str] | None = None,
              history: Path | None = None) -> int:
    """Print the diff of two matrix.json files (or run folders holding one). ``old_path``
    ``"last"``: the run recorded before NEW in ``history`` (default: the history.jsonl of the
    reports folder holding NEW's run folder, else the checkout's reports/history.jsonl). With
    ``columns`` (two TorchSharp columns, e.g. ts0.107.0 ts0.107.0+radam-fix) the first column
    of OLD against the second of NEW (NEW defaults to OLD). Exit status: 1 on a regression, 0
    otherwise, 2 when a file cannot be read, a column is absent or the history has no earlier run."""
    try:
        if str(old_path) == LAST:
            if new_path is None:
                raise HistoryError("diff last needs NEW: the run to compare with the one before it")
            new = _load(new_path)
            old = _load(previous_matrix(history or _history_of(new_path), new))
        else:
            old = _load(Path(old_path))
            new = _load(new_path) if new_path is not None else old
    except (HistoryError, ReportSchemaError) as exc:
        print(f"diff: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, TypeError) as exc:  # missing file, bad JSON, missing field
        print(f"diff: cannot read a run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if columns:
        try:
            d = diff_columns(old, columns[0], new, columns[1])
        except ColumnError as exc:
            print(f"diff: {exc}", file=sys.stderr)
            return 2
    else:
        d = diff_runs(old, new)
    sys.stdout.write(render_diff(d))
    return 1 if d.has_regression else 0


__all__ = ["CellChange", "ColumnError", "RunDiff", "column_view", "diff_columns", "diff_runs", "main_diff",
           "render_diff"]
