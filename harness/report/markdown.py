"""matrix.md: a readable table, cases as rows and (check x implementations) as columns."""
from __future__ import annotations

from harness.report.model import Run, check_rank

SYMBOL = {"pass": "✅ pass", "fail": "❌ FAIL", "xfail": "⚠️ xfail", "xpass": "❗ XPASS",
          "skip": "⏭ skip", "error": "💥 ERROR"}


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(run: Run) -> str:
    lines = [f"# Compatibility matrix — run {run.run_id}", ""]
    prov = ", ".join(f"{k} {v}" for k, v in run.provenance.items())
    lines += [f"Provenance: {prov}", ""]
    s = run.summary
    lines += ["Summary: " + ", ".join(f"{n} {k}" for k, n in s.items() if n), ""]
    columns = sorted({(c.check, c.pytorch, c.torchsharp, c.device, c.codec) for c in run.cells},
                     key=lambda k: (k[3], k[2], k[1], k[4], check_rank(k[0]), k[0]))
    cases = list(dict.fromkeys(c.case for c in run.cells))
    index = {(c.case, c.check, c.pytorch, c.torchsharp, c.device, c.codec): c for c in run.cells}
    head = ["case"] + [f"{ch}<br>pt{pt} ts{ts}<br>{dev} {co}" for ch, pt, ts, dev, co in columns]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for case in cases:
        row = [case]
        for col in columns:
            cell = index.get((case, *col))
            row.append(SYMBOL[cell.outcome] if cell else "")
        lines.append("| " + " | ".join(row) + " |")
    notes = [c for c in run.cells if c.outcome != "pass"]
    if notes:
        lines += ["", "## Cells that did not pass", ""]
        for c in notes:
            lines.append(f"- `{c.id}` — **{c.outcome}**: {_esc(c.reason)[:600]}")
    facts = [c for c in run.cells if "module_file_identical" in c.details]
    if facts:
        lines += ["", "## Whole-file byte identity (py2ts2py)", "",
                  "TorchSharp lists all parameters before all buffers, so a re-saved file may differ "
                  "in entry order with identical tensors; this is a fact, not a failure.", ""]
        for c in facts:
            opt = c.details.get("optimizer_file_identical")
            lines.append(f"- `{c.id}`: module file identical: {c.details['module_file_identical']}"
                         + (f"; optimizer file identical: {opt}" if opt is not None else ""))
    return "\n".join(lines) + "\n"
