"""``python3 -m harness run``: plan the cells, start the implementations, run, report.

The command line itself is harness/cli.py (which imports this only when ``run`` runs, so
``--help`` needs nothing installed).
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
import datetime as dt
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path


from harness.cases import Case, load_catalogue
from harness.checks import CHECKS
from harness.codecs import CodecLoadError, load_codec
from harness.routes import ROUTES
from harness.running.console import Console, speed_text
from harness.drivers.base import Driver, PythonDriver, TorchSharpSide
from harness.running.evidence import ReproSpec
from harness.verdicts.expectations import ExpectedFailures
from harness.paths import ROOT
from harness.running.merge import MergeError, merge_runs
from harness.running.plan import Cell, job_of_cells, make_cells, memory_heavy, parse_shard, plan_fingerprint, shard_of
from harness.report import Run
from harness.report.files import point_latest, write_reports
from harness.report.history import HISTORY_NAME, append_history
from harness.running.runner import CellRunner, large_cell_obstacle, static_obstacle
from harness.running import allocator, memory
from harness.verdicts.agreement import cross_check
from harness.drivers.pythonnet import start_pythonnet
from harness.running.session import close_all, start_pytorch, start_torchsharp
from harness.builds.torchsharp_source import source_columns
from harness.cases.zoo import zoo_selection

# --quick: the core cases, one of each kind, every check and axis that is available, no
# large tensors: first contact in under a minute.
QUICK_CASES = ("lenet1", "linear_conv1d_bn1d", "model_bfloat16", "adam_two_groups", "radam_two_groups",
               "tensor_float32_vector", "tensor_bfloat16_vector")


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
    provenance: dict[str, str] = {"os": platform.platform(), "commit": _commit(), "allocator": allocator.describe()}
    for label, py in pythons:
        source = str(Path(args.torchsharp_source).resolve()) if args.torchsharp_source else None
        patches = tuple(str(Path(p).resolve()) for p in args.torchsharp_patch or ())
        repro = ReproSpec(pytorch=label, codec=args.codec, cases=str(Path(args.cases).resolve()),
                          torchsharp_env=tuple(args.torchsharp_env), torchsharp_source=source,
                          torchsharp_patches=patches, torchsharp_label=args.torchsharp_label)
        runner = CellRunner(py, ts, Path(args.cells_dir) if args.cells_dir else out / "cells", expected,
                            keep_passing=args.keep, repro=repro, large_room=args.large_room)
        if isinstance(py, PythonDriver):
            provenance.update(py.capabilities.provenance)
        else:
            provenance[f"PyTorch {label}"] = f"unavailable: {py}"
        version = py.capabilities.version if isinstance(py, PythonDriver) else label
        for cell in make_cells(cases, version, list(ts), codec_name, args.check, args.device, args.route,
                               args.large_routes, args.zoo_routes):
            if not args.k or args.k in cell.id:
                plan.append((runner, cell))
    for v, drv in ts.items():
        if isinstance(drv, Driver):
            provenance.update(drv.capabilities.provenance)
        else:
            provenance[f"TorchSharp {v}"] = f"unavailable: {drv}"
    if args.shard:  # this machine's part of the plan; merge.py puts the parts back together
        k, n = parse_shard(args.shard)
        owners = (job_of_cells([c for _, c in plan], n, args.large_jobs, _will_run(pythons, ts))  # --jobs
                  if args.large_jobs
                  else [shard_of(c, n) for _, c in plan])  # --shard: the stable split for CI machines
        mine = [(i, rc) for i, rc in enumerate(plan) if owners[i] == k]
        provenance.update(plan=plan_fingerprint([c for _, c in plan]), plan_cells=str(len(plan)), shards=str(n),
                          shard=f"{k + 1}/{n}", plan_index=",".join(str(i) for i, _ in mine))
        plan = [rc for _, rc in mine]
    return plan, provenance


def _will_run(pythons: list[tuple[str, PythonDriver | Exception]],
              ts: dict[str, TorchSharpSide | Exception]) -> Callable[[Cell], bool]:
    """Whether a cell will run rather than skip for a reason known before it runs (harness/
    runner.py static_obstacle: an unavailable PyTorch, TorchSharp or device, a route that
    carries no such state, a check that declines the case): what --jobs weighs when it deals
    the plan out (harness/running/plan.py job_of_cells)."""
    by_version = {py.capabilities.version: py for _, py in pythons if isinstance(py, PythonDriver)}
    return lambda cell: static_obstacle(cell, by_version.get(cell.pytorch, _NOT_HERE), ts.get(cell.torchsharp)) is None


_NOT_HERE = LookupError("not in this run")


def run_plan(plan: list[tuple[CellRunner, Cell]], run: Run, console: Console) -> None:
    """Run every cell in order."""
    t0 = time.monotonic()
    for runner, cell in plan:
        result = runner.run(cell)
        run.cells.append(result)
        console.cell(result)
    run.duration_s = round(time.monotonic() - t0, 2)


def _child_argv(args: argparse.Namespace, k: int, n: int, run_id: str, out: Path) -> list[str]:
    """The command line of job k of n: the user's own, pinned to shard k, its own report folder,
    the cells' evidence in the run's folder (as a serial run leaves it)."""
    argv, skip = [], False
    for a in args.raw_argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in ("--jobs", "--large-jobs", "--large-room", "--run-id", "--out", "--shard", "--cells-dir"):
            skip = "=" not in a
            continue
        argv.append(a)
    return [sys.executable, "-m", "harness", *argv, "--large-jobs", str(args.large_jobs), "--jobs", "1",
            "--large-room", args.large_room or "", "--shard", f"{k}/{n}",
            "--run-id", f"{run_id}-shard{k}of{n}", "--out", str(out / "shards"), "--cells-dir", str(out / "cells")]


def run_jobs(args: argparse.Namespace, jobs: int, run_id: str, out: Path) -> int:
    """``--jobs N``: N processes, each running its part of the plan with its own workers (the
    large-tensor cells dealt over as many jobs as memory carries: harness/running/memory.py), then one
    merged report."""
    procs = []
    for k in range(1, jobs + 1):
        argv = _child_argv(args, k, jobs, run_id, out)
        procs.append(subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    where = ("the first, the zoo's big models in the last" if args.large_jobs == 1 else
             f"the first {args.large_jobs}, the zoo's big models in the last {args.large_jobs}")
    print(f"running the plan as {jobs} parallel jobs (own workers each; large-tensor cells in {where}, "
          "as memory allows)", flush=True)

    def relay(k: int, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith("reports:") and "passed," not in line:
                print(f"[job {k}] {line}", end="", flush=True)

    threads = [threading.Thread(target=relay, args=(k, p), daemon=True) for k, p in enumerate(procs, 1)]
    for t in threads:
        t.start()
    codes = [p.wait() for p in procs]
    for t in threads:
        t.join()
    if any(c not in (0, 1) for c in codes):
        print(f"a job failed (exit codes {codes}); its shard report may be missing", file=sys.stderr)
    try:
        run = merge_runs([out / "shards" / f"{run_id}-shard{k}of{jobs}" for k in range(1, jobs + 1)])
    except MergeError as exc:
        print(f"the jobs' reports cannot be merged: {exc}", file=sys.stderr)
        return 2
    run.run_id = run_id
    for key in ("shards", "plan", "plan_cells"):
        run.provenance.pop(key, None)
    write_reports(run, out)
    point_latest(Path(args.out), run_id)
    append_history(run, Path(args.out) / HISTORY_NAME, out / "matrix.json")
    s = run.summary
    large = [c for c in run.cells if "large" in c.features and c.outcome != "skip"]
    speed = speed_text(len(run.cells), len(large), sum(c.duration_s for c in large),
                       sum(c.duration_s for c in run.cells), "the cell time")
    print(f"{s['pass']} passed, {s['fail']} failed, {s['xfail']} xfailed, {s['xpass']} xpassed, {s['skip']} skipped, "
          f"{s['error']} errors in {run.duration_s:.1f}s (the longest of {jobs} jobs; cell time: {speed})")
    print(f"reports: {out}/matrix.md")
    return 3 if 3 in codes else (0 if run.ok else 1)


def cmd_run(args: argparse.Namespace) -> int:
    started = dt.datetime.now(dt.timezone.utc)
    run_id = args.run_id or started.strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) / run_id
    unknown = sorted(set(args.check or ()) - set(CHECKS))
    if unknown:
        print(f"unknown check(s) {unknown}; the checks are: {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    args.check = args.check or list(CHECKS)
    cases = load_catalogue(Path(args.cases)).select(args.case or (list(QUICK_CASES) if args.quick else None),
                                                    args.feature)
    cases = zoo_selection(cases, getattr(args, "zoo", "default"), named=bool(args.case))  # --zoo (harness/cases/zoo.py)
    if not cases:
        print("no case matches the selection", file=sys.stderr)
        return 2
    if args.shard:
        try:
            parse_shard(args.shard)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    try:  # a --codec naming nothing: one line, before any worker starts
        codec = load_codec(args.codec)
    except CodecLoadError as exc:
        print(f"--codec {args.codec}: {exc}", file=sys.stderr)
        return 2
    args.route = args.route or list(ROUTES)
    args.large_routes = args.large_routes or ["dat"]
    # the zoo's cells cost seconds each: on the dat road by default, every road with --zoo full
    args.zoo_routes = args.zoo_routes or (list(ROUTES) if getattr(args, "zoo", "default") == "full" else ["dat"])
    n_cells = len(make_cells(cases, "any", args.torchsharp, "any", args.check, args.device,
                             args.route, args.large_routes, args.zoo_routes)) * len(args.pytorch)
    jobs = args.jobs if args.jobs is not None else memory.auto_jobs(n_cells)
    if jobs > 1 and not args.shard:
        # the room for large-tensor cells, measured once here, before any job holds memory; how
        # many jobs may hold them (all of them when they will not run: they are skips)
        has_large = any("large" in c.features for c in cases)
        heavy = any(memory_heavy(c) for c in cases if "large" not in c.features)
        args.large_room = (large_cell_obstacle(out / "cells") or "") if has_large else None
        args.large_jobs = memory.large_jobs(jobs) if (has_large and not args.large_room) or heavy else jobs
        return run_jobs(args, jobs, run_id, out)
    pythons = start_pytorch(args.pytorch, codec, args.codec, out / "work")
    drivers = args.driver or ["csharp", "pythonnet"]
    ts = start_torchsharp(args.torchsharp, out / "work", dict(args.torchsharp_env)) if "csharp" in drivers else {}
    if "pythonnet" in drivers:  # the second, independent TorchSharp driver (harness/drivers/pythonnet.py)
        ts.update(start_pythonnet(args.torchsharp, out / "work", dict(args.torchsharp_env)))
    source_cols = (source_columns(args.torchsharp_source, args.torchsharp_patch, args.torchsharp_label, out / "work")
                   if args.torchsharp_source else {})  # a source build's column (harness/builds/torchsharp_source.py)
    ts.update(source_cols)
    try:
        plan, provenance = plan_run(args, cases, codec.name, out, pythons, ts)
        run = Run(run_id=run_id, started=started.isoformat(timespec="seconds"), provenance=provenance)
        console = Console(len(plan), verbose=args.verbose)
        run_plan(plan, run, console)
        cross_check(run.cells)
    finally:
        close_all([*ts.values(), *(py for _, py in pythons)])
    write_reports(run, out)
    point_latest(Path(args.out), run_id)
    if not args.shard:
        append_history(run, Path(args.out) / HISTORY_NAME, out / "matrix.json")  # one line per run: `diff last`
    console.finish(run.duration_s, f"{out}/matrix.md (also index.html, matrix.json, junit.xml)")
    if any(isinstance(v, Exception) for v in source_cols.values()):
        print(f"the TorchSharp source column is unavailable: {next(iter(source_cols.values()))}", file=sys.stderr)
        return 3  # asked for explicitly: an untested build must not pass a gate
    return 0 if run.ok else 1
