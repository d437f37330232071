"""Where the checkout's parts live (one place; every module imports these)."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "cases"
DOTNET_DIR = ROOT / "dotnet"
BUILD_DIR = Path(os.environ.get("HARNESS_BUILD_DIR", ROOT / "build"))
REPORTS_DIR = ROOT / "reports"
