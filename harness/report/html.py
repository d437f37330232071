"""index.html: one static, self-contained page (inline CSS, no external assets).

On top, the same summary as matrix.md (check x implementation, counts per outcome; the
implementations that did not run, one line each; the machine). Below, the case matrix over
the implementations that ran, then one section per cell of those that did not pass, its
details folded in a ``<details>`` element (opened on demand, long strings cut; matrix.json
holds them whole). Readable straight from disk without JavaScript; a few lines of inline JS
only add a filter-by-feature control. Every piece of run data is escaped. The default
run's page stays under 1 MB.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from html import escape
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote

from harness.verdicts.outcomes import OUTCOMES, CellResult
from harness.report.model import Run, check_rank
from harness.report.zoo import COLUMNS, documented_text, zoo_rows
from harness.report.summary import (Impl, Summary, counts_text, each_suffix, finding_of, impl_key, impl_of,
                                    summarise_run)

LABEL = {"pass": "pass", "fail": "FAIL", "xfail": "xfail", "xpass": "XPASS", "skip": "skip", "error": "ERROR"}
# Evidence sections list the worst outcomes first.
SEVERITY = ("error", "fail", "xpass", "xfail", "skip", "pass")
NO_FEATURE = "(no feature)"
FINDINGS_BASE = "docs/findings/"  # relative to the repository root
DETAIL_STRING_LIMIT = 600  # longer strings in a cell's folded details are cut (matrix.json has them whole)
# Keys of a cell's details left out of the page (long, for debugging: matrix.json has them).
DETAIL_KEYS_OMITTED = ("stack", "traceback", "per_step", "mismatches", "worst_ulp")
TITLE_LIMIT = 160

Column = tuple[str, str, str, str, str, str]  # check, pytorch, torchsharp, device, codec, route

CSS = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24; }
body { margin: 1.5rem; max-width: 100%; }
h1 { font-size: 1.5rem; margin: 0 0 .75rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 0 0 .4rem; font-family: ui-monospace, monospace; word-break: break-all; }
table { border-collapse: collapse; font-size: .85rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; position: sticky; top: 0; }
th.impl { text-align: center; font-weight: 600; }
th.check { text-align: center; font-weight: 500; font-family: ui-monospace, monospace; }
td.case, td.feats { white-space: nowrap; }
td.case { font-family: ui-monospace, monospace; }
tr.group th { background: #eaeef2; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.tag { display: inline-block; background: #ddf4ff; color: #0a3069; border-radius: .6rem;
       padding: 0 .45rem; margin: 0 .15rem .1rem 0; font-size: .75rem; }
td.o { text-align: center; font-weight: 600; white-space: nowrap; }
td.o a { color: inherit; text-decoration: underline dotted; display: block; }
.pass { background: #dafbe1; color: #116329; }
.fail { background: #ffd7d5; color: #a40e26; }
.xfail { background: #fff1c2; color: #7d4e00; }
.xpass { background: #ffd8b5; color: #953800; }
.skip { background: #eaeef2; color: #57606a; }
.error { background: #8c1d2a; color: #ffffff; }
.none { background: #ffffff; color: #8c959f; }
.badge { display: inline-block; border-radius: .3rem; padding: .1rem .5rem; margin-right: .4rem;
         font-weight: 600; }
.zero { opacity: .45; }
dl.prov { display: grid; grid-template-columns: max-content auto; gap: .15rem 1rem; margin: 0; font-size: .9rem; }
dl.prov dt { font-weight: 600; }
dl.prov dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
section.cell { border: 1px solid #d0d7de; border-left-width: .4rem; border-radius: .3rem;
               padding: .6rem .8rem; margin: .8rem 0; }
section.cell:target { outline: 3px solid #0969da; }
section.cell.fail, section.cell.error { border-left-color: #cf222e; }
section.cell.xpass { border-left-color: #bc4c00; }
section.cell.xfail { border-left-color: #bf8700; }
section.cell.skip { border-left-color: #8c959f; }
section.cell, section.cell.error { background: #ffffff; color: #1b1f24; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; white-space: pre-wrap;
      word-break: break-word; margin: .2rem 0; font-size: .8rem; max-height: 30rem; }
.muted { color: #57606a; font-size: .85rem; }
.scroll { overflow-x: auto; }
#filter { margin: .4rem 0; }
"""

