"""One ref, from its commit to its cell changes against the release.

``prepare`` reads the clone only (merge base, what the change touches, whether the clone
holds every file it needs) and writes the change as a patch; ``build_and_run`` builds the
base release with that patch through :mod:`harness.builds.torchsharp_source` (cached by the
content of source and patch, so a commit seen before is not built again), applies the
native guard, runs the plan's cells in the ref's column and compares them with the
release column by raw outcomes (:func:`harness.verdicts.diff.diff_columns`). Every failure ends in a
state of the ref (harness/radar/model.py), never in an exception out of the radar.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.builds import native_guard
from harness.verdicts.diff import diff_columns
from harness.drivers.base import Driver, PythonDriver, TorchSharpSide
from harness.drivers.torchsharp import WorkerUnavailable
from harness.running.evidence import ReproSpec
from harness.verdicts.expectations import ExpectedFailures
from harness.verdicts.outcomes import CellResult
from harness.running.plan import Cell
from harness.radar import classify as cls
from harness.radar import model as m
from harness.radar.refs import Git, RefInfo
from harness.report.model import Run
from harness.running.runner import CellRunner
from harness.builds.torchsharp_source import RECIPE, PatchDoesNotApply, SourceBuildError, find_root, start_source_driver

# Files without which a tree is no TorchSharp source the managed build can use.
REQUIRED_FILES = ("build/BranchInfo.props", "src/TorchSharp/TorchSharp.csproj")
ERROR_LINE = re.compile(r"(?:error (?:CS|MSB|NU)\d+|: error )")


def prepare(git: Git, info: RefInfo, base: str, patches_dir: Path, title: str | None = None) -> m.RefResult:
    """Classify ``info`` against ``base``; a managed change leaves its patch in ``patches_dir``."""
    r = m.RefResult(ref=info.ref, commit=info.commit, author=info.author, date=info.date,
                    title=title or info.subject, label=info.label)
    r.merge_base = git.merge_base(base, info.commit)
    if r.merge_base is None:
        r.state, r.detail = m.NO_MERGE_BASE, f"{info.ref} ({info.commit[:12]}) shares no history with the base"
        return r
    missing = git.missing_objects(info.commit)
    absent = [p for p in REQUIRED_FILES if not git.has_path(info.commit, p)]
    if missing or absent:
        r.state = m.INCOMPLETE
        r.detail = "; ".join(
            ([f"the clone lacks {len(missing)} file(s) of {info.commit[:12]}: {', '.join(missing[:10])}"
              + (", ..." if len(missing) > 10 else "")] if missing else [])
            + ([f"its tree lacks {', '.join(absent)}"] if absent else []))
        return r
    files = git.changed_files(r.merge_base, info.commit)
    c = cls.classify([p for _, p in files])
    r.kind, r.native_files, r.managed_files, r.other_files = c.kind, list(c.native), list(c.managed), list(c.other)
    r.binary_files = git.binary_files(r.merge_base, info.commit)
    r.state = {cls.NATIVE: m.NATIVE, cls.OTHER: m.OTHER, cls.EMPTY: m.EMPTY}.get(c.kind, "")
    if c.kind == cls.MANAGED:
        # only the build's inputs: a test or docs hunk that no longer applies must not stop the build
        patch = patches_dir / f"{r.merge_base[:12]}-{info.commit[:12]}.build.patch"
        if not patch.exists():
            patches_dir.mkdir(parents=True, exist_ok=True)
            tmp = patch.with_suffix(f".{os.getpid()}.tmp")  # two radars (test workers) may write it at once
            tmp.write_bytes(git.patch(r.merge_base, info.commit, c.managed))
            tmp.replace(patch)
        r.patch = str(patch)
    return r


def compiler_errors(text: str, limit: int = 20) -> str:
    """The distinct compiler error lines of a failed build's output, paths shortened."""
    seen: list[str] = []
    for line in text.splitlines():
        if ERROR_LINE.search(line):
            line = re.sub(r"\s*\[[^\]]*\.csproj[^\]]*\]$", "", line.strip())
            line = re.sub(r"[^\s\[]*/src/(TorchSharp/)", r"src/\1", line)
            if line not in seen:
                seen.append(line)
    return "\n".join(seen[:limit]) + (f"\n... {len(seen) - limit} more" if len(seen) > limit else "")


def failed_state(exc: Exception) -> tuple[str, str]:
    """(state, detail) for an exception of building or starting a source column."""
    text = str(exc)
    if isinstance(exc, native_guard.NativeIncompatible):
        return m.GUARD_FAILED, text
    if isinstance(exc, PatchDoesNotApply):
        return m.CONFLICT, "; ".join(exc.failures)[:3000]
    if isinstance(exc, SourceBuildError) and " does not build " in text:
        return m.BUILD_FAILED, compiler_errors(text) or text[-3000:]
    if isinstance(exc, SourceBuildError) and ("not a TorchSharp source tree" in text
                                              or "cannot read the version" in text):
        return m.INCOMPLETE, text
    return m.UNAVAILABLE, text[:3000]


