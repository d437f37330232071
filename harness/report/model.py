"""A run's results as plain data: what every renderer reads and matrix.json stores.

matrix.json schema (``schema_version`` 1)::

    {"schema_version": 1, "run_id": str, "started": ISO-8601, "duration_s": float,
     "provenance": {"torch", "numpy", "python", "codec", "TorchSharp", "libtorch",
                    "dotnet", "os", "commit", ...: str},
     "summary": {"pass": n, "fail": n, "xfail": n, "xpass": n, "skip": n, "error": n},
     "cells": [{"id", "case", "check", "pytorch", "torchsharp", "device", "codec",
                "outcome": one of pass|fail|xfail|xpass|skip|error, "reason": str,
                "features": [str], "details": {...}, "duration_s": float,
                "evidence": str|null}]}
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.verdicts.outcomes import BAD_OUTCOMES, CellResult, summarise

SCHEMA_VERSION = 1


def check_rank(check: str) -> int:
    """A check's place in reports: the registry's order (harness/checks/), unknown checks
    (from another harness version's matrix.json) last."""
    from harness.checks import CHECKS  # here, not at the top: reports render without PyTorch's import cost
    return CHECKS.index(check) if check in CHECKS else len(CHECKS)


class ReportSchemaError(ValueError):
    """A matrix.json is not of a schema version this harness reads."""


@dataclass
class Run:
    run_id: str
    started: str
    provenance: dict[str, str]
    cells: list[CellResult] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def summary(self) -> dict[str, int]:
        return summarise(self.cells)

    @property
    def ok(self) -> bool:
        return not any(c.outcome in BAD_OUTCOMES for c in self.cells)

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "run_id": self.run_id, "started": self.started,
                "duration_s": self.duration_s, "provenance": self.provenance,
                "summary": self.summary, "cells": [c.to_json() for c in self.cells]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ReportSchemaError(f"matrix.json schema_version {version!r}; this harness reads {SCHEMA_VERSION}")
        return cls(run_id=data["run_id"], started=data["started"], provenance=data["provenance"],
                   cells=[CellResult.from_json(c) for c in data["cells"]], duration_s=data.get("duration_s", 0.0))

    @classmethod
    def load(cls, path: Path) -> Run:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
