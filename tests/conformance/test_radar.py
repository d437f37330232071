"""The upgrade radar end to end on real TorchSharp builds: a clone made from the release
tarball (tests/harness/radar_repo.py) with five pull requests, and four more refs for the
other states. Each ref is classified and reported exactly: the RAdam fix fixes its finding's
cell, the Adam change breaks a passing cell (with a repro.sh that replays the failure), the
src/Native change is not run, the change that does not compile reports its compiler error,
the docs change is not built; the binding of an unreleased native function fails the guard.

The plan is kept to two cells per column (radam_two_groups and adam_two_groups, continue_py2ts);
builds are cached in build/source/ by the content of source and patch (the first run builds
four TorchSharp.dll files, a minute or more each on two cores).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.radar_repo import ROOT, make_repo

pytestmark = pytest.mark.skipif(shutil.which("dotnet") is None, reason="the .NET SDK (dotnet) is not installed")


@pytest.fixture(scope="module")
def radar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    where = tmp_path_factory.mktemp("radar")
    make_repo(where / "TorchSharp", extra=True)
    proc = subprocess.run([sys.executable, "-m", "harness", "radar", "--repo", str(where / "TorchSharp"),
                           "--refs", "refs/pull/*/head", "--case", "radam_two_groups", "--case", "adam_two_groups",
                           "--check", "continue_py2ts", "--out", str(where / "reports"), "--run-id", "r"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return where / "reports" / "r", json.loads((where / "reports" / "r" / "radar.json").read_text())


def _by_label(data: dict[str, object]) -> dict[str, dict[str, object]]:
    return {r["label"]: r for r in data["results"]}  # type: ignore[attr-defined,index]


def test_each_ref_is_classified_and_ends_in_its_state(radar) -> None:
    _, data = radar
    got = [(r["label"], r["kind"], r["state"]) for r in data["results"]]
    assert got == [("pr109", "", "no-merge-base"), ("pr108", "", "incomplete"), ("pr107", "managed", "guard-failed"),
                   ("pr105", "other", "other"), ("pr104", "managed", "build-failed"), ("pr103", "native", "native"),
                   ("pr102", "managed", "ran"), ("pr101", "managed", "ran"), ("pr106", "empty", "empty")]
    by = _by_label(data)
    assert by["pr103"]["native_files"] == ["src/Native/LibTorchSharp/THSTensor.h"]
    assert "error CS0029" in by["pr104"]["detail"] and "Adam.cs" in by["pr104"]["detail"]
    assert "THSLinalg_radar_probe" in by["pr107"]["detail"]
    assert data["plan_cells"] == 2


def test_the_radam_fix_fixes_its_finding_and_nothing_else(radar) -> None:
    _, data = radar
    r = _by_label(data)["pr101"]
    assert r["fixes_findings"] == ["radam-lr-applied-twice"]
    (d,) = r["changes"]["fixed"]
    assert d["id"].startswith("radam_two_groups::continue_py2ts::") and "::ts0.107.0+pr101::" in d["id"]
    assert (d["old"], d["new"], d["findings"]) == ("fail", "pass", ["radam-lr-applied-twice"])
    assert set(r["changes"]) == {"fixed"} and r["column"] == "0.107.0+pr101"


def test_the_adam_change_is_a_regression_with_a_repro_that_replays_it(radar) -> None:
    out, data = radar
    r = _by_label(data)["pr102"]
    assert set(r["changes"]) == {"broken"} and r["fixes_findings"] == []
    (d,) = r["changes"]["broken"]
    assert d["id"].startswith("adam_two_groups::continue_py2ts::") and "::ts0.107.0+pr102::" in d["id"]
    assert (d["old"], d["new"]) == ("pass", "fail")
    md = (out / "radar.md").read_text()
    assert "- **pr102 REGRESSION**: 1 passing cell(s) [broken](#pr102-broken)" in md
    assert "- **pr101 fixes radam-lr-applied-twice**" in md
    repro = out / d["evidence"] / "repro.sh"
    proc = subprocess.run(["sh", str(repro)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the cell fails again
    assert "1 failed" in proc.stdout and d["id"] in proc.stdout
