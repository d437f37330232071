"""Running the radar's columns: the release (NuGet) once, then each managed-only ref.

The PyTorch side and the release's worker start only when some ref is to be run; each ref's
worker is closed before the next starts (one TorchSharp process at a time besides the
release's). Every column's cells land in one run, written as the usual matrix reports
(matrix.json, matrix.md, index.html, junit.xml; a failing cell's folder with its repro.sh)
beside the radar report.
"""
from __future__ import annotations

import argparse
import datetime as dt
import platform
from pathlib import Path

from harness.cases import load_catalogue
from harness.codecs import load_codec
from harness.drivers.base import Driver, PythonDriver
from harness.drivers.torchsharp import TorchSharpDriver, WorkerUnavailable
from harness.running.evidence import ReproSpec
from harness.verdicts.expectations import ExpectedFailures
from harness.radar import model as m
from harness.radar.execute import build_and_run
from harness.radar.select import Selection, select_cells
from harness.report.files import write_reports
from harness.report.model import Run
from harness.running.runner import CellRunner
from harness.running.session import close_all, start_pytorch
from harness.builds.torchsharp_source import peek_version


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(cases=tuple(args.case) if args.case else None, checks=tuple(args.check) if args.check else None)


def run_columns(args: argparse.Namespace, results: list[m.RefResult], base_tarball: Path, out: Path,
                started: dt.datetime) -> tuple[str, int]:
    """Run what is to be run; return (release version, cells per column). RuntimeError when
    the base cannot run (no release worker, no PyTorch)."""
    release = peek_version(base_tarball)
    if release == "source":
        raise RuntimeError(f"the base {base_tarball} holds no readable build/BranchInfo.props")
    catalogue = load_catalogue(Path(args.cases))
    expected = ExpectedFailures.load(Path(args.cases) / "expected_failures")
    todo = [r for r in results if not r.state and r.patch]
    if not todo:
        return release, len(select_cells(catalogue, expected, _selection(args), "any", release, "ours"))
    codec = load_codec("ours")
    (label, py), = start_pytorch([args.pytorch], codec, "ours", out / "work")
    drivers: list[Driver | Exception] = [py]
    try:
        if not isinstance(py, PythonDriver):
            raise RuntimeError(f"PyTorch {args.pytorch} cannot start: {py}")
        try:
            nuget = TorchSharpDriver(release, workdir=out / "work")
        except WorkerUnavailable as exc:
            raise RuntimeError(f"the release column TorchSharp {release} cannot start: {exc}") from exc
        drivers.append(nuget)
        cells = select_cells(catalogue, expected, _selection(args), py.capabilities.version, release, codec.name)
        run = Run(run_id=out.name, started=started.isoformat(timespec="seconds"),
                  provenance={"os": platform.platform(), "radar base": str(base_tarball)})
        runner = CellRunner(py, {release: nuget}, out / "cells", expected, repro=ReproSpec(pytorch=label))
        for cell in cells:
            run.cells.append(runner.run(cell))
        nuget.close()
        run.provenance.update(py.capabilities.provenance)
        run.provenance.update(nuget.capabilities.provenance)
        for r in todo:
            print(f"radar: {r.label} ({r.commit[:10]}): building and running {len(cells)} cells", flush=True)
            build_and_run(r, base_tarball, py, release, cells, expected, run, out, label)
            if r.column:
                run.provenance[f"TorchSharp {r.column}"] = f"{r.ref} {r.commit} onto {base_tarball.name}: {r.build}"
        write_reports(run, out)
        return release, len(cells)
    finally:
        close_all(drivers)
