"""reports/history.jsonl: one line per matrix run, appended, never rewritten.

Each line is a JSON object: ``run_id``, ``started``, ``recorded`` (when the line was
written), ``commit``, ``versions`` (the PyTorch and TorchSharp versions that ran, LibTorch,
the codec), ``not_run`` (implementations whose every cell was skipped), ``counts`` (cells
per outcome), ``cells``, ``duration_s`` and ``matrix`` (the run's matrix.json, relative to
the history file's folder). A line is written with one ``write`` on a file opened for
appending, under an exclusive lock, so concurrent runs never interleave their lines.

``previous_matrix`` finds the run recorded before a given one: what
``python3 -m harness diff last NEW.json`` compares NEW with.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Any

from harness.report.model import Run
from harness.report.summary import summarise_run

HISTORY_NAME = "history.jsonl"


class HistoryError(Exception):
    """The history cannot answer: no earlier run recorded, or its matrix.json is gone."""


def history_entry(run: Run, matrix: Path, history: Path) -> dict[str, Any]:
    s = summarise_run(run)
    try:
        where = Path(os.path.relpath(matrix.resolve(), history.resolve().parent)).as_posix()
    except ValueError:  # another drive (Windows)
        where = str(matrix.resolve())
    return {
        "run_id": run.run_id,
        "started": run.started,
        "recorded": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": run.provenance.get("commit", "unknown"),
        "versions": {"PyTorch": sorted({i[0] for i in s.ran}), "TorchSharp": sorted({i[1] for i in s.ran}),
                     "libtorch": run.provenance.get("libtorch", ""), "codec": run.provenance.get("codec", "")},
        "not_run": [n.label for n in s.not_run],
        "counts": run.summary,
        "cells": len(run.cells),
        "duration_s": run.duration_s,
        "matrix": where,
    }


def append_history(run: Run, history: Path, matrix: Path) -> dict[str, Any]:
    """Append ``run``'s line to ``history`` (created if missing); returns the entry."""
    entry = history_entry(run, matrix, history)
    line = (json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    history.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(history, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size:  # a line torn by a crash must not swallow this one
            with open(history, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    line = b"\n" + line
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"{history}: short write ({written} of {len(line)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock
    return entry


def read_history(history: Path) -> list[dict[str, Any]]:
    """Every readable line of ``history``, oldest first; an unreadable line is reported on
    stderr (file and line number) and left out."""
    if not history.exists():
        return []
    entries = []
    for n, text in enumerate(history.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            entry = json.loads(text)
        except json.JSONDecodeError as exc:
            print(f"{history}:{n}: not a JSON line, left out: {exc}", file=sys.stderr)
            continue
        if not (isinstance(entry, dict) and isinstance(entry.get("run_id"), str)
                and isinstance(entry.get("matrix"), str)):
            print(f"{history}:{n}: not a run entry (run_id and matrix), left out", file=sys.stderr)
            continue
        entries.append(entry)
    return entries


def previous_matrix(history: Path, new: Run) -> Path:
    """The matrix.json of the run recorded before ``new``: the last entry before ``new``'s own
    line if the history has one, else the last entry; runs with ``new``'s id are passed over."""
    entries = read_history(history)
    own = [i for i, e in enumerate(entries) if e["run_id"] == new.run_id]
    if own:
        entries = entries[:own[-1]]
    earlier = [e for e in entries if e["run_id"] != new.run_id]
    if not earlier:
        raise HistoryError(f"no run before {new.run_id!r} is recorded in {history}"
                           + ("" if history.exists() else " (the file does not exist)")
                           + "; every `python3 -m harness run` appends its line there")
    last = earlier[-1]
    path = Path(last["matrix"])
    if not path.is_absolute():
        path = history.parent / path
    if not path.is_file():
        raise HistoryError(f"{history}: the previous run {last['run_id']!r} recorded its matrix.json at "
                           f"{path}, which is gone")
    return path


__all__ = ["HISTORY_NAME", "HistoryError", "append_history", "history_entry", "previous_matrix", "read_history"]
