"""TorchSharp built from source (third_party/torchsharp, the 0.107.0 release source) as a
column next to NuGet's 0.107.0, against real TorchSharp: the unpatched build gives NuGet's
outcomes, and each fix patch of patches/torchsharp/ turns exactly its finding's cells from
fail to pass and changes no other cell of the selection.

Builds are cached in build/source/<key>/ (shared with `harness run --torchsharp-source`);
the first run builds four TorchSharp.dll files, about a minute each on two cores.
Cells run with no expected failures applied, so outcomes are raw (pass/fail/skip).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from harness.builds import native_guard
from harness.cases import load_catalogue
from harness.checks import CHECKS
from harness.running.plan import make_cells
from harness.running.runner import CellRunner
from harness.codecs import load_codec
from harness.drivers.base import Driver, TorchSharpSide
from harness.drivers.pytorch import PyTorchDriver
from harness.drivers.torchsharp import BUILD_ROOT, DEFAULT_VERSION, TorchSharpDriver, build_worker
from harness.verdicts.expectations import ExpectedFailures
from harness.builds.torchsharp_source import SourceBuild, build_source, make_worker, source_columns, start_source_driver

ROOT = Path(__file__).resolve().parents[2]
TARBALL = ROOT / "third_party" / "torchsharp" / "TorchSharp-0.107.0-c20b6a1c.tar.gz"
PATCH_DIR = ROOT / "patches" / "torchsharp"
# patch -> the cells (case::check) it must turn from fail to pass, as regexes
FIXES = {
    "radam-lr-applied-twice": r"(radam_two_groups|corpus213_radam)::continue_(py2ts|ts2py)",
    "adadelta-step-never-incremented": r"(adadelta_two_groups|corpus213_adadelta)::continue_(py2ts|ts2py)",
    "groupnorm-uninitialised-affine": r"layernorm_groupnorm::fresh_init",
    # undoes commit 1736f0f4 (the regression of 0.104.0): every nested_containers cell but the jit ones
    "moduledict-to-throws":
        r"nested_containers::(?!jit_|checkpoint|pth_)\w+",  # (the outcomes here are the dat route's)
}
# each finding's cases, plus controls that no patch may change
SELECTION = ["radam_two_groups", "corpus213_radam", "adadelta_two_groups", "corpus213_adadelta",
             "layernorm_groupnorm", "nested_containers", "adam_two_groups", "instancenorm_affine"]
RELEASE_GAPS = ["THSJIT_getDimensionedTensorDevice", "THSJIT_getDimensionedTensorTypeDimensions",
                "THSLinalg_dot", "THSTensor_eig", "THSTorch_lstsq"]

pytestmark = pytest.mark.skipif(shutil.which("dotnet") is None, reason="the .NET SDK (dotnet) is not installed")


@pytest.fixture(scope="module")
def builds() -> dict[str, SourceBuild]:
    out = {"source": build_source(TARBALL)}
    for name in FIXES:
        out[name] = build_source(TARBALL, [PATCH_DIR / f"{name}.patch"])
    return out


@pytest.fixture(scope="module")
def outcomes(builds: dict[str, SourceBuild]) -> Iterator[dict[str, dict[str, tuple[str, str]]]]:
    """{column: {case::check: (raw outcome, reason)}} for the selection, host PyTorch."""
    with tempfile.TemporaryDirectory(prefix="harness-source-") as tmp:
        work = Path(tmp)
        ts: dict[str, TorchSharpSide | Exception] = {
            DEFAULT_VERSION: TorchSharpDriver(DEFAULT_VERSION, workdir=work / "w")}
        try:
            for name in builds:
                label, drv = start_source_driver(TARBALL, [PATCH_DIR / f"{name}.patch"] if name in FIXES else [],
                                                 name, work / "w")
                ts[label] = drv
            runner = CellRunner(PyTorchDriver(load_codec("ours")), ts, work / "cells", ExpectedFailures([]))
            cases = [c for c in load_catalogue().all() if c.name in SELECTION]
            assert sorted(c.name for c in cases) == sorted(SELECTION)
            result: dict[str, dict[str, tuple[str, str]]] = {}
            for cell in make_cells(cases, torch.__version__.split("+")[0], list(ts), "ours", CHECKS, ["cpu"]):
                r = runner.run(cell)
                result.setdefault(cell.torchsharp, {})[f"{cell.case.name}::{cell.check}"] = (r.outcome, r.reason)
            yield result
        finally:
            for drv in ts.values():
                if isinstance(drv, Driver):
                    drv.close()


def test_source_build_is_cached_and_has_the_release_native_interface(builds, tmp_path):
    b = builds["source"]
    assert b.version == "0.107.0" and b.dll.exists() and b.patches == ()
    assert build_source(TARBALL).folder == b.folder  # cache hit: same key, no rebuild
    checkout = tmp_path / "TorchSharp"  # the same source as a checkout folder: the same build
    with tarfile.open(TARBALL) as tar:
        tar.extractall(checkout)
    (checkout / ".git").mkdir()
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert build_source(checkout).key == b.key
    assert b.native_sources.startswith("src/Native identical to the 0.107.0 release")
    worker = make_worker(b)
    assert (worker / "TorchSharp.dll").read_bytes() == b.dll.read_bytes()
    nuget = build_worker(DEFAULT_VERSION).parent
    assert (nuget / "TorchSharp.dll").read_bytes() != b.dll.read_bytes()  # the NuGet worker is untouched
    lib = native_guard.native_library(worker)
    check = native_guard.check_assembly("0.107.0+source", b.dll, nuget / "TorchSharp.dll", lib, BUILD_ROOT.parent)
    assert check.declared == 1125 and list(check.known_missing) == RELEASE_GAPS
    # the release declares the same names as the source build
    assert native_guard.declared_imports(nuget / "TorchSharp.dll", BUILD_ROOT.parent) == \
        native_guard.declared_imports(b.dll, BUILD_ROOT.parent)
    if shutil.which("nm"):
        nm = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True)
        assert native_guard.elf_exports(lib) == {ln.split()[-1] for ln in nm.stdout.splitlines() if ln.strip()}


def test_patched_builds_differ_from_each_other(builds):
    keys = {b.key for b in builds.values()}
    assert len(keys) == len(FIXES) + 1
    for name in FIXES:
        assert builds[name].patches[0].startswith(f"{name}.patch ")


def test_unpatched_source_column_equals_nuget(outcomes):
    nuget, source = outcomes[DEFAULT_VERSION], outcomes["0.107.0+source"]
    assert len(nuget) > 40 and set(nuget) == set(source)
    assert {k: v[0] for k, v in source.items()} == {k: v[0] for k, v in nuget.items()}
    assert "pass" in {v[0] for v in nuget.values()} and "fail" in {v[0] for v in nuget.values()}


@pytest.mark.parametrize("patch", sorted(FIXES))
def test_each_patch_fixes_exactly_its_finding(outcomes, patch):
    nuget, patched = outcomes[DEFAULT_VERSION], outcomes[f"0.107.0+{patch}"]
    finding = sorted(k for k in nuget if re.fullmatch(FIXES[patch], k))
    assert finding, "the selection holds no cell of this finding"
    for key in finding:
        assert nuget[key][0] == "fail", f"{key}: NuGet 0.107.0 should fail (the finding): {nuget[key]}"
        assert patched[key][0] == "pass", f"{key}: the patched build should pass: {patched[key]}"
    changed = sorted(k for k in nuget if nuget[k][0] != patched[k][0])
    assert changed == finding


def test_cli_source_column_and_column_diff(tmp_path, builds):
    """The recipe end to end: NuGet and the RAdam-fixed source side by side, then the diff
    of the two columns lists exactly RAdam's continue cells as fixed."""
    out = tmp_path / "reports"
    argv = [sys.executable, "-m", "harness", "run", "--out", str(out), "--run-id", "r", "--pytorch", "host",
            "--torchsharp", "default", "--driver", "csharp", "--device", "cpu",
            "--case", "radam_two_groups", "--case", "adam_two_groups", "--route", "dat",
            "--torchsharp-source", str(TARBALL),
            "--torchsharp-patch", str(PATCH_DIR / "radam-lr-applied-twice.patch"), "--torchsharp-label", "radam-fix"]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    report = json.loads((out / "r" / "matrix.json").read_text())
    cells = {c["id"]: c for c in report["cells"]}
    source = {i: c for i, c in cells.items() if c["torchsharp"] == "0.107.0+radam-fix"}
    assert len(source) == len([c for c in cells.values() if c["torchsharp"] == "0.107.0"]) > 0
    fixed = sorted(i for i in source if re.match(r"radam_two_groups::continue_(py2ts|ts2py)::", i))
    assert len(fixed) == 2
    for i in fixed:  # expected failures apply to a source column by the version it is built from: fixed = xpass
        assert source[i]["outcome"] == "xpass", source[i]
        assert cells[i.replace("ts0.107.0+radam-fix", "ts0.107.0")]["outcome"] == "xfail"
    assert "managed-only" not in report["provenance"]["TorchSharp 0.107.0+radam-fix native"]
    assert "radam-lr-applied-twice.patch" in report["provenance"]["TorchSharp 0.107.0+radam-fix"]
    assert proc.returncode == 1, proc.stdout + proc.stderr  # an unexpected pass is red until the entry goes
    diff = subprocess.run([sys.executable, "-m", "harness", "diff", str(out / "r" / "matrix.json"),
                           "--columns", "ts0.107.0", "ts0.107.0+radam-fix"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert f"0 regressions, {len(fixed)} fixes, 0 lost coverage, 0 other outcome changes" in diff.stdout
    listed = re.findall(r"^- `([^`]+)`: ", diff.stdout.split("## Fixes", 1)[1], re.M)
    assert sorted(listed) == fixed


def test_cli_patch_that_does_not_apply_makes_the_column_unavailable_and_the_run_exit_3(tmp_path):
    bad = tmp_path / "stale.patch"
    bad.write_text((PATCH_DIR / "radam-lr-applied-twice.patch").read_text().replace(
        "param.add_(t6 * lr * adaptive_lr", "param.add_(t6 * lr * lr * adaptive_lr"))
    out = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "harness", "run", "--out", str(out), "--run-id", "r",
                           "--pytorch", "host", "--torchsharp", "default", "--driver", "csharp", "--device", "cpu",
                           "--case", "radam_two_groups", "--check", "py2ts", "--torchsharp-source", str(TARBALL),
                           "--torchsharp-patch", str(bad), "--torchsharp-label", "stale"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3
    assert "stale.patch does not apply" in proc.stderr and "Hunk #1 FAILED" in proc.stderr
    report = json.loads((out / "r" / "matrix.json").read_text())
    cell = next(c for c in report["cells"] if c["torchsharp"] == "0.107.0+stale")
    assert cell["outcome"] == "skip" and "unavailable" in cell["reason"] and "stale.patch" in cell["reason"]
    assert "stale.patch" in report["provenance"]["TorchSharp 0.107.0+stale"]
    nuget = next(c for c in report["cells"] if c["torchsharp"] == "0.107.0")
    assert nuget["outcome"] == "pass"


def test_build_needing_an_unreleased_native_function_is_unavailable_with_the_name(tmp_path):
    """A pull request that adds a native function: the managed build declares a name the
    released native library lacks, so the column is unavailable, naming it, before any cell."""
    patch = Path(__file__).parent / "data" / "needs-unreleased-native-function.patch"
    cols = source_columns(TARBALL, [patch], "probe", tmp_path / "work")
    assert list(cols) == ["0.107.0+probe"]
    exc = cols["0.107.0+probe"]
    assert isinstance(exc, native_guard.NativeIncompatible), exc
    assert exc.missing == ["THSLinalg_harness_probe"] and exc.known == RELEASE_GAPS
    assert "managed-only build: native changes not tested" in str(exc)
    assert "1 changed (src/Native/LibTorchSharp/THSTensor.h)" in str(exc)
