"""What a cell leaves behind: its folder of files, pruned of huge ones, and a repro.sh."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.cases import OptimizerCase, TensorCase
from harness.verdicts.outcomes import CellResult
from harness.paths import CASES_DIR, ROOT
from harness.running.plan import Cell

# Evidence of a failing cell keeps files up to this size; bigger ones (a 2 GiB input) are
# replaced by a note: repro.sh regenerates them.
EVIDENCE_MAX_FILE = 64 << 20


def cell_dir(workdir: Path, cell: Cell) -> Path:
    """A new, empty folder for the cell's files (a leftover of an earlier run is removed)."""
    d = workdir / re.sub(r"[^A-Za-z0-9_.-]+", "_", cell.id)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def prune_evidence(folder: Path, limit: int = EVIDENCE_MAX_FILE) -> list[str]:
    """Replace each file over ``limit`` bytes in an evidence folder by ``NAME.omitted.txt``
    (its size and why), so a failing large cell leaves no multi-GiB files in reports/."""
    notes = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        size = path.stat().st_size
        if size > limit:
            path.unlink()
            path.with_name(path.name + ".omitted.txt").write_text(
                f"{path.name}: {size} bytes, not kept (over {limit} bytes); repro.sh writes it again\n",
                encoding="utf-8")
            notes.append(f"{path.name} ({size} bytes)")
    return notes


@dataclass(frozen=True)
class ReproSpec:
    """How the run that made a cell was started, so its repro.sh replays exactly that cell:
    the same interpreter, the PyTorch by its label (host / 2.6), the codec and case folder
    that were used, the TorchSharp workers' extra environment."""

    interpreter: str = sys.executable
    pytorch: str = "host"
    codec: str = "ours"
    cases: str = str(CASES_DIR)
    torchsharp_env: tuple[tuple[str, str], ...] = ()
    # A column built from source: what built it (harness/builds/torchsharp_source.py).
    torchsharp_source: str | None = None
    torchsharp_patches: tuple[str, ...] = ()
    torchsharp_label: str | None = None


def _saved_codec(folder: Path, spec: str) -> str:
    """A codec given by path is copied beside the repro (a codec release under test moves on;
    the repro keeps what ran); a module name or "ours" stays as it is."""
    path = Path(spec)
    if spec in ("", "ours") or not path.exists():
        return spec
    dest = folder / "codec" / path.name
    if path.is_dir():
        shutil.copytree(path, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    return f"codec/{path.name}"


def write_repro(folder: Path, cell: Cell, result: CellResult, repro: ReproSpec | None = None) -> None:
    """Leave what replays just this cell: the case, the outcome, the codec that ran, and one
    command that pins every axis (case, check, PyTorch, TorchSharp, device, codec, route)."""
    repro = repro or ReproSpec()
    case = cell.case
    spec: dict[str, Any] = {"name": case.name, "source": case.source}
    if isinstance(case, OptimizerCase):
        spec.update(model=case.model_case.model, optimizer=dict(case.optimizer), steps=case.steps,
                    no_grad=list(case.no_grad))
    elif isinstance(case, TensorCase):
        spec.update(dtype=case.dtype, shape=list(case.shape), layout=case.layout)
    else:
        spec.update(model=case.model, dtype=case.dtype, seed=case.seed, input_shape=list(case.input_shape))
    (folder / "case.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    (folder / "outcome.json").write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n",
                                         encoding="utf-8")
    codec = _saved_codec(folder, repro.codec)
    q = shlex.quote
    codec_arg = f'"$here"/{q(codec)}' if codec.startswith("codec/") else q(codec)
    env = "".join(f" --torchsharp-env {q(f'{k}={v}')}" for k, v in repro.torchsharp_env)
    large = (f" --large-routes {cell.route}" if "large" in case.features else "") + (
        f" --zoo-routes {cell.route}" if "zoo" in case.features else "")
    version, _, driver = cell.torchsharp.partition("@")  # "0.107.0@pythonnet": the second driver
    version, plus, _ = version.partition("+")  # "0.107.0+fix": a build from source
    source = ""
    if plus and repro.torchsharp_source:
        source = (f" --torchsharp-source {q(repro.torchsharp_source)}"
                  + "".join(f" --torchsharp-patch {q(p)}" for p in repro.torchsharp_patches)
                  + (f" --torchsharp-label {q(repro.torchsharp_label)}" if repro.torchsharp_label else ""))
    command = (f"{q(repro.interpreter)} -m harness run --case {q(case.name)} --check {cell.check} "
               f"--pytorch {q(repro.pytorch)} --torchsharp {q(version)} --driver {driver or 'csharp'}{source} "
               f"--device {cell.device} --codec {codec_arg} --route {cell.route}{large} --cases {q(repro.cases)}{env} "
               f"-k {q(cell.id)} "
               f"--jobs 1 --run-id repro-{q(folder.name)} --keep -v")
    (folder / "repro.sh").write_text(
        "#!/bin/sh\n# Replays just this cell, with the interpreter, PyTorch, codec and cases of the run\n"
        "# that made it; the files beside this script are its inputs and outputs.\n"
        'here="$(cd "$(dirname "$0")" && pwd)"\n'
        f'cd "$here/{os.path.relpath(ROOT, folder)}" && exec {command}\n', encoding="utf-8")
    (folder / "repro.sh").chmod(0o755)


def keep(folder: Path, cell: Cell, result: CellResult, keep_passing: bool, repro: ReproSpec | None = None) -> None:
    """After a cell: drop a passing cell's folder (unless ``keep_passing``), else prune it of
    huge files (--keep keeps them whole) and leave the repro."""
    if result.outcome == "pass" and not keep_passing:
        shutil.rmtree(folder, ignore_errors=True)
        return
    result.evidence = str(folder)
    if not keep_passing:
        omitted = prune_evidence(folder)
        if omitted:
            result.details["evidence_omitted"] = omitted
    write_repro(folder, cell, result, repro)