# Progressive enhancement only: without JS the filter stays hidden and every row shows.
JS = """
(function () {
  var box = document.getElementById('filter');
  var sel = document.getElementById('feature');
  if (!box || !sel) { return; }
  box.hidden = false;
  sel.addEventListener('change', function () {
    var want = sel.value;
    var rows = document.querySelectorAll('#matrix tbody tr');
    var header = null, shown = 0;
    function close() { if (header) { header.hidden = shown === 0; } }
    rows.forEach(function (tr) {
      if (tr.classList.contains('group')) { close(); header = tr; shown = 0; return; }
      var feats = (tr.getAttribute('data-features') || '').split(' ');
      var ok = want === '' || feats.indexOf(want) >= 0;
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    close();
  });
})();
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def anchor(cell_id: str) -> str:
    """The HTML id of a cell's evidence section (the same for every report of that cell)."""
    return "cell-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", cell_id)


def evidence_href(evidence: str, run_id: str, report_dir: Path | None = None) -> str:
    """A link to a cell's evidence folder that works from the report's own folder.

    With ``report_dir`` the link is relative to it. Otherwise a path inside the run's own
    folder (``.../<run_id>/cells/x``) becomes ``cells/x``, as the report sits in
    ``reports/<run_id>/``; any other relative path is kept; an absolute one becomes a
    ``file://`` URI.
    """
    path = PurePath(evidence)
    if report_dir is not None and path.is_absolute():
        return quote(Path(os.path.relpath(path, report_dir)).as_posix())
    parts = path.parts
    if run_id in parts[:-1]:
        at = len(parts) - 1 - parts[::-1].index(run_id)
        return quote(PurePath(*parts[at + 1:]).as_posix())
    if not path.is_absolute():
        return quote(path.as_posix())
    return Path(path).as_uri()


def _features(cells: Iterable[CellResult]) -> list[str]:
    return list(dict.fromkeys(f for c in cells for f in c.features))


def _provenance(run: Run) -> list[str]:
    items = [("run", run.run_id), ("started", run.started), ("duration", f"{run.duration_s:.1f} s"),
             *run.provenance.items()]
    out = ['<dl class="prov">']
    out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items]
    out.append("</dl>")
    return out


def _summary(run: Run, s: Summary) -> list[str]:
    total = run.summary
    badges = [f'<span class="badge {o}{"" if total[o] else " zero"}">{total[o]} {_e(o)}</span>' for o in OUTCOMES]
    verdict = "no cell failed, errored or passed unexpectedly" if run.ok else "some cells are red"
    out = [f'<p id="summary">{"".join(badges)} <span class="muted">{len(run.cells)} cells; {verdict}</span></p>']
    if s.ran:
        out += ['<table id="summary-table"><thead><tr><th>check</th>',
                *(f'<th class="impl">{_e(s.labels[i])}<br>'
                  f'<span class="muted">{_e(i[2])} · codec {_e(i[3])} · route {_e(i[4])}</span></th>' for i in s.ran),
                "</tr></thead><tbody>"]
        for name, counts in s.count_rows():
            tds = "".join(f'<td class="{_worst(c)}">{_e(counts_text(c) + each_suffix(name, c))}</td>' for c in counts)
            out.append(f'<tr><td class="case">{_e(name)}</td>{tds}</tr>')
        out += ["</tbody></table>"]
    if s.not_run:
        out += ['<p class="muted">Not run (every cell skipped):</p>', '<ul id="not-run">']
        out += [f'<li class="skip">{_e(n.line())}</li>' for n in s.not_run]
        out.append("</ul>")
    return out


def _worst(counts: dict[str, int]) -> str:
    """The class of a summary cell: its worst outcome present."""
    for o in SEVERITY[:4]:
        if counts.get(o):
            return o
    return "pass" if counts.get("pass") else "skip" if counts.get("skip") else "none"


