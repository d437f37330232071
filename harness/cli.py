"""Command line: ``python3 -m harness run | diff | build-worker | cases | finding``.

``run`` builds the worker(s) if needed, starts each once, runs every selected cell
against real TorchSharp and writes ``reports/<run>/`` (matrix.json, matrix.md,
index.html, junit.xml, cells/<failing cell>/ with a repro.sh) and ``reports/latest``.
``diff OLD NEW`` lists new failures, fixes and changed reasons. Exit status: 0 when no cell failed, errored or passed
unexpectedly; 1 otherwise; 2 for bad usage.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness.cases import Case, load_catalogue
from harness.paths import CASES_DIR
from harness.checks import CHECKS
from harness.codecs import load_codec
from harness.diff import main_diff
from harness.drivers.base import Driver, PythonDriver, TorchSharpSide
from harness.drivers.pytorch_worker import PYTORCH26_ROOT
from harness.drivers.torchsharp import DEFAULT_VERSION, WorkerUnavailable, build_worker, default_versions
from harness.expectations import ExpectedFailures
from harness.findings import add_parser as add_finding_parser
from harness.paths import REPORTS_DIR, ROOT
from harness.plan import DEVICES, Cell, make_cells
from harness.report import Run
from harness.report.files import point_latest, write_reports
from harness.report.history import HISTORY_NAME, append_history
from harness.report.readme import add_parser as add_readme_parser
from harness.runner import CellRunner
from harness.session import close_all, start_pytorch, start_torchsharp



def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def plan_run(args: argparse.Namespace, cases: list[Case], codec_name: str, out: Path,
             pythons: list[tuple[str, PythonDriver | Exception]],
             ts: dict[str, TorchSharpSide | Exception]) -> tuple[list[tuple[CellRunner, Cell]], dict[str, str]]:
    """Every selected cell with the runner of its PyTorch, and the run's provenance."""
    expected = ExpectedFailures.load(Path(args.cases) / "expected_failures")
    plan: list[tuple[CellRunner, Cell]] = []
    provenance: dict[str, str] = {"os": platform.platform(), "commit": _commit()}
    for label, py in pythons:
        runner = CellRunner(py, ts, out / "cells", expected, keep_passing=args.keep)
        if isinstance(py, PythonDriver):
            provenance.update(py.capabilities.provenance)
        else:
            provenance[f"PyTorch {label}"] = f"unavailable: {py}"
        version = py.capabilities.version if isinstance(py, PythonDriver) else label
        for cell in make_cells(cases, version, args.torchsharp, codec_name, args.check, args.device):
            if not args.k or args.k in cell.id:
                plan.append((runner, cell))
    for v, drv in ts.items():
        if isinstance(drv, Driver):
            provenance.update(drv.capabilities.provenance)
        else:
            provenance[f"TorchSharp {v}"] = f"unavailable: {drv}"
    return plan, provenance


def run_plan(plan: list[tuple[CellRunner, Cell]], run: Run) -> None:
    """Run every cell in order, one line each on the console."""
    t0 = time.monotonic()
    for i, (runner, cell) in enumerate(plan, 1):
        result = runner.run(cell)
        run.cells.append(result)
        print(f"[{i}/{len(plan)} {time.monotonic() - t0:6.1f}s pt{cell.pytorch} ts{cell.torchsharp}] "
              f"{result.outcome:5} {cell.id}"
              + (f"  -- {result.reason[:160]}" if result.outcome != "pass" else ""), flush=True)
    run.duration_s = round(time.monotonic() - t0, 2)


def cmd_run(args: argparse.Namespace) -> int:
    started = dt.datetime.now(dt.timezone.utc)
    run_id = args.run_id or started.strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) / run_id
    cases = load_catalogue(Path(args.cases)).select(args.case, args.feature)
    if not cases:
        print("no case matches the selection", file=sys.stderr)
        return 2
    codec = load_codec(args.codec)
    pythons = start_pytorch(args.pytorch, codec, args.codec, out / "work")
    ts = start_torchsharp(args.torchsharp, out / "work", dict(args.torchsharp_env))
    try:
        plan, provenance = plan_run(args, cases, codec.name, out, pythons, ts)
        run = Run(run_id=run_id, started=started.isoformat(timespec="seconds"), provenance=provenance)
        run_plan(plan, run)
    finally:
        close_all([*ts.values(), *(py for _, py in pythons)])
    write_reports(run, out)
    point_latest(Path(args.out), run_id)
    append_history(run, Path(args.out) / HISTORY_NAME, out / "matrix.json")  # one line per run: `diff last`
    s = run.summary
    print(f"{s['pass']} passed, {s['fail']} failed, {s['xfail']} xfailed, {s['xpass']} xpassed, "
          f"{s['skip']} skipped, {s['error']} errors in {run.duration_s:.1f}s -> {out}/matrix.md")
    return 0 if run.ok else 1


