"""Cell outcomes as plain data, and expected failures as data.

Renderers (harness/report/) only ever see :class:`CellResult` objects / their dicts.

Expected failures live in ``cases/expected_failures/*.txt``: one cell id (``fnmatch``
pattern allowed) and its reason a line, ``#`` starts a comment::

    lenet1::py2ts::*::ts0.107.0::cpu::upstream   upstream writes key lengths as char counts

A failing or erroring cell that matches becomes ``xfail``; a *passing* cell that matches
becomes ``xpass``, which counts as an error, so the list cannot go stale.
"""
from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = ("pass", "fail", "xfail", "xpass", "skip", "error")
BAD_OUTCOMES = frozenset({"fail", "xpass", "error"})


@dataclass
class CellResult:
    id: str
    case: str
    check: str
    pytorch: str
    torchsharp: str
    device: str
    codec: str
    outcome: str
    reason: str = ""
    features: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    evidence: str | None = None  # folder with the cell's files (kept for failing cells)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellResult:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class ExpectedFailureError(ValueError):
    """A line of cases/expected_failures/*.txt is malformed."""


@dataclass(frozen=True)
class ExpectedFailure:
    pattern: str
    reason: str
    source: str


class ExpectedFailures:
    def __init__(self, entries: list[ExpectedFailure] | None = None):
        self.entries = list(entries or [])

    @classmethod
    def load(cls, folder: Path) -> ExpectedFailures:
        entries: list[ExpectedFailure] = []
        for path in sorted(folder.glob("*.txt")):
            for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.split(None, 1)
                if len(parts) < 2:
                    raise ExpectedFailureError(f"{path}:{lineno}: a cell id needs a reason after it")
                entries.append(ExpectedFailure(parts[0], parts[1].strip(), f"{path.name}:{lineno}"))
        return cls(entries)

    def match(self, cell_id: str) -> ExpectedFailure | None:
        for e in self.entries:
            if fnmatch.fnmatchcase(cell_id, e.pattern):
                return e
        return None

    def apply(self, result: CellResult) -> CellResult:
        """Turn a raw outcome into the reported one (fail->xfail, pass->xpass)."""
        entry = self.match(result.id)
        if entry is None:
            return result
        if result.outcome == "error" and result.details.get("harness_error"):
            # The harness itself broke: that hides the cell's real outcome, so it is never
            # what a listed failure expected (only TorchSharp's crashes and timeouts can be).
            result.details["expected_failure"] = entry.source
            return result
        if result.outcome in ("fail", "error"):
            result.details["raw_outcome"] = result.outcome
            result.details["expected_failure"] = entry.source
            result.reason = f"expected: {entry.reason} | actual: {result.reason}"
            result.outcome = "xfail"
        elif result.outcome == "pass":
            result.outcome = "xpass"
            result.reason = (f"unexpected pass: listed as expected failure ({entry.source}: {entry.reason}); "
                             "remove the line if the fix is real")
        return result


def summarise(results: list[CellResult]) -> dict[str, int]:
    counts = {o: 0 for o in OUTCOMES}
    for r in results:
        counts[r.outcome] += 1
    return counts
