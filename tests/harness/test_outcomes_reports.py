"""Expected-failure data files, the report model and its renderers."""
from __future__ import annotations

import json

import pytest

from harness.verdicts.expectations import ExpectedFailureError, ExpectedFailures, base_cell_id
from harness.verdicts.outcomes import CellResult
from harness.report import Run, json_report, markdown
from harness.report.model import ReportSchemaError


def _write(folder, text: str) -> None:
    (folder / "a.toml").write_text(text, encoding="utf-8")


def test_expected_failures_file_format(tmp_path):
    _write(tmp_path, """
[[xfail]]
cells = ["foo::py2ts::*", "foo::ts2py::*"]
expect = "known bug"
finding = "some-finding"
reason = "reason one"

[[xfail]]
cells = "bar::*"
expect = "x"
when = ["torchsharp.onednn_avx512", "!cpu.avx512f"]
reason = "two words"
""")
    ef = ExpectedFailures.load(tmp_path)
    assert [(e.cells, e.reason, e.finding, e.when) for e in ef.entries] == [
        (("foo::py2ts::*", "foo::ts2py::*"), "reason one", "some-finding", ()),
        (("bar::*",), "two words", None, ("torchsharp.onednn_avx512", "!cpu.avx512f"))]
    assert [e.source for e in ef.matching("foo::py2ts::x")] == ["a.toml: entry 1"]
    assert ef.matching("foo::partial_load::x") == []
    assert ef.matching("bar::x") == []  # its machine condition does not hold
    assert [e.source for e in ef.matching("bar::x", {"torchsharp.onednn_avx512"})] == ["a.toml: entry 2"]
    assert ef.matching("bar::x", {"torchsharp.onednn_avx512", "cpu.avx512f"}) == []


@pytest.mark.parametrize(("text", "message"), [
    ('[[xfail]]\ncells = ["a::b"]\nreason = "r"\n', "entry 1: 'expect' is required"),
    ('[[xfail]]\ncells = ["a::b"]\nexpect = "("\nreason = "r"\n', "not a valid regex"),
    ('[[xfail]]\ncells = ["nocolons"]\nexpect = "x"\nreason = "r"\n', "fnmatch patterns over cell ids"),
    ('[[xfail]]\ncells = ["a::b"]\nexpect = "x"\nreason = "r"\nwhen = ["avx512"]\n', "machine features"),
    ('[[xfail]]\ncells = ["a::b"]\nexpect = "x"\nreason = "r"\ncause = "?"\n', "unknown key"),
    ('[[xfial]]\ncells = ["a::b"]\n', "unknown table"),
    ('[[xfail]\n', "a.toml"),
])
def test_malformed_entries_name_file_and_entry(tmp_path, text, message):
    _write(tmp_path, text)
    with pytest.raises(ExpectedFailureError, match=message):
        ExpectedFailures.load(tmp_path)


def test_old_one_line_files_are_refused_not_ignored(tmp_path):
    (tmp_path / "old.txt").write_text("foo::* reason\n")
    with pytest.raises(ExpectedFailureError, match="old one-line format"):
        ExpectedFailures.load(tmp_path)


def _cell(outcome: str, reason: str = "raw: known bug here", **details: object) -> CellResult:
    return CellResult(id="foo::py2ts::pt1::ts2::cpu::ours", case="foo", check="py2ts", pytorch="1", torchsharp="2",
                      device="cpu", codec="ours", outcome=outcome, reason=reason, details=dict(details))


def test_listed_failures_become_xfail_passes_become_xpass_harness_errors_stay(tmp_path):
    _write(tmp_path, '[[xfail]]\ncells = ["foo::*"]\nexpect = "known bug"\nfinding = "f"\nreason = "listed"\n')
    ef = ExpectedFailures.load(tmp_path)
    r = ef.apply(_cell("fail"))
    assert r.outcome == "xfail" and r.details["raw_outcome"] == "fail"
    assert r.reason == "expected (finding f): listed | actual: raw: known bug here"
    assert ef.apply(_cell("error", worker="crash")).outcome == "xfail"  # an expected TorchSharp abort
    assert ef.apply(_cell("pass")).outcome == "xpass"
    broken = ef.apply(_cell("error", harness_error=True))  # the harness broke: never absorbed
    assert (broken.outcome, broken.reason) == ("error", "raw: known bug here")
    assert ef.apply(_cell("skip")).outcome == "skip"


def test_a_listed_cell_failing_differently_is_a_fail(tmp_path):
    _write(tmp_path, '[[xfail]]\ncells = ["foo::*"]\nexpect = "^known bug"\nreason = "listed"\n')
    r = ExpectedFailures.load(tmp_path).apply(_cell("fail", reason="a new regression"))
    assert r.outcome == "fail"
    assert r.reason == ("failed differently than listed: expected a.toml: entry 1: /^known bug/, "
                        "got: a new regression")
    assert r.details["expected_failure"][0]["expect"] == "^known bug"


def test_machine_conditioned_entries_apply_only_on_that_machine(tmp_path):
    _write(tmp_path, '[[xfail]]\ncells = ["foo::*"]\nexpect = "wrong"\nwhen = ["torchsharp.onednn_avx512"]\n'
                     'reason = "AVX-512 only"\n')
    ef = ExpectedFailures.load(tmp_path)
    assert ef.apply(_cell("fail", reason="TorchSharp is wrong"), {"torchsharp.onednn_avx512"}).outcome == "xfail"
    assert ef.apply(_cell("fail", reason="TorchSharp is wrong"), set()).outcome == "fail"
    assert ef.apply(_cell("pass"), set()).outcome == "pass"  # the AVX2 machine: a plain pass
    assert ef.apply(_cell("pass"), {"torchsharp.onednn_avx512"}).outcome == "xpass"


def test_a_build_label_matches_by_the_version_it_was_built_from(tmp_path):
    _write(tmp_path, '[[xfail]]\ncells = ["foo::*::ts2::*"]\nexpect = "."\nreason = "r"\n')
    c = _cell("pass")
    c.id = "foo::py2ts::pt1::ts2+radam-fix::cpu::ours"
    assert ExpectedFailures.load(tmp_path).apply(c).outcome == "xpass"


def test_a_pythonnet_cell_matches_the_entries_of_its_version(tmp_path):
    _write(tmp_path, '[[xfail]]\ncells = ["foo::*::ts2::*"]\nexpect = "known bug"\nreason = "r"\n')
    assert base_cell_id("foo::py2ts::pt1::ts2@pythonnet::cpu::ours") == "foo::py2ts::pt1::ts2::cpu::ours"
    assert base_cell_id("foo::py2ts::pt1::ts2+fix@pythonnet::cpu::ours") == "foo::py2ts::pt1::ts2::cpu::ours"
    c = _cell("fail")
    c.id, c.torchsharp = "foo::py2ts::pt1::ts2@pythonnet::cpu::ours", "2@pythonnet"
    r = ExpectedFailures.load(tmp_path).apply(c)
    assert (r.outcome, r.details["raw_outcome"]) == ("xfail", "fail")


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


def test_markdown_lists_cases_that_did_not_pass_and_their_reasons():
    text = markdown.render(_run())
    # the grid shows only cases with a cell that did not pass (c0 passed everything)
    for name in ("c1", "c2"):
        assert f"| {name} |" in text
    assert "| c0 |" not in text
    assert "(2 of 3; every other case passed every check)" in text
    assert "| 1 | why | py2ts |" in text  # the skip, counted by reason
    assert "`c1::py2ts::pt1::ts2::cpu::ours` — **fail**: why" in text
