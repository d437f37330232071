"""matrix.json: the run as versioned JSON (schema in harness/report/model.py)."""
from __future__ import annotations

import json

from harness.report.model import Run


def render(run: Run) -> str:
    return json.dumps(run.to_json(), indent=2, sort_keys=False) + "\n"
