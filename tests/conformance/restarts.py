"""What every TorchSharp driver must do when its process dies or hangs (test_crash.py for the
C# worker, test_pythonnet.py for the pythonnet host): the same assertions, one place."""
from __future__ import annotations

import pytest

from harness.drivers.pythonnet import PythonnetDriver
from harness.drivers.protocol import WorkerTimeout
from harness.drivers.torchsharp import TorchSharpDriver
from harness.verdicts.outcomes import CellResult
from harness.running.plan import Cell
from harness.running.runner import CellRunner

AnyDriver = TorchSharpDriver | PythonnetDriver


def assert_crash_cell_then_restart(runner: CellRunner, driver: AnyDriver, crash: Cell, after: Cell) -> CellResult:
    """``crash`` (whose process is killed meanwhile) is an error cell saying "crash:", the driver
    runs on in a new process, and ``after`` passes there. Returns the crash cell."""
    first_pid = driver.pid
    crashed = runner.run(crash)
    assert crashed.outcome == "error"
    assert crashed.reason.startswith("crash:")
    assert driver.pid != first_pid  # restarted
    later = runner.run(after)
    assert later.outcome == "pass", later.reason
    return crashed


def assert_timeout_then_restart(driver: AnyDriver) -> None:
    """A request that runs past the driver's deadline raises WorkerTimeout, and the next
    ``ensure_alive`` starts a new process (a model must be built already)."""
    first_pid = driver.pid
    with pytest.raises(WorkerTimeout):
        driver.train(steps=1_000_000, seed=0, input_shape=[64, 1, 28, 28])
    driver.ensure_alive()
    assert driver.pid != first_pid
