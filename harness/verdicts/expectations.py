"""Expected failures as data, each carrying the failure it expects (protobuf's failure lists).

``cases/expected_failures/*.toml`` hold entries like::

    [[xfail]]
    cells = ["*radam*::continue_*::*::ts0.107.0::*"]   # fnmatch patterns over cell ids
    expect = "TorchSharp .* from the float64 reference"  # regex the actual reason must contain
    finding = "radam-lr-applied-twice"                # docs/findings/<finding>.md
    when = ["torchsharp.onednn_avx512"]               # optional: machine features, all must hold ("!x": not)
    reason = "what is wrong, which side, and where in whose source"

A cell that matches an entry (its patterns, and its ``when`` on the machine that ran it):

* fails or errors with a reason the entry's ``expect`` finds -> ``xfail``;
* fails or errors otherwise -> ``fail``: "failed differently than listed";
* passes -> ``xpass``, an error: a fixed bug or a stale entry must not hide; except for an
  entry marked ``nondeterministic = true`` (the defect shows in some processes only): then
  ``xfail`` saying it passed in this process;
* breaks the harness itself -> stays ``error`` (that never is what an entry expected).

A TorchSharp axis with a build label (``ts0.107.0+radam-fix``, a build from source) is
matched by the version it was built from (``ts0.107.0``), so a fixing patch shows as xpass;
one driven through pythonnet (``ts0.107.0@pythonnet``) by its version too.
"""
from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.verdicts.outcomes import CellResult

_KEYS = {"cells", "expect", "reason", "finding", "when", "nondeterministic"}
_FEATURE = re.compile(r"!?[a-z0-9_]+\.[a-z0-9_]+")


class ExpectedFailureError(ValueError):
    """An entry of cases/expected_failures/*.toml is malformed (the message names file and entry)."""


@dataclass(frozen=True)
class ExpectedFailure:
    cells: tuple[str, ...]
    expect: str
    reason: str
    source: str                       # "file.toml: entry 3"
    finding: str | None = None
    when: tuple[str, ...] = ()
    # the defect shows in some processes only (e.g. a .NET Hashtable's per-process order decides
    # it): a pass of a listed cell is then no fix, and reads as xfail saying so
    nondeterministic: bool = False

    @property
    def pattern(self) -> str:
        return " | ".join(self.cells)

    def matches_cell(self, cell_id: str) -> bool:
        ids = {cell_id, base_cell_id(cell_id)}
        return any(fnmatch.fnmatchcase(i, p) for i in ids for p in self.cells)

    def holds_on(self, features: Iterable[str]) -> bool:
        have = set(features)
        return all((c[1:] not in have) if c.startswith("!") else (c in have) for c in self.when)

    def expects(self, reason: str) -> bool:
        return re.search(self.expect, reason, re.DOTALL) is not None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "cells": list(self.cells), "expect": self.expect, "reason": self.reason,
                "finding": self.finding, "when": list(self.when), "nondeterministic": self.nondeterministic}


def base_cell_id(cell_id: str) -> str:
    """The id with a TorchSharp column's qualifiers dropped: a build's label (``ts0.107.0+fix``)
    and the driver (``ts0.107.0@pythonnet``) -> ``ts0.107.0``."""
    return "::".join(p.split("+", 1)[0].split("@", 1)[0] if p.startswith("ts") else p for p in cell_id.split("::"))


