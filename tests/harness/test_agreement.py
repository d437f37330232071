"""The two TorchSharp drivers must agree: a pythonnet cell whose verdict differs from its C#
twin's is a harness error carrying both answers (harness/verdicts/agreement.py), in one run and across
merged shards."""
from __future__ import annotations

from pathlib import Path

from harness.verdicts.agreement import cross_check
from harness.running.merge import merge_runs
from harness.verdicts.outcomes import CellResult
from harness.report import Run
from harness.report.files import write_reports

BASE = "lenet1::py2ts::pt1.13.1::ts0.107.0::cpu::ours"
PYNET = "lenet1::py2ts::pt1.13.1::ts0.107.0@pythonnet::cpu::ours"


def _cell(cell_id: str, outcome: str, reason: str = "", **details: object) -> CellResult:
    ts = cell_id.split("::")[3][2:]
    return CellResult(id=cell_id, case="lenet1", check="py2ts", pytorch="1.13.1", torchsharp=ts, device="cpu",
                      codec="ours", outcome=outcome, reason=reason, details=dict(details))


def test_a_verdict_the_drivers_disagree_on_becomes_an_error_with_both_answers():
    csharp = _cell(BASE, "pass")
    pythonnet = _cell(PYNET, "fail", "'linear.bias': bytes differ (PyTorch sha256 0123456789ab, TorchSharp ...)")
    assert cross_check([csharp, pythonnet]) == 1
    assert (csharp.outcome, csharp.reason) == ("pass", "")  # the C# cell keeps its own verdict
    assert pythonnet.outcome == "error"
    assert pythonnet.reason == ("harness error: the TorchSharp drivers disagree: C# worker pass (no reason); "
                                "pythonnet fail ('linear.bias': bytes differ (PyTorch sha256 0123456789ab, "
                                "TorchSharp ...))")
    assert pythonnet.details["harness_error"] is True
    assert pythonnet.details["drivers_disagree"] == {
        "csharp": {"outcome": "pass", "reason": ""},
        "pythonnet": {"outcome": "fail", "reason": "'linear.bias': bytes differ (PyTorch sha256 0123456789ab, "
                                                   "TorchSharp ...)"}}


def test_a_skip_on_either_side_is_left_alone():
    for c_out, p_out in (("skip", "fail"), ("pass", "skip"), ("skip", "skip")):
        csharp, pythonnet = _cell(BASE, c_out, "c#"), _cell(PYNET, p_out, "py")
        assert cross_check([csharp, pythonnet]) == 0, (c_out, p_out)
        assert (csharp.outcome, pythonnet.outcome) == (c_out, p_out)
        assert "drivers_disagree" not in pythonnet.details and "harness_error" not in pythonnet.details


def test_verdicts_are_compared_before_expected_failures():
    # C# fails as listed (xfail), pythonnet fails with another reason (fail): both failed, they agree
    listed = _cell(BASE, "xfail", "expected: known | actual: x", raw_outcome="fail")
    other = _cell(PYNET, "fail", "failed differently than listed: ...")
    assert cross_check([listed, other]) == 0 and other.outcome == "fail"
    # an entry for the pythonnet column only: its pass is an xpass, the C# twin's a plain pass
    assert cross_check([_cell(BASE, "pass"), _cell(PYNET, "xpass", "unexpected pass")]) == 0
    # an expected failure on one side against a pass on the other is a disagreement
    passing = _cell(PYNET, "pass")
    assert cross_check([_cell(BASE, "xfail", "expected: k | actual: y", raw_outcome="fail"), passing]) == 1
    assert passing.outcome == "error" and passing.reason.startswith(
        "harness error: the TorchSharp drivers disagree: C# worker fail (expected: k | actual: y); pythonnet pass")


def test_a_second_cross_check_keeps_the_first_answer():
    cells = [_cell(BASE, "pass"), _cell(PYNET, "fail", "bytes differ")]
    assert cross_check(cells) == 1
    first = (cells[1].reason, dict(cells[1].details["drivers_disagree"]))
    assert cross_check(cells) == 0  # a merge of jobs checks again (now error vs pass): nothing changes
    assert (cells[1].reason, cells[1].details["drivers_disagree"]) == first
    assert first[1]["pythonnet"] == {"outcome": "fail", "reason": "bytes differ"}


def test_cells_without_a_twin_or_of_the_csharp_driver_are_untouched():
    alone = _cell(PYNET, "fail", "x")
    csharp_only = _cell(BASE.replace("lenet1", "two_linear"), "fail", "y")
    assert cross_check([alone, csharp_only]) == 0
    assert (alone.outcome, csharp_only.outcome) == ("fail", "fail")


def _shard(folder: Path, k: int, cell: CellResult) -> Path:
    run = Run(run_id=f"r-shard{k}of2", started=f"2026-12-05T10:0{k}:00+00:00",
              provenance={"commit": "abc", "plan": "p", "plan_cells": "2", "shards": "2", "shard": f"{k}/2",
                          "plan_index": str(k - 1)})
    run.cells = [cell]
    write_reports(run, folder / f"s{k}")
    return folder / f"s{k}" / "matrix.json"


def test_twins_in_different_shards_are_cross_checked_by_the_merge(tmp_path):
    paths = [_shard(tmp_path, 1, _cell(BASE, "pass")), _shard(tmp_path, 2, _cell(PYNET, "fail", "bytes differ"))]
    run = merge_runs(paths)
    assert [c.outcome for c in run.cells] == ["pass", "error"]
    assert run.cells[1].details["drivers_disagree"]["pythonnet"] == {"outcome": "fail", "reason": "bytes differ"}
    assert run.summary["error"] == 1 and not run.ok
