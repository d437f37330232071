"""The README's matrix section, written from a run by the same code as matrix.md.

``python3 -m harness readme-matrix reports/latest/matrix.json`` replaces what lies between
the two marker lines of README.md (``<!-- matrix:begin -->`` and ``<!-- matrix:end -->``)
with the run's summary table (check x implementation), the implementations that did not
run, and the findings its expected failures link. Everything outside the markers is left
byte for byte; running it twice on one run changes nothing the second time.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.paths import ROOT
from harness.report.files import write_atomic
from harness.report.markdown import findings_lines, summary_lines
from harness.report.model import ReportSchemaError, Run
from harness.report.summary import counts_text, summarise_run

BEGIN = "<!-- matrix:begin -->"
END = "<!-- matrix:end -->"
README = ROOT / "README.md"


class ReadmeMarkerError(ValueError):
    """README.md lacks the two marker lines, or has them more than once or out of order."""


def section(run: Run) -> str:
    """The text between the markers (without them), ending in a newline."""
    s = summarise_run(run)
    lines = [f"<!-- written by `python3 -m harness readme-matrix` from run {run.run_id}; "
             "edit harness/report/ (not this text) to change it -->",
             f"Run {run.run_id} ({run.started}, commit `{run.provenance.get('commit', 'unknown')}`): "
             f"{len(run.cells)} cells, {counts_text(run.summary, bold_bad=True)}.", "",
             *summary_lines(s)]
    found = findings_lines(s)
    if found:
        lines += ["", "Findings linked by the expected failures (cells per outcome, checks):", "", *found]
    return "\n".join(lines) + "\n"


def rewrite(text: str, body: str, where: str = "README.md", begin: str = BEGIN, end: str = END) -> str:
    """``text`` with the part between the marker lines (``begin``, ``end``) replaced by ``body``."""
    begins, ends = text.count(begin), text.count(end)
    if begins != 1 or ends != 1:
        raise ReadmeMarkerError(f"{where}: expected the line {begin!r} once and {end!r} once, found them "
                                f"{begins} and {ends} times")
    start, stop = text.index(begin), text.index(end)
    if stop < start:
        raise ReadmeMarkerError(f"{where}: {end!r} comes before {begin!r}")
    head = text[:start + len(begin)]
    return head + "\n" + body + text[stop:]


def cmd_readme_matrix(args: argparse.Namespace) -> int:
    readme = Path(args.readme)
    try:
        path = Path(args.matrix)
        run = Run.load(path / "matrix.json" if path.is_dir() else path)
        text = readme.read_text(encoding="utf-8")
        new = rewrite(text, section(run), str(readme))
    except (ReadmeMarkerError, ReportSchemaError) as exc:
        print(f"readme-matrix: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"readme-matrix: cannot read {args.matrix} or {readme}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if new != text:
        write_atomic(readme, new)
        print(f"{readme}: matrix section rewritten from run {run.run_id}")
    else:
        print(f"{readme}: matrix section already shows run {run.run_id}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``readme-matrix MATRIX.json [--readme README.md]``."""
    p = sub.add_parser("readme-matrix", help="rewrite README.md's matrix section (between its marker lines) "
                                             "from a run's matrix.json")
    p.add_argument("matrix", help="a matrix.json (or its run folder), e.g. reports/latest/matrix.json")
    p.add_argument("--readme", default=str(README), help="the file to rewrite (default: the checkout's README.md)")
    p.set_defaults(func=cmd_readme_matrix)
