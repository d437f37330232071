"""The radar report: radar.md, radar.html and radar.json, summary first.

1. the run: base release, clone, plan, time, the earlier run it is compared with;
2. the flags: refs that fix one of our findings, refs that break a passing cell (with the
   repro of each broken cell);
3. one row per ref (new ones; the refs an earlier run saw the same are named on one line):
   title, author, date, class, build result, fixed/broken/other counts, each count linking
   to its cells;
4. per ref: its files by class, why it was not run (compiler errors, guard, missing files),
   and its changed cells.
"""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.radar.model import CHANGE_KINDS, CHANGE_TEXT, STATE_TEXT, STATES, CellDelta, RefResult

LIST_LIMIT = 30  # files listed per class
REASON_LIMIT = 240


@dataclass
class RadarRun:
    run_id: str
    started: str
    repo: str
    base: str  # the ref or commit given
    base_commit: str
    release: str  # the release column: 0.107.0
    patterns: list[str]
    plan_cells: int
    duration_s: float = 0.0
    previous: str | None = None
    results: list[RefResult] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"run_id": self.run_id, "started": self.started, "repo": self.repo, "base": self.base,
                "base_commit": self.base_commit, "release": self.release, "patterns": self.patterns,
                "plan_cells": self.plan_cells, "duration_s": self.duration_s, "previous": self.previous,
                "results": [r.to_json() for r in self.results]}


