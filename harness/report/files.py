"""Writing a run's reports: the four renderings side by side, atomically, and reports/latest."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness.paths import ROOT
from harness.report import html, json_report, junit, markdown
from harness.report.model import Run

FINDINGS_DIR = ROOT / "docs" / "findings"


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, then rename: never a half-written report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(run: Run, out: Path) -> None:
    """matrix.json, matrix.md, index.html and junit.xml of ``run`` in ``out``."""
    write_atomic(out / "matrix.json", json_report.render(run))
    # Finding links: relative to the report inside the checkout (reports/<run>/ -> ../../docs/findings/);
    # elsewhere (a CI artifact folder) they name docs/findings/<slug>.md from the repository's root.
    inside = out.resolve().is_relative_to(ROOT)
    findings = Path(os.path.relpath(FINDINGS_DIR, out.resolve())).as_posix() + "/" if inside else markdown.FINDINGS_BASE
    write_atomic(out / "matrix.md", markdown.render(run, findings_base=findings))
    write_atomic(out / "index.html", html.render(run, report_dir=out.resolve(),
                                                 findings_dir=FINDINGS_DIR if inside else None))
    write_atomic(out / "junit.xml", junit.render(run))


def point_latest(reports: Path, run_id: str) -> None:
    """``reports/latest`` -> this run's folder."""
    latest = reports / "latest"
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        shutil.rmtree(latest)
    latest.symlink_to(run_id)
