"""docs/findings/README.md's table of the matrix cells each finding explains, written from the data.

The cell patterns live in one place, ``cases/expected_failures/*.toml`` (each ``[[xfail]]`` entry
names its ``finding``). ``python3 -m harness findings-readme`` replaces what lies between the
marker lines ``<!-- cells:begin -->`` and ``<!-- cells:end -->`` of docs/findings/README.md with
one row per finding: every pattern of every entry that links it, in the data's order, with the
machine features an entry holds on (``when``) and the failure it expects (``expect``).
``--check`` only compares and exits 1 when the README is stale (tests/harness/test_findings_index.py
does the same), so the table cannot drift from the data.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.verdicts.expectations import ExpectedFailure, ExpectedFailureError, ExpectedFailures
from harness.paths import ROOT
from harness.report.files import write_atomic
from harness.report.readme import ReadmeMarkerError, rewrite

BEGIN = "<!-- cells:begin -->"
END = "<!-- cells:end -->"
README = ROOT / "docs" / "findings" / "README.md"
DATA = ROOT / "cases" / "expected_failures"
UNLINKED = "(no finding)"


def _code(text: str) -> str:
    """``text`` as Markdown inline code that survives a table cell (| escaped, backticks fenced)."""
    text = text.replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _entry_text(e: ExpectedFailure) -> str:
    where = f" on {', '.join(_code(w) for w in e.when)}" if e.when else ""
    return f"{', '.join(_code(c) for c in e.cells)}{where}; expects {_code(e.expect)} ({e.source.split(':')[0]})"


def section(entries: Sequence[ExpectedFailure], docs: Path | None = None) -> str:
    """The text between the markers (without them), ending in a newline: a row per finding, in
    the order the data first names it; a finding with a report is linked to it."""
    by_finding: dict[str, list[ExpectedFailure]] = {}
    for e in entries:
        by_finding.setdefault(e.finding or UNLINKED, []).append(e)
    lines = ["<!-- written by `python3 -m harness findings-readme` from cases/expected_failures/*.toml; "
             "edit the data (not this text) -->",
             "| finding | entries: cell-id patterns, machine features they hold on, the failure they expect |",
             "|---|---|"]
    for slug, group in by_finding.items():
        linked = slug != UNLINKED and (docs is None or (docs / f"{slug}.md").exists())
        name = f"[{slug}]({slug}.md)" if linked else slug
        lines.append(f"| {name} | " + "<br>".join(_entry_text(e) for e in group) + " |")
    return "\n".join(lines) + "\n"


def render(readme_text: str, entries: Sequence[ExpectedFailure], where: str = "README.md",
           docs: Path | None = None) -> str:
    """``readme_text`` with its cells section rewritten from ``entries``."""
    return rewrite(readme_text, section(entries, docs), where, BEGIN, END)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m harness findings-readme", description=__doc__.split("\n")[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--check", action="store_true", help="only compare: exit 1 when the README is stale")
    ap.add_argument("--readme", default=str(README), help="the file (default: docs/findings/README.md)")
    ap.add_argument("--data", default=str(DATA), help="the expected-failure folder (default: cases/expected_failures)")


def run(args: argparse.Namespace) -> int:
    readme = Path(args.readme)
    try:
        entries = ExpectedFailures.load(Path(args.data)).entries
        text = readme.read_text(encoding="utf-8")
        new = render(text, entries, str(readme), readme.parent)
    except (ExpectedFailureError, ReadmeMarkerError, OSError) as exc:
        print(f"findings-readme: {exc}", file=sys.stderr)
        return 2
    if new == text:
        print(f"{readme}: the cells section matches {args.data}")
        return 0
    if args.check:
        print(f"{readme}: the cells section is stale; rewrite it with `python3 -m harness findings-readme`",
              file=sys.stderr)
        return 1
    write_atomic(readme, new)
    print(f"{readme}: cells section rewritten from {args.data}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("findings-readme", help="rewrite docs/findings/README.md's table of the cells each finding "
                                               "explains from cases/expected_failures/*.toml")
    add_arguments(p)
    p.set_defaults(func=run)


if __name__ == "__main__":
    sys.exit(main())
