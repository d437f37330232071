"""Generated architectures and contents against real TorchSharp; failures shrink into
replayable case files (shown with a deliberately broken codec, a FAKE release)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from harness.cases import load_catalogue, parse_model_case
from harness.running.plan import Cell
from harness.running.runner import CellRunner
from harness.codecs import CodecUnderTest, load_codec
from harness.drivers.pytorch import PyTorchDriver
from harness.cases.generate import EXAMPLES, model_cases, record_failure

from . import mutant_codecs

SETTINGS = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _check(runner: CellRunner, case_dict: dict[str, Any], failures: Path) -> None:
    case = parse_model_case(case_dict, "<generated>")
    version = next(iter(runner.ts))
    for check in ("py2ts", "py2ts2py"):
        result = runner.run(Cell(case, check, "host", version, "cpu", runner.py.codec_name))
        if result.outcome != "pass":
            record_failure(case_dict, f"{check}: {result.reason}", folder=failures)
            raise AssertionError(f"{case_dict['name']} {check}: {result.outcome}: {result.reason}")


@SETTINGS
@given(case_dict=model_cases())
def test_generated_cases_survive_the_round_trip(cell_runner: CellRunner, tmp_path_factory: pytest.TempPathFactory,
                                                case_dict: dict[str, Any]) -> None:
    runner = CellRunner(cell_runner.py, cell_runner.ts, tmp_path_factory.mktemp("gen"))
    _check(runner, case_dict, Path(__file__).resolve().parents[2] / "cases" / "generated")


def test_a_failure_shrinks_into_a_replayable_case_file(cell_runner: CellRunner, tmp_path: Path) -> None:
    broken = PyTorchDriver(CodecUnderTest("flipped_bit", [mutant_codecs.flipped_bit()]))
    runner = CellRunner(broken, cell_runner.ts, tmp_path / "cells")
    failures = tmp_path / "cases" / "generated"

    @SETTINGS
    @given(case_dict=model_cases())
    def prop(case_dict: dict[str, Any]) -> None:
        _check(runner, case_dict, failures)

    with pytest.raises(AssertionError):
        prop()
    written = failures / "failing_last.json"
    assert written.exists()
    # The file is a plain model case: the catalogue loads it, and it replays red with the
    # broken codec and green with ours.
    (tmp_path / "cases" / "models").mkdir()
    (tmp_path / "cases" / "optimizers").mkdir()
    (case,) = load_catalogue(tmp_path / "cases").models.values()
    assert len(case.model["children"]) == 1  # shrunk to a single layer
    replay = runner.run(Cell(case, "py2ts", "host", next(iter(runner.ts)), "cpu", "flipped_bit"))
    assert replay.outcome == "fail"
    ours = CellRunner(PyTorchDriver(load_codec("ours")), cell_runner.ts, tmp_path / "ours")
    assert ours.run(Cell(case, "py2ts", "host", next(iter(runner.ts)), "cpu", "ours")).outcome == "pass"
