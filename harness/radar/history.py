"""What earlier radar runs saw, so that a run shows what is new.

``<out>/radar-history.jsonl`` gets one line per radar run: its id, time, base and, per ref,
the commit, the state and the signature of its changes (each changed cell with its kind and
outcomes). A ref is *new* in a run unless an earlier run saw the same ref at the same
commit, in the same state, with the same cell changes; the report lists new refs first and
the rest on one line.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.radar.model import RefResult

HISTORY_NAME = "radar-history.jsonl"


class RadarHistoryError(ValueError):
    """The history file is not what a radar run writes (the message names file and line)."""


def signature(r: RefResult) -> str:
    parts = [r.state, *sorted(f"{k}:{d.id}:{d.old}->{d.new}" for k, ds in r.changes.items() for d in ds)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    runs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RadarHistoryError(f"{path}:{n}: not JSON: {exc}") from exc
        if not isinstance(entry, dict) or not isinstance(entry.get("refs"), dict):
            raise RadarHistoryError(f"{path}:{n}: not a radar run (no 'refs' table)")
        runs.append(entry)
    return runs


def mark_new(results: Sequence[RefResult], earlier: Sequence[dict[str, Any]]) -> str | None:
    """Set ``new`` on each result; return the id of the latest earlier run (None: first run)."""
    seen = {(ref, e.get("commit"), e.get("signature")) for run in earlier for ref, e in run["refs"].items()
            if isinstance(e, dict)}
    for r in results:
        r.new = (r.ref, r.commit, signature(r)) not in seen
    return str(earlier[-1].get("run_id")) if earlier else None


def append(path: Path, run_id: str, started: str, base: str, results: Sequence[RefResult]) -> None:
    entry = {"run_id": run_id, "started": started, "base": base,
             "refs": {r.ref: {"commit": r.commit, "state": r.state, "signature": signature(r),
                              "fixed": r.count("fixed"), "broken": r.count("broken")} for r in results}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
