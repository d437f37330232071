"""Two TorchSharp drivers must agree: the C# worker and the pythonnet host run the same cells
(TorchSharp axis "0.107.0" and "0.107.0@pythonnet"); a cell where their verdicts differ is a
harness error with both answers, since one of the two drivers misrepresents TorchSharp."""
from __future__ import annotations

from harness.verdicts.outcomes import CellResult

SUFFIX = "@pythonnet"


def _raw(c: CellResult) -> str:
    """The verdict before expected failures: pass, fail or error (xfail/xpass undone)."""
    raw = c.details.get("raw_outcome")
    if c.outcome == "xfail" and isinstance(raw, str):
        return raw
    return "pass" if c.outcome == "xpass" else c.outcome


def cross_check(cells: list[CellResult]) -> int:
    """Turn every pythonnet cell whose verdict differs from its C# sibling's into an error
    (neither skipped, neither listed as nondeterministic); return how many disagree."""
    by_id = {c.id: c for c in cells}
    disagreements = 0
    for c in cells:
        if SUFFIX not in c.torchsharp or "drivers_disagree" in c.details:
            continue
        twin = by_id.get(c.id.replace(SUFFIX, "", 1))
        if twin is None or "skip" in (c.outcome, twin.outcome):
            continue
        if c.details.get("nondeterministic") or twin.details.get("nondeterministic"):
            continue  # listed as showing in some processes only: two processes may well differ
        mine, theirs = _raw(c), _raw(twin)
        if mine != theirs:
            disagreements += 1
            c.details["drivers_disagree"] = {"csharp": {"outcome": twin.outcome, "reason": twin.reason},
                                             "pythonnet": {"outcome": c.outcome, "reason": c.reason}}
            c.details["harness_error"] = True
            # (both raw verdicts taken before the cell becomes an error, so the reason names pythonnet's own)
            c.reason = (f"harness error: the TorchSharp drivers disagree: C# worker {theirs} "
                        f"({' '.join(twin.reason.split())[:300] or 'no reason'}); pythonnet {mine} "
                        f"({' '.join(c.reason.split())[:300] or 'no reason'})")
            c.outcome = "error"
    return disagreements
