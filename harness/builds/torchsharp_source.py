"""TorchSharp built from source (its managed part) as a column of the matrix.

``source_columns(source, patches, label, workdir)`` is what ``harness run
--torchsharp-source`` calls. Step by step:

1. the source (a checkout folder or a ``.tar.gz``/``.tgz``/``.tar``) is copied or
   extracted into a scratch folder, never touched in place; its root is the folder
   holding ``build/BranchInfo.props``, which gives the version (0.107.0);
2. the patches are applied to that copy with ``patch -p1 --fuzz=0`` in order; one that does not
   apply raises :class:`PatchDoesNotApply` naming the patch, the file and the hunk;
3. ``dotnet build src/TorchSharp/TorchSharp.csproj -c Release -p:SkipNative=true
   -p:TargetFramework=net8.0`` builds the managed ``TorchSharp.dll`` (about 40 s);
4. the worker folder is the NuGet worker of the same version
   (:func:`harness.drivers.torchsharp.build_worker`), hard-linked (copied where links
   fail), with ``TorchSharp.dll`` replaced: the build runs against the released native
   library of its version;
5. the native-compatibility guard (:mod:`harness.builds.native_guard`) runs before any cell.

Everything is cached under ``build/source/<key>/``, ``key`` = sha256 of the source's
files + the patches' bytes + this recipe, so runs and tests share builds. Every failure
is a :class:`SourceBuildError` (a :class:`WorkerUnavailable`): the column becomes
"unavailable" with the reason, never a crash mid-run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.builds import native_guard
from harness.builds.dotnet_build import locked
from harness.drivers.base import TorchSharpSide
from harness.drivers.protocol import ProcessFailed
from harness.drivers.torchsharp import BUILD_ROOT, TorchSharpDriver, WorkerUnavailable, build_worker

SOURCE_ROOT = BUILD_ROOT.parent / "source"
# Part of the cache key: change it when the build recipe below changes.
RECIPE = "managed TorchSharp.dll: dotnet build -c Release -p:SkipNative=true -p:TargetFramework=net8.0 (v1)"
BUILD_ARGS = ("-c", "Release", "-p:SkipNative=true", "-p:TargetFramework=net8.0", "-nologo")
# Folders never part of a source: VCS data and build outputs (a built checkout's bin/ is GBs).
SKIP_DIRS = frozenset({".git", ".vs", ".vscode", ".idea", "bin", "obj", "node_modules", "TestResults"})
LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class SourceBuildError(WorkerUnavailable):
    """A TorchSharp source cannot be read, patched or built into a worker."""


class PatchDoesNotApply(SourceBuildError):
    def __init__(self, patch: Path, failures: list[str], output: str):
        self.patch, self.failures = patch, failures
        super().__init__(f"patch {patch} does not apply: " + "; ".join(failures)
                         + f"\n--- patch output ---\n{output[-3000:]}")


@dataclass(frozen=True)
class SourceBuild:
    version: str  # from build/BranchInfo.props
    key: str  # sha256 of source files + patches + recipe
    folder: Path  # build/source/<key>/
    dll: Path  # the managed TorchSharp.dll built
    source: Path  # the patched source tree it was built from (kept for reading)
    patches: tuple[str, ...]  # "name sha256" of each patch, in order
    native_sources: str  # src/Native against the release (harness.builds.native_guard)


# --- reading a source ---------------------------------------------------------------------
def read_version(root: Path) -> str:
    """``Major.Minor.Patch`` from ``build/BranchInfo.props`` (with ``-PreReleaseLabel``)."""
    props = root / "build" / "BranchInfo.props"
    try:
        tree = ET.parse(props)
    except (OSError, ET.ParseError) as exc:
        raise SourceBuildError(f"cannot read the version from {props}: {exc}") from exc
    values = {el.tag: (el.text or "").strip() for el in tree.iter()}
    parts = [values.get(k, "") for k in ("MajorVersion", "MinorVersion", "PatchVersion")]
    if not all(p.isdigit() for p in parts):
        raise SourceBuildError(f"{props}: MajorVersion/MinorVersion/PatchVersion missing or not numbers: {parts}")
    version = ".".join(parts)
    pre = values.get("PreReleaseLabel", "")
    return f"{version}-{pre}" if pre else version


def find_root(folder: Path) -> Path:
    """The folder holding build/BranchInfo.props: ``folder`` or its only subfolder (a
    tarball made by GitHub has one top-level folder)."""
    if (folder / "build" / "BranchInfo.props").is_file():
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subs) == 1 and (subs[0] / "build" / "BranchInfo.props").is_file():
        return subs[0]
    raise SourceBuildError(f"{folder}: not a TorchSharp source tree (no build/BranchInfo.props at its top "
                           "or in its only folder)")


def _source_files(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath) / name


def _copy_tree(src: Path, dest: Path) -> None:
    for path in _source_files(src):
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        elif path.is_file():
            shutil.copy2(path, target)


def _extract(archive: Path, dest: Path) -> None:
    """Extract a source tarball; members that are not plain files, folders or in-tree
    symbolic links, or that point outside ``dest``, are refused by name."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                if not (m.isfile() or m.isdir() or m.issym()):
                    raise SourceBuildError(f"{archive}: member {m.name!r} is not a file, folder or symbolic link")
                target = Path(m.name) if not m.issym() else Path(m.name).parent / m.linkname
                if Path(m.name).is_absolute() or Path(m.linkname or ".").is_absolute() \
                        or ".." in Path(os.path.normpath(target)).parts:
                    raise SourceBuildError(f"{archive}: member {m.name!r} points outside the source tree")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members, filter="data")  # type: ignore[call-arg]
            else:  # pragma: no cover - Pythons without extraction filters; checked above
                tar.extractall(dest, members)
    except (tarfile.TarError, OSError) as exc:
        raise SourceBuildError(f"cannot extract {archive}: {type(exc).__name__}: {exc}") from exc