def _machine(s: Summary) -> list[str]:
    workers = s.machine()
    if not workers:
        return []
    out = ['<table id="machine"><thead><tr><th>worker</th><th>CPU</th><th>oneDNN ISA</th><th>threads</th></tr>'
           "</thead><tbody>"]
    out += [f"<tr><td>{_e(w)}</td><td>{_e(v.get('cpu', '—'))}</td><td>{_e(v.get('onednn_isa', '—'))}</td>"
            f"<td>{_e(v.get('threads', '—'))}</td></tr>" for w, v in workers]
    out.append("</tbody></table>")
    return out


def _matrix(run: Run, s: Summary, anchors: dict[str, str]) -> list[str]:
    shown = set(s.ran) or {impl_of(c) for c in run.cells}
    cells_shown = [c for c in run.cells if impl_of(c) in shown]
    columns: list[Column] = sorted({(c.check, *impl_of(c)) for c in cells_shown},
                                   key=lambda col: (impl_key(col[1:]), check_rank(col[0]), col[0]))
    impls: list[tuple[Impl, int]] = []
    for col in columns:
        impl: Impl = col[1:]
        if impls and impls[-1][0] == impl:
            impls[-1] = (impl, impls[-1][1] + 1)
        else:
            impls.append((impl, 1))
    index = {(c.case, c.check, *impl_of(c)): c for c in cells_shown}
    by_case: dict[str, list[CellResult]] = {}
    for c in run.cells:
        by_case.setdefault(c.case, []).append(c)
    groups: dict[str, list[str]] = {}
    for case, cells in by_case.items():
        feats = _features(cells)
        groups.setdefault(feats[0] if feats else NO_FEATURE, []).append(case)
    width = len(columns) + 2
    out = ['<div class="scroll"><table id="matrix">', "<thead>",
           '<tr><th rowspan="2">case</th><th rowspan="2">features</th>']
    out += [f'<th class="impl" colspan="{n}">PyTorch {_e(pt)} · TorchSharp {_e(ts)}<br>{_e(dev)} · codec {_e(co)} · '
            f"route {_e(ro)}</th>" for (pt, ts, dev, co, ro), n in impls]
    out.append("</tr><tr>")
    out += [f'<th class="check">{_e(col[0])}</th>' for col in columns]
    out += ["</tr>", "</thead>", "<tbody>"]
    for group, cases in groups.items():
        out.append(f'<tr class="group"><th colspan="{width}">{_e(group)}</th></tr>')
        for case in cases:
            feats = _features(by_case[case])
            tags = "".join(f'<span class="tag">{_e(f)}</span>' for f in feats)
            row = [f'<tr data-features="{_e(" ".join(feats))}"><td class="case">{_e(case)}</td>'
                   f'<td class="feats">{tags}</td>']
            for col in columns:
                cell = index.get((case, *col))
                if cell is None:
                    row.append('<td class="o none">—</td>')
                elif cell.outcome == "pass":
                    row.append('<td class="o pass">pass</td>')
                else:
                    label = _e(LABEL.get(cell.outcome, cell.outcome))
                    title = _e(f"{cell.check}: {cell.outcome}"
                               + (f" — {_short(cell.reason, TITLE_LIMIT)}" if cell.reason else ""))
                    link = (f'<a href="#{_e(anchors[cell.id])}">{label}</a>' if cell.outcome != "skip"
                            else label)  # a skip's reason is its title (and in the skips by reason)
                    row.append(f'<td class="o {_e(cell.outcome)}" title="{title}">{link}</td>')
            out.append("".join(row) + "</tr>")
    out += ["</tbody>", "</table></div>"]
    return out


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _cut(value: Any) -> Any:
    """``value`` with every string longer than DETAIL_STRING_LIMIT cut, for the folded details."""
    if isinstance(value, str) and len(value) > DETAIL_STRING_LIMIT:
        return value[:DETAIL_STRING_LIMIT] + f"… ({len(value) - DETAIL_STRING_LIMIT} more characters in matrix.json)"
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


