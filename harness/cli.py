"""Command line: ``python3 -m harness run | diff | build-worker | cases``.

``run`` builds the worker(s) if needed, starts each once, runs every selected cell
against real TorchSharp and writes ``reports/<run>/`` (matrix.json, matrix.md,
index.html, junit.xml, cells/<failing cell>/ with a repro.sh) and ``reports/latest``.
``diff OLD NEW`` lists new failures, fixes and changed reasons. Exit status: 0 when no cell failed, errored or passed
unexpectedly; 1 otherwise; 2 for bad usage.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness.cases import CASES_DIR, load_catalogue
from harness.cells import CHECKS, DEVICES, Cell, CellRunner, make_cells
from harness.codecs import CodecUnderTest, load_codec
from harness.drivers.base import Driver, PythonDriver
from harness.drivers.pytorch import PyTorchDriver
from harness.drivers.pytorch_worker import PYTORCH26_ROOT, PyTorchUnavailable, chroot_pytorch
from harness.drivers.torchsharp import (
    DEFAULT_VERSION,
    TorchSharpDriver,
    WorkerUnavailable,
    build_worker,
    default_versions,
)
from harness.outcomes import ExpectedFailures
from harness.diff import main_diff
from harness.report import Run, html, json_report, junit, markdown

ROOT = Path(__file__).resolve().parent.parent


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, cwd=ROOT)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


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


def start_torchsharp(versions: Sequence[str], workdir: Path) -> dict[str, Driver | Exception]:
    drivers: dict[str, Driver | Exception] = {}
    for v in versions:
        try:
            drivers[v] = TorchSharpDriver(v, workdir=workdir)
        except WorkerUnavailable as exc:
            drivers[v] = exc
    return drivers


def start_pytorch(labels: Sequence[str], codec: CodecUnderTest, codec_spec: str,
                  workdir: Path) -> list[tuple[str, PythonDriver | Exception]]:
    """``host``: this interpreter's PyTorch, in process; ``2.6``: Debian 13's, in its chroot."""
    out: list[tuple[str, PythonDriver | Exception]] = []
    for label in labels:
        if label == "host":
            out.append((label, PyTorchDriver(codec)))
            continue
        try:
            if label != "2.6":
                raise PyTorchUnavailable(f"unknown PyTorch {label!r} (known: host, 2.6)")
            out.append((label, chroot_pytorch(workdir, codec_spec, codec.name)))
        except PyTorchUnavailable as exc:
            out.append((label, exc))
    return out


def cmd_run(args: argparse.Namespace) -> int:
    started = dt.datetime.now(dt.timezone.utc)
    run_id = args.run_id or started.strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) / run_id
    catalogue = load_catalogue(Path(args.cases))
    cases = catalogue.select(args.case, args.feature)
    if not cases:
        print("no case matches the selection", file=sys.stderr)
        return 2
    codec = load_codec(args.codec)
    pythons = start_pytorch(args.pytorch, codec, args.codec, out / "work")
    ts = start_torchsharp(args.torchsharp, out / "work")
    expected = ExpectedFailures.load(Path(args.cases) / "expected_failures")
    plan: list[tuple[CellRunner, Cell]] = []
    provenance: dict[str, str] = {"os": platform.platform(), "commit": _commit()}
    for label, py in pythons:
        runner = CellRunner(py, ts, out / "cells", expected, keep_passing=args.keep)
        version = py.capabilities.version if isinstance(py, PythonDriver) else label
        if isinstance(py, PythonDriver):
            provenance.update(py.capabilities.provenance)
        else:
            provenance[f"PyTorch {label}"] = f"unavailable: {py}"
        for cell in make_cells(cases, version, args.torchsharp, codec.name, args.check, args.device):
            if not args.k or args.k in cell.id:
                plan.append((runner, cell))
    for v, drv in ts.items():
        if isinstance(drv, Driver):
            provenance.update(drv.capabilities.provenance)
        else:
            provenance[f"TorchSharp {v}"] = f"unavailable: {drv}"
    run = Run(run_id=run_id, started=started.isoformat(timespec="seconds"), provenance=provenance)
    t0 = time.monotonic()
    try:
        for i, (runner, cell) in enumerate(plan, 1):
            result = runner.run(cell)
            run.cells.append(result)
            print(f"[{i}/{len(plan)} {time.monotonic() - t0:6.1f}s pt{cell.pytorch} ts{cell.torchsharp}] "
                  f"{result.outcome:5} {cell.id}"
                  + (f"  -- {result.reason[:160]}" if result.outcome != "pass" else ""), flush=True)
    finally:
        for drv in [*ts.values(), *(py for _, py in pythons)]:
            if isinstance(drv, Driver):
                drv.close()
    run.duration_s = round(time.monotonic() - t0, 2)
    write_atomic(out / "matrix.json", json_report.render(run))
    write_atomic(out / "matrix.md", markdown.render(run))
    write_atomic(out / "index.html", html.render(run, report_dir=out))
    write_atomic(out / "junit.xml", junit.render(run))
    latest = Path(args.out) / "latest"
    if latest.is_symlink() or latest.is_file():
        latest.unlink()
    elif latest.is_dir():
        shutil.rmtree(latest)
    latest.symlink_to(run_id)
    s = run.summary
    print(f"{s['pass']} passed, {s['fail']} failed, {s['xfail']} xfailed, {s['xpass']} xpassed, "
          f"{s['skip']} skipped, {s['error']} errors in {run.duration_s:.1f}s -> {out}/matrix.md")
    return 0 if run.ok else 1


def cmd_build_worker(args: argparse.Namespace) -> int:
    for v in args.torchsharp:
        try:
            print(build_worker(v, force=args.force))
            if not args.no_pythonnet:  # the pythonnet host, next to the worker (a second TorchSharp driver)
                from harness.drivers.pythonnet import build_pyhost
                print(build_pyhost(v, force=args.force))
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


def cmd_pythonnet(args: argparse.Namespace) -> int:
    from harness.drivers.pythonnet import main_pythonnet  # pythonnet: a second TorchSharp driver
    return main_pythonnet(args.script, args.args, args.torchsharp)


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
    r.add_argument("--case", action="append", help="only these case names")
    r.add_argument("--feature", action="append", help="only cases tagged with one of these features")
    r.add_argument("--check", action="append", choices=CHECKS, help="only these checks")
    r.add_argument("--device", action="append", choices=DEVICES, help="only these devices")
    r.add_argument("-k", help="only cells whose id contains this text")
    r.add_argument("--out", default=str(ROOT / "reports"))
    r.add_argument("--cases", default=str(CASES_DIR))
    r.add_argument("--run-id")
    r.add_argument("--keep", action="store_true", help="keep the files of passing cells too")
    r.set_defaults(func=cmd_run)
    b = sub.add_parser("build-worker", help="build the .NET worker for each TorchSharp version")
    b.add_argument("--torchsharp", action="append")
    b.add_argument("--force", action="store_true")
    b.add_argument("--allow-unavailable", action="store_true")
    b.add_argument("--no-pythonnet", action="store_true", help="build only the C# worker, not the pythonnet host")
    b.set_defaults(func=cmd_build_worker)
    d = sub.add_parser("diff", help="compare two matrix.json files; exit 1 on a regression (the upgrade gate)")
    d.add_argument("old", help="the baseline matrix.json (or its run folder)")
    d.add_argument("new", help="the candidate matrix.json (or its run folder)")
    d.set_defaults(func=cmd_diff)
    pn = sub.add_parser("pythonnet", help="run a Python script inside the pythonnet host, against TorchSharp")
    pn.add_argument("--torchsharp", default=DEFAULT_VERSION, help=f"TorchSharp version (default {DEFAULT_VERSION})")
    pn.add_argument("script", help="the script (it must not import torch: use TorchSharp through clr)")
    pn.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    pn.set_defaults(func=cmd_pythonnet)
    c = sub.add_parser("cases", help="list the case catalogue")
    c.add_argument("--cases", default=str(CASES_DIR))
    c.set_defaults(func=cmd_cases)
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
