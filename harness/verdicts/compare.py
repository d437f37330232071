"""Comparisons of what two sides hold, as lists of problems (empty: they agree).

Digests compare bytes (harness/verdicts/digest.py); optimizer values compare exactly in the format's
terms (harness/verdicts/oracle.py); files compare byte for byte, streamed.
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from harness.verdicts.digest import TensorDigest
from harness.drivers.base import OptimizerDigest, Value


_CHUNK = 1 << 24


def same_bytes(a: Path, b: Path) -> bool:
    """Whole files byte for byte, streamed through two buffers made once per call (files of
    several GiB never sit in memory, and no new memory is touched per chunk)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    bufs = (bytearray(_CHUNK), bytearray(_CHUNK))
    views = tuple(memoryview(x) for x in bufs)
    with a.open("rb", buffering=0) as fa, b.open("rb", buffering=0) as fb:
        while True:
            n = _read_full(fa, views[0])
            if n != _read_full(fb, views[1]):
                return False
            same = bufs[0] == bufs[1] if n == _CHUNK else views[0][:n].tobytes() == views[1][:n].tobytes()
            if not same:  # bytearray == bytearray is one memcmp
                return False
            if n == 0:
                return True


def _read_full(f: io.FileIO, view: memoryview) -> int:
    """Fill ``view`` from ``f`` as far as the file goes; the number of bytes read."""
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def compare_modules(expected: Mapping[str, TensorDigest], actual: Mapping[str, TensorDigest],
                    exp_name: str, act_name: str, actual_sha: bool = True) -> list[str]:
    """What differs between two named digests. ``actual_sha=False`` leaves the actual side's
    sha256 out of a bytes mismatch (values that may be uninitialised memory, which differ from
    run to run: the caller keeps them in the cell's details)."""
    problems: list[str] = []
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    if missing:
        problems.append(f"{act_name} lacks key(s) {missing}")
    if extra:
        problems.append(f"{act_name} has unexpected key(s) {extra}")
    for key, e in expected.items():
        a = actual.get(key)
        if a is None or a == e:
            continue
        if a.dtype != e.dtype:
            problems.append(f"{key!r}: dtype {exp_name} {e.dtype}, {act_name} {a.dtype}")
        elif a.shape != e.shape:
            problems.append(f"{key!r}: shape {exp_name} {list(e.shape)}, {act_name} {list(a.shape)}")
        else:
            theirs = f", {act_name} {a.sha256[:12]}" if actual_sha else f"; {act_name}'s in the details"
            problems.append(f"{key!r}: bytes differ ({exp_name} sha256 {e.sha256[:12]}{theirs})")
    return problems


def _fmt(v: Value) -> str:
    return str(v) if v is not None else "absent"


def _compare_fields(where: str, expected: Mapping[str, Value], actual: Mapping[str, Value],
                    act_name: str) -> list[str]:
    problems = []
    for k in expected.keys() | actual.keys():
        if k not in actual:
            problems.append(f"{where}.{k}: {act_name} does not report it")
        elif k not in expected:
            problems.append(f"{where}.{k}: {act_name} reports an unexpected field")
        elif expected[k] != actual[k]:
            problems.append(f"{where}.{k}: expected {_fmt(expected[k])}, {act_name} {_fmt(actual[k])}")
    return sorted(problems)


def compare_optimizers(expected: OptimizerDigest | None, actual: OptimizerDigest | None, act_name: str) -> list[str]:
    if expected is None or actual is None:
        return [] if expected is actual else [f"optimizer: expected {expected}, {act_name} {actual}"]
    problems = []
    if expected.class_name != actual.class_name:
        problems.append(f"optimizer class: expected {expected.class_name}, {act_name} {actual.class_name}")
    if len(expected.groups) != len(actual.groups):
        problems.append(f"param groups: expected {len(expected.groups)}, {act_name} {len(actual.groups)}")
    if len(expected.states) != len(actual.states):
        problems.append(f"parameter states: expected {len(expected.states)}, {act_name} {len(actual.states)}")
    for i, (e, a) in enumerate(zip(expected.groups, actual.groups)):
        problems += _compare_fields(f"group[{i}]", e, a, act_name)
    for i, (e, a) in enumerate(zip(expected.states, actual.states)):
        problems += _compare_fields(f"state[{i}]", e, a, act_name)
    return problems


def label(labels: Mapping[TensorDigest, str], held: TensorDigest | None) -> str:
    """What a held digest is, by the labels of the candidates it may equal."""
    if held is None:
        return "absent"
    return labels.get(held, f"other: {held}")
