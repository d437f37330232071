#!/usr/bin/env python3
"""On-demand fuzz run of the codec's readers over mutated valid files.

    python3 benchmarks/fuzz_codec.py --count 100000 --seed 1

Every input goes to every reader (state dict, tensor, optimizer); each must return a value
or raise the codec's typed error. Prints the count, the distinct typed errors seen, untyped
exceptions (first tracebacks, inputs saved under --save), hangs (per-input alarm) and the
max RSS. Exit 1 on any untyped exception or hang.
"""
from __future__ import annotations

import argparse
import collections
import random
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.mutators import MUTATORS, read_any, seed_files  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per input before it counts as a hang")
    p.add_argument("--save", default="/tmp/codec-fuzz-failures")
    args = p.parse_args()
    rng = random.Random(args.seed)
    seeds = seed_files()
    names, mutators = sorted(seeds), sorted(MUTATORS)
    seen: collections.Counter[str] = collections.Counter()
    untyped: list[str] = []
    hangs = 0
    signal.signal(signal.SIGALRM, _alarm)
    start = time.monotonic()
    for i in range(args.count):
        data = seeds[rng.choice(names)]
        for _ in range(rng.randint(1, 3)):
            if data:
                data = MUTATORS[rng.choice(mutators)](data, rng)
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
        try:
            for reader, outcome in read_any(data).items():
                seen[f"{reader}: {outcome}"] += 1
        except Hang:
            hangs += 1
            Path(args.save).mkdir(parents=True, exist_ok=True)
            Path(args.save, f"hang-{i}.dat").write_bytes(data)
        except Exception:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            Path(args.save, f"untyped-{i}.dat").write_bytes(data)
            if len(untyped) < 5:
                untyped.append(traceback.format_exc())
            seen["UNTYPED " + type(sys.exc_info()[1]).__name__] += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.monotonic() - start
    n_untyped = sum(v for k, v in seen.items() if k.startswith("UNTYPED"))
    print(f"inputs: {args.count} (x{len(names) and 3} readers) in {elapsed:.1f} s ({args.count / elapsed:.0f}/s), "
          f"seed {args.seed}")
    print(f"untyped exceptions: {n_untyped}; hangs (> {args.timeout} s): {hangs}")
    print(f"max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    print(f"distinct outcomes: {len(seen)}")
    for k, v in sorted(seen.items(), key=lambda kv: -kv[1]):
        print(f"  {v:8d}  {k}")
    for tb in untyped:
        print(tb)
    return 1 if n_untyped or hangs else 0


if __name__ == "__main__":
    raise SystemExit(main())
