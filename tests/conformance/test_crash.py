"""A worker killed mid-run (kill -9) or stuck past its deadline yields an error cell; the
worker is restarted and the run goes on (real TorchSharp worker processes)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from harness.cases import load_catalogue
from harness.running.plan import Cell
from harness.running.runner import CellRunner
from harness.drivers.torchsharp import DEFAULT_VERSION, TorchSharpDriver
from tests.conformance.restarts import assert_crash_cell_then_restart, assert_timeout_then_restart

CAT = load_catalogue()


def _cell(case: str, check: str) -> Cell:
    return Cell(next(c for c in CAT.all() if c.name == case), check, "host", DEFAULT_VERSION, "cpu", "ours")


class KillDuringLoad(TorchSharpDriver):
    """The real worker, killed with SIGKILL right before it is asked to load a module."""

    def load_module(self, path: Path, strict: bool = True) -> None:
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        super().load_module(path, strict)


def test_kill_9_gives_a_crash_cell_and_the_run_goes_on(cell_runner: CellRunner, tmp_path: Path) -> None:
    driver = KillDuringLoad(DEFAULT_VERSION, workdir=tmp_path / "w")
    try:
        runner = CellRunner(cell_runner.py, {DEFAULT_VERSION: driver}, tmp_path / "cells")
        # ts2py does not call load_module on the worker
        assert_crash_cell_then_restart(runner, driver, _cell("lenet1", "py2ts"), _cell("lenet1", "ts2py"))
    finally:
        driver.close()


def test_a_stuck_worker_times_out_and_is_restarted(tmp_path: Path) -> None:
    driver = TorchSharpDriver(DEFAULT_VERSION, workdir=tmp_path / "w", timeout=2)
    try:
        driver.build(next(c for c in CAT.all() if c.name == "lenet1"), "cpu")
        assert_timeout_then_restart(driver)
        assert driver.call("hello")["version"]
    finally:
        driver.close()
