#!/usr/bin/env python3
"""On-demand fuzz run of the codec's readers over mutated valid files.

    python3 benchmarks/fuzz_codec.py --count 100000 --seed 1 [--time-limit 360]
    python3 benchmarks/fuzz_codec.py --seed 1 --replay 4711      # re-run input 4711 alone

Input i is a seed file (tests/fuzz/mutators.py: seed_files) put through 1-3 mutators, all
drawn from random.Random(f"{seed}:{i}"), so any input can be replayed on its own. Every
input goes to every reader (state dict, tensor, optimizer), from a seekable BytesIO, a seekable BufferedReader, from
a non-seekable stream and, where the reader takes mmap=, from a mapped file, under an
address-space cap (current size + --headroom-mib) and a per-read alarm (--timeout). Each
read must return a plausible value or raise codec.CodecError. Prints the rate, every
distinct typed outcome (reader, error class, field with keys/indices normalised), untyped
exceptions (first tracebacks; inputs saved under --save), hangs and the max RSS. Exit 1 on any
untyped exception or hang.
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

from tests.fuzz.mutators import MUTATORS, READERS, memory_cap, modes_for, mutate, read_one, seed_files  # noqa: E402


class Hang(BaseException):  # BaseException: no `except Exception` in the codec can swallow it
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang()


def make_input(seeds: dict, names: list[str], mutators: list[str],  # type: ignore[type-arg]
               seed: int, i: int) -> tuple[str, list[str], bytes]:
    rng = random.Random(f"{seed}:{i}")
    seed_name = rng.choice(names)
    chain = [rng.choice(mutators) for _ in range(rng.randint(1, 3))]
    return seed_name, chain, mutate(seeds[seed_name], chain, rng)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=100_000, help="inputs to generate (default 100000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per read before it counts as a hang")
    p.add_argument("--time-limit", type=float, default=0, help="stop after this many seconds (0: no limit)")
    p.add_argument("--headroom-mib", type=int, default=512, help="address-space cap above the start size")
    p.add_argument("--save", default="/tmp/codec-fuzz-failures", help="folder for offending inputs")
    p.add_argument("--replay", type=int, help="run only input number REPLAY and print each reader's outcome")
    args = p.parse_args()

    seeds = seed_files()
    names, mutators = sorted(seeds), sorted(MUTATORS)
    if args.replay is not None:
        seed_name, chain, data = make_input(seeds, names, mutators, args.seed, args.replay)
        print(f"input {args.replay}: {seed_name} through {' -> '.join(chain)}, {len(data)} bytes: {data[:64].hex()}...")
        for reader in READERS:
            for mode in modes_for(reader):
                print(f"  {reader:<10} {mode:<8} {read_one(reader, data, mode)}")
        return 0

    outcomes: collections.Counter[str] = collections.Counter()
    per_mutator: collections.Counter[str] = collections.Counter()
    per_seed: collections.Counter[str] = collections.Counter()
    untyped: collections.Counter[str] = collections.Counter()
    tracebacks: list[str] = []
    hangs: list[str] = []
    reads = slowest = 0.0
    slowest_input = -1
    save = Path(args.save)
    signal.signal(signal.SIGALRM, _alarm)
    start = time.monotonic()
    done = 0
    with memory_cap(args.headroom_mib << 20):
        for i in range(args.count):
            if args.time_limit and time.monotonic() - start > args.time_limit:
                break
            seed_name, chain, data = make_input(seeds, names, mutators, args.seed, i)
            per_seed[seed_name] += 1
            per_mutator.update(chain)
            for reader in READERS:
                for mode in modes_for(reader):
                    where = f"{reader} ({mode})"
                    t0 = time.monotonic()
                    signal.setitimer(signal.ITIMER_REAL, args.timeout)
                    try:
                        outcomes[f"{where:<22} {read_one(reader, data, mode)}"] += 1
                    except Hang:
                        hangs.append(f"input {i} ({seed_name}: {' -> '.join(chain)}) {where}")
                        _save(save, f"hang-{i}-{reader}", data, hangs[-1])
                    except BaseException as exc:  # noqa: BLE001 - the point: anything not a CodecError
                        if isinstance(exc, KeyboardInterrupt):
                            raise
                        kind = f"{where}: {type(exc).__name__}"
                        untyped[kind] += 1
                        if len(tracebacks) < 5:
                            tb = (f"input {i} ({seed_name}: {' -> '.join(chain)}, {len(data)} bytes) {where}\n"
                                  + traceback.format_exc())
                            tracebacks.append(tb)
                            _save(save, f"untyped-{i}-{reader}", data, tb)
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
                    took = time.monotonic() - t0
                    reads += 1
                    if took > slowest:
                        slowest, slowest_input = took, i
            done += 1
    elapsed = time.monotonic() - start
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_untyped = sum(untyped.values())
    ok = sum(v for k, v in outcomes.items() if k.endswith(" ok"))

    print(f"codec fuzz: seed {args.seed}, {done} inputs"
          f"{'' if done == args.count else f' of {args.count} requested (stopped by --time-limit)'}"
          f" x {len(READERS)} readers ({'; '.join(f'{r}: ' + ', '.join(modes_for(r)) for r in READERS)})"
          f" = {int(reads)} reads "
          f"in {elapsed:.1f} s ({done / elapsed:.0f} inputs/s)")
    print(f"untyped exceptions: {n_untyped}   hangs (> {args.timeout:g} s): {len(hangs)}   "
          f"slowest read: {slowest * 1000:.1f} ms (input {slowest_input})")
    print(f"max RSS: {maxrss:.0f} MiB (address space capped at start + {args.headroom_mib} MiB)")
    typed = len(outcomes) - sum(k.endswith(' ok') for k in outcomes)
    print(f"reads returning a value: {ok}; distinct typed outcomes: {typed}")
    print("mutators used: " + ", ".join(f"{k} {v}" for k, v in sorted(per_mutator.items())))
    print("seeds used:    " + ", ".join(f"{k} {v}" for k, v in sorted(per_seed.items())))
    print("\noutcomes (count, reader, outcome):")
    for k, v in sorted(outcomes.items()):
        print(f"  {v:8d}  {k}")
    if untyped:
        print("\nUNTYPED:")
        for k, v in untyped.most_common():
            print(f"  {v:8d}  {k}")
        for tb in tracebacks:
            print("\n" + tb)
        print(f"offending inputs saved under {save}/")
    for h in hangs[:10]:
        print(f"HANG: {h}")
    return 1 if n_untyped or hangs else 0


def _save(folder: Path, stem: str, data: bytes, note: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.dat").write_bytes(data)
    (folder / f"{stem}.txt").write_text(note + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