def _by_feature(run: Run) -> list[str]:
    counts: dict[str, dict[str, int]] = {}
    for c in run.cells:
        for f in c.features or [NO_FEATURE]:
            counts.setdefault(f, dict.fromkeys(OUTCOMES, 0))[c.outcome] += 1
    out = ['<table id="by-feature">', "<thead><tr><th>feature</th>"]
    out += [f'<th class="num">{_e(o)}</th>' for o in OUTCOMES]
    out.append('<th class="num">cells</th></tr></thead><tbody>')
    for feature in sorted(counts):
        row = counts[feature]
        tds = "".join(f'<td class="num{f" {o}" if row[o] and o != "pass" else ""}">{row[o]}</td>' for o in OUTCOMES)
        out.append(f"<tr><td>{_e(feature)}</td>{tds}<td class=\"num\">{sum(row.values())}</td></tr>")
    out.append("</tbody></table>")
    return out


def _zoo(run: Run, report_dir: Path | None, findings_dir: Path | None) -> list[str]:
    """The model zoo's section (harness/report/zoo.py), the same table as matrix.md's."""
    rows = zoo_rows(run)
    if not rows:
        return []
    names = [name for name, _, _ in COLUMNS]
    out = ['<h2 id="zoo">Model zoo</h2>',
           '<p class="muted">torchvision\'s models built by torchvision (PyTorch) and TorchVision (TorchSharp), '
           "trained a few steps; cells summed over every implementation that ran them. Farthest: either side's "
           "largest distance from the float64 reference in eps of float32 x the output scale (bound 64).</p>",
           '<table id="zoo-table"><thead><tr><th>model</th>'
           + "".join(f"<th>{_e(n)}</th>" for n in names)
           + '<th class="num">output scale</th><th class="num">farthest (eps)</th><th>findings</th>'
           + "</tr></thead><tbody>"]
    for r in rows:
        tds = "".join(f'<td class="{_worst(r.outcomes[n])}">{_e(counts_text(r.outcomes[n]))}</td>'
                      if n in r.outcomes else "<td>—</td>" for n in names)
        scale = f"{r.output_scale:.3g}" if r.output_scale is not None else "—"
        far = f"{r.farthest_eps:.3g}" if r.farthest_eps is not None else "—"
        links = ", ".join(f'<a href="{_e(findings_href(f, report_dir, findings_dir))}">{_e(f)}</a>'
                          for f in sorted(r.findings)) or "—"
        out.append(f"<tr><td>{_e(r.model)}</td>{tds}<td class=\"num\">{scale}</td>"
                   f"<td class=\"num\">{far}</td><td>{links}</td></tr>")
    out.append("</tbody></table>")
    documented = [r for r in rows if r.documented]
    if documented:
        ways = list(dict.fromkeys(k for r in documented for k in r.documented))
        out += ["<p>What a user following TorchVision's documented path gets (the constructors' "
                "<code>weights_file</code>):</p>", '<table id="zoo-documented"><thead><tr><th>model</th>'
                + "".join(f"<th>{_e(w)}</th>" for w in ways) + "</tr></thead><tbody>"]
        out += [f"<tr><td>{_e(r.model)}</td>" + "".join(
            f"<td>{_e(documented_text(r.documented[w]))}</td>" if w in r.documented else "<td>—</td>" for w in ways)
            + "</tr>" for r in documented]
        out.append("</tbody></table>")
    return out


def findings_href(slug: str, report_dir: Path | None, findings_dir: Path | None) -> str:
    """docs/findings/<slug>.md, relative to the page when both folders are known."""
    if report_dir is not None and findings_dir is not None:
        return quote(Path(os.path.relpath(findings_dir / f"{slug}.md", report_dir)).as_posix())
    return quote(f"{FINDINGS_BASE}{slug}.md")


