"""Where a large-tensor cell's time goes: the stages of tensor_py2ts and tensor_ts2py on the
2 GiB float32 case (tensor_float32_huge_bytes), against the real C# TorchSharp worker, each
stage timed with the page faults it took, several rounds in one process (as a matrix run
does), under glibc's allocator and under jemalloc that keeps freed memory
(harness/running/allocator.py).

    /usr/bin/python3 benchmarks/bench_large_cell.py [--rounds 3] [--allocator both|system|jemalloc]
                                                    [--case tensor_float32_huge_bytes]

Prints one row per stage and round; the last round is the steady state of a run. Needs
~12 GiB of available memory and ~5 GiB of disk under build/bench-large/ (removed after).
Figures: benchmarks/README.md "Large-tensor cells".
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _rounds(case_name: str, rounds: int, folder: Path) -> None:
    """The child: run the stages ``rounds`` times, one line per stage."""
    sys.path.insert(0, str(ROOT))
    from harness.running import allocator
    from harness.cases import inputs
    from harness.cases import load_catalogue
    from harness.codecs import load_codec
    from harness.verdicts.compare import same_bytes
    from harness.verdicts.digest import TensorDigest
    from harness.drivers.pytorch import PyTorchDriver
    from harness.drivers.scratch import write_scratch_tensor
    from harness.running.session import start_torchsharp

    case = next(c for c in load_catalogue().all() if c.name == case_name)
    ts = next(iter(start_torchsharp(["0.107.0"], folder / "work").values()))
    if isinstance(ts, Exception):
        raise SystemExit(f"no TorchSharp worker: {ts}")
    py = PyTorchDriver(load_codec("ours"))
    label = allocator.describe().split(" (")[0]
    clock = [time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt]

    def lap(rnd: int, stage: str) -> None:
        now, faults = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        print(f"{label:8s} round {rnd}  {stage:34s} {now - clock[0]:6.2f} s  {faults - clock[1]:8d} faults", flush=True)
        clock[:] = [now, faults]

    try:
        lap(0, "start the C# worker")
        for rnd in range(1, rounds + 1):
            t = inputs.make_tensor(case)
            lap(rnd, "py2ts: make the edge values")
            py.write_tensor_file(t, folder / "py.dat")
            lap(rnd, "py2ts: codec writes (fsync'd)")
            ts.tensor_roundtrip(folder / "py.dat", folder / "ts.dat")
            lap(rnd, "py2ts: TorchSharp Load+Save+sha256")
            TensorDigest.of(t)
            lap(rnd, "py2ts: digest in place")
            same_bytes(folder / "py.dat", folder / "ts.dat")
            lap(rnd, "py2ts: compare the files")
            del t
            write_scratch_tensor(folder / "input.dat", inputs.make_tensor(case))
            lap(rnd, "ts2py: make + scratch input")
            ts.tensor_roundtrip(folder / "input.dat", folder / "ts.dat")
            lap(rnd, "ts2py: TorchSharp Load+Save+sha256")
            back = py.read_tensor_file(folder / "ts.dat")
            lap(rnd, "ts2py: codec reads")
            TensorDigest.of(back)
            lap(rnd, "ts2py: digest in place")
            del back
            for name in ("py.dat", "ts.dat", "input.dat"):
                (folder / name).unlink(missing_ok=True)
    finally:
        ts.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--allocator", choices=("both", "system", "jemalloc"), default="both")
    ap.add_argument("--case", default="tensor_float32_huge_bytes")
    ap.add_argument("--folder", type=Path, default=ROOT / "build" / "bench-large",
                    help="where the cell's files go (e.g. a tmpfs such as /dev/shm/bench-large)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = args.folder
    if args.child:
        _rounds(args.case, args.rounds, folder)
        return 0
    sys.path.insert(0, str(ROOT))
    from harness.running import allocator
    base = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")}
    runs = {"system": {**base, "HARNESS_ALLOCATOR": "system"}, "jemalloc": allocator.retaining_env(base)}
    if not allocator.JEMALLOC.exists():
        print(f"{allocator.JEMALLOC} is missing (scripts/setup.sh installs libjemalloc2): system only")
        runs.pop("jemalloc")
    code = 0
    for name, env in runs.items():
        if args.allocator not in ("both", name):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        try:
            code |= subprocess.run([sys.executable, __file__, "--child", "--rounds", str(args.rounds),
                                    "--case", args.case, "--folder", str(folder)], env=env, check=False).returncode
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
