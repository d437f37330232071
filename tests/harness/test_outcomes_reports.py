"""Expected-failure data files, the report model and its renderers."""
from __future__ import annotations

import json

import pytest

from harness.outcomes import CellResult, ExpectedFailureError, ExpectedFailures
from harness.report import Run, json_report, markdown
from harness.report.model import ReportSchemaError


def test_expected_failures_file_format(tmp_path):
    (tmp_path / "a.txt").write_text("# comment\nfoo::py2ts::* reason one  # trailing\n\nbar::* two words\n")
    ef = ExpectedFailures.load(tmp_path)
    assert [(e.pattern, e.reason) for e in ef.entries] == [("foo::py2ts::*", "reason one"), ("bar::*", "two words")]
    assert ef.match("foo::py2ts::x").source == "a.txt:2"
    assert ef.match("foo::ts2py::x") is None
    (tmp_path / "b.txt").write_text("lonely-id\n")
    with pytest.raises(ExpectedFailureError, match="b.txt:1"):
        ExpectedFailures.load(tmp_path)


def _cell(outcome: str, **details: object) -> CellResult:
    return CellResult(id="foo::py2ts::pt1::ts2::cpu::ours", case="foo", check="py2ts", pytorch="1", torchsharp="2",
                      device="cpu", codec="ours", outcome=outcome, reason="raw", details=dict(details))


def test_listed_failures_become_xfail_passes_become_xpass_harness_errors_stay(tmp_path):
    (tmp_path / "a.txt").write_text("foo::* known bug\n")
    ef = ExpectedFailures.load(tmp_path)
    assert ef.apply(_cell("fail")).outcome == "xfail"
    assert ef.apply(_cell("error", worker="crash")).outcome == "xfail"  # an expected TorchSharp abort
    assert ef.apply(_cell("pass")).outcome == "xpass"
    broken = ef.apply(_cell("error", harness_error=True))  # the harness broke: never absorbed
    assert (broken.outcome, broken.reason) == ("error", "raw")
    assert ef.apply(_cell("skip")).outcome == "skip"


def _run() -> Run:
    cells = [CellResult(id=f"c{i}::py2ts::pt1::ts2::cpu::ours", case=f"c{i}", check="py2ts", pytorch="1",
                        torchsharp="2", device="cpu", codec="ours", outcome=o, reason="why" if o != "pass" else "")
             for i, o in enumerate(["pass", "fail", "skip"])]
    return Run(run_id="r1", started="2026-01-01T00:00:00+00:00", provenance={"torch": "1.13.1"}, cells=cells)


def test_json_round_trip_and_schema_version():
    run = _run()
    data = json.loads(json_report.render(run))
    assert data["schema_version"] == 1
    assert data["summary"]["fail"] == 1
    assert Run.from_json(data).cells == run.cells
    data["schema_version"] = 99
    with pytest.raises(ReportSchemaError):
        Run.from_json(data)
    assert not run.ok


def test_markdown_lists_every_case_and_non_passing_reason():
    text = markdown.render(_run())
    for name in ("c0", "c1", "c2"):
        assert f"| {name} |" in text
    assert "`c1::py2ts::pt1::ts2::cpu::ours` — **fail**: why" in text