def _evidence(run: Run, s: Summary, anchors: dict[str, str], report_dir: Path | None,
              findings_dir: Path | None) -> list[str]:
    shown = set(s.ran) or {impl_of(c) for c in run.cells}
    notes = sorted((c for c in run.cells  # skips: summarised by reason above, not a section each
                    if c.outcome not in ("pass", "skip") and impl_of(c) in shown),
                   key=lambda c: SEVERITY.index(c.outcome) if c.outcome in SEVERITY else 0)
    if not notes:
        return ["<p>Every cell passed.</p>"]
    out: list[str] = []
    for c in notes:
        o = _e(c.outcome)
        impl = f"PyTorch {c.pytorch} · TorchSharp {c.torchsharp} · {c.device} · codec {c.codec} · route {c.route}"
        out.append(f'<section class="cell {o}" id="{_e(anchors[c.id])}">')
        out.append(f'<h3><span class="badge {o}">{_e(LABEL.get(c.outcome, c.outcome))}</span>{_e(c.id)}</h3>')
        out.append(f'<p class="muted">{_e(impl)}; features {_e(", ".join(c.features) or "—")}; '
                   f"{c.duration_s:.2f} s</p>")
        slug = finding_of(c)
        if slug:
            href = findings_href(slug, report_dir, findings_dir)
            out.append(f'<p>finding: <a href="{_e(href)}">{_e(slug)}</a></p>')
        if c.evidence:
            href = evidence_href(c.evidence, run.run_id, report_dir)
            out.append(f'<p>evidence: <a href="{_e(href)}">{_e(c.evidence)}</a></p>')
        out.append(f"<pre class=\"reason\">{_e(c.reason or '—')}</pre>")
        if c.details and c.outcome != "skip":
            kept = {k: v for k, v in c.details.items() if k not in DETAIL_KEYS_OMITTED}
            details = json.dumps(_cut(kept), sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
            out.append(f"<details><summary>details</summary><pre>{_e(details)}</pre></details>")
        out.append('<p class="muted"><a href="#matrix">back to the matrix</a></p></section>')
    return out


def _anchors(cells: Iterable[CellResult]) -> dict[str, str]:
    anchors: dict[str, str] = {}
    used: set[str] = set()
    for c in cells:
        if c.id in anchors:
            continue
        base = anchor(c.id)
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name)
        anchors[c.id] = name
    return anchors


def render(run: Run, report_dir: Path | None = None, findings_dir: Path | None = None) -> str:
    """The whole page. ``report_dir`` (where the page will be written) serves to make absolute
    evidence paths relative (see :func:`evidence_href`); with ``findings_dir`` too, finding
    links are relative to the page, else they read docs/findings/<slug>.md."""
    s = summarise_run(run)
    anchors = _anchors(run.cells)
    features = sorted(_features(run.cells))
    title = f"Compatibility matrix — run {run.run_id}"
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           f"<h1>{_e(title)}</h1>", "<h2>Summary</h2>", *_summary(run, s)]
    machine = _machine(s)
    if machine:
        out += ["<h2>Machine</h2>", '<p class="muted">A verdict can depend on the CPU and oneDNN\'s kernels.</p>',
                *machine]
    out += ["<h2>Provenance</h2>", *_provenance(run), "<h2>Matrix</h2>",
            '<p class="muted">Rows: cases, grouped by their first feature. Columns: check × (PyTorch, '
            "TorchSharp, device, codec), for the implementations that ran. Every cell that did not pass links to "
            "its section below (details folded; matrix.json has every cell whole).</p>"]
    if features:
        opts = "".join(f'<option value="{_e(f)}">{_e(f)}</option>' for f in features)
        out.append(f'<div id="filter" hidden><label>Show feature: <select id="feature">'
                   f'<option value="">all</option>{opts}</select></label></div>')
    out += _matrix(run, s, anchors)
    out += _zoo(run, report_dir, findings_dir)
    out += ["<h2>By feature</h2>",
            '<p class="muted">Cells per feature and outcome (a cell counts once for each of its features).</p>',
            *_by_feature(run), '<h2 id="evidence">Cells that did not pass</h2>',
            *_evidence(run, s, anchors, report_dir, findings_dir)]
    if features:
        out.append(f"<script>{JS}</script>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
