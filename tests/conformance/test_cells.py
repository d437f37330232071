"""Every catalogue cell against real TorchSharp (the worker is built and started once)."""
from harness.running.plan import Cell
from harness.running.runner import CellRunner
from harness.running.pytest_plugin import assert_outcome


def test_cell(cell: Cell, cell_runner: CellRunner) -> None:
    assert_outcome(cell_runner.run(cell))
