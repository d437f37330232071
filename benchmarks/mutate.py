#!/usr/bin/env python3
"""Mutation run over the code that decides verdicts: do the unit suites notice a wrong line?

    /usr/bin/python3 benchmarks/mutate.py [--only NAME ...] [--list] [--workers N] [--timeout S] [--json PATH]

Each mutant of benchmarks/mutants.py (one exact line of one file and the line that replaces
it) is applied in a temporary copy of this checkout (its tracked and untracked-but-not-ignored
files, as they are on disk), the test files named for it are run there (``pytest -x`` on
pytest-xdist, ``--workers`` processes, as tox runs the suite), and the line is put back. A
mutant is

  killed    the tests failed (or could not be collected, or ran past --timeout);
  survived  the tests passed: no test of ours notices that line being wrong;
  error     the mutant does not apply (its line is not in the file, or is there more than
            once: the code moved, re-anchor it in mutants.py) or pytest could not run.

Before any mutant, every mutant is checked to apply (all that do not are named, and nothing
runs), and the test files of the chosen mutants run once unmutated (the control): they must
pass, else no score means anything. Prints one line per mutant and the score (killed /
mutants that applied), writes the results as JSON (default benchmarks/results/mutate-<time>.json).
Exit status 0 when every mutant was killed, 1 when one survived, 2 on an error.

Bytecode is never written (PYTHONDONTWRITEBYTECODE): a mutant of the same size written within
the same second as the original must not be run from a stale .pyc. Not part of CI (minutes).
"""
from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mutants import MUTANTS, VERSION, Mutant

ROOT = Path(__file__).resolve().parents[1]


class MutantError(Exception):
    """A mutant that cannot be applied; the message says which and why."""


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def locate(m: Mutant, root: Path) -> int:
    """The index of the mutant's line in its file (exactly one match), else MutantError."""
    path = root / m.file
    if not path.is_file():
        raise MutantError(f"mutant {m.name}: {m.file} does not exist (moved or renamed?)")
    if m.original == m.replacement:
        raise MutantError(f"mutant {m.name}: its replacement is its original line")
    lines = _lines(path)
    hits = [i for i, line in enumerate(lines) if line == m.original]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise MutantError(f"mutant {m.name}: {m.file} holds its line {len(hits)} times (lines "
                          f"{', '.join(str(i + 1) for i in hits)}): make `original` unique\n    {m.original!r}")
    near = difflib.get_close_matches(m.original, lines, n=2, cutoff=0.6)
    hint = "".join(f"\n    line {lines.index(n) + 1}: {n!r}" for n in near)
    raise MutantError(f"mutant {m.name}: {m.file} no longer has the line (the code moved or changed; "
                      f"re-anchor it in benchmarks/mutants.py)\n    wanted: {m.original!r}"
                      + (f"\n    nearest:{hint}" if hint else "\n    nothing similar is left in the file"))


def mutated_text(m: Mutant, root: Path) -> str:
    """The file's text with the mutant applied; a mutant whose file no longer compiles is an error."""
    lines = _lines(root / m.file)
    lines[locate(m, root)] = m.replacement
    text = "\n".join(lines)
    try:
        compile(text, m.file, "exec")
    except SyntaxError as exc:
        raise MutantError(f"mutant {m.name}: the mutated {m.file} does not compile ({exc.msg}, line {exc.lineno})")
    return text