def _short(text: str, limit: int = REASON_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def anchor(r: RefResult, kind: str = "") -> str:
    return f"{r.label}-{kind}" if kind else r.label


def class_text(r: RefResult) -> str:
    return {"managed": "managed-only", "native": "native", "other": "neither", "empty": "empty"}.get(r.kind, "—")


def _flags(run: RadarRun) -> tuple[list[RefResult], list[RefResult]]:
    fixing = [r for r in run.results if r.fixes_findings]
    breaking = [r for r in run.results if r.regression]
    return fixing, breaking


def _state_counts(results: Sequence[RefResult]) -> str:
    counts = {s: sum(1 for r in results if r.state == s) for s in STATES}
    return ", ".join(f"{n} {STATE_TEXT[s]}" for s, n in counts.items() if n)


# --- Markdown -----------------------------------------------------------------------------
def _md_count(r: RefResult, kind: str) -> str:
    n = r.count(kind)
    return f"[{n}](#{anchor(r, kind)})" if n else "0"


def _md_cell(d: CellDelta, with_repro: bool) -> str:
    line = f"- `{d.id}`: {d.old} -> {d.new}"
    if d.findings:
        line += f" (finding {', '.join(d.findings)})"
    if d.new_reason:
        line += f" — {_short(d.new_reason)}"
    if with_repro and d.evidence:
        line += f" — repro: [`{d.evidence}/repro.sh`]({d.evidence}/repro.sh)"
    return line


def _md_files(r: RefResult) -> list[str]:
    out = []
    for what, files in (("src/Native (needs a native build)", r.native_files), ("managed build", r.managed_files),
                        ("neither", r.other_files), ("binary (not applied by patch)", r.binary_files)):
        if files:
            shown = ", ".join(f"`{f}`" for f in files[:LIST_LIMIT])
            out.append(f"- {what}: {len(files)} file(s): {shown}{', ...' if len(files) > LIST_LIMIT else ''}")
    return out


def _md_ref(r: RefResult) -> list[str]:
    lines = [f'<a id="{anchor(r)}"></a>', f"### {r.label}: {r.title}", "",
             f"`{r.ref}` at `{r.commit[:12]}` by {r.author}, {r.date}; merge base "
             f"`{(r.merge_base or 'none')[:12]}`; {STATE_TEXT.get(r.state, r.state)}"
             + (f" (same commit as {r.duplicate_of})" if r.duplicate_of else ""), ""]
    lines += _md_files(r)
    if r.column:
        lines += [f"- column `{r.column}`: {r.cells} cells in {r.duration_s:.0f} s; {_short(r.build, 400)}"]
    if r.detail:
        lines += ["", "```text", r.detail.strip()[:4000], "```"]
    for kind in CHANGE_KINDS:
        deltas = r.changes.get(kind, [])
        if deltas:
            lines += ["", f'<a id="{anchor(r, kind)}"></a>', f"{CHANGE_TEXT[kind].capitalize()} ({len(deltas)}):", ""]
            lines += [_md_cell(d, kind == "broken") for d in deltas]
    return lines + [""]


def _md_row(r: RefResult) -> str:
    title = _short(r.title, 70).replace("|", "\\|")
    build = _short(r.build, 60).replace("|", "\\|")
    flags = (" **fixes " + ", ".join(r.fixes_findings) + "**" if r.fixes_findings else "") + (
        " **REGRESSION**" if r.regression else "")
    return (f"| [{r.label}](#{anchor(r)}) | {title} | {r.author} | {r.date[:10]} | {class_text(r)} | "
            f"{STATE_TEXT.get(r.state, r.state)}{flags} | {build if r.build else '—'} | "
            f"{_md_count(r, 'fixed')} | {_md_count(r, 'broken')} | "
            f"{_md_count(r, 'unavailable')} / {_md_count(r, 'reason_changed')} / {_md_count(r, 'other')} |")


def render_md(run: RadarRun) -> str:
    fixing, breaking = _flags(run)
    new = [r for r in run.results if r.new]
    seen = [r for r in run.results if not r.new]
    lines = [f"# Upgrade radar {run.run_id}", "",
             f"Base release {run.release} (`{run.base}` = `{run.base_commit[:12]}`) in `{run.repo}`; refs "
             f"{', '.join(f'`{p}`' for p in run.patterns)}, newest first; {len(run.results)} ref(s) in "
             f"{run.duration_s:.0f} s; {run.plan_cells} cells per column (the release column: `ts{run.release}`).",
             "", f"States: {_state_counts(run.results)}.", ""]
    if run.previous:
        lines += [f"Compared with radar run {run.previous}: {len(new)} ref(s) new or changed, "
                  f"{len(seen)} as before.", ""]
    lines += ["## Flags", ""]
    for r in fixing:
        lines.append(f"- **{r.label} fixes {', '.join(r.fixes_findings)}**: {r.count('fixed')} cell(s) "
                     f"[fixed](#{anchor(r, 'fixed')}) ({r.title})")
    for r in breaking:
        repro = next((d.evidence for d in r.changes["broken"] if d.evidence), None)
        lines.append(f"- **{r.label} REGRESSION**: {r.count('broken')} passing cell(s) "
                     f"[broken](#{anchor(r, 'broken')})" + (f", repro `{repro}/repro.sh`" if repro else "")
                     + f" ({r.title})")
    if not (fixing or breaking):
        lines.append("- no ref fixes a finding or breaks a passing cell")
    lines += ["", "## Refs" + (" new or changed since the last radar run" if run.previous else ""), "",
              "| ref | title | author | date | class | state | build | fixed | broken | "
              "unavailable / reason / other |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_md_row(r) for r in new] or ["| (none) | | | | | | | | | |"]
    if seen:
        lines += ["", "As in the last radar run: " + ", ".join(f"[{r.label}](#{anchor(r)})" for r in seen) + "."]
    lines += ["", "## Each ref", ""]
    for r in run.results:
        lines += _md_ref(r)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- HTML ---------------------------------------------------------------------------------
CSS = ("body{font:14px sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
       "padding:2px 6px;vertical-align:top}.reg{color:#b00;font-weight:bold}.fix{color:#070;font-weight:bold}"
       "pre{background:#f6f6f6;padding:6px;white-space:pre-wrap}code{font-size:12px}")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _html_count(r: RefResult, kind: str) -> str:
    n = r.count(kind)
    return f'<a href="#{_e(anchor(r, kind))}">{n}</a>' if n else "0"


def _html_ref(r: RefResult) -> list[str]:
    out = [f'<h3 id="{_e(anchor(r))}">{_e(r.label)}: {_e(r.title)}</h3>',
           f"<p><code>{_e(r.ref)}</code> at <code>{_e(r.commit[:12])}</code> by {_e(r.author)}, {_e(r.date)}; "
           f"{_e(STATE_TEXT.get(r.state, r.state))}</p><ul>"]
    for what, files in (("src/Native", r.native_files), ("managed build", r.managed_files), ("neither", r.other_files)):
        if files:
            out.append(f"<li>{_e(what)}: {len(files)} file(s): "
                       + ", ".join(f"<code>{_e(f)}</code>" for f in files[:LIST_LIMIT]) + "</li>")
    out.append("</ul>")
    if r.detail:
        out.append(f"<pre>{_e(r.detail.strip()[:4000])}</pre>")
    for kind in CHANGE_KINDS:
        deltas = r.changes.get(kind, [])
        if deltas:
            out.append(f'<p id="{_e(anchor(r, kind))}">{_e(CHANGE_TEXT[kind].capitalize())} ({len(deltas)}):</p><ul>')
            for d in deltas:
                repro = (f' — <a href="{_e(d.evidence)}/repro.sh">repro.sh</a>'
                         if kind == "broken" and d.evidence else "")
                out.append(f"<li><code>{_e(d.id)}</code>: {_e(d.old)} → {_e(d.new)}"
                           f"{' (finding ' + _e(', '.join(d.findings)) + ')' if d.findings else ''}"
                           f" — {_e(_short(d.new_reason))}{repro}</li>")
            out.append("</ul>")
    return out


def render_html(run: RadarRun) -> str:
    fixing, breaking = _flags(run)
    body = [f"<h1>Upgrade radar {_e(run.run_id)}</h1>",
            f"<p>Base release {_e(run.release)} (<code>{_e(run.base)}</code> = <code>{_e(run.base_commit[:12])}"
            f"</code>); {len(run.results)} ref(s) in {run.duration_s:.0f} s; {run.plan_cells} cells per column."
            f"<br>States: {_e(_state_counts(run.results))}."
            + (f"<br>Compared with radar run {_e(run.previous)}." if run.previous else "") + "</p><h2>Flags</h2><ul>"]
    body += [f'<li class="fix">{_e(r.label)} fixes {_e(", ".join(r.fixes_findings))}: '
             f'{_html_count(r, "fixed")} cell(s)</li>' for r in fixing]
    body += [f'<li class="reg">{_e(r.label)} REGRESSION: {_html_count(r, "broken")} passing cell(s) broken</li>'
             for r in breaking]
    if not (fixing or breaking):
        body.append("<li>no ref fixes a finding or breaks a passing cell</li>")
    body += ["</ul><h2>Refs</h2><table><tr><th>ref</th><th>title</th><th>author</th><th>date</th><th>class</th>"
             "<th>state</th><th>new</th><th>fixed</th><th>broken</th><th>unavailable</th><th>reason</th>"
             "<th>other</th></tr>"]
    for r in run.results:
        body.append(f'<tr><td><a href="#{_e(anchor(r))}">{_e(r.label)}</a></td><td>{_e(_short(r.title, 80))}</td>'
                    f"<td>{_e(r.author)}</td><td>{_e(r.date[:10])}</td><td>{_e(class_text(r))}</td>"
                    f"<td>{_e(STATE_TEXT.get(r.state, r.state))}</td><td>{'new' if r.new else 'as before'}</td>"
                    + "".join(f"<td>{_html_count(r, k)}</td>" for k in CHANGE_KINDS) + "</tr>")
    body.append("</table><h2>Each ref</h2>")
    for r in run.results:
        body += _html_ref(r)
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Upgrade radar {_e(run.run_id)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def write(run: RadarRun, out: Path) -> None:
    from harness.report.files import write_atomic
    write_atomic(out / "radar.md", render_md(run))
    write_atomic(out / "radar.html", render_html(run))
    write_atomic(out / "radar.json", json.dumps(run.to_json(), indent=1) + "\n")