def tree_hash(root: Path) -> str:
    """sha256 over every source file's path, kind and bytes (SKIP_DIRS left out)."""
    h = hashlib.sha256()
    for path in _source_files(root):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            h.update(b"L" + rel.encode() + b"\0" + os.readlink(path).encode() + b"\0")
        elif path.is_file():
            h.update(b"F" + rel.encode() + b"\0" + (b"x" if os.access(path, os.X_OK) else b"-"))
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def cache_key(source_hash: str, patches: Sequence[bytes]) -> str:
    h = hashlib.sha256(RECIPE.encode() + b"\0" + source_hash.encode())
    for p in patches:
        h.update(b"\0patch\0" + hashlib.sha256(p).digest())
    return h.hexdigest()


# --- patching and building ----------------------------------------------------------------
def apply_patch(root: Path, patch: Path) -> None:
    """``patch -p1`` into ``root`` (a scratch copy); raise PatchDoesNotApply naming the
    files and hunks that failed, with the rejected hunks' text."""
    if shutil.which("patch") is None:
        raise SourceBuildError("the 'patch' program is not installed (scripts/setup.sh installs it)")
    # --fuzz=0: every context line must match (offsets are fine); a fuzzy match could
    # patch the wrong place and build something nobody reviewed.
    argv = ["patch", "-p1", "--batch", "--forward", "--fuzz=0", "--no-backup-if-mismatch", "-d", str(root),
            "-i", str(patch.resolve())]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode == 0:
        return
    output = proc.stdout + proc.stderr
    failures: list[str] = []
    current = "?"
    for line in output.splitlines():
        m = re.match(r"(?:checking|patching) file (.+)", line)
        if m:
            current = m.group(1).strip().strip("'")
        elif "FAILED" in line and line.startswith("Hunk"):
            failures.append(f"{current}: {line.strip()}")
        elif any(s in line for s in ("can't find file", "No file to patch", "Reversed (or previously applied)",
                                     "Only garbage", "malformed patch")):
            failures.append(f"{current}: {line.strip()}")
    rejects = sorted(root.rglob("*.rej"))
    for rej in rejects[:3]:
        hunk = rej.read_text(encoding="utf-8", errors="replace")
        failures.append(f"rejected hunk of {rej.relative_to(root).with_suffix('').as_posix()}:\n{hunk[:1500]}")
    last = [ln.strip() for ln in output.splitlines() if ln.strip()][-1:] or [f"exit {proc.returncode}"]
    raise PatchDoesNotApply(patch, failures or last, output)


