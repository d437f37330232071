"""What every rendering shows first, computed once from a Run's plain cells.

* the summary: check x implementation, counts per outcome ("52 pass, 6 xfail");
* which implementations ran and which did not run at all (every cell skipped, e.g. an
  unavailable TorchSharp version or CUDA without a device), the latter grouped into one line
  per reason ("TorchSharp 0.106.0: ...", "CUDA: ...");
* the cells that did not pass, worst first, with the finding each expected failure links;
* skips counted per reason;
* the machine the verdicts were reached on (CPU, oneDNN ISA and threads of each worker).

Pure functions over :class:`~harness.report.model.Run`: no driver, no check, no file.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.verdicts.outcomes import OUTCOMES, CellResult
from harness.report.model import Run, check_rank

Impl = tuple[str, str, str, str, str]  # pytorch, torchsharp, device, codec, route

# Outcomes in the order reports list cells that did not pass: the red ones first.
SEVERITY = ("error", "fail", "xpass", "xfail", "skip")
# How counts read in a summary cell.
COUNT_ORDER = ("pass", "fail", "error", "xpass", "xfail", "skip")
MACHINE_KEYS = ("cpu", "onednn_isa", "threads")
_MACHINE_KEY = re.compile(r"^(?P<worker>.*?)\s*\b(?P<key>cpu|onednn_isa|threads)(?P<where>\s*\(.*\))?$")
REASON_LIMIT = 200
# The routes in report order (harness/routes/ ROUTES; kept here so rendering needs no PyTorch).
ROUTE_ORDER = ("dat", "pth", "safetensors")
TOTAL_ROW = "all checks"


def impl_of(cell: CellResult) -> Impl:
    return (cell.pytorch, cell.torchsharp, cell.device, cell.codec, cell.route)


def newest_first(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting higher versions first ("0.107.0" before "0.106.0", numerically)."""
    return tuple((0, -int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.+-]", version))


def impl_key(impl: Impl) -> tuple[object, ...]:
    """CPU before CUDA, the route in the registry's order (dat, pth, safetensors), the newest
    TorchSharp first, PyTorch versions in order, then codec."""
    pytorch, torchsharp, device, codec, route = impl
    return (device, ROUTE_ORDER.index(route) if route in ROUTE_ORDER else len(ROUTE_ORDER), route,
            newest_first(torchsharp), pytorch, codec)


def short(text: str, limit: int = REASON_LIMIT) -> str:
    """One line of at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def counts_text(counts: dict[str, int], bold_bad: bool = False) -> str:
    """``52 pass, 6 xfail``; with ``bold_bad`` fail, error and xpass counts are **bold**."""
    parts = []
    for o in COUNT_ORDER:
        if counts.get(o):
            part = f"{counts[o]} {o}"
            parts.append(f"**{part}**" if bold_bad and o in ("fail", "error", "xpass") else part)
    return ", ".join(parts) or "—"


def each_suffix(row_name: str, counts: dict[str, int]) -> str:
    """" (each)" for a row that several checks share."""
    return " (each)" if " / " in row_name and row_name != TOTAL_ROW and any(counts.values()) else ""


def finding_of(cell: CellResult) -> str | None:
    """The slug of docs/findings/<slug>.md an expected-failure entry of this cell names, if any.
    ``details["expected_failure"]`` is the entry (xfail, xpass), a list of entries (a listed
    cell that failed differently) or a string (a harness error in a listed cell)."""
    entry = cell.details.get("expected_failure")
    entries = entry if isinstance(entry, list) else [entry]
    for e in entries:
        if isinstance(e, dict) and isinstance(e.get("finding"), str) and e["finding"]:
            return str(e["finding"])
    return None


@dataclass(frozen=True)
class NotRun:
    """Implementations whose every cell was skipped, told as one line."""

    label: str                 # "TorchSharp 0.106.0", "CUDA", or one implementation's label
    impls: tuple[Impl, ...]
    cells: int
    reason: str                # the most common skip reason, shortened
    other_reasons: int         # how many other reasons the skips gave

    def line(self) -> str:
        more = f" (and {self.other_reasons} other reason{'s' if self.other_reasons > 1 else ''})" \
            if self.other_reasons else ""
        n = len(self.impls)
        return (f"{self.label}: not run, {self.cells} cell{'s' if self.cells != 1 else ''} skipped over {n} "
                f"implementation{'s' if n > 1 else ''}"
                f" — {self.reason}{more}")


@dataclass(frozen=True)
class FindingRow:
    slug: str
    cells: int
    outcomes: dict[str, int]
    checks: tuple[str, ...]
    reason: str                # the entry's reason (what is wrong, which side, where)


@dataclass
class Summary:
    run: Run
    ran: list[Impl] = field(default_factory=list)          # implementations with a cell not skipped
    not_run: list[NotRun] = field(default_factory=list)
    labels: dict[Impl, str] = field(default_factory=dict)  # short column labels of the ran implementations
    checks: list[str] = field(default_factory=list)
    table: dict[tuple[str, Impl], dict[str, int]] = field(default_factory=dict)

    # --- the summary table -------------------------------------------------------------

    def count_rows(self) -> list[tuple[str, list[dict[str, int]]]]:
        """(check label, counts per ran implementation), consecutive checks with the same counts
        in every column sharing a row ("a / b"), then the totals ("all checks")."""
        rows: list[tuple[list[str], list[dict[str, int]]]] = []
        for check in self.checks:
            counts = [self.table.get((check, impl), {}) for impl in self.ran]
            if rows and rows[-1][1] == counts:
                rows[-1][0].append(check)
            else:
                rows.append(([check], counts))
        totals: list[dict[str, int]] = []
        for impl in self.ran:
            total: Counter[str] = Counter()
            for check in self.checks:
                total.update(self.table.get((check, impl), {}))
            totals.append(dict(total))
        return [(" / ".join(names), counts) for names, counts in rows] + [(TOTAL_ROW, totals)]

    def markdown_table(self) -> list[str]:
        """The summary as a Markdown table (what matrix.md and README.md show)."""
        if not self.ran:
            return ["(no implementation ran)"]
        lines = ["| check | " + " | ".join(self.labels[i] for i in self.ran) + " |",
                 "|---|" + "---|" * len(self.ran)]
        for name, counts in self.count_rows():
            texts = [counts_text(c, bold_bad=True) + each_suffix(name, c) for c in counts]
            lines.append(f"| {f'**{name}**' if name == TOTAL_ROW else name} | " + " | ".join(texts) + " |")
        return lines

    # --- cells that did not pass -------------------------------------------------------

    def ran_cells(self) -> list[CellResult]:
        ran = set(self.ran)
        return [c for c in self.run.cells if impl_of(c) in ran]

    def not_passed(self, outcomes: Iterable[str] = ("error", "fail", "xpass", "xfail")) -> list[CellResult]:
        """Cells of the ran implementations with these outcomes, worst first, in run order."""
        want = [o for o in SEVERITY if o in set(outcomes)]
        cells = [c for c in self.ran_cells() if c.outcome in want]
        return sorted(cells, key=lambda c: want.index(c.outcome))

    def skips(self) -> list[tuple[str, int, list[str]]]:
        """Skips of the ran implementations per reason: (reason, cells, checks), most first."""
        by: dict[str, list[CellResult]] = {}
        for c in self.ran_cells():
            if c.outcome == "skip":
                by.setdefault(" ".join(c.reason.split()) or "(no reason given)", []).append(c)
        rows = [(reason, len(cells), sorted({c.check for c in cells}, key=lambda k: (check_rank(k), k)))
                for reason, cells in by.items()]
        return sorted(rows, key=lambda r: (-r[1], r[0]))

    def findings(self) -> list[FindingRow]:
        """Every finding an expected-failure entry links, with the cells that carry it."""
        by: dict[str, list[CellResult]] = {}
        for c in self.run.cells:
            slug = finding_of(c)
            if slug is not None:
                by.setdefault(slug, []).append(c)
        rows = []
        for slug, cells in by.items():
            entry: dict[str, Any] = next((c.details["expected_failure"] for c in cells
                                          if isinstance(c.details.get("expected_failure"), dict)), {})
            rows.append(FindingRow(slug, len(cells), dict(Counter(c.outcome for c in cells)),
                                   tuple(sorted({c.check for c in cells}, key=lambda k: (check_rank(k), k))),
                                   " ".join(str(entry.get("reason", "")).split())))
        return sorted(rows, key=lambda r: (-r.outcomes.get("fail", 0) - r.outcomes.get("xpass", 0), r.slug))

    # --- the machine -------------------------------------------------------------------

    def machine(self) -> list[tuple[str, dict[str, str]]]:
        """(worker, {cpu, onednn_isa, threads}) from the provenance keys ending in those names,
        e.g. "TorchSharp 0.107.0 onednn_isa" or "PyTorch 2.6.0 cpu (PyTorch 2.6.0 worker)"."""
        workers: dict[str, dict[str, str]] = {}
        for key, value in self.run.provenance.items():
            m = _MACHINE_KEY.match(key)
            if m:
                workers.setdefault(m["worker"] or "host", {})[m["key"]] = value
        return list(workers.items())


def impl_label(impl: Impl, short_pytorch: bool, show_device: bool, show_codec: bool, show_route: bool = False) -> str:
    pytorch, torchsharp, device, codec, route = impl
    if short_pytorch:
        m = re.match(r"\d+\.\d+", pytorch)
        pytorch = m.group(0) if m else pytorch
    label = f"PyTorch {pytorch} / TorchSharp {torchsharp}"
    if show_device:
        label += f" / {device}"
    if show_codec:
        label += f" / codec {codec}"
    if show_route:
        label += f" / route {route}"
    return label


def _labels(impls: list[Impl]) -> dict[Impl, str]:
    show_device = len({i[2] for i in impls}) > 1
    show_codec = len({i[3] for i in impls}) > 1
    show_route = len({i[4] for i in impls}) > 1
    labels = {i: impl_label(i, True, show_device, show_codec, show_route) for i in impls}
    if len(set(labels.values())) < len(labels):  # two PyTorch builds of one minor version
        labels = {i: impl_label(i, False, show_device, show_codec, show_route) for i in impls}
    return labels


_AXES = ((1, "TorchSharp {}"), (0, "PyTorch {}"), (2, "{}"), (3, "codec {}"), (4, "route {}"))


def _not_run(run: Run, all_skip: set[Impl]) -> list[NotRun]:
    """All-skip implementations grouped by a shared axis value that only all-skip
    implementations have (TorchSharp 0.106.0; device cuda), else one line each."""
    impls = {impl_of(c) for c in run.cells}
    cells_of: dict[Impl, list[CellResult]] = {}
    for c in run.cells:
        cells_of.setdefault(impl_of(c), []).append(c)
    left = set(all_skip)
    groups: list[tuple[str, list[Impl]]] = []
    for axis, fmt in _AXES:
        for value in sorted({i[axis] for i in left}, key=newest_first):
            having = [i for i in impls if i[axis] == value]
            if all(i in all_skip for i in having) and any(i in left for i in having):
                members = sorted((i for i in having if i in left), key=impl_key)
                name = value.upper() if axis == 2 else value
                groups.append((fmt.format(name), members))
                left -= set(members)
    show_device = len({i[2] for i in impls}) > 1
    groups += [(impl_label(i, False, show_device, len({j[3] for j in impls}) > 1, len({j[4] for j in impls}) > 1), [i])
               for i in sorted(left, key=impl_key)]
    out = []
    for label, members in groups:
        reasons = Counter(" ".join(c.reason.split()) for i in members for c in cells_of[i])
        (top, _), *rest = reasons.most_common()
        # A local path and what follows it (a build log line) stays in matrix.json only.
        top = top.split(": /", 1)[0]
        out.append(NotRun(label, tuple(members), sum(reasons.values()), short(top or "(no reason given)"), len(rest)))
    return out


def summarise_run(run: Run) -> Summary:
    impls = {impl_of(c) for c in run.cells}
    ran = sorted({impl_of(c) for c in run.cells if c.outcome != "skip"}, key=impl_key)
    s = Summary(run=run, ran=ran, labels=_labels(ran))
    s.not_run = _not_run(run, impls - set(ran))
    s.checks = sorted({c.check for c in run.cells}, key=lambda k: (check_rank(k), k))
    ran_set = set(ran)
    for c in run.cells:
        if impl_of(c) in ran_set:
            counts = s.table.setdefault((c.check, impl_of(c)), dict.fromkeys(OUTCOMES, 0))
            counts[c.outcome] += 1
    return s


__all__ = ["Impl", "NotRun", "FindingRow", "Summary", "summarise_run", "finding_of", "impl_of", "short",
           "counts_text", "each_suffix", "newest_first", "impl_key", "SEVERITY", "MACHINE_KEYS"]
