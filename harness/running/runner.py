"""Runs cells: one PyTorch driver, one TorchSharp driver per version, the check registry.

A cell's check raises to end it; exceptions that can end a cell say how they read as an
outcome (``as_verdict()``: a failed check, a skip, TorchSharp throwing or declining, a dead
or stuck worker, the codec under test raising). Anything else is a harness error and never
hidden as a pass. A dead or stuck worker is restarted so the run goes on.
"""
from __future__ import annotations

import os
import shutil
import time
import traceback
from collections.abc import Mapping
from pathlib import Path

from harness.cases import OptimizerCase, TensorCase
from harness.checks import REGISTRY, CheckSkipped, Context
from harness.drivers.base import Driver, PythonDriver, TorchSharpSide, model_case_of
from harness.running.memory import available_bytes
from harness.running.evidence import ReproSpec, cell_dir, keep
from harness.verdicts.expectations import ExpectedFailures, features_of
from harness.verdicts.outcomes import CellResult, Verdict
from harness.running.plan import Cell
from harness.routes import ROUTES
from harness.routes.binding import bound_route

# Cells of cases tagged "large" (tensors past 2 GiB) need this much free memory and disk,
# else they are skipped with the reason; HARNESS_SKIP_LARGE_TESTS=1 switches them off.
LARGE_MIN_MEMORY = 10 << 30
LARGE_MIN_DISK = 6 << 30


def large_cell_obstacle(workdir: Path) -> str | None:
    """Why a cell moving tensors past 2 GiB cannot run here (None: it can)."""
    if os.environ.get("HARNESS_SKIP_LARGE_TESTS") == "1":
        return "cells of 'large' cases switched off by HARNESS_SKIP_LARGE_TESTS=1"
    available = available_bytes()
    if not available:
        return "cannot tell the free memory (no /proc/meminfo) for a cell of tensors past 2 GiB"
    if available < LARGE_MIN_MEMORY:
        return (f"a cell of tensors past 2 GiB needs {LARGE_MIN_MEMORY >> 30} GiB of free memory; "
                f"{available / 2**30:.1f} GiB available")
    existing = workdir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < LARGE_MIN_DISK:
        return (f"a cell of tensors past 2 GiB needs {LARGE_MIN_DISK >> 30} GiB of free disk under {workdir}; "
                f"{free / 2**30:.1f} GiB free")
    return None


def static_obstacle(cell: Cell, py: PythonDriver | Exception, ts: TorchSharpSide | Exception | None) -> str | None:
    """Why the cell cannot run with these drivers, known before it runs (None: it can; the
    room for large cells aside). --jobs weighs such cells nothing (harness/running/plan.py)."""
    if isinstance(py, Exception):
        return f"unavailable: PyTorch {cell.pytorch}: {py}"
    if ts is None or isinstance(ts, Exception):
        return f"unavailable: TorchSharp {cell.torchsharp}: {ts}"
    drivers: tuple[Driver, ...] = (py, ts)
    for drv in drivers:
        if cell.device not in drv.capabilities.devices:
            return (f"device {cell.device!r} not available to {drv.capabilities.name} "
                    f"{drv.capabilities.version} here (no CUDA device, and no CUDA build of TorchSharp is served)")
    if isinstance(cell.case, OptimizerCase) and cell.case.optimizer_type not in ts.capabilities.optimizers:
        return f"the TorchSharp worker cannot build optimizer {cell.case.optimizer_type}"
    chk, route = REGISTRY[cell.check], ROUTES[cell.route]
    dtype = cell.case.dtype if isinstance(cell.case, TensorCase) else model_case_of(cell.case).dtype
    return chk.declined(cell.case) or chk.missing(py, ts) or route.obstacle(
        chk.needs_of_route(cell.case), py.capabilities.features, f"PyTorch {py.capabilities.version}",
        ts.capabilities.features, f"TorchSharp {cell.torchsharp}") or route.refuses_dtype(dtype)