def _build_dll(root: Path, what: str) -> Path:
    if shutil.which("dotnet") is None:
        raise SourceBuildError("the .NET SDK (dotnet) is not on PATH")
    argv = ["dotnet", "build", "src/TorchSharp/TorchSharp.csproj", *BUILD_ARGS]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=root,
                          env={**os.environ, "DOTNET_CLI_TELEMETRY_OPTOUT": "1", "DOTNET_NOLOGO": "1"})
    if proc.returncode != 0:
        raise SourceBuildError(f"{what} does not build (in a copy at {root}):\n"
                               + str(ProcessFailed(argv, proc.returncode, proc.stdout, proc.stderr)))
    found = sorted(root.glob("bin/*/TorchSharp/net8.0/TorchSharp.dll")) or sorted(root.rglob("net8.0/TorchSharp.dll"))
    if not found:
        raise SourceBuildError(f"the build of {root} succeeded but left no net8.0/TorchSharp.dll:\n"
                               f"{proc.stdout[-2000:]}")
    return found[0]


def build_source(source: Path, patches: Sequence[Path] = (), cache: Path | None = None) -> SourceBuild:
    """Build the managed TorchSharp.dll of ``source`` + ``patches`` (cached)."""
    cache = cache or SOURCE_ROOT
    source = Path(source)
    if not source.exists():
        raise SourceBuildError(f"TorchSharp source {source} does not exist")
    patch_bytes: list[bytes] = []
    for p in patches:
        try:
            patch_bytes.append(Path(p).read_bytes())
        except OSError as exc:
            raise SourceBuildError(f"cannot read patch {p}: {exc}") from exc
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=cache))
    try:
        if source.is_dir():
            root = find_root(source)
            _copy_tree(root, scratch / "src")
        elif source.is_file():
            _extract(source, scratch / "x")
            found = find_root(scratch / "x")
            found.rename(scratch / "src")
        else:
            raise SourceBuildError(f"TorchSharp source {source} is neither a folder nor a file")
        tree = scratch / "src"
        version = read_version(tree)
        key = cache_key(tree_hash(tree), patch_bytes)
        folder = cache / key
        with locked(cache / f"{key}.lock"):
            meta_path = folder / "build.json"
            if not meta_path.exists():
                for p in patches:
                    apply_patch(tree, Path(p))
                dll = _build_dll(tree, f"TorchSharp source {source}"
                                 + (f" with {', '.join(Path(p).name for p in patches)}" if patches else ""))
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                shutil.copy2(dll, folder / "TorchSharp.dll")
                for junk in ("bin", "obj"):
                    shutil.rmtree(tree / junk, ignore_errors=True)
                tree.rename(folder / "src")
                record = {"version": version, "source": str(source.resolve()),
                          "patches": [f"{Path(p).name} {hashlib.sha256(b).hexdigest()}"
                                      for p, b in zip(patches, patch_bytes)],
                          "native_sources": native_guard.compare_native_sources(version, folder / "src"),
                          "recipe": RECIPE}
                meta_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return SourceBuild(version=meta["version"], key=key, folder=folder, dll=folder / "TorchSharp.dll",
                           source=folder / "src", patches=tuple(meta["patches"]),
                           native_sources=meta["native_sources"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the worker folder --------------------------------------------------------------------
def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def make_worker(build: SourceBuild) -> Path:
    """The NuGet worker of ``build.version`` with TorchSharp.dll replaced by the build's
    (remade when either changes). Returns the folder."""
    try:
        base = build_worker(build.version).parent
    except WorkerUnavailable as exc:
        raise SourceBuildError(f"a source build of TorchSharp {build.version} runs against NuGet's release of "
                               f"{build.version} (its native library), which is unavailable here: {exc}") from exc
    dll_hash = hashlib.sha256(build.dll.read_bytes()).hexdigest()
    stamp_text = f"{(base / '.source-hash').read_text()} {dll_hash}"
    out = build.folder / "worker"
    stamp = out / ".source-build-stamp"
    with locked(build.folder / "worker.lock"):
        if stamp.exists() and stamp.read_text() == stamp_text:
            return out
        shutil.rmtree(out, ignore_errors=True)
        for path in sorted(base.rglob("*")):
            target = out / path.relative_to(base)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif path.name not in ("TorchSharp.dll", ".source-hash"):
                target.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(path, target)
        shutil.copy2(build.dll, out / "TorchSharp.dll")  # a copy: a NuGet rebuild never writes into it
        stamp.write_text(stamp_text)
    return out


# --- the column ---------------------------------------------------------------------------
def column_label(version: str, label: str | None, patches: Sequence[Path]) -> str:
    """``<version>+<label>``; the label defaults to the patches' names joined by '+', or
    'source' without patches."""
    if label is None:
        label = ".".join(Path(p).stem for p in patches) or "source"
        label = re.sub(r"[^A-Za-z0-9._-]+", "-", label)
    elif not LABEL_RE.fullmatch(label):
        raise SourceBuildError(f"--torchsharp-label {label!r}: use letters, digits, '.', '_' and '-' "
                               "(it becomes part of every cell id)")
    return f"{version}+{label}"


def start_source_driver(source: Path, patches: Sequence[Path], label: str | None, workdir: Path,
                        cache: Path | None = None) -> tuple[str, TorchSharpDriver]:
    """Build, guard and start one source column; returns (column label, driver)."""
    build = build_source(source, patches, cache)
    column = column_label(build.version, label, patches)
    worker = make_worker(build)
    try:
        check = native_guard.check_assembly(column, build.dll, build_worker(build.version).parent / "TorchSharp.dll",
                                            native_guard.native_library(worker), BUILD_ROOT.parent)
    except native_guard.NativeIncompatible as exc:  # say whether the source changed src/Native too
        raise native_guard.NativeIncompatible(column, exc.missing, exc.known, exc.library,
                                              note=build.native_sources) from exc
    provenance = {
        f"TorchSharp {column}": (f"built from source {source} (cache build/source/{build.key[:16]}...), "
                                 f"patches: {', '.join(build.patches) or 'none'}; managed TorchSharp.dll only, "
                                 f"run against NuGet's native libraries of {build.version}"),
        f"TorchSharp {column} native": f"{check.describe()}; {build.native_sources}",
    }
    return column, TorchSharpDriver(column, workdir=workdir, worker=worker, provenance=provenance)


def source_columns(source: str | Path, patches: Sequence[str | Path] | None, label: str | None,
                   workdir: Path) -> dict[str, TorchSharpSide | Exception]:
    """The CLI's entry: ``{column label: driver}``, or ``{label: SourceBuildError /
    NativeIncompatible / WorkerUnavailable}`` when the column cannot run (its cells are
    then "unavailable"). The label of a column that failed before its version was read is
    ``source+<label>``."""
    patch_paths = [Path(p) for p in patches or []]
    try:
        column, driver = start_source_driver(Path(source), patch_paths, label, workdir)
        return {column: driver}
    except WorkerUnavailable as exc:
        fallback = label if label is not None and LABEL_RE.fullmatch(label) else None
        return {column_label(peek_version(Path(source)), fallback, patch_paths): exc}


def peek_version(source: Path) -> str:
    """The version a source declares, read without building (``"source"`` when unreadable):
    names the column of a source that failed to build."""
    try:
        if source.is_dir():
            return read_version(find_root(source))
        with tarfile.open(source) as tar:
            props = sorted((m for m in tar.getmembers() if m.isfile() and
                            (m.name == "build/BranchInfo.props" or m.name.endswith("/build/BranchInfo.props"))),
                           key=lambda m: m.name.count("/"))
            f = tar.extractfile(props[0]) if props else None
            if f is None:
                return "source"
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "build").mkdir()
                (Path(tmp) / "build" / "BranchInfo.props").write_bytes(f.read())
                return read_version(Path(tmp))
    except (SourceBuildError, tarfile.TarError, OSError):
        return "source"


if __name__ == "__main__":  # python3 -m harness.builds.torchsharp_source --version SOURCE (for CI scripts)
    import sys
    if len(sys.argv) != 3 or sys.argv[1] != "--version":
        print("usage: python3 -m harness.builds.torchsharp_source --version SOURCE", file=sys.stderr)
        sys.exit(2)
    found = peek_version(Path(sys.argv[2]))
    print(found)
    sys.exit(0 if found != "source" else 1)
