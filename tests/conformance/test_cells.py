"""Every catalogue cell against real TorchSharp (the worker is built and started once)."""
from harness.plan import Cell
from harness.runner import CellRunner
from harness.pytest_plugin import assert_outcome


def test_cell(cell: Cell, cell_runner: CellRunner) -> None:
    assert_outcome(cell_runner.run(cell))
