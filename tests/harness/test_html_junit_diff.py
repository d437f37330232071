"""The HTML and JUnit renderers and the run diff, over small hand-made runs."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from harness.verdicts.diff import diff_runs, main_diff, render_diff
from harness.verdicts.outcomes import CellResult
from harness.report import Run, json_report
from harness.report import html as html_report
from harness.report import junit

SCRIPT = "<script>alert('x')</script>"


def _cell(case: str, outcome: str, reason: str = "", check: str = "py2ts", features: list[str] | None = None,
          evidence: str | None = None, details: dict | None = None) -> CellResult:
    return CellResult(id=f"{case}::{check}::pt1.13.1::ts0.107.0::cpu::ours", case=case, check=check,
                      pytorch="1.13.1", torchsharp="0.107.0", device="cpu", codec="ours", outcome=outcome,
                      reason=reason, features=features if features is not None else ["linear"],
                      details=details or {}, duration_s=0.25, evidence=evidence)


def _run(cells: list[CellResult], run_id: str = "r1") -> Run:
    return Run(run_id=run_id, started="2026-01-01T00:00:00+00:00", duration_s=3.5,
               provenance={"torch": "1.13.1", "TorchSharp": "0.107.0", "commit": "abc<def>"}, cells=cells)


def _mixed() -> Run:
    return _run([
        _cell("lenet", "pass", features=["conv", "linear"]),
        _cell("lenet", "fail", "digest mismatch " + SCRIPT, check="ts2py", features=["conv", "linear"],
              evidence="/abs/reports/r1/cells/lenet_ts2py", details={"tensor": "w", "note": "<b>"}),
        _cell("bn", "error", "worker died", features=["batchnorm"]),
        _cell("adam", "xfail", "upstream bug", features=["optimizer"]),
        _cell("sgd", "xpass", "unexpected pass", features=["optimizer"]),
        _cell("gpu", "skip", "no CUDA", features=[]),
    ])


# --- HTML -------------------------------------------------------------------------------

class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")


def _parse(text: str) -> _Collector:
    p = _Collector()
    p.feed(text)
    return p


def test_html_lists_every_case_and_links_red_cells_to_evidence():
    run = _mixed()
    text = html_report.render(run)
    assert text.startswith("<!DOCTYPE html>")
    page = _parse(text)
    for case in ("lenet", "bn", "adam", "sgd", "gpu"):
        assert f'<td class="case">{case}</td>' in text
    for cell in run.cells:
        target = html_report.anchor(cell.id)
        if cell.outcome in ("pass", "skip"):  # a skip's reason is its title and in the skips by reason
            assert target not in page.ids
        else:
            assert target in page.ids, cell.outcome
            assert "#" + target in page.hrefs
    # the evidence folder of a cell inside the run's folder is linked relative to the report
    assert "cells/lenet_ts2py" in page.hrefs
    assert "/abs/reports/r1/cells/lenet_ts2py" in text
    # details are compact JSON, features tag each row, provenance and summary are there
    assert "&quot;tensor&quot;:&quot;w&quot;" in text
    assert 'data-features="conv linear"' in text
    assert "abc&lt;def&gt;" in text
    assert '<span class="badge fail">1 fail</span>' in text
    # self-contained: nothing is fetched from elsewhere
    assert "<link" not in text and "src=" not in text and "http" not in text


def test_html_escapes_everything():
    text = html_report.render(_mixed())
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "&lt;b&gt;" in text
    # the only script element is the page's own filter
    assert text.count("<script>") == 1
    evil = _run([_cell('x"><img onerror=1>', "fail", "r", features=['f"><i>'])])
    page = html_report.render(evil)
    assert "<img" not in page and "<i>" not in page


def test_html_by_feature_counts():
    text = html_report.render(_mixed())
    by_feature = text[text.index('<table id="by-feature">'):]
    by_feature = by_feature[:by_feature.index("</table>")]
    # optimizer: 0 pass, 0 fail, 1 xfail, 1 xpass, 0 skip, 0 error, 2 cells
    row = by_feature[by_feature.index("<td>optimizer</td>"):]
    row = row[:row.index("</tr>")]
    assert [int(td.rsplit(">", 1)[1]) for td in row.split("</td>")[1:-1]] == [0, 0, 1, 1, 0, 0, 2]
    assert "<td>(no feature)</td>" in by_feature
    assert "<td>conv</td>" in by_feature and "<td>batchnorm</td>" in by_feature


def test_html_evidence_links():
    assert html_report.evidence_href("/x/reports/r9/cells/a_b", "r9") == "cells/a_b"
    assert html_report.evidence_href("cells/a b", "r9") == "cells/a%20b"
    assert html_report.evidence_href("/elsewhere/a", "r9") == "file:///elsewhere/a"
    assert html_report.evidence_href("javascript:alert(1)", "r9").startswith("javascript%3A")
    from pathlib import Path
    assert html_report.evidence_href("/x/out/cells/c", "r9", report_dir=Path("/x/out")) == "cells/c"


def test_html_all_pass_and_empty_runs_render():
    assert "Every cell passed." in html_report.render(_run([_cell("a", "pass")]))
    empty = html_report.render(_run([]))
    assert "Every cell passed." in empty and "</html>" in empty


# --- JUnit ------------------------------------------------------------------------------

def test_junit_counts_and_structure():
    run = _mixed()
    root = ET.fromstring(junit.render(run).encode("utf-8"))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(run.cells) == int(suite.get("tests", "-1"))
    assert int(suite.get("failures", "-1")) == 2  # fail + xpass
    assert int(suite.get("errors", "-1")) == 1
    assert int(suite.get("skipped", "-1")) == 2  # skip + xfail
    assert root.get("failures") == suite.get("failures")
    assert sum(tc.find("failure") is not None for tc in cases) == 2
    assert sum(tc.find("error") is not None for tc in cases) == 1
    assert sum(tc.find("skipped") is not None for tc in cases) == 2
    first = cases[0]
    assert first.get("classname") == "lenet"
    assert first.get("name") == "py2ts::pt1.13.1::ts0.107.0::cpu::ours"
    assert first.get("time") == "0.250"
    by_case = {tc.get("classname"): tc for tc in cases if tc.get("classname") in ("adam", "sgd")}
    skipped = by_case["adam"].find("skipped")
    assert skipped is not None and skipped.get("message") == "expected failure: upstream bug"
    failure = by_case["sgd"].find("failure")
    assert failure is not None and failure.get("type") == "xpass"
    red = cases[1].find("failure")
    assert red is not None and red.get("message") == "digest mismatch " + SCRIPT
    assert "evidence: /abs/reports/r1/cells/lenet_ts2py" in (red.text or "")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["torch"] == "1.13.1" and props["run_id"] == "r1"


def test_junit_survives_characters_xml_cannot_hold():
    run = _run([_cell("a", "fail", "nul\x00 and bell\x07 and é")])
    root = ET.fromstring(junit.render(run).encode("utf-8"))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and "é" in (failure.get("message") or "")


# --- diff -------------------------------------------------------------------------------

def _write(tmp_path, name: str, run: Run):
    path = tmp_path / f"{name}.json"
    path.write_text(json_report.render(run), encoding="utf-8")
    return path


def test_diff_flags_a_regression(tmp_path, capsys):
    old = _run([_cell("a", "pass"), _cell("b", "xfail", "known"), _cell("c", "skip", "no gpu")], "old")
    new = _run([_cell("a", "fail", "digest mismatch"), _cell("b", "xpass", "unexpected pass"),
                _cell("c", "error", "crash")], "new")
    d = diff_runs(old, new)
    assert [c.id.split("::")[0] for c in d.regressions] == ["a", "b", "c"]
    assert d.has_regression and not d.fixes
    assert main_diff(_write(tmp_path, "old", old), _write(tmp_path, "new", new)) == 1
    out = capsys.readouterr().out
    assert "**REGRESSION**" in out and "## New failures (regressions)" in out
    assert "pass -> fail — digest mismatch" in out


def test_diff_fix_only_is_not_a_regression(tmp_path, capsys):
    old = _run([_cell("a", "fail", "bad"), _cell("b", "error", "crash"), _cell("c", "xfail", "known"),
                _cell("d", "pass")], "old")
    new = _run([_cell("a", "pass"), _cell("b", "pass"), _cell("c", "pass"), _cell("d", "pass")], "new")
    d = diff_runs(old, new)
    assert len(d.fixes) == 3 and not d.regressions and not d.changed_reasons
    assert main_diff(_write(tmp_path, "old", old), _write(tmp_path, "new", new)) == 0
    out = capsys.readouterr().out
    assert "No regression." in out and "## Fixes" in out and "was: crash" in out


def test_diff_changed_reasons_lost_coverage_added_removed(tmp_path):
    old = _run([_cell("a", "fail", "reason one"), _cell("b", "pass"), _cell("gone", "pass"),
                _cell("e", "fail", "x")], "old")
    new = _run([_cell("a", "fail", "reason two"), _cell("b", "skip", "no gpu"), _cell("ok", "pass"),
                _cell("bad", "error", "boom"), _cell("e", "error", "y")], "new")
    d = diff_runs(old, new)
    assert [(c.old_reason, c.new_reason) for c in d.changed_reasons] == [("reason one", "reason two")]
    assert [(c.old_outcome, c.new_outcome) for c in d.lost_coverage] == [("pass", "skip")]
    assert [(c.old_outcome, c.new_outcome) for c in d.other_changes] == [("fail", "error")]
    assert [c.case for c in d.added] == ["ok", "bad"]
    assert [c.case for c in d.removed] == ["gone"]
    # a new cell that is bad is a regression; pass -> skip is not
    assert [(c.id.split("::")[0], c.old_outcome) for c in d.regressions] == [("bad", None)]
    text = render_diff(d)
    for title in ("## Changed reasons", "## Lost coverage (now skipped)", "## Cells added", "## Cells removed",
                  "## Other outcome changes"):
        assert title in text
    assert "(new cell) -> error" in text
    # without the bad new cell, lost coverage and changed reasons alone exit 0
    new.cells = [c for c in new.cells if c.case != "bad"]
    assert main_diff(_write(tmp_path, "old", old), _write(tmp_path, "new", new)) == 0


def test_diff_identical_runs_and_unreadable_files(tmp_path, capsys):
    run = _mixed()
    path = _write(tmp_path, "same", run)
    assert main_diff(path, path) == 0
    assert "0 regressions" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**run.to_json(), "schema_version": 99}))
    assert main_diff(path, bad) == 2
    assert "schema_version" in capsys.readouterr().err
    assert main_diff(path, tmp_path / "missing.json") == 2
    # a run folder holding matrix.json works too
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "matrix.json").write_text(json_report.render(run))
    assert main_diff(tmp_path / "r", path) == 0


@pytest.mark.parametrize("renderer", [html_report.render, junit.render])
def test_renderers_are_pure(renderer):
    run = _mixed()
    before = json.dumps(run.to_json())
    assert renderer(run) == renderer(run)
    assert json.dumps(run.to_json()) == before


def test_html_puts_implementations_that_ran_first_newest_torchsharp_first():
    def cell(ts: str, device: str, outcome: str) -> CellResult:
        c = _cell("lenet", outcome)
        c.torchsharp, c.device = ts, device
        c.id = f"lenet::py2ts::pt1.13.1::ts{ts}::{device}::ours"
        return c
    run = _run([cell("0.9.0", "cpu", "skip"), cell("0.99.0", "cpu", "pass"), cell("0.107.0", "cpu", "pass"),
                cell("0.107.0", "cuda", "fail")])
    text = html_report.render(run)
    heads = [text.index(f"TorchSharp {v}") for v in ("0.107.0", "0.99.0", "0.9.0")]
    assert heads == sorted(heads), "newest first, and the all-skipped 0.9.0 last"
    assert text.index("cpu") < text.index("cuda")
