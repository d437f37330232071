"""``python3 -m harness radar --repo PATH [--refs PATTERN ...] [--last N] [--base REF]``.

1. the refs matching the patterns, newest first (``--last N``: the N newest); the base
   release (``--base``, default the tag ``v<default TorchSharp version>``) as a tarball;
2. each ref prepared (harness/radar/execute.py): merge base, class, patch; a commit already
   listed under another ref is a duplicate, run once;
3. when any ref is managed-only: PyTorch and the release's NuGet worker start, the release
   column runs the plan once, then each managed-only ref is built, guarded and run;
4. reports (harness/radar/report.py) into ``<out>/<run>/`` with the matrix of every column
   (harness/report/), and a line in ``<out>/radar-history.jsonl``.

Exit status: 0 when the radar ran (whatever the refs did), 2 for bad usage or a base that
cannot run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from harness.paths import CASES_DIR, REPORTS_DIR, ROOT
from harness.radar import history
from harness.radar import model as m
from harness.radar.refs import Git, RadarGitError
from harness.radar.report import RadarRun, write

CACHE_DIR = ROOT / "build" / "radar"  # base tarballs and patches, by commit (repro.sh files name them)
DEFAULT_PATTERNS = ("refs/pull/*/head",)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("radar", help="build and run TorchSharp's pending changes (pull requests, branches) as "
                                     "columns beside the release; report what each fixes or breaks")
    r.add_argument("--repo", required=True, help="a git clone of TorchSharp (a work tree or a bare mirror; only read)")
    r.add_argument("--refs", nargs="+", action="extend", metavar="PATTERN", help="fnmatch patterns over full ref names "
                   "(default: refs/pull/*/head); e.g. 'refs/pull/*/head' 'refs/heads/main'")
    r.add_argument("--last", type=int, metavar="N", help="only the N newest refs (by their tip's commit date)")
    r.add_argument("--base", help="the base release: a tag, branch or commit (default: the tag v<default TorchSharp "
                   "version>, else the commit of the release tarball in third_party/torchsharp/)")
    r.add_argument("--pr-info", metavar="FILE", help="titles and authors of pull requests: the JSON of "
                   "`gh pr list --json number,title,author,createdAt` (default: each tip's subject and author)")
    r.add_argument("--case", action="append", help="run only these cases (default: the --quick cases plus the "
                   "cells of every finding in cases/expected_failures/)")
    r.add_argument("--check", action="append", help="run only these checks")
    r.add_argument("--pytorch", choices=("host", "2.6"), default="host", help="the PyTorch side (default: host)")
    r.add_argument("--out", default=str(REPORTS_DIR / "radar"), help="reports/radar by default")
    r.add_argument("--cases", default=str(CASES_DIR))
    r.add_argument("--run-id")
    r.set_defaults(func=cmd_radar)


def _pr_info(path: str | None) -> dict[str, dict[str, str]]:
    """``refs/pull/N/head`` -> {title, author, date} from ``gh pr list --json`` output."""
    if not path:
        return {}
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise TypeError(f"a {type(rows).__name__}, not a list")
        out = {}
        for row in rows:
            author = row.get("author") or {}
            out[f"refs/pull/{int(row['number'])}/head"] = {
                "title": str(row.get("title", "")),
                "author": str(author.get("login", "") if isinstance(author, dict) else author),
                "date": str(row.get("createdAt", ""))}
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RadarGitError(f"--pr-info {path}: expected the JSON list of `gh pr list --json "
                            f"number,title,author,createdAt`: {type(exc).__name__}: {exc}") from exc


def default_base(git: Git, version: str) -> str:
    """The tag ``v<version>`` when the clone has it, else the release commit named by the
    release tarball in third_party/torchsharp/ (``TorchSharp-<version>-<commit>.tar.gz``)."""
    tag = f"v{version}"
    try:
        git.resolve(tag)
        return tag
    except RadarGitError:
        pass
    for tarball in sorted((ROOT / "third_party" / "torchsharp").glob(f"TorchSharp-{version}-*.tar.gz")):
        return tarball.name[len(f"TorchSharp-{version}-"):-len(".tar.gz")]
    return tag


def prepare_all(git: Git, patterns: list[str], last: int | None, base: str,
                pr_info: dict[str, dict[str, str]]) -> list[m.RefResult]:
    refs = git.refs(patterns)
    if last is not None:
        refs = refs[:last]
    from harness.radar.execute import prepare  # (imports the drivers: not needed for --help)
    results: list[m.RefResult] = []
    first: dict[str, m.RefResult] = {}
    for info in refs:
        meta = pr_info.get(info.ref, {})
        if info.commit in first:  # the same commit under two refs: run once
            twin = first[info.commit]
            r = m.RefResult.from_json({**twin.to_json(), "ref": info.ref, "label": info.label,
                                       "title": meta.get("title") or info.subject})
            r.state, r.duplicate_of, r.changes, r.column, r.cells = m.DUPLICATE, twin.label, {}, None, 0
        else:
            r = prepare(git, info, base, CACHE_DIR / "patches", meta.get("title"))
            first[info.commit] = r
        if meta.get("author"):
            r.author = meta["author"]
        results.append(r)
    return results


def cmd_radar(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    started = dt.datetime.now(dt.timezone.utc)
    run_id = args.run_id or "radar-" + started.strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) / run_id
    patterns = list(args.refs or DEFAULT_PATTERNS)
    if args.last is not None and args.last < 1:
        print("radar: --last must be at least 1", file=sys.stderr)
        return 2
    try:
        from harness.drivers.torchsharp import DEFAULT_VERSION
        git = Git(Path(args.repo))
        base_name = args.base or default_base(git, DEFAULT_VERSION)
        base = git.resolve(base_name)
        results = prepare_all(git, patterns, args.last, base, _pr_info(args.pr_info))
        if not results:
            print(f"radar: no ref of {args.repo} matches {' '.join(patterns)}", file=sys.stderr)
            return 2
        base_tarball = CACHE_DIR / f"base-{base[:12]}.tar.gz"
        if not base_tarball.exists():
            git.archive(base, base_tarball)
        earlier = history.load(Path(args.out) / history.HISTORY_NAME)
    except (RadarGitError, history.RadarHistoryError) as exc:
        print(f"radar: {exc}", file=sys.stderr)
        return 2
    from harness.radar.columns import run_columns  # PyTorch and the drivers: only when there is a ref to run
    try:
        release, plan_cells = run_columns(args, results, base_tarball, out, started)
    except RuntimeError as exc:
        print(f"radar: {exc}", file=sys.stderr)
        return 2
    radar = RadarRun(run_id=run_id, started=started.isoformat(timespec="seconds"), repo=str(args.repo),
                     base=base_name, base_commit=base, release=release, patterns=patterns, plan_cells=plan_cells)
    radar.previous = history.mark_new(results, earlier)
    radar.results = results
    radar.duration_s = round(time.monotonic() - t0, 1)
    write(radar, out)
    history.append(Path(args.out) / history.HISTORY_NAME, run_id, radar.started, base, results)
    for r in results:
        flags = (f" fixes {', '.join(r.fixes_findings)}" if r.fixes_findings else "") + (
            " REGRESSION" if r.regression else "")
        print(f"{r.label:14} {r.commit[:10]} {m.STATE_TEXT.get(r.state, r.state):38} fixed {r.count('fixed'):3} "
              f"broken {r.count('broken'):3}{flags}")
    print(f"radar: {len(results)} ref(s) in {radar.duration_s:.0f} s; report {out}/radar.md (and radar.html)")
    return 0
