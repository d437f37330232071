"""matrix.md: the run for people, at a glance first, details after.

1. the run and the machine (CPU, oneDNN ISA and threads of each worker: a verdict can
   depend on them);
2. the summary: check x implementation, counts per outcome; the implementations that did not
   run at all, one line per reason;
3. the implementations that ran, the cases with a cell that did not pass, and the model zoo
   (harness/report/zoo.py: each torchvision model's checks, output scale, distance from the
   float64 reference, and what TorchVision's documented weights_file path gives);
4. every cell that did not pass: fail, error and xpass with their reasons first, then the
   expected failures grouped by the finding they link (docs/findings/<slug>.md);
5. skips counted per reason; whole-file byte identity; the full provenance.

Every cell with all its details is in matrix.json; this file stays small enough for a CI
summary page (the default run's is well under 100 KB).
"""
from __future__ import annotations

from harness.verdicts.outcomes import CellResult
from harness.report.model import Run
from harness.report.summary import Summary, counts_text, finding_of, impl_of, short, summarise_run
from harness.report.zoo import COLUMNS, documented_text, zoo_rows

FINDINGS_BASE = "docs/findings/"  # relative to the repository root
REASON_LIMIT = 600
ACTUAL_LIMIT = 240


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def finding_link(slug: str, base: str = FINDINGS_BASE) -> str:
    return f"[{slug}]({base}{slug}.md)"


def machine_lines(s: Summary) -> list[str]:
    workers = s.machine()
    if not workers:
        return []
    out = ["| worker | CPU | oneDNN ISA | threads |", "|---|---|---|---|"]
    out += [f"| {_esc(w)} | {_esc(v.get('cpu', '—'))} | {_esc(v.get('onednn_isa', '—'))} | "
            f"{_esc(v.get('threads', '—'))} |" for w, v in workers]
    return out


def summary_lines(s: Summary) -> list[str]:
    """The summary table and the one-line implementations that did not run."""
    out = s.markdown_table()
    if s.not_run:
        out += ["", "Not run (every cell skipped):", ""]
        out += [f"- {_esc(n.line())}" for n in s.not_run]
    return out


def findings_lines(s: Summary, base: str = FINDINGS_BASE) -> list[str]:
    """One line per finding an expected-failure entry links."""
    out = []
    for f in s.findings():
        checks = ", ".join(f.checks)
        out.append(f"- {finding_link(f.slug, base)}: {counts_text(f.outcomes, bold_bad=True)} ({checks})"
                   + (f" — {_esc(short(f.reason, 240))}" if f.reason else ""))
    return out


SYMBOL = {"pass": "✅", "fail": "❌", "xfail": "⚠️", "xpass": "❗", "skip": "⏭", "error": "💥"}


def grid_lines(s: Summary) -> list[str]:
    """Cases with a cell that did not pass, checks as columns; each entry holds one symbol
    per implementation that ran, in the order of the table above."""
    if not s.ran:
        return []
    index = {(c.case, c.check, impl_of(c)): c.outcome for c in s.ran_cells()}
    cases = list(dict.fromkeys(c.case for c in s.ran_cells()))
    shown = [case for case in cases if any(index.get((case, ch, i), "pass") != "pass"
                                           for ch in s.checks for i in s.ran)]
    checks = [ch for ch in s.checks if any((case, ch, i) in index for case in cases for i in s.ran)]
    legend = ", ".join(f"{o} {sym}" for o, sym in SYMBOL.items())
    out = [f"### Cases with a cell that did not pass ({len(shown)} of {len(cases)}; every other case passed "
           "every check)", "",
           "Each entry: one symbol per implementation above, in its order (" + "; ".join(s.labels[i] for i in s.ran)
           + f"); {legend}; · no such cell.", ""]
    if not shown:
        return out[:2] + ["None.", ""]
    out += ["| case | " + " | ".join(checks) + " |", "|---|" + "---|" * len(checks)]
    for case in shown:
        row = ["".join(SYMBOL.get(index.get((case, ch, i), ""), "·") for i in s.ran) for ch in checks]
        out.append(f"| {_esc(case)} | " + " | ".join(row) + " |")
    return out + [""]


def _actual(cell: CellResult) -> str:
    """What an xfail cell actually did: the text after the entry's reason."""
    _, sep, actual = cell.reason.partition(" | actual: ")
    return short(actual if sep else cell.reason, ACTUAL_LIMIT)


def _red(c: CellResult, base: str) -> list[str]:
    slug = finding_of(c)
    line = f"- `{c.id}` — **{c.outcome}**" + (f" (finding {finding_link(slug, base)})" if slug else "")
    line += f": {_esc(short(c.reason, REASON_LIMIT))}"
    out = [line]
    if c.evidence:
        out.append(f"  - evidence: `{c.evidence}`")
    return out


