"""The plan the radar runs for each ref: by default the ``--quick`` cases (every check) plus
the cells of every finding (the cells ``cases/expected_failures/*.toml`` list with a
``finding``), on the CPU, without the large-tensor cases (2 GiB each: a radar of 20 refs
must finish in minutes). ``--case`` / ``--check`` narrow or replace it.

The cells come from :func:`harness.running.plan.make_cells`, so any axis the plan gains reaches the
radar unchanged; a cell is selected by its id in the release column.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.cases import Case, Catalogue
from harness.checks import CHECKS
from harness.verdicts.expectations import ExpectedFailures
from harness.running.plan import Cell, make_cells

# The quick plan's cases (harness/running/matrix_run.py), kept here so this module imports no driver.
QUICK_CASES = ("lenet1", "linear_conv1d_bn1d", "model_bfloat16", "adam_two_groups", "radam_two_groups",
               "tensor_float32_vector", "tensor_bfloat16_vector")


@dataclass(frozen=True)
class Selection:
    cases: tuple[str, ...] | None = None  # None: the quick cases + every finding's cases
    checks: tuple[str, ...] | None = None  # None: every check
    findings: bool = True  # add the cells of every finding (only when cases is None)


def finding_cells(cells: Sequence[Cell], expected: ExpectedFailures) -> list[Cell]:
    """The cells an expected failure naming a finding lists (its ``when`` aside: the radar
    asks what a change does to the finding on any machine)."""
    entries = [e for e in expected.entries if e.finding]
    return [c for c in cells if any(e.matches_cell(c.id) for e in entries)]


def select_cells(catalogue: Catalogue, expected: ExpectedFailures, selection: Selection, pytorch: str,
                 column: str, codec: str, devices: Sequence[str] = ("cpu",)) -> list[Cell]:
    """The release column's cells of the radar plan, in plan order (no large-tensor case)."""
    checks = list(selection.checks or CHECKS)
    every = [c for c in catalogue.all() if "large" not in c.features]
    if selection.cases is not None:
        chosen: list[Case] = [c for c in every if c.name in selection.cases]
        return make_cells(chosen, pytorch, [column], codec, checks, devices)
    quick = {c.name for c in every if c.name in QUICK_CASES}
    all_cells = make_cells(every, pytorch, [column], codec, checks, devices)
    wanted = {c.id for c in all_cells if c.case.name in quick}
    if selection.findings:
        wanted |= {c.id for c in finding_cells(all_cells, expected)}
    return [c for c in all_cells if c.id in wanted]