def in_base(base_tarball: Path, patch: Path) -> bool:
    """Whether the base holds ``patch`` already: the patch reverts cleanly from it (``patch -R
    --dry-run``, no fuzz), e.g. a pull request squash-merged before the release."""
    with tempfile.TemporaryDirectory(prefix="radar-base-") as tmp:
        with tarfile.open(base_tarball) as tar:
            tar.extractall(tmp, [mem for mem in tar.getmembers() if mem.isfile() or mem.isdir()])
        root = find_root(Path(tmp))
        proc = subprocess.run(["patch", "-R", "-p1", "--dry-run", "--batch", "--forward", "--fuzz=0", "-d", str(root),
                               "-i", str(patch.resolve())], capture_output=True, text=True)
        return proc.returncode == 0


def _failure_file(base_tarball: Path, patch: Path) -> Path:
    """Where a build failure of ``patch`` onto ``base_tarball`` is remembered (by content)."""
    h = hashlib.sha256(RECIPE.encode() + b"\0" + base_tarball.name.encode() + b"\0" + patch.read_bytes())
    return base_tarball.parent / "failed" / f"{h.hexdigest()}.json"


StartSource = Callable[[Path, Sequence[Path], str, Path], tuple[str, TorchSharpSide]]


def _start(source: Path, patches: Sequence[Path], label: str, workdir: Path) -> tuple[str, TorchSharpSide]:
    return start_source_driver(source, patches, label, workdir)


def build_and_run(r: m.RefResult, base_tarball: Path, py: PythonDriver, release: str, release_cells: list[Cell],
                  expected: ExpectedFailures, run: Run, out: Path, pytorch_label: str,
                  start: StartSource = _start) -> None:
    """Build ``r``'s change onto the base, run its column, record its changes (in ``r``) and
    its cells (in ``run``)."""
    t0 = time.monotonic()
    assert r.patch is not None
    failure = _failure_file(base_tarball, Path(r.patch))
    if failure.exists():  # this change failed to apply or build onto this base before: not again
        r.state, r.detail = json.loads(failure.read_text(encoding="utf-8"))
        r.build = (r.detail.splitlines() or [r.state])[0][:300] + " (cached failure)"
        return
    try:
        column, driver = start(base_tarball, [Path(r.patch)], r.label, out / "work")
    except (WorkerUnavailable, OSError) as exc:
        r.state, r.detail = failed_state(exc)
        if isinstance(exc, PatchDoesNotApply) and in_base(base_tarball, Path(r.patch)):
            r.state, r.detail = m.IN_BASE, ("the base release holds every hunk of the change already (it reverts "
                                            "cleanly: patch -R --dry-run), e.g. merged before the release")
        if r.state in (m.BUILD_FAILED, m.CONFLICT, m.IN_BASE):  # decided by source and patch alone
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(json.dumps([r.state, r.detail]), encoding="utf-8")
        r.build = r.detail.splitlines()[0][:300] if r.detail else type(exc).__name__
        r.duration_s = round(time.monotonic() - t0, 1)
        return
    try:
        r.column = column
        native = next((v for k, v in driver.capabilities.provenance.items() if k.endswith(" native")), "")
        r.build = f"built, native guard passed ({native})" if native else "built"
        repro = ReproSpec(pytorch=pytorch_label, torchsharp_source=str(base_tarball.resolve()),
                          torchsharp_patches=(str(Path(r.patch).resolve()),), torchsharp_label=r.label)
        runner = CellRunner(py, {column: driver}, out / "cells", expected, repro=repro)
        for cell in release_cells:
            run.cells.append(runner.run(dataclasses.replace(cell, torchsharp=column)))
            r.cells += 1
    finally:
        if isinstance(driver, Driver):
            driver.close()
    r.state = m.RAN
    r.changes = column_changes(run, release, column, expected, out)
    r.duration_s = round(time.monotonic() - t0, 1)


def column_changes(run: Run, release: str, column: str, expected: ExpectedFailures,
                   out: Path) -> dict[str, list[m.CellDelta]]:
    """The ref column's cells that differ from the release column's, by kind."""
    d = diff_columns(run, release, run, column)
    by_id: dict[str, CellResult] = {c.id: c for c in run.cells if c.torchsharp == column}
    kinds = {"fixed": d.fixes, "broken": d.regressions, "unavailable": d.lost_coverage,
             "reason_changed": d.changed_reasons, "other": d.other_changes}
    changes: dict[str, list[m.CellDelta]] = {}
    for kind, items in kinds.items():
        for ch in items:
            cell = by_id.get(ch.id)
            evidence = None
            if cell is not None and cell.evidence:
                ev = Path(cell.evidence)
                evidence = str(ev.relative_to(out)) if ev.is_relative_to(out) else str(ev)
            findings = sorted({e.finding for e in expected.entries if e.finding and e.matches_cell(ch.id)})
            changes.setdefault(kind, []).append(m.CellDelta(ch.id, ch.old_outcome or "(none)", ch.new_outcome,
                                                            ch.old_reason, ch.new_reason, evidence, findings))
    return changes
