"""The published renderings of a run shaped like the default one, the README's matrix section
and the run history.

The synthetic run is built from CellResult objects (no real run): 2 PyTorch x 2 TorchSharp
x 2 devices x 13 checks = 104 columns over 40 cases, ~4,000 cells; TorchSharp 0.106.0 is
unavailable and CUDA has no device, so 6 of the 8 implementations skip every cell, as in the
default run on this machine.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from harness.verdicts.diff import main_diff
from harness.verdicts.outcomes import CellResult
from harness.report import Run, html, junit, markdown
from harness.report.files import FINDINGS_DIR, write_reports
from harness.report.history import HistoryError, append_history, previous_matrix, read_history
from harness.report.readme import BEGIN, END, ReadmeMarkerError, rewrite, section
from harness.report.summary import summarise_run

CHECKS = ("py2ts", "py2ts2py", "ts2py", "functional", "jit_py2ts", "jit_ts2py", "partial_load", "fresh_init",
          "view_load", "continue_py2ts", "continue_ts2py", "tensor_py2ts", "tensor_ts2py")
PYTORCH = ("1.13.1", "2.6.0")
TORCHSHARP = ("0.107.0", "0.106.0")
DEVICES = ("cpu", "cuda")
CASES = [f"case_number_{i:02d}_{['linear', 'conv', 'adam', 'lstm'][i % 4]}" for i in range(40)]
FINDINGS = ("radam-lr-applied-twice", "sequential-own-buffer-dropped", "bf16-avx512-conv")
UNAVAILABLE = ("unavailable: TorchSharp 0.106.0: TorchSharp 0.106.0 (LibTorch 2.9.0) is not served by the NuGet "
               "feed: /work/x/dotnet/Worker/Worker.csproj : error NU1102: Unable to find package TorchSharp with "
               "version (= 0.106.0) " + "- Found 42 version(s) in nuget.org " * 12)
ENTRY_REASON = ("TorchSharp's RAdam applies lr twice in its rectified branch (src/TorchSharp/Optimizers/RAdam.cs:"
                "176-182); both sides agree bitwise with the float64 reference otherwise. " * 3)
PROVENANCE = {"os": "Linux-6.18", "commit": "abc1234", "torch": "1.13.1", "TorchSharp": "0.107.0",
              "libtorch": "2.10.0.0", "codec": "ours 0.2.0",
              "PyTorch 1.13.1 cpu": "AMD EPYC", "PyTorch 1.13.1 cpu_flags": "avx avx2 avx512f",
              "PyTorch 1.13.1 onednn_isa": "AVX512_CORE_BF16 (no cap)", "PyTorch 1.13.1 threads": "1",
              "PyTorch 2.6.0 cpu (PyTorch 2.6.0 worker)": "AMD EPYC",
              "PyTorch 2.6.0 onednn_isa (PyTorch 2.6.0 worker)": "AVX512_CORE_BF16 (no cap)",
              "PyTorch 2.6.0 threads (PyTorch 2.6.0 worker)": "1",
              "TorchSharp 0.107.0 cpu": "AMD EPYC", "TorchSharp 0.107.0 onednn_isa": "AVX2 (capped)",
              "TorchSharp 0.107.0 threads": "2", "TorchSharp 0.106.0": UNAVAILABLE}


def _outcome(case_index: int, check_index: int, pytorch: str) -> str:
    if (case_index, check_index) == (3, 3) and pytorch == "1.13.1":
        return "fail"
    if case_index % 7 == 0 and check_index < 8:
        return "xfail"
    if check_index == 7 and case_index % 3:
        return "skip"
    return "pass"


def default_shaped_run(run_id: str = "big") -> Run:
    cells = []
    for pt in PYTORCH:
        for ts in TORCHSHARP:
            for dev in DEVICES:
                for ci, case in enumerate(CASES):
                    for ki, check in enumerate(CHECKS):
                        cid = f"{case}::{check}::pt{pt}::ts{ts}::{dev}::ours"
                        cell = CellResult(id=cid, case=case, check=check, pytorch=pt, torchsharp=ts, device=dev,
                                          codec="ours", outcome="skip", features=["linear", "tanh", "optimizer"],
                                          details={"tensors": 6, "torchsharp_order_matches": True},
                                          duration_s=0.25)
                        if ts == "0.106.0":
                            cell.reason, cell.details = UNAVAILABLE, {}
                        elif dev == "cuda":
                            cell.reason, cell.details = (f"device 'cuda' not available to PyTorch {pt} here (no CUDA "
                                                         "device, and no CUDA build of TorchSharp is served)"), {}
                        else:
                            cell.outcome = _outcome(ci, ki, pt)
                            if cell.outcome == "skip":
                                cell.reason = "no state tensor has a seed-independent initial value"
                            elif cell.outcome == "xfail":
                                slug = FINDINGS[ci % len(FINDINGS)]
                                cell.reason = (f"expected (finding {slug}): {ENTRY_REASON} | actual: after 3 more "
                                               "steps PyTorch and TorchSharp disagree: " + "state[0].x: 1 ULP; " * 30)
                                cell.details = {"stack": "   at TorchSharp.Module.load()\n" * 80,
                                                "raw_outcome": "fail",
                                                "expected_failure": {"source": "torchsharp-0.107.0.toml: entry 1",
                                                                     "cells": [f"{case}::*"], "expect": "disagree",
                                                                     "reason": ENTRY_REASON, "finding": slug,
                                                                     "when": []}}
                                cell.evidence = f"/work/reports/{run_id}/cells/{case}_{check}"
                            elif cell.outcome == "fail":
                                cell.reason = "outputs for the same input differ by 31728 ULP (tolerance 256)"
                                cell.details = {"max_ulp": 31728.0}
                                cell.evidence = f"/work/reports/{run_id}/cells/{case}_{check}"
                        cells.append(cell)
    return Run(run_id=run_id, started="2026-12-02T14:00:00+00:00", provenance=dict(PROVENANCE), cells=cells,
               duration_s=202.5)


@pytest.fixture(scope="module")
def big() -> Run:
    return default_shaped_run()


def test_the_synthetic_run_is_shaped_like_the_default_one(big: Run):
    assert 4000 <= len(big.cells) <= 4300
    assert len({(c.check, c.pytorch, c.torchsharp, c.device, c.codec) for c in big.cells}) == 104
    # its matrix.json is as heavy as the default run's (MBs): the limits below are not trivially met
    assert len(json.dumps(big.to_json())) > 2_000_000


def test_default_shaped_reports_stay_within_their_size_limits(big: Run, tmp_path: Path):
    out = tmp_path / "reports" / big.run_id
    write_reports(big, out)
    assert (out / "matrix.md").stat().st_size <= 100_000
    assert (out / "index.html").stat().st_size <= 1_000_000
    assert (out / "junit.xml").stat().st_size <= 1_500_000
    # matrix.json stays complete: every cell with every detail
    assert Run.load(out / "matrix.json").cells == big.cells
    root = ET.parse(out / "junit.xml").getroot()
    assert int(root.get("tests", "0")) == len(big.cells)


def test_summary_counts_per_check_and_implementation(big: Run):
    s = summarise_run(big)
    assert s.ran == [("1.13.1", "0.107.0", "cpu", "ours", "dat"), ("2.6.0", "0.107.0", "cpu", "ours", "dat")]
    assert [s.labels[i] for i in s.ran] == ["PyTorch 1.13 / TorchSharp 0.107.0", "PyTorch 2.6 / TorchSharp 0.107.0"]
    for (check, impl), counts in s.table.items():
        expected: dict[str, int] = dict.fromkeys(counts, 0)
        for ci in range(len(CASES)):
            expected[_outcome(ci, CHECKS.index(check), impl[0])] += 1
        assert counts == expected, (check, impl)
    text = markdown.render(big)
    table = text[text.index("| check |"):]
    table = table[:table.index("\n\n")].splitlines()
    assert table[0] == "| check | PyTorch 1.13 / TorchSharp 0.107.0 | PyTorch 2.6 / TorchSharp 0.107.0 |"
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in table[2:]}
    # py2ts..partial_load have identical counts per column except functional (one fail under 1.13)
    assert rows["functional"] == ["33 pass, **1 fail**, 6 xfail", "34 pass, 6 xfail |"]
    assert rows["fresh_init"] == ["12 pass, 6 xfail, 22 skip", "12 pass, 6 xfail, 22 skip |"]
    assert rows["view_load / continue_py2ts / continue_ts2py / tensor_py2ts / tensor_ts2py"] == [
        "40 pass (each)", "40 pass (each) |"]
    total_113 = sum(1 for c in big.cells if c.pytorch == "1.13.1" and c.torchsharp == "0.107.0"
                    and c.device == "cpu" and c.outcome == "pass")
    assert rows["**all checks**"][0].startswith(f"{total_113} pass, **1 fail**, ")


def test_all_skip_implementations_collapse_to_one_line_each(big: Run):
    text = markdown.render(big)
    lines = [line for line in text.splitlines() if line.startswith(("- TorchSharp 0.106.0:", "- CUDA:"))]
    assert len(lines) == 2
    assert lines[0].startswith("- TorchSharp 0.106.0: not run, 2080 cells skipped over 4 implementations — "
                               "unavailable: TorchSharp 0.106.0: TorchSharp 0.106.0 (LibTorch 2.9.0) is not served "
                               "by the NuGet feed")
    assert "/work/x" not in lines[0]  # the build log's path stays in matrix.json
    assert lines[1].startswith("- CUDA: not run, 1040 cells skipped over 2 implementations — device 'cuda'")
    # no all-skip column anywhere in the tables, and no per-cell line for their skips
    assert "::cuda::" not in text and "::ts0.106.0::" not in text
    assert "/ TorchSharp 0.106.0" not in text and "| cuda |" not in text
    page = html.render(big)
    assert "::ts0.106.0::" not in page and "TorchSharp 0.106.0 ·" not in page
    assert page.count('<li class="skip">') == 2


def test_machine_provenance_is_near_the_top(big: Run):
    text = markdown.render(big)
    machine = text.index("| worker | CPU | oneDNN ISA | threads |")
    assert machine < text.index("## Summary")
    assert "| TorchSharp 0.107.0 | AMD EPYC | AVX2 (capped) | 2 |" in text
    assert "| PyTorch 2.6.0 | AMD EPYC | AVX512_CORE_BF16 (no cap) | 1 |" in text
    page = html.render(big)
    assert page.index('<table id="machine">') < page.index('<table id="matrix">')


def test_every_cell_that_did_not_pass_is_listed_with_its_finding(big: Run, tmp_path: Path):
    text = markdown.render(big)
    red = text.index("## Cells that failed, errored or passed unexpectedly")
    xfails = text.index("## Expected failures, by finding")
    skips = text.index("## Skips, by reason")
    assert red < xfails < skips
    assert "`case_number_03_lstm::functional::pt1.13.1::ts0.107.0::cpu::ours` — **fail**" in text[red:xfails]
    for c in big.cells:
        if c.outcome == "xfail":
            assert f"- `{c.id}`: " in text[xfails:skips]
    for slug in FINDINGS:
        assert f"### [{slug}](docs/findings/{slug}.md) — " in text
    # skips are counted by reason, not listed per cell
    assert "| 44 | no state tensor has a seed-independent initial value | fresh_init |" in text[skips:]
    assert (FINDINGS_DIR / "radam-lr-applied-twice.md").is_file()


def test_finding_links_resolve_from_reports_inside_the_checkout(big: Run, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch):
    from harness.report import files
    checkout = tmp_path / "checkout"
    monkeypatch.setattr(files, "ROOT", checkout)
    monkeypatch.setattr(files, "FINDINGS_DIR", checkout / "docs" / "findings")
    out = checkout / "reports" / big.run_id
    write_reports(big, out)
    for name in ("matrix.md", "index.html"):
        written = (out / name).read_text(encoding="utf-8")
        link = re.search(r"([^(\"]*radam-lr-applied-twice\.md)", written)
        assert link is not None and link.group(1) == "../../docs/findings/radam-lr-applied-twice.md", name
    # outside the checkout (a CI artifact folder) they name the file from the repository's root
    write_reports(big, tmp_path / "elsewhere")
    assert "](docs/findings/radam-lr-applied-twice.md)" in (tmp_path / "elsewhere" / "matrix.md").read_text()


def test_html_summary_on_top_and_details_folded(big: Run):
    page = html.render(big)
    assert page.index('<table id="summary-table">') < page.index('<table id="matrix">')
    assert "<details open" not in page
    assert page.count("<details>") == sum(1 for c in big.cells if c.outcome in ("xfail", "fail"))
    assert "at TorchSharp.Module.load()" not in page  # a stack is left to matrix.json
    assert 'href="docs/findings/radam-lr-applied-twice.md"' in page


def test_junit_skips_carry_a_short_message_only(big: Run):
    root = ET.fromstring(junit.render(big).encode("utf-8"))
    skipped = root.findall(".//skipped")
    assert len(skipped) == sum(1 for c in big.cells if c.outcome in ("skip", "xfail"))
    assert all(len(s.get("message", "")) <= junit.SKIP_MESSAGE_LIMIT for s in skipped)
    assert root.find(".//failure") is not None


# --- README ----------------------------------------------------------------------------

README = f"""# Title

