"""The upgrade radar's Python parts (no .NET): refs and their classification on a clone made
from the release tarball (tests/harness/radar_repo.py), every state a ref can be in that
needs no build, the mapping of build failures to states, the report and the history.
tests/conformance/test_radar.py builds and runs the managed-only refs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.builds import native_guard
from harness.radar import classify, history
from harness.radar import model as m
from harness.radar.execute import compiler_errors, failed_state
from harness.radar.main import prepare_all
from harness.radar.refs import Git, RadarGitError
from harness.radar.report import RadarRun, render_html, render_md
from harness.builds.torchsharp_source import PatchDoesNotApply, SourceBuildError
from tests.harness.radar_repo import ROOT, make_repo


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    where = tmp_path_factory.mktemp("radar") / "TorchSharp"
    return where, make_repo(where, extra=True)


def test_classify_by_paths() -> None:
    c = classify.classify(["src/TorchSharp/Tensor/Tensor.cs", "src/Native/LibTorchSharp/THSTensor.h", "README.md"])
    assert (c.kind, c.native, c.managed, c.other) == ("native", ("src/Native/LibTorchSharp/THSTensor.h",),
                                                      ("src/TorchSharp/Tensor/Tensor.cs",), ("README.md",))
    assert classify.classify(["build/BranchInfo.props", "test/X.cs"]).kind == "managed"
    assert classify.classify(["Directory.Build.props"]).kind == "managed"
    assert classify.classify(["build/ci/job-template.yml", ".github/workflows/x.yml"]).kind == "other"
    assert classify.classify(["src/TorchVision/Ops.cs"]).kind == "other"
    assert classify.classify([]).kind == "empty"


def test_every_ref_of_the_test_clone_is_classified_exactly(repo) -> None:
    where, refs = repo
    git = Git(where)
    base = git.resolve("v0.107.0")
    assert base == refs["base"]
    results = prepare_all(git, ["refs/pull/*/head", "refs/heads/*"], None, base, {})
    got = [(r.label, r.state, r.kind, r.native_files, r.managed_files, r.other_files, r.duplicate_of)
           for r in results]
    assert got == [
        ("pr109", m.NO_MERGE_BASE, "", [], [], [], None),
        ("pr108", m.INCOMPLETE, "", [], [], [], None),
        ("pr107", "", "managed", [], ["src/TorchSharp/PInvoke/LibTorchSharp.THSLinalg.cs"], [], None),
        ("pr105", m.OTHER, "other", [], [], ["docs/radar-test.md"], None),
        ("docs-copy", m.DUPLICATE, "other", [], [], ["docs/radar-test.md"], "pr105"),
        ("pr104", "", "managed", [], ["src/TorchSharp/Optimizers/Adam.cs"], [], None),
        ("pr103", m.NATIVE, "native", ["src/Native/LibTorchSharp/THSTensor.h"], [], [], None),
        ("pr102", "", "managed", [], ["src/TorchSharp/Optimizers/Adam.cs"], [], None),
        ("pr101", "", "managed", [], ["src/TorchSharp/Optimizers/RAdam.cs"], [], None),
        ("pr106", m.EMPTY, "empty", [], [], [], None),
        ("main", m.DUPLICATE, "empty", [], [], [], "pr106"),
    ]
    by = {r.label: r for r in results}
    assert by["pr108"].detail == (f"the clone lacks 1 file(s) of {refs['refs/pull/108/head'][:12]}: "
                                  "src/TorchSharp/RadarLost.cs")
    assert by["pr101"].merge_base == base and by["pr101"].title == "RAdam: apply lr once in the rectified branch"
    patch = Path(by["pr101"].patch or "").read_text()
    assert "-                            param.add_(t6 * lr * adaptive_lr * rect, alpha: -1.0);" in patch
    assert "+                            param.add_(t6 * adaptive_lr * rect, alpha: -1.0);" in patch
    assert [r.label for r in prepare_all(git, ["refs/pull/*/head"], 2, base, {})] == ["pr109", "pr108"]


def test_pr_info_gives_titles_and_authors(repo, tmp_path) -> None:
    where, refs = repo
    info = tmp_path / "prs.json"
    info.write_text(json.dumps([{"number": 101, "title": "Fix RAdam", "author": {"login": "someone"},
                                 "createdAt": "2026-05-01T00:00:00Z"}]))
    from harness.radar.main import _pr_info
    git = Git(where)
    (r,) = prepare_all(git, ["refs/pull/101/head"], None, refs["base"], _pr_info(str(info)))
    assert (r.title, r.author) == ("Fix RAdam", "someone")
    info.write_text("{}")
    with pytest.raises(RadarGitError, match="--pr-info"):
        _pr_info(str(info))


def test_build_failures_become_states() -> None:
    out = ("src/TorchSharp/Optimizers/Adam.cs(196,42): error CS0029: Cannot implicitly convert type 'string' "
           "to 'int' [/tmp/x/src/TorchSharp/TorchSharp.csproj::TargetFramework=net8.0]\n"
           "    0 Warning(s)\n")
    state, detail = failed_state(SourceBuildError(f"TorchSharp source X does not build (in a copy at Y):\n{out}{out}"))
    assert state == m.BUILD_FAILED
    assert detail == ("src/TorchSharp/Optimizers/Adam.cs(196,42): error CS0029: Cannot implicitly convert type "
                      "'string' to 'int'")
    assert failed_state(PatchDoesNotApply(Path("p.patch"), ["a.cs: Hunk #1 FAILED"], ""))[0] == m.CONFLICT
    guard = native_guard.NativeIncompatible("0.107.0+pr1", ["THSX_y"], [], Path("libLibTorchSharp.so"))
    assert failed_state(guard) == (m.GUARD_FAILED, str(guard))
    assert failed_state(SourceBuildError("x: not a TorchSharp source tree (no build/BranchInfo.props)"))[0] \
        == m.INCOMPLETE
    assert compiler_errors("no errors here") == ""


def _result(label: str, **kw: object) -> m.RefResult:
    r = m.RefResult(ref=f"refs/pull/{label[2:]}/head", commit="ab" * 20, author="a", date="2026-05-01T00:00:00",
                    title=f"title of {label}", label=label, state=m.RAN, kind="managed")
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def _radar(results: list[m.RefResult]) -> RadarRun:
    return RadarRun(run_id="r", started="now", repo="repo", base="v0.107.0", base_commit="cd" * 20,
                    release="0.107.0", patterns=["refs/pull/*/head"], plan_cells=2, results=results)


def test_report_flags_fixes_and_regressions_with_links_and_repro() -> None:
    fix = _result("pr1", changes={"fixed": [m.CellDelta("radam::continue_py2ts::pt1::ts0.107.0+pr1::cpu::ours",
                                                        "fail", "pass", "off", "", None,
                                                        ["radam-lr-applied-twice"])]})
    brk = _result("pr2", changes={"broken": [m.CellDelta("adam::continue_py2ts::pt1::ts0.107.0+pr2::cpu::ours",
                                                         "pass", "fail", "", "TorchSharp off", "cells/adam_x")]})
    nat = _result("pr3", state=m.NATIVE, kind="native", native_files=["src/Native/a.h"])
    md = render_md(_radar([fix, brk, nat]))
    assert md.index("## Flags") < md.index("## Refs") < md.index("## Each ref")
    assert "- **pr1 fixes radam-lr-applied-twice**: 1 cell(s) [fixed](#pr1-fixed)" in md
    assert "- **pr2 REGRESSION**: 1 passing cell(s) [broken](#pr2-broken), repro `cells/adam_x/repro.sh`" in md
    assert "| [pr1](#pr1) | title of pr1 | a | 2026-05-01 | managed-only | built and run **fixes " \
           "radam-lr-applied-twice** |" in md
    assert '<a id="pr2-broken"></a>' in md and "[`cells/adam_x/repro.sh`](cells/adam_x/repro.sh)" in md
    assert "- src/Native (needs a native build): 1 file(s): `src/Native/a.h`" in md
    assert "States: 2 built and run, 1 needs a native build (not run)." in md
    page = render_html(_radar([fix, brk, nat]))
    assert '<a href="#pr2-broken">1</a>' in page and 'href="cells/adam_x/repro.sh"' in page


def test_history_shows_only_what_is_new(tmp_path) -> None:
    path = tmp_path / history.HISTORY_NAME
    a, b = _result("pr1"), _result("pr2", state=m.NATIVE)
    assert history.mark_new([a, b], history.load(path)) is None and a.new and b.new
    history.append(path, "run1", "t", "base", [a, b])
    a2, b2 = _result("pr1"), _result("pr2", state=m.NATIVE, commit="ef" * 20)
    assert history.mark_new([a2, b2], history.load(path)) == "run1"
    assert (a2.new, b2.new) == (False, True)  # pr2 has a new commit
    md = render_md(_radar([a2, b2]))
    assert "Compared with radar run None" not in md and "As in the last radar run: [pr1](#pr1)." in md
    path.write_text("not json\n")
    with pytest.raises(history.RadarHistoryError, match=":1: not JSON"):
        history.load(path)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "radar", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_bad_usage(tmp_path) -> None:
    proc = _cli("--repo", str(tmp_path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "not a git clone" in proc.stderr
    proc = _cli("--repo", str(tmp_path), "--last", "0")
    assert proc.returncode == 2 and "--last must be at least 1" in proc.stderr


def test_cli_refs_that_need_no_build_and_the_second_run(repo, tmp_path) -> None:
    where, refs = repo
    args = ["--repo", str(where), "--out", str(tmp_path)]
    proc = _cli(*args, "--base", "v0.107.0", "--refs", "refs/pull/10[3568]/head", "refs/heads/docs-copy",
                "--run-id", "one")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "one" / "radar.md").read_text()
    assert "States: 1 needs a native build (not run), 1 touches neither (not built), 1 empty diff, " \
           "1 same commit as another ref (run once), 1 checkout lacks files." in md
    data = json.loads((tmp_path / "one" / "radar.json").read_text())
    assert [(r["label"], r["state"]) for r in data["results"]] == [
        ("pr108", "incomplete"), ("pr105", "other"), ("docs-copy", "duplicate"), ("pr103", "native"),
        ("pr106", "empty")]
    assert not (tmp_path / "one" / "matrix.json").exists()  # nothing to run: no driver started
    proc = _cli(*args, "--refs", "refs/pull/10[3568]/head", "refs/heads/docs-copy", "--run-id", "two")
    md2 = (tmp_path / "two" / "radar.md").read_text()
    assert "Compared with radar run one: 0 ref(s) new or changed, 5 as before." in md2
    assert "| (none) |" in md2


def test_default_base_is_the_tag_else_the_release_tarballs_commit(repo, tmp_path) -> None:
    from harness.radar.main import default_base
    assert default_base(Git(repo[0]), "0.107.0") == "v0.107.0"
    bare = tmp_path / "bare"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    assert default_base(Git(bare), "0.107.0") == "c20b6a1c"  # TorchSharp-0.107.0-c20b6a1c.tar.gz


def test_a_failed_build_is_remembered_by_content(tmp_path) -> None:
    from harness.radar.execute import build_and_run
    base, patch = tmp_path / "base-x.tar.gz", tmp_path / "p.patch"
    base.write_bytes(b"base")
    patch.write_bytes(b"--- a/x\n+++ b/x\n")
    calls = []

    def failing(source, patches, label, workdir):  # a FAKE build: what start_source_driver raises
        calls.append(label)
        raise SourceBuildError("TorchSharp source s does not build (in a copy at c):\n"
                               "src/TorchSharp/A.cs(1,2): error CS1002: ; expected "
                               "[/x/src/TorchSharp/TorchSharp.csproj]")

    for _ in range(2):
        r = _result("pr7", state="", patch=str(patch))
        build_and_run(r, base, None, "0.107.0", [], None, None, tmp_path, "host",  # type: ignore[arg-type]
                      start=failing)
        assert (r.state, r.detail) == (m.BUILD_FAILED, "src/TorchSharp/A.cs(1,2): error CS1002: ; expected")
    assert calls == ["pr7"] and r.build.endswith("(cached failure)")
    patch.write_bytes(b"--- a/x\n+++ b/x\n@@ changed @@\n")  # another change: built again
    again = _result("pr7", state="", patch=str(patch))
    build_and_run(again, base, None, "0.107.0", [], None, None, tmp_path, "host",  # type: ignore[arg-type]
                  start=failing)
    assert calls == ["pr7", "pr7"]


def test_a_change_already_in_the_base_is_in_base(repo, tmp_path) -> None:
    """A pull request squash-merged before the release: its patch reverts cleanly from the base."""
    import tarfile
    from harness.radar.execute import in_base
    from harness.builds.torchsharp_source import apply_patch
    from tests.harness.radar_repo import PATCH_DIR, TARBALL
    where, refs = repo
    (r,) = prepare_all(Git(where), ["refs/pull/101/head"], None, refs["base"], {})
    tree = tmp_path / "src"
    with tarfile.open(TARBALL) as tar:
        tar.extractall(tree)
    with tarfile.open(tmp_path / "release.tar.gz", "w:gz") as tar:
        tar.add(tree, "TorchSharp")
    assert not in_base(tmp_path / "release.tar.gz", Path(r.patch or ""))
    apply_patch(tree, PATCH_DIR / "radam-lr-applied-twice.patch")  # a base that holds the fix
    with tarfile.open(tmp_path / "fixed.tar.gz", "w:gz") as tar:
        tar.add(tree, "TorchSharp")
    assert in_base(tmp_path / "fixed.tar.gz", Path(r.patch or ""))
    with pytest.raises(PatchDoesNotApply) as exc:
        apply_patch(tree, Path(r.patch or ""))
    assert failed_state(exc.value)[0] == m.CONFLICT  # build_and_run then asks in_base


def test_refs_patterns_add_up() -> None:
    from harness.cli import build_parser
    args = build_parser().parse_args(["radar", "--repo", "x", "--refs", "refs/pull/*/head", "--refs", "refs/heads/main",
                                      "refs/heads/dev"])
    assert args.refs == ["refs/pull/*/head", "refs/heads/main", "refs/heads/dev"]
    assert build_parser().parse_args(["radar", "--repo", "x"]).refs is None  # main.DEFAULT_PATTERNS then
