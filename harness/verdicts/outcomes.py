"""Cell outcomes as plain data.

Renderers (harness/report/) only ever see :class:`CellResult` objects / their dicts.
Expected failures (which turn a raw outcome into the reported one) are
harness/verdicts/expectations.py.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OUTCOMES = ("pass", "fail", "xfail", "xpass", "skip", "error")
BAD_OUTCOMES = frozenset({"fail", "xpass", "error"})


@dataclass
class Verdict:
    """How an exception that ends a cell reads as the cell's outcome. Exceptions that can end
    a cell say so themselves with ``as_verdict()`` (checks, worker exchanges, the codec under
    test); any other exception is a harness error. ``restart``: the worker behind it may be
    dead or stuck and must be restarted before the next cell."""

    outcome: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    restart: bool = False


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
    route: str = "dat"           # harness/routes/ (a report from before routes: every cell is "dat")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellResult:
        cell = cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        if "route" not in data and cell.id.count("::") == 5:  # written before the route axis: the dat route
            cell.id += "::dat"
        return cell


def summarise(results: list[CellResult]) -> dict[str, int]:
    counts = {o: 0 for o in OUTCOMES}
    for r in results:
        counts[r.outcome] += 1
    return counts