class CellRunner:
    """Runs cells against one PyTorch driver and one TorchSharp driver per version (a driver
    that could not start is its exception: its cells are "unavailable" skips)."""

    def __init__(self, pytorch: PythonDriver | Exception, torchsharp: Mapping[str, TorchSharpSide | Exception],
                 workdir: Path, expected: ExpectedFailures | None = None, keep_passing: bool = False,
                 repro: ReproSpec | None = None, large_room: str | None = None):
        self.py = pytorch
        self.repro = repro or ReproSpec()
        self.ts = dict(torchsharp)
        self.workdir = workdir
        self.expected = expected or ExpectedFailures()
        self.keep_passing = keep_passing
        # room for large cells, measured once (``large_room``: measured by the parent of --jobs,
        # "" for room, else why not, so every job gives the verdict a serial run would)
        self._room: tuple[str | None] | None = None if large_room is None else (large_room or None,)

    def _large_room(self) -> str | None:
        """Whether this machine has room for the large-tensor cells, measured once, at the
        first of them: afterwards the run's own workers keep the memory of one large tensor for
        the next (harness/running/allocator.py), which a check per cell would count against the run,
        so the verdict would depend on what ran before it and beside it (--jobs)."""
        if os.environ.get("HARNESS_SKIP_LARGE_TESTS") == "1":
            return large_cell_obstacle(self.workdir)
        if self._room is None:
            self._room = (large_cell_obstacle(self.workdir),)
        return self._room[0]

    def _obstacle(self, cell: Cell, py: PythonDriver | Exception, ts: TorchSharpSide | Exception | None) -> str | None:
        """Why the cell cannot run with these drivers here (None: it can)."""
        obstacle = static_obstacle(cell, py, ts)
        if obstacle is None and "large" in cell.case.features:
            return self._large_room()
        return obstacle

    def run(self, cell: Cell) -> CellResult:
        result = CellResult(id=cell.id, case=cell.case.name, check=cell.check, pytorch=cell.pytorch,
                            torchsharp=cell.torchsharp, device=cell.device, codec=cell.codec, route=cell.route,
                            outcome="pass", features=list(cell.case.features))
        start = time.monotonic()
        d: Path | None = None
        py, ts = self.py, self.ts.get(cell.torchsharp)
        try:
            obstacle = self._obstacle(cell, py, ts)
            if obstacle:
                raise CheckSkipped(obstacle)
            assert not isinstance(py, Exception) and ts is not None and not isinstance(ts, Exception)  # no obstacle
            d = cell_dir(self.workdir, cell)
            with bound_route(ROUTES[cell.route], py, ts):
                REGISTRY[cell.check].run(Context(cell, py, ts, d, result.details, ROUTES[cell.route]))
        except Exception as exc:
            verdict = exc.as_verdict() if hasattr(exc, "as_verdict") else Verdict(
                "error", f"harness error: {type(exc).__name__}: {exc}",
                {"harness_error": True, "traceback": traceback.format_exc()[-3000:]})
            result.outcome, result.reason = verdict.outcome, verdict.reason
            result.details.update(verdict.details)
            if verdict.restart:
                self._restart(cell.torchsharp)
        result.duration_s = round(time.monotonic() - start, 3)
        machines = {"pytorch": getattr(getattr(py, "capabilities", None), "machine", None),
                    "torchsharp": getattr(getattr(ts, "capabilities", None), "machine", None)}
        features = features_of(machines)
        if any(e.when for e in self.expected.entries if e.matches_cell(cell.id)):  # a machine-dependent verdict
            result.details["machine_features"] = sorted(f for f in features if not f.startswith("cpu."))
        result = self.expected.apply(result, features)
        if d is not None:
            keep(d, cell, result, self.keep_passing, self.repro)
        return result

    def _restart(self, version: str) -> None:
        # the side that crashed may be either: a PyTorch worker process (PyTorch 2.6) dies too
        # (docs/findings/onednn-conv-backward-sigfpe.md), and left dead it would turn every later
        # cell of the run into "worker is not running"; alive, ensure_alive does nothing
        py = self.py
        if isinstance(py, Driver):
            try:
                py.ensure_alive()
            except Exception as exc:  # a PyTorch that cannot come back: its later cells are unavailable
                self.py = exc
        ts = self.ts.get(version)
        if not isinstance(ts, Driver):
            return
        try:
            ts.ensure_alive()
        except Exception as exc:  # a worker that cannot come back: its later cells are unavailable
            self.ts[version] = exc