def copy_checkout(dest: Path) -> None:
    """Tracked and untracked-but-not-ignored files of the checkout, as on disk, into ``dest``."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in names:
        src = ROOT / name
        if name and src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _env(copy: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("HARNESS_SKIP_LARGE_TESTS", "1")
    env.setdefault("HYPOTHESIS_PROFILE", "ci")
    env.setdefault("HARNESS_BUILD_DIR", str(ROOT / "build"))  # conformance tests reuse this checkout's builds
    return env


def run_tests(copy: Path, tests: Sequence[str], workers: str, timeout: float) -> tuple[str, float, str]:
    """(``passed``/``failed``/``timeout``/``error``, seconds, the last lines of pytest's output)."""
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", workers,
            "--dist", "loadgroup", *dict.fromkeys(tests)]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=copy, env=_env(copy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # pytest and its xdist workers (our own session)
        out, _ = proc.communicate()
        return "timeout", time.monotonic() - t0, out[-2000:]
    took = time.monotonic() - t0
    tail = "\n".join(out.strip().splitlines()[-15:])
    # 0 all passed; 1 some failed; 2 interrupted (a collection error: the mutant broke an import);
    # 3 internal error, 4 usage error, 5 nothing collected: the run itself is broken.
    status = {0: "passed", 1: "failed", 2: "failed"}.get(proc.returncode, "error")
    return status, took, tail


def run_mutant(m: Mutant, copy: Path, workers: str, timeout: float) -> dict[str, object]:
    path = copy / m.file
    original = path.read_text(encoding="utf-8")
    try:
        text = mutated_text(m, copy)
    except MutantError as exc:
        return {"name": m.name, "verdict": "error", "seconds": 0.0, "detail": str(exc)}
    path.write_text(text, encoding="utf-8")
    try:
        status, took, tail = run_tests(copy, m.tests, workers, timeout)
    finally:
        path.write_text(original, encoding="utf-8")
    verdict = {"passed": "survived", "failed": "killed", "timeout": "killed"}.get(status, "error")
    return {"name": m.name, "verdict": verdict, "how": status, "seconds": round(took, 1), "file": m.file,
            "line": locate(m, copy) + 1, "replacement": m.replacement.strip(), "tests": list(m.tests),
            "why": m.why, **({"detail": tail} if verdict != "killed" else {})}


def _choose(only: Sequence[str] | None) -> list[Mutant]:
    if not only:
        return list(MUTANTS)
    by_name = {m.name: m for m in MUTANTS}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise SystemExit(f"mutate: no mutant named {', '.join(unknown)} (--list names them)")
    return [by_name[n] for n in only]


def _check_all(chosen: list[Mutant]) -> list[str]:
    """Why each chosen mutant cannot run (its line, its mutated file, its test files)."""
    problems = []
    for m in chosen:
        try:
            mutated_text(m, ROOT)
        except MutantError as exc:
            problems.append(str(exc))
        problems += [f"mutant {m.name}: its test path {t} does not exist" for t in m.tests
                     if not (ROOT / t.split("::")[0]).exists()]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants (names from --list)")
    ap.add_argument("--list", action="store_true", help="list the mutants (name, file:line, tests) and exit")
    ap.add_argument("--workers", default=os.environ.get("HARNESS_TEST_WORKERS", "auto"),
                    help="pytest-xdist workers per run (default auto: one per CPU; 0: in pytest's own process)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds one mutant's tests may take (then killed)")
    ap.add_argument("--no-control", action="store_true", help="skip the unmutated control run")
    ap.add_argument("--json", type=Path, help="write the results here (default benchmarks/results/mutate-<time>.json)")
    args = ap.parse_args(argv)
    chosen = _choose(args.only)
    if args.list:
        for m in chosen:
            try:
                where = f"{m.file}:{locate(m, ROOT) + 1}"
            except MutantError:
                where = f"{m.file}:(line not found)"
            print(f"{m.name:44} {where:34} {' '.join(m.tests)}")
        print(f"{len(chosen)} mutants (list version {VERSION})")
        return 0
    problems = _check_all(chosen)
    if problems:
        print("mutate: these mutants no longer apply; nothing was run:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        copy = Path(tmp)
        copy_checkout(copy)
        control_s = None
        if not args.no_control:
            tests = sorted({t for m in chosen for t in m.tests})
            status, control_s, tail = run_tests(copy, tests, args.workers, args.timeout * 3)
            print(f"control (unmutated, {len(tests)} test paths): {status} in {control_s:.1f} s", flush=True)
            if status != "passed":
                print(f"mutate: the unmutated tests do not pass; no mutant is run:\n{tail}", file=sys.stderr)
                return 2
        results = []
        for i, m in enumerate(chosen, 1):
            r = run_mutant(m, copy, args.workers, args.timeout)
            results.append(r)
            print(f"[{i:2}/{len(chosen)}] {r['verdict']:8} {r['seconds']:6.1f} s  {m.name}"
                  + (f"  ({r['how']})" if r.get("how") == "timeout" else ""), flush=True)
            if r["verdict"] == "error":
                print(f"    {r.get('detail', '')}", flush=True)
    total = time.monotonic() - t0
    counts = {v: sum(1 for r in results if r["verdict"] == v) for v in ("killed", "survived", "error")}
    applied = counts["killed"] + counts["survived"]
    score = 100.0 * counts["killed"] / applied if applied else 0.0
    survivors = [r["name"] for r in results if r["verdict"] == "survived"]
    print(f"\n{len(results)} mutants: {counts['killed']} killed, {counts['survived']} survived, {counts['error']} "
          f"error; score {score:.1f}% killed; {total:.0f} s ({total / 60:.1f} min) on {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for name in survivors:
        print(f"  survived: {name}")
    out = args.json or ROOT / "benchmarks" / "results" / f"mutate-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"when": started.isoformat(timespec="seconds"), "list_version": VERSION, "seconds": round(total, 1),
            "control_seconds": round(control_s, 1) if control_s is not None else None, "workers": args.workers,
            "cpus": os.cpu_count(), "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(), "python": platform.python_version(), "commit": _commit()}
    out.write_text(json.dumps({"meta": meta, "summary": {**counts, "mutants": len(results), "score": round(score, 1),
                                                         "survivors": survivors},
                               "mutants": results}, indent=2) + "\n")
    print(f"results: {out}")
    return 2 if counts["error"] else 1 if survivors else 0


def _commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return proc.stdout.strip() + ("+changes" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
