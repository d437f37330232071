"""The Python parts of a TorchSharp source column: reading and hashing a source, patching a
copy (never the user's files), typed errors, the native guard's comparisons, and the diff of
two columns. Nothing here builds .NET code (tests/conformance/test_source_build.py does)."""
from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.builds import native_guard
from harness.verdicts.diff import ColumnError, column_view, diff_columns, main_diff
from harness.verdicts.outcomes import CellResult
from harness.report import Run, json_report
from harness.builds.torchsharp_source import (
    PatchDoesNotApply,
    SourceBuildError,
    apply_patch,
    build_source,
    column_label,
    find_root,
    peek_version,
    read_version,
    source_columns,
    tree_hash,
)

ROOT = Path(__file__).resolve().parents[2]
TARBALL = ROOT / "third_party" / "torchsharp" / "TorchSharp-0.107.0-c20b6a1c.tar.gz"
PATCHES = sorted((ROOT / "patches" / "torchsharp").glob("*.patch"))
RADAM = "src/TorchSharp/Optimizers/RAdam.cs"
needs_patch = pytest.mark.skipif(shutil.which("patch") is None, reason="the 'patch' program is not installed")


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The release source, extracted once (read-only use: tests copy it before changing it)."""
    dest = tmp_path_factory.mktemp("release")
    with tarfile.open(TARBALL) as tar:
        tar.extractall(dest)  # our own committed tarball
    return dest


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tarball_is_the_release_source(release):
    assert _sha(TARBALL) == "397eaf34ea8c768703db1de77c6bb4ad343d3821a4a75fe66e5784b34604fcb1"
    assert read_version(release) == "0.107.0"
    assert peek_version(TARBALL) == "0.107.0" and peek_version(release) == "0.107.0"
    assert "MIT License" in (release / "LICENSE.txt").read_text()


def test_root_may_be_one_folder_down_and_hash_ignores_vcs_and_outputs(release, tmp_path):
    nested = tmp_path / "TorchSharp-main"
    shutil.copytree(release, nested)
    assert find_root(tmp_path) == nested
    before = tree_hash(nested)
    assert before == tree_hash(release)
    (nested / ".git").mkdir()
    (nested / ".git" / "HEAD").write_text("ref: x\n")
    (nested / "bin" / "AnyCPU.Release").mkdir(parents=True)
    (nested / "bin" / "AnyCPU.Release" / "TorchSharp.dll").write_bytes(b"MZ")
    assert tree_hash(nested) == before
    f = nested / RADAM
    f.write_text(f.read_text() + " ")
    assert tree_hash(nested) != before
    with pytest.raises(SourceBuildError, match="not a TorchSharp source tree"):
        find_root(nested / "src")


def test_version_from_branch_info(tmp_path):
    (tmp_path / "build").mkdir()
    props = tmp_path / "build" / "BranchInfo.props"
    props.write_text("<Project><PropertyGroup><MajorVersion>0</MajorVersion><MinorVersion>108</MinorVersion>"
                     "<PatchVersion>1</PatchVersion><PreReleaseLabel>preview</PreReleaseLabel>"
                     "</PropertyGroup></Project>")
    assert read_version(tmp_path) == "0.108.1-preview"
    props.write_text("<Project><PropertyGroup><MajorVersion>0</MajorVersion></PropertyGroup></Project>")
    with pytest.raises(SourceBuildError, match="BranchInfo.props"):
        read_version(tmp_path)
    props.write_text("<Project")
    with pytest.raises(SourceBuildError, match="cannot read the version"):
        read_version(tmp_path)


@needs_patch
@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.stem)
def test_each_fix_patch_applies_to_the_release_and_touches_one_file(release, tmp_path, patch):
    tree = tmp_path / "src"
    shutil.copytree(release, tree)
    apply_patch(tree, patch)
    changed = [p.relative_to(tree).as_posix() for p in sorted(tree.rglob("*"))
               if p.is_file() and _sha(p) != _sha(release / p.relative_to(tree))]
    assert len(changed) == 1 and changed[0].startswith("src/TorchSharp/")
    assert not list(tree.rglob("*.orig")) and not list(tree.rglob("*.rej"))
    head = patch.read_text().split("\n--- a/", 1)[0]
    assert "Finding:" in head and "Upstream file: " + changed[0] in head and "lines" in head
    # applied twice is an error naming the patch, not a silent no-op
    with pytest.raises(PatchDoesNotApply, match="previously applied"):
        apply_patch(tree, patch)


@needs_patch
def test_patch_that_does_not_apply_names_patch_file_and_hunk_and_leaves_the_source_alone(release, tmp_path):
    radam = (ROOT / "patches" / "torchsharp" / "radam-lr-applied-twice.patch").read_text()
    bad = tmp_path / "stale.patch"
    stale = radam.replace("-                            param.add_(t6 * lr * adaptive_lr",
                          "-                            param.add_(t6 * lr * lr * adaptive_lr")
    assert stale != radam
    bad.write_text(stale)
    user = tmp_path / "checkout"
    shutil.copytree(release, user)
    before = tree_hash(user)
    with pytest.raises(PatchDoesNotApply) as info:
        build_source(user, [bad], cache=tmp_path / "cache")
    text = str(info.value)
    assert "stale.patch" in text and RADAM in text and "Hunk #1 FAILED" in text and "@@ -179" in text
    assert tree_hash(user) == before and not list(user.rglob("*.rej"))
    assert _sha(TARBALL) == "397eaf34ea8c768703db1de77c6bb4ad343d3821a4a75fe66e5784b34604fcb1"
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []  # no scratch left
    # a patch for a file the source lacks
    missing = tmp_path / "missing.patch"
    missing.write_text(radam.replace("RAdam.cs", "NoSuch.cs"))
    with pytest.raises(PatchDoesNotApply, match="NoSuch.cs"):
        build_source(TARBALL, [missing], cache=tmp_path / "cache")


def test_bad_sources_and_labels_are_typed_errors(tmp_path):
    with pytest.raises(SourceBuildError, match="does not exist"):
        build_source(tmp_path / "nowhere", cache=tmp_path / "cache")
    with pytest.raises(SourceBuildError, match="cannot read patch"):
        build_source(TARBALL, [tmp_path / "nope.patch"], cache=tmp_path / "cache")
    not_tar = tmp_path / "x.tar.gz"
    not_tar.write_bytes(b"not a tarball")
    with pytest.raises(SourceBuildError, match="cannot extract"):
        build_source(not_tar, cache=tmp_path / "cache")
    assert peek_version(not_tar) == "source"
    for evil in ("../escape.txt", "/abs.txt"):
        bad = tmp_path / "evil.tar"
        with tarfile.open(bad, "w") as tar:
            info = tarfile.TarInfo(evil)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        with pytest.raises(SourceBuildError, match="outside the source tree"):
            build_source(bad, cache=tmp_path / "cache")
    assert not (tmp_path / "escape.txt").exists()
    assert column_label("0.107.0", None, [Path("a/radam-fix.patch"), Path("b.patch")]) == "0.107.0+radam-fix.b"
    assert column_label("0.107.0", None, []) == "0.107.0+source"
    assert column_label("0.107.0", "pr-1234", []) == "0.107.0+pr-1234"
    with pytest.raises(SourceBuildError, match="--torchsharp-label"):
        column_label("0.107.0", "has space", [])
    # the CLI helper turns every failure into an unavailable column named after the version
    cols = source_columns(TARBALL, [tmp_path / "nope.patch"], "x", tmp_path / "work")
    assert list(cols) == ["0.107.0+x"] and isinstance(cols["0.107.0+x"], SourceBuildError)


# --- native guard -------------------------------------------------------------------------
def test_guard_tells_known_from_new_missing_names():
    lib = Path("libLibTorchSharp.so")
    exports = frozenset({"A", "B", "C"})
    release = frozenset({"A", "B", "OLD_GAP"})
    check = native_guard.compare_names("0.107.0+x", frozenset({"A", "C", "OLD_GAP"}), release, exports, lib)
    assert check.known_missing == ("OLD_GAP",) and "OLD_GAP" in check.describe()
    with pytest.raises(native_guard.NativeIncompatible) as info:
        native_guard.compare_names("0.107.0+x", frozenset({"A", "NEW_1", "NEW_2", "OLD_GAP"}), release, exports, lib)
    assert info.value.missing == ["NEW_1", "NEW_2"] and info.value.known == ["OLD_GAP"]
    assert "NEW_1, NEW_2" in str(info.value) and "0.107.0+x" in str(info.value)


def test_elf_reader_refuses_what_it_cannot_read(tmp_path):
    f = tmp_path / "lib.so"
    f.write_bytes(b"MZ\x90\x00")
    with pytest.raises(native_guard.NativeGuardError, match="not an ELF file"):
        native_guard.elf_exports(f)
    f.write_bytes(b"\x7fELF\x01\x01" + bytes(60))
    with pytest.raises(native_guard.NativeGuardError, match="64-bit little-endian"):
        native_guard.elf_exports(f)
    f.write_bytes(b"\x7fELF\x02\x01" + bytes(10))
    with pytest.raises(native_guard.NativeGuardError, match="malformed"):
        native_guard.elf_exports(f)


def _elf_with_dynsym(symbols: list[tuple[str, int, int]]) -> bytes:
    """A minimal 64-bit little-endian ELF file: section headers for null, .dynstr and .dynsym
    holding ``symbols`` as (name, binding, section index) after the null symbol."""
    strtab = b"\0" + b"".join(name.encode() + b"\0" for name, _, _ in symbols)
    syms, pos = [bytes(24)], 1
    for name, binding, shndx in symbols:
        syms.append(struct.pack("<IBBHQQ", pos, (binding << 4) | 2, 0, shndx, 0x1000, 0))
        pos += len(name) + 1
    dynsym = b"".join(syms)
    str_off, sym_off = 64, 64 + len(strtab)
    shoff = sym_off + len(dynsym)
    sections = [bytes(64), struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0),
                struct.pack("<IIQQQQIIQQ", 0, 11, 0, 0, sym_off, len(dynsym), 1, 1, 8, 24)]
    header = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01", 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64,
                         len(sections), 0)
    return header + strtab + dynsym + b"".join(sections)


def test_elf_reader_takes_defined_global_and_weak_symbols_only(tmp_path):
    lib = tmp_path / "libX.so"
    lib.write_bytes(_elf_with_dynsym([("THSTensor_new", 1, 9), ("weak_one", 2, 9), ("local_one", 0, 9),
                                      ("imported_one", 1, 0)]))  # binding 1 global, 2 weak, 0 local; index 0: undefined
    assert native_guard.elf_exports(lib) == frozenset({"THSTensor_new", "weak_one"})


@pytest.mark.skipif(shutil.which("nm") is None, reason="binutils' nm is not installed")
def test_elf_reader_agrees_with_nm():
    libc = next(p for p in (Path("/lib/x86_64-linux-gnu/libc.so.6"), Path("/usr/lib/x86_64-linux-gnu/libc.so.6"))
                if p.exists())
    out = subprocess.run(["nm", "-D", "--defined-only", str(libc)], capture_output=True, text=True, check=True).stdout
    expected = {ln.split()[-1].split("@")[0] for ln in out.splitlines() if ln.strip()}
    got = native_guard.elf_exports(libc)
    assert len(got) > 1000 and expected == got


def test_native_sources_same_or_flagged(release, tmp_path):
    assert native_guard.compare_native_sources("0.107.0", release).startswith("src/Native identical to the 0.107.0")
    tree = tmp_path / "t"
    shutil.copytree(release, tree)
    f = next(iter(sorted((tree / "src" / "Native").rglob("*.cpp"))))
    f.write_text(f.read_text() + "\n// changed\n")
    (tree / "src" / "Native" / "New.h").write_text("// new\n")
    text = native_guard.compare_native_sources("0.107.0", tree)
    assert text.startswith("managed-only build: native changes not tested")
    assert "1 changed (" + f.relative_to(tree).as_posix() in text and "1 added (src/Native/New.h)" in text
    assert "no reference hashes" in native_guard.compare_native_sources("9.9.9", tree)


# --- diff of two columns ------------------------------------------------------------------
def _cell(case: str, check: str, ts: str, outcome: str, reason: str = "", raw: str | None = None) -> CellResult:
    return CellResult(id=f"{case}::{check}::pt1.13.1::ts{ts}::cpu::ours", case=case, check=check, pytorch="1.13.1",
                      torchsharp=ts, device="cpu", codec="ours", outcome=outcome, reason=reason,
                      details={"raw_outcome": raw} if raw else {})


def test_diff_of_two_columns_of_one_run(tmp_path, capsys):
    src = "0.107.0+radam-fix"
    cells = [
        _cell("radam", "continue_py2ts", "0.107.0", "xfail", "expected: lr twice | actual: 2e6 ULP", raw="fail"),
        _cell("radam", "continue_py2ts", src, "xpass", "unexpected pass: listed ..."),  # after the lead's matching
        _cell("radam", "continue_ts2py", "0.107.0", "xfail", "expected: lr twice | actual: 1e6 ULP", raw="fail"),
        _cell("radam", "continue_ts2py", src, "pass"),  # before it: raw pass
        _cell("adadelta", "continue_py2ts", "0.107.0", "xfail", "expected: step | actual: step 0 != 3", raw="fail"),
        _cell("adadelta", "continue_py2ts", src, "fail", "step 0 != 3"),  # same failure, unlisted: unchanged
        _cell("adam", "py2ts", "0.107.0", "pass"),
        _cell("adam", "py2ts", src, "fail", "digest mismatch"),
        _cell("lenet", "py2ts", "0.107.0", "fail", "old reason"),
        _cell("lenet", "py2ts", src, "fail", "new reason"),
        _cell("other", "py2ts", "0.106.0", "skip", "unavailable"),
        _cell("jit", "jit_py2ts", "0.107.0", "xfail", "expected: abort | actual: crash: worker died (exit code -6); "
              "command: dotnet /b/worker/0.107.0/Worker.dll\n--- stderr tail ---\nworker: hello (id 1)", raw="error"),
        _cell("jit", "jit_py2ts", src, "error", "crash: worker died (exit code -6); command: dotnet "
              "/b/source/ab12/worker/Worker.dll\n--- stderr tail ---\nworker: build (id 7)\nterminate called"),
    ]
    run = Run(run_id="r", started="2026-01-01T00:00:00+00:00", provenance={}, cells=cells)
    d = diff_columns(run, "ts0.107.0", run, "ts" + src)
    assert sorted(c.id for c in d.fixes) == [f"radam::continue_py2ts::pt1.13.1::ts{src}::cpu::ours",
                                             f"radam::continue_ts2py::pt1.13.1::ts{src}::cpu::ours"]
    assert [c.id.split("::")[0] for c in d.regressions] == ["adam"]
    assert [(c.old_reason, c.new_reason) for c in d.changed_reasons] == [("old reason", "new reason")]
    assert not d.other_changes and not d.added and not d.removed and not d.lost_coverage
    assert len(column_view(run, "0.107.0").cells) == 6
    with pytest.raises(ColumnError, match="ts0.106.0, ts0.107.0, ts0.107.0"):
        column_view(run, "ts9.9")
    path = tmp_path / "matrix.json"
    path.write_text(json_report.render(run))
    assert main_diff(path, None, ["ts0.107.0", "ts" + src]) == 1  # adam regressed
    out = capsys.readouterr().out
    assert "2 fixes" in out and "## Fixes" in out and "r ts0.107.0 -> r ts0.107.0+radam-fix" in out
    assert main_diff(path, None, ["ts0.107.0", "ts9.9"]) == 2
    assert "no cell of TorchSharp column" in capsys.readouterr().err
    from harness.cli import main
    assert main(["diff", str(path), "--columns", "0.107.0", src]) == 1
    assert main(["diff", str(path)]) == 2


def test_source_of_a_version_nuget_lacks_is_unavailable_with_why(tmp_path):
    from harness.builds.torchsharp_source import SourceBuild, make_worker
    build = SourceBuild(version="9.9.9", key="k", folder=tmp_path, dll=tmp_path / "TorchSharp.dll", source=tmp_path,
                        patches=(), native_sources="")
    with pytest.raises(SourceBuildError, match="runs against NuGet's release of 9.9.9"):
        make_worker(build)