def cmd_build_worker(args: argparse.Namespace) -> int:
    for v in args.torchsharp:
        try:
            print(build_worker(v, force=args.force))
        except WorkerUnavailable as exc:
            print(f"TorchSharp {v}: unavailable: {exc}", file=sys.stderr)
            if not args.allow_unavailable:
                return 1
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    return main_diff(Path(args.old), Path(args.new))


def cmd_cases(args: argparse.Namespace) -> int:
    for case in load_catalogue(Path(args.cases)).all():
        print(f"{case.kind:9} {case.name:28} {','.join(case.features)}")
    return 0


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m harness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the matrix and write reports/")
    r.add_argument("--codec", default="ours", help="codec under test: ours | module | file.py | folder")
    r.add_argument("--torchsharp", action="append",
                   help="TorchSharp version(s); default: every version the NuGet feed serves plus those in "
                        "cases/torchsharp-versions.txt ('default' for just " + DEFAULT_VERSION + ")")
    r.add_argument("--pytorch", action="append", choices=("host", "2.6"),
                   help="PyTorch version(s): host (in process) and/or 2.6 (Debian 13's, in a chroot made by "
                        "scripts/setup-pytorch26.sh); default: host, plus 2.6 when its root is ready")
    r.add_argument("--torchsharp-env", action="append", type=_env_pair, default=[], metavar="NAME=VALUE",
                   help="set an environment variable in the TorchSharp worker processes only, e.g. "
                        "ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN without AVX-512 kernels; PyTorch's process is left alone)")
    r.add_argument("--case", action="append", help="only these case names")
    r.add_argument("--feature", action="append", help="only cases tagged with one of these features")
    r.add_argument("--check", action="append", choices=CHECKS, help="only these checks")
    r.add_argument("--device", action="append", choices=DEVICES, help="only these devices")
    r.add_argument("-k", help="only cells whose id contains this text")
    r.add_argument("--out", default=str(REPORTS_DIR))
    r.add_argument("--cases", default=str(CASES_DIR))
    r.add_argument("--run-id")
    r.add_argument("--keep", action="store_true", help="keep the files of passing cells too")
    r.set_defaults(func=cmd_run)
    b = sub.add_parser("build-worker", help="build the .NET worker for each TorchSharp version")
    b.add_argument("--torchsharp", action="append")
    b.add_argument("--force", action="store_true")
    b.add_argument("--allow-unavailable", action="store_true")
    b.set_defaults(func=cmd_build_worker)
    d = sub.add_parser("diff", help="compare two matrix.json files; exit 1 on a regression (the upgrade gate)")
    d.add_argument("old", help="the baseline matrix.json (or its run folder), or 'last': the run before NEW "
                               "in reports/history.jsonl")
    d.add_argument("new", help="the candidate matrix.json (or its run folder)")
    d.set_defaults(func=cmd_diff)
    c = sub.add_parser("cases", help="list the case catalogue")
    c.add_argument("--cases", default=str(CASES_DIR))
    c.set_defaults(func=cmd_cases)
    add_finding_parser(sub)  # `finding SLUG`: harness/findings.py
    add_readme_parser(sub)  # `readme-matrix MATRIX.json`: harness/report/readme.py
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        args.pytorch = args.pytorch or ["host", *(["2.6"] if (PYTORCH26_ROOT / ".harness-ready").exists() else [])]
        args.torchsharp = [DEFAULT_VERSION if v == "default" else v for v in (args.torchsharp or default_versions())]
    elif args.command == "build-worker" and args.torchsharp is None:
        args.torchsharp = [DEFAULT_VERSION]
    if args.command == "run":
        args.check = args.check or list(CHECKS)
        args.device = args.device or list(DEVICES)
    return int(args.func(args))
