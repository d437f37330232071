"""docs/findings/README.md's cells table is written from cases/expected_failures/*.toml
(harness/findings/index.py) and must match the data as it is now."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.findings import index as FI
from harness.verdicts.expectations import ExpectedFailures
from harness.report.readme import ReadmeMarkerError

TOML = '''
[[xfail]]
cells = ["a_case::ts2py::*::ts0.107.0::*", "b|case::py2ts::*::*::*::*"]
expect = "PyTorch is wrong: `x`"
finding = "some-finding"
reason = "r"

[[xfail]]
cells = ["m::functional::pt2.*::ts0.107.0::cpu::*"]
when = ["torchsharp.onednn_avx512"]
expect = "TorchSharp is wrong"
finding = "other-finding"
reason = "r"

[[xfail]]
cells = ["c::continue_*::*::ts0.107.0::*"]
expect = "late"
finding = "some-finding"
reason = "r"
'''


def _data(tmp_path: Path, text: str = TOML) -> Path:
    folder = tmp_path / "expected_failures"
    folder.mkdir()
    (folder / "x.toml").write_text(text, encoding="utf-8")
    return folder


def test_section_groups_entries_by_finding_in_data_order(tmp_path: Path) -> None:
    entries = ExpectedFailures.load(_data(tmp_path)).entries
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "some-finding.md").write_text("# x\n", encoding="utf-8")   # other-finding has no report
    lines = FI.section(entries, docs).splitlines()
    assert lines[1:] == [
        "| finding | entries: cell-id patterns, machine features they hold on, the failure they expect |",
        "|---|---|",
        "| [some-finding](some-finding.md) | `a_case::ts2py::*::ts0.107.0::*`, `b\\|case::py2ts::*::*::*::*`; "
        "expects `` PyTorch is wrong: `x` `` (x.toml)<br>`c::continue_*::*::ts0.107.0::*`; expects `late` (x.toml) |",
        "| other-finding | `m::functional::pt2.*::ts0.107.0::cpu::*` on `torchsharp.onednn_avx512`; "
        "expects `TorchSharp is wrong` (x.toml) |",
    ]


def test_render_replaces_only_between_markers_and_is_idempotent(tmp_path: Path) -> None:
    entries = ExpectedFailures.load(_data(tmp_path)).entries
    text = f"head\n{FI.BEGIN}\nold table\n{FI.END}\ntail\n"
    once = FI.render(text, entries)
    assert once.startswith(f"head\n{FI.BEGIN}\n<!-- written by") and once.endswith(f"{FI.END}\ntail\n")
    assert "old table" not in once and "[some-finding](some-finding.md)" in once
    assert FI.render(once, entries) == once


def test_render_without_markers_is_a_typed_error(tmp_path: Path) -> None:
    entries = ExpectedFailures.load(_data(tmp_path)).entries
    with pytest.raises(ReadmeMarkerError, match="cells:begin"):
        FI.render("no markers here\n", entries, "README.md")


def test_check_exits_1_on_a_stale_readme_and_0_after_rewrite(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{FI.BEGIN}\n| stale |\n{FI.END}\n", encoding="utf-8")
    data = _data(tmp_path)
    assert FI.main(["--check", "--readme", str(readme), "--data", str(data)]) == 1
    assert "| stale |" in readme.read_text(encoding="utf-8")            # --check writes nothing
    assert FI.main(["--readme", str(readme), "--data", str(data)]) == 0
    assert FI.main(["--check", "--readme", str(readme), "--data", str(data)]) == 0


def test_the_checkout_readme_matches_the_expected_failures() -> None:
    """Fails whenever an entry is added, changed or removed without rerunning
    `python3 -m harness findings-readme`."""
    text = FI.README.read_text(encoding="utf-8")
    entries = ExpectedFailures.load(FI.DATA).entries
    assert FI.render(text, entries, str(FI.README), FI.README.parent) == text, \
        "docs/findings/README.md is stale: run `python3 -m harness findings-readme`"
    for e in entries:
        assert e.finding and f"[{e.finding}]({e.finding}.md)" in text, f"{e.source}: its finding is not linked"
