"""What the radar found for one ref: plain data, written to radar.json and read back by the
next radar run (harness/radar/history.py)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Every state a ref can end in; none stops the radar.
RAN = "ran"  # built, guarded and run beside the release
NATIVE = "native"  # changes src/Native: needs a native build, not run
OTHER = "other"  # touches neither src/Native nor the managed build: not built
EMPTY = "empty"  # no change from the merge base (e.g. already in the base release)
DUPLICATE = "duplicate"  # the same commit as a ref listed before it: run once
NO_MERGE_BASE = "no-merge-base"  # no history in common with the base release
INCOMPLETE = "incomplete"  # the clone lacks files (objects) the ref needs, or its tree lacks the build's files
CONFLICT = "conflict"  # the change does not apply onto the base release
IN_BASE = "in-base"  # every hunk of the change is in the base release already (merged before it)
BUILD_FAILED = "build-failed"  # the managed build fails (compiler errors)
GUARD_FAILED = "guard-failed"  # the build needs native entry points the released library lacks
UNAVAILABLE = "unavailable"  # built, but its worker could not start (reason given)
STATES = (RAN, NATIVE, OTHER, EMPTY, DUPLICATE, NO_MERGE_BASE, INCOMPLETE, IN_BASE, CONFLICT, BUILD_FAILED,
          GUARD_FAILED, UNAVAILABLE)
STATE_TEXT = {
    RAN: "built and run", NATIVE: "needs a native build (not run)", OTHER: "touches neither (not built)",
    EMPTY: "empty diff", DUPLICATE: "same commit as another ref (run once)",
    NO_MERGE_BASE: "no merge base with the base release", INCOMPLETE: "checkout lacks files",
    IN_BASE: "already in the base release", CONFLICT: "does not apply onto the base release",
    BUILD_FAILED: "build failed", GUARD_FAILED: "native guard failed", UNAVAILABLE: "worker unavailable"}
# The kinds of cell change, against the release column (harness/verdicts/diff.py's RunDiff lists).
CHANGE_KINDS = ("fixed", "broken", "unavailable", "reason_changed", "other")
CHANGE_TEXT = {"fixed": "fixed", "broken": "broken", "unavailable": "newly unavailable",
               "reason_changed": "reason changed", "other": "other outcome change"}


@dataclass
class CellDelta:
    id: str  # the cell in the ref's column
    old: str  # the release column's raw outcome
    new: str  # the ref's raw outcome
    old_reason: str = ""
    new_reason: str = ""
    evidence: str | None = None  # the ref cell's folder (with repro.sh), relative to the radar run
    findings: list[str] = field(default_factory=list)  # the findings whose cells these are


@dataclass
class RefResult:
    ref: str
    commit: str
    author: str
    date: str
    title: str  # the pull request's title when given (--pr-info), else the tip's subject
    label: str  # the column label part: pr1561
    state: str = ""
    merge_base: str | None = None
    kind: str = ""  # classify.py: managed / native / other / empty
    native_files: list[str] = field(default_factory=list)
    managed_files: list[str] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)
    binary_files: list[str] = field(default_factory=list)
    detail: str = ""  # why it was not run: compiler errors, guard, missing files, ...
    duplicate_of: str | None = None
    column: str | None = None  # 0.107.0+pr1561
    patch: str | None = None  # the change applied onto the base (a file)
    build: str = ""  # the build's cache key, or why it failed
    changes: dict[str, list[CellDelta]] = field(default_factory=dict)
    cells: int = 0  # cells run
    duration_s: float = 0.0
    new: bool = True  # not seen by an earlier radar run with this commit and these changes

    @property
    def fixes_findings(self) -> list[str]:
        return sorted({f for d in self.changes.get("fixed", []) for f in d.findings})

    @property
    def regression(self) -> bool:
        return bool(self.changes.get("broken"))

    def count(self, kind: str) -> int:
        return len(self.changes.get(kind, []))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fixes_findings"] = self.fixes_findings
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RefResult:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["changes"] = {k: [CellDelta(**d) for d in v] for k, v in data.get("changes", {}).items()}
        return cls(**fields)