Some text a person wrote, with a table of its own:

| a | b |
|---|---|

## The current matrix

{BEGIN}
| typed | by hand |
{END}

More text after.
"""


def test_readme_rewrite_is_idempotent_and_leaves_the_rest(big: Run):
    once = rewrite(README, section(big))
    twice = rewrite(once, section(big))
    assert once == twice
    head, tail = README.split(BEGIN)[0], README.split(END)[1]
    assert once.startswith(head + BEGIN + "\n") and once.endswith(END + tail)
    body = once[once.index(BEGIN):once.index(END)]
    assert "| typed | by hand |" not in body
    assert "| check | PyTorch 1.13 / TorchSharp 0.107.0 | PyTorch 2.6 / TorchSharp 0.107.0 |" in body
    assert "- TorchSharp 0.106.0: not run" in body
    for slug in FINDINGS:
        assert f"- [{slug}](docs/findings/{slug}.md): " in body


@pytest.mark.parametrize("text", ["no markers", f"{BEGIN}\n{BEGIN}\n{END}\n", f"{END}\n{BEGIN}\n"])
def test_readme_without_proper_markers_is_refused(text: str, big: Run):
    with pytest.raises(ReadmeMarkerError, match="README.md"):
        rewrite(text, section(big))


def test_readme_matrix_command_rewrites_once(big: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    run = Run(run_id="small", started=big.started, provenance=big.provenance, cells=big.cells[:200])
    (tmp_path / "matrix.json").write_text(json.dumps(run.to_json()), encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(README, encoding="utf-8")
    assert main(["readme-matrix", str(tmp_path / "matrix.json"), "--readme", str(readme)]) == 0
    first = readme.read_text(encoding="utf-8")
    assert "from run small" in first
    assert main(["readme-matrix", str(tmp_path), "--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == first
    assert "already shows run small" in capsys.readouterr().out
    readme.write_text("no markers\n", encoding="utf-8")
    assert main(["readme-matrix", str(tmp_path / "matrix.json"), "--readme", str(readme)]) == 2
    assert "expected the line" in capsys.readouterr().err
    assert readme.read_text(encoding="utf-8") == "no markers\n"


def test_the_checkouts_readme_has_one_pair_of_markers():
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and text.index(BEGIN) < text.index(END)


# --- history ---------------------------------------------------------------------------

def _small(run_id: str, outcome: str) -> Run:
    cell = CellResult(id="lenet::py2ts::pt1.13.1::ts0.107.0::cpu::ours", case="lenet", check="py2ts",
                      pytorch="1.13.1", torchsharp="0.107.0", device="cpu", codec="ours", outcome=outcome,
                      reason="" if outcome == "pass" else "digest mismatch")
    return Run(run_id=run_id, started="2026-12-02T14:00:00+00:00", provenance={"commit": "abc1234"},
               cells=[cell], duration_s=1.5)


def _record(reports: Path, run: Run) -> Path:
    out = reports / run.run_id
    write_reports(run, out)
    append_history(run, reports / "history.jsonl", out / "matrix.json")
    return out / "matrix.json"


def test_each_run_appends_one_line(tmp_path: Path):
    reports = tmp_path / "reports"
    _record(reports, _small("r1", "pass"))
    _record(reports, default_shaped_run("r2"))
    lines = (reports / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["run_id"] == "r1" and first["commit"] == "abc1234" and first["matrix"] == "r1/matrix.json"
    assert first["counts"] == {"pass": 1, "fail": 0, "xfail": 0, "xpass": 0, "skip": 0, "error": 0}
    assert first["duration_s"] == 1.5 and first["cells"] == 1
    assert second["versions"]["PyTorch"] == ["1.13.1", "2.6.0"]
    assert second["versions"]["TorchSharp"] == ["0.107.0"]
    assert second["versions"]["libtorch"] == "2.10.0.0"
    assert second["not_run"] == ["TorchSharp 0.106.0", "CUDA"]
    assert second["counts"]["fail"] == 1


def test_a_torn_line_does_not_swallow_the_next(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    history = tmp_path / "history.jsonl"
    history.write_text('{"run_id": "r0", "matr', encoding="utf-8")  # a crash mid-line
    append_history(_small("r1", "pass"), history, tmp_path / "r1" / "matrix.json")
    assert [e["run_id"] for e in read_history(history)] == ["r1"]
    assert "history.jsonl:1: not a JSON line" in capsys.readouterr().err


def test_diff_last_compares_with_the_run_recorded_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    reports = tmp_path / "reports"
    history = reports / "history.jsonl"
    m1 = _record(reports, _small("r1", "pass"))
    with pytest.raises(HistoryError, match="no run before 'r1'"):
        previous_matrix(history, Run.load(m1))
    assert main_diff("last", m1, history=history) == 2
    assert "no run before 'r1' is recorded in" in capsys.readouterr().err
    m2 = _record(reports, _small("r2", "fail"))
    assert previous_matrix(history, Run.load(m2)) == reports / "r1" / "matrix.json"
    assert main_diff("last", m2, history=history) == 1  # pass -> fail: a regression
    assert "# Matrix diff: r1 -> r2" in capsys.readouterr().out
    # a matrix.json not (yet) in the history is compared with the last recorded run
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "matrix.json").write_text(json.dumps(_small("r3", "pass").to_json()), encoding="utf-8")
    assert main_diff("last", tmp_path / "new" / "matrix.json", history=history) == 0
    assert "# Matrix diff: r2 -> r3" in capsys.readouterr().out
    # without --history: the history beside NEW's run folder
    assert main(["diff", "last", str(m2)]) == 1
    assert "# Matrix diff: r1 -> r2" in capsys.readouterr().out
    # the previous run's folder was deleted: a clear error, not a traceback
    (reports / "r1" / "matrix.json").unlink()
    assert main_diff("last", m2, history=history) == 2
    assert "which is gone" in capsys.readouterr().err


def test_cli_diff_last_without_history_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    m = tmp_path / "matrix.json"
    m.write_text(json.dumps(_small("lonely", "pass").to_json()), encoding="utf-8")
    assert main_diff("last", m, history=tmp_path / "none.jsonl") == 2
    err = capsys.readouterr().err
    assert "(the file does not exist)" in err


def test_default_shaped_page_renders_in_chromium(big: Run, tmp_path: Path):
    from tests.harness.test_html_browser import CHROMIUM, _chromium
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium)")
    page = tmp_path / "index.html"
    page.write_text(html.render(big), encoding="utf-8")
    proc = _chromium(tmp_path, "--dump-dom", page.as_uri())
    dom = proc.stdout
    assert '<table id="summary-table">' in dom, (proc.returncode, proc.stderr[-2000:])
    assert dom.count('<td class="o ') == len(CASES) * len(CHECKS) * 2  # the two implementations that ran
    assert '<div id="filter">' in dom  # the inline script ran
    assert "<details><summary>details</summary>" in dom  # folded, not open