def _entry(raw: Any, where: str) -> ExpectedFailure:
    if not isinstance(raw, dict):
        raise ExpectedFailureError(f"{where}: an [[xfail]] entry must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ExpectedFailureError(f"{where}: unknown key(s) {sorted(unknown)} (known: {sorted(_KEYS)})")
    for key in ("cells", "expect", "reason"):
        if key not in raw:
            raise ExpectedFailureError(f"{where}: '{key}' is required")
    cells = raw["cells"]
    if isinstance(cells, str):
        cells = [cells]
    if not (isinstance(cells, list) and cells and all(isinstance(c, str) and "::" in c for c in cells)):
        raise ExpectedFailureError(f"{where}: 'cells' must be fnmatch patterns over cell ids "
                                   "(case::check::pt::ts::device::codec)")
    expect = raw["expect"]
    if not isinstance(expect, str) or not expect:
        raise ExpectedFailureError(f"{where}: 'expect' must be a non-empty regex of the failure reason")
    try:
        re.compile(expect)
    except re.error as exc:
        raise ExpectedFailureError(f"{where}: 'expect' is not a valid regex: {exc}") from exc
    when = raw.get("when", [])
    if isinstance(when, str):
        when = [when]
    if not (isinstance(when, list) and all(isinstance(w, str) and _FEATURE.fullmatch(w) for w in when)):
        raise ExpectedFailureError(f"{where}: 'when' must list machine features like 'torchsharp.onednn_avx512' "
                                   "or '!cpu.avx512f'")
    finding = raw.get("finding")
    if finding is not None and not isinstance(finding, str):
        raise ExpectedFailureError(f"{where}: 'finding' must be a slug of docs/findings/")
    nondeterministic = raw.get("nondeterministic", False)
    if not isinstance(nondeterministic, bool):
        raise ExpectedFailureError(f"{where}: 'nondeterministic' must be true or false")
    return ExpectedFailure(tuple(cells), expect, " ".join(str(raw["reason"]).split()), where, finding, tuple(when),
                           nondeterministic)


@dataclass
class ExpectedFailures:
    entries: list[ExpectedFailure] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path) -> ExpectedFailures:
        entries: list[ExpectedFailure] = []
        for path in sorted(folder.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ExpectedFailureError(f"{path}: {exc}") from exc
            unknown = set(data) - {"xfail"}
            if unknown:
                raise ExpectedFailureError(f"{path}: unknown table(s) {sorted(unknown)}; entries are [[xfail]]")
            for i, raw in enumerate(data.get("xfail", []), 1):
                entries.append(_entry(raw, f"{path.name}: entry {i}"))
        stray = sorted(p.name for p in folder.glob("*.txt"))
        if stray:
            raise ExpectedFailureError(f"{folder}: {stray} are in the old one-line format; entries are [[xfail]] "
                                       "tables in *.toml files (see harness/verdicts/expectations.py)")
        return cls(entries)

    def matching(self, cell_id: str, features: Iterable[str] = ()) -> list[ExpectedFailure]:
        have = set(features)
        return [e for e in self.entries if e.matches_cell(cell_id) and e.holds_on(have)]

    def apply(self, result: CellResult, features: Iterable[str] = ()) -> CellResult:
        """Turn a raw outcome into the reported one (see the module docstring)."""
        entries = self.matching(result.id, features)
        if not entries:
            return result
        if result.outcome == "error" and result.details.get("harness_error"):
            result.details["expected_failure"] = entries[0].source
            return result
        if result.outcome in ("fail", "error"):
            result.details["raw_outcome"] = result.outcome
            hit = next((e for e in entries if e.expects(result.reason)), None)
            if hit is None:
                listed = "; ".join(f"{e.source}: /{e.expect}/" for e in entries)
                result.details["expected_failure"] = [e.to_json() for e in entries]
                result.outcome = "fail"
                result.reason = f"failed differently than listed: expected {listed}, got: {result.reason}"
                return result
            result.details["expected_failure"] = hit.to_json()
            if hit.nondeterministic:
                result.details["nondeterministic"] = True
            result.outcome = "xfail"
            result.reason = (f"expected{f' (finding {hit.finding})' if hit.finding else ''}: {hit.reason} "
                             f"| actual: {result.reason}")
        elif result.outcome == "pass" and entries[0].nondeterministic:
            e = entries[0]
            result.details.update(expected_failure=e.to_json(), nondeterministic=True, raw_outcome="pass")
            result.outcome = "xfail"
            result.reason = (f"expected{f' (finding {e.finding})' if e.finding else ''}, nondeterministic: {e.reason} "
                             "| actual: passed in this process (the defect shows in some processes only)")
        elif result.outcome == "pass":
            e = entries[0]
            result.details["expected_failure"] = e.to_json()
            result.outcome = "xpass"
            result.reason = (f"unexpected pass: listed as expected failure ({e.source}"
                             f"{f', finding {e.finding}' if e.finding else ''}: {e.reason}); "
                             "remove the entry if the fix is real")
        return result


def features_of(machines: Mapping[str, Any]) -> set[str]:
    """Union of ``side -> Machine`` features (``Machine.features(side)``)."""
    out: set[str] = set()
    for side, m in machines.items():
        if m is not None:
            out |= m.features(side)
    return out
