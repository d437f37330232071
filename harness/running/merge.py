"""``python3 -m harness merge A.json B.json ... -o OUT/``: shard reports -> one matrix.

Shards of one plan (``run --shard I/N`` on several machines, or ``run --jobs N`` on one) are
combined into one run with all four renderings. Shards that do not belong together are
refused with the mismatch named: another commit, another plan, another shard count, a
shard missing or given twice, or a cell in two shards.
"""
from __future__ import annotations

from pathlib import Path

from harness.verdicts.agreement import cross_check
from harness.verdicts.outcomes import CellResult
from harness.report import Run
from harness.report.files import write_reports

SHARD_KEYS = ("commit", "plan", "plan_cells", "shards")  # provenance every shard of one plan shares


class MergeError(ValueError):
    """The given shard reports cannot be merged; the message names what differs and where."""


def _load(path: Path) -> Run:
    report = path / "matrix.json" if path.is_dir() else path
    try:
        return Run.load(report)
    except (OSError, ValueError, KeyError) as exc:
        raise MergeError(f"{report}: not a readable matrix.json ({exc})") from exc


def merge_runs(paths: list[Path]) -> Run:
    if not paths:
        raise MergeError("no shard reports given")
    runs = [(p, _load(p)) for p in paths]
    first_path, first = runs[0]
    for key in SHARD_KEYS:
        if key not in first.provenance:
            raise MergeError(f"{first_path}: not a shard report (no '{key}' in its provenance; made by run --shard)")
    for path, run in runs[1:]:
        for key in SHARD_KEYS:
            if run.provenance.get(key) != first.provenance[key]:
                raise MergeError(f"{path}: {key} {run.provenance.get(key)!r} differs from {first_path}'s "
                                 f"{first.provenance[key]!r}: shards of different {key}s cannot be merged")
    n = int(first.provenance["shards"].split("/")[-1])
    seen: dict[str, Path] = {}
    for path, run in runs:
        shard = run.provenance.get("shard", "?")
        if shard in seen:
            raise MergeError(f"shard {shard} given twice: {seen[shard]} and {path}")
        seen[shard] = path
    missing = [f"{i}/{n}" for i in range(1, n + 1) if f"{i}/{n}" not in seen]
    if missing:
        raise MergeError(f"shard(s) {missing} missing (given: {sorted(seen)})")
    where: dict[str, Path] = {}
    placed: list[tuple[int, CellResult]] = []
    merged = Run(run_id=first.run_id.split("-shard")[0], started=min(r.started for _, r in runs),
                 provenance={k: v for k, v in first.provenance.items() if k not in ("shard", "plan_index")})
    for path, run in runs:
        index = [int(i) for i in run.provenance.get("plan_index", "").split(",") if i]
        if len(index) != len(run.cells):
            raise MergeError(f"{path}: its plan_index lists {len(index)} cells, it holds {len(run.cells)}")
        for i, c in zip(index, run.cells):
            if c.id in where:
                raise MergeError(f"cell {c.id} is in {where[c.id]} and in {path}")
            where[c.id] = path
            placed.append((i, c))
        for k, v in run.provenance.items():  # each shard's machine and workers
            if k not in ("shard", "plan_index"):
                merged.provenance.setdefault(k, v)
    if len(placed) != int(first.provenance["plan_cells"]):
        raise MergeError(f"the shards hold {len(placed)} cells, the plan {first.provenance['plan_cells']}")
    merged.cells = [c for _, c in sorted(placed, key=lambda ic: ic[0])]  # the serial run's order
    cross_check(merged.cells)  # twins of two TorchSharp drivers may sit in different shards
    merged.duration_s = max(r.duration_s for _, r in runs)
    return merged


def main_merge(paths: list[Path], out: Path) -> int:
    try:
        run = merge_runs(paths)
    except MergeError as exc:
        print(f"merge: {exc}")
        return 2
    write_reports(run, out)
    s = run.summary
    print(f"merged {len(paths)} shards: {len(run.cells)} cells ({s['pass']} pass, {s['fail']} fail, "
          f"{s['xfail']} xfail, {s['xpass']} xpass, {s['skip']} skip, {s['error']} error) -> {out}/matrix.md")
    return 0 if run.ok else 1
