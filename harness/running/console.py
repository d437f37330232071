"""What a run prints while it runs: a progress line, the cells that need a look, a summary.

One line per cell that needs a look (fail, error, unexpected pass) with its reason, a progress
line (rewritten in place on a terminal, every ~10% in a log), expected failures summarised by
finding and skips by reason at the end, where the reports are, and the speed: cells per
second without the large-tensor cells, and their share of the time. ``verbose``: one line
per cell.
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TextIO

from harness.verdicts.outcomes import OUTCOMES, CellResult

SHOWN_SKIP_REASONS = 12


class Console:
    def __init__(self, total: int, verbose: bool = False, stream: TextIO | None = None):
        self.total = total
        self.verbose = verbose
        self.out = stream or sys.stdout
        self.tty = self.out.isatty()
        self.t0 = time.monotonic()
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.skips: Counter[str] = Counter()
        self.xfails: Counter[str] = Counter()
        self.large_s = 0.0
        self.large_n = 0
        self._next_log = 0.1

    def _status(self) -> str:
        elapsed = time.monotonic() - self.t0
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        counts = ", ".join(f"{self.counts[o]} {o}" for o in OUTCOMES if self.counts[o])
        return f"[{self.done}/{self.total} {elapsed:5.0f}s, ETA {eta:4.0f}s] {counts}"

    def _line(self, text: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[K")
        self.out.write(text + "\n")

    def cell(self, result: CellResult) -> None:
        self.done += 1
        self.counts[result.outcome] += 1
        if "large" in result.features:
            self.large_s += result.duration_s
            self.large_n += 1
        if result.outcome == "skip":
            self.skips[result.reason] += 1
        if result.outcome == "xfail":
            entry = result.details.get("expected_failure")
            self.xfails[str(entry.get("finding") or entry.get("source")) if isinstance(entry, dict) else "?"] += 1
        if self.verbose or result.outcome in ("fail", "error", "xpass"):
            text = f"{result.outcome:5} {result.id}"
            if result.outcome != "pass":
                text += f"  -- {' '.join(result.reason.split())[:220]}"
            self._line(text)
        if self.tty:
            self.out.write("\r\x1b[K" + self._status())
        elif self.done >= self._next_log * self.total or self.done == self.total:
            self.out.write(self._status() + "\n")
            while self._next_log * self.total <= self.done:
                self._next_log += 0.1
        self.out.flush()

    def speed(self, duration_s: float) -> str:
        return speed_text(self.done, self.large_n, self.large_s, duration_s, "the run")

    def finish(self, duration_s: float, report: str) -> None:
        if self.tty:
            self.out.write("\r\x1b[K")
        if self.xfails:
            self.out.write(f"{sum(self.xfails.values())} expected failures, by finding (docs/findings/): "
                           + ", ".join(f"{k} {n}" for k, n in self.xfails.most_common()) + "\n")
        if self.skips:
            self.out.write(f"skipped {sum(self.skips.values())} cells; by reason:\n")
            for reason, n in self.skips.most_common(SHOWN_SKIP_REASONS):
                self.out.write(f"  {n:5}  {' '.join(reason.split())[:200]}\n")
            rest = len(self.skips) - SHOWN_SKIP_REASONS
            if rest > 0:
                self.out.write(f"  ... {rest} more reasons (matrix.md lists them all)\n")
        c = self.counts
        self.out.write(f"{c['pass']} passed, {c['fail']} failed, {c['xfail']} xfailed, {c['xpass']} xpassed, "
                       f"{c['skip']} skipped, {c['error']} errors in {duration_s:.1f}s ({self.speed(duration_s)})\n")
        self.out.write(f"reports: {report}\n")
        self.out.flush()


def speed_text(cells: int, large_n: int, large_s: float, total_s: float, what: str) -> str:
    """A run's pace: cells a second without the large-tensor cells (``large_n`` of ``cells``,
    ``large_s`` of ``total_s`` seconds, which are ``what``: the run, or the jobs' cell time)."""
    rate = f"{(cells - large_n) / max(total_s - large_s, 1e-9):.1f} cells/s"
    if not large_n:
        return rate
    return (f"{rate} without the {large_n} large-tensor cells, which took {large_s:.0f} s, "
            f"{100 * large_s / max(total_s, 1e-9):.0f}% of {what}")