def zoo_lines(run: Run, findings_base: str = FINDINGS_BASE) -> list[str]:
    """The model zoo's section (harness/report/zoo.py); none when no zoo cell ran."""
    rows = zoo_rows(run)
    if not rows:
        return []
    names = [name for name, _, _ in COLUMNS]
    out = ["## Model zoo", "",
           "torchvision's models built by torchvision (PyTorch) and TorchVision (TorchSharp), trained a few steps; "
           "cells summed over every implementation that ran them. Output scale: the smallest eval output scale "
           "of the trained states; farthest: either side's largest distance from the float64 reference, in eps of "
           "float32 x that scale (the bound is 64).", "",
           "| model | " + " | ".join(names) + " | output scale | farthest (eps) | findings |",
           "|---|" + "---|" * (len(names) + 3)]
    for r in rows:
        cols = [counts_text(r.outcomes[n], bold_bad=True) if n in r.outcomes else "—" for n in names]
        scale = f"{r.output_scale:.3g}" if r.output_scale is not None else "—"
        far = f"{r.farthest_eps:.3g}" if r.farthest_eps is not None else "—"
        found = ", ".join(finding_link(f, findings_base) for f in sorted(r.findings)) or "—"
        out.append(f"| {_esc(r.model)} | " + " | ".join(cols) + f" | {scale} | {far} | {found} |")
    documented = [r for r in rows if r.documented]
    if documented:
        ways = list(dict.fromkeys(k for r in documented for k in r.documented))
        out += ["", "What a user following TorchVision's documented path gets (the constructors' `weights_file`, "
                "a .dat file of PyTorch's trained state):", "",
                "| model | " + " | ".join(_esc(w) for w in ways) + " |", "|---|" + "---|" * len(ways)]
        out += [f"| {_esc(r.model)} | " + " | ".join(_esc(short(documented_text(r.documented[w]), 200))
                                                     if w in r.documented else "—" for w in ways) + " |"
                for r in documented]
    return out + [""]


def render(run: Run, findings_base: str = FINDINGS_BASE) -> str:
    """``findings_base``: how docs/findings/ is reached from where the file will be read."""
    s = summarise_run(run)
    total = run.summary
    lines = [f"# Compatibility matrix — run {run.run_id}", "",
             f"Started {run.started}, {run.duration_s:.1f} s, commit `{run.provenance.get('commit', 'unknown')}`; "
             f"{len(run.cells)} cell{'' if len(run.cells) == 1 else 's'}: {counts_text(total, bold_bad=True)}. "
             + ("No cell failed, errored or passed unexpectedly." if run.ok else "**Some cells are red.**"), ""]
    machine = machine_lines(s)
    if machine:
        lines += ["The machine (a verdict can depend on it):", "", *machine, ""]
    lines += ["## Summary", "", *summary_lines(s), ""]

    lines += ["## Implementations that ran", ""]
    if s.ran:
        lines += ["| implementation | PyTorch | TorchSharp | device | codec | route | cells |",
                  "|---|---|---|---|---|---|---|"]
    else:
        lines.append("None: every cell was skipped.")
    for impl in s.ran:
        cells = [c for c in run.cells if impl_of(c) == impl]
        counts: dict[str, int] = {}
        for c in cells:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
        lines.append(f"| {_esc(s.labels[impl])} | {_esc(impl[0])} | {_esc(impl[1])} | {_esc(impl[2])} | "
                     f"{_esc(impl[3])} | {_esc(impl[4])} | {counts_text(counts, bold_bad=True)} |")
    lines.append("")
    lines += grid_lines(s)
    lines += zoo_lines(run, findings_base)

    red = s.not_passed(("error", "fail", "xpass"))
    lines += ["## Cells that failed, errored or passed unexpectedly", ""]
    lines += [x for c in red for x in _red(c, findings_base)] or ["None."]
    lines.append("")

    xfails = s.not_passed(("xfail",))
    lines += ["## Expected failures, by finding", ""]
    if not xfails:
        lines += ["None.", ""]
    by: dict[str | None, list[CellResult]] = {}
    for c in xfails:
        by.setdefault(finding_of(c), []).append(c)
    for slug, cells in sorted(by.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        head = finding_link(slug, findings_base) if slug else "(no finding linked)"
        entry = cells[0].details.get("expected_failure")
        why = " ".join(str(entry.get("reason", "")).split()) if isinstance(entry, dict) else ""
        lines.append(f"### {head} — {len(cells)} cell{'s' if len(cells) > 1 else ''}")
        lines.append("")
        if why:
            lines += [_esc(why), ""]
        lines += [f"- `{c.id}`: {_esc(_actual(c))}" for c in cells]
        lines.append("")

    skips = s.skips()
    lines += ["## Skips, by reason", ""]
    if skips:
        lines += ["| cells | reason | checks |", "|---|---|---|"]
        lines += [f"| {n} | {_esc(short(reason, 300))} | {', '.join(checks)} |" for reason, n, checks in skips]
    else:
        lines.append("None in the implementations that ran.")
    lines.append("")

    facts = [c for c in s.ran_cells() if "module_file_identical" in c.details]
    if facts:
        same = [c for c in facts if c.details["module_file_identical"] is True]
        lines += ["## Whole-file byte identity (py2ts2py)", "",
                  "TorchSharp lists all parameters before all buffers, so a re-saved file may differ "
                  "in entry order with identical tensors; this is a fact, not a failure.", "",
                  f"{len(same)} of {len(facts)} cells re-saved a byte-identical module file"
                  + ("; these did not:" if len(same) < len(facts) else "."), ""]
        lines += [f"- `{c.id}`" for c in facts if c.details["module_file_identical"] is not True]
        opt = [c for c in facts if c.details.get("optimizer_file_identical") is not None]
        if opt:
            diff = [c for c in opt if c.details["optimizer_file_identical"] is not True]
            lines += ["", f"{len(opt) - len(diff)} of {len(opt)} cells re-saved a byte-identical optimizer file"
                      + ("; these did not:" if diff else "."), ""]
            lines += [f"- `{c.id}`" for c in diff]
        lines.append("")

    lines += ["## Provenance", ""] + (["| key | value |", "|---|---|"] if run.provenance else ["(none recorded)"])
    lines += [f"| {_esc(k)} | {_esc(short(v, 400))} |" for k, v in run.provenance.items()]
    return "\n".join(lines).rstrip("\n") + "\n"
