#!/usr/bin/env python3
"""Codec speed and memory beside torch.save/torch.load and the plain-file limits.

    python3 benchmarks/bench_codec.py [--sizes a,b,c,d] [--repeat 3] [--tmp DIR] [--json PATH]

Sizes: (a) 2,000 float32 tensors of 8 KiB, (b) 16 MiB, (c) 256 MiB, (d) 1 GiB of float32
(b-d as 4 tensors). Rows per size, all measured in this one run:

  codec save     harness.codec.write_state_dict(path, state)      (atomic: temp file + fsync + rename)
  torch.save     torch.save(state, path) + fsync
  plain write    open + write each tensor's bytes + fsync          (the write limit)
  codec load     harness.codec.read_state_dict(path)               (owning, writable tensors)
  codec mmap     read_state_dict(path, mmap=True), where the codec has it
  torch.load     torch.load(path)
  plain read     readinto one preallocated buffer                  (the read limit)

Every measurement runs in a fresh subprocess, so one measurement's memory peak cannot
hide another's; reads are warm-cache for every row alike (the file was just written).
Peak extra memory = peak RSS minus RSS before the call, minus the payload for loads.
Results go to stdout as a table and to JSON (benchmarks/results/<time>.json or --json).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"a": (2000, 2048), "b": (4, 16 * 2**20 // 16), "c": (4, 256 * 2**20 // 16), "d": (4, 2**30 // 16)}
LABEL = {"a": "2000 x 8 KiB", "b": "16 MiB", "c": "256 MiB", "d": "1 GiB"}
OPS = ["codec_save", "torch_save", "plain_write", "codec_load", "codec_mmap", "torch_load", "plain_read"]


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _state(size: str):  # type: ignore[no-untyped-def]
    import torch
    n, numel = SIZES[size]
    g = torch.Generator().manual_seed(0)
    return {f"layer{i}.weight": torch.randn(numel, generator=g) for i in range(n)}


def child(op: str, size: str, path: str) -> dict[str, float]:
    """One measurement (runs in its own process)."""
    import torch

    sys.path.insert(0, str(ROOT))
    from harness import codec

    payload = SIZES[size][0] * SIZES[size][1] * 4
    state = _state(size) if op in ("codec_save", "torch_save", "plain_write") else None
    base_rss = _rss_mib()
    # reset the high-water mark so the peak belongs to this call alone
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    result = None
    if op == "codec_save":
        codec.write_state_dict(path, state)
    elif op == "torch_save":
        with open(path, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
    elif op == "plain_write":
        with open(path, "wb") as f:
            for t in state.values():
                f.write(memoryview(t.numpy()).cast("B"))
            f.flush()
            os.fsync(f.fileno())
    elif op == "codec_load":
        result = codec.read_state_dict(path)
    elif op == "codec_mmap":
        try:
            result = codec.read_state_dict(path, mmap=True)  # type: ignore[call-arg]
        except TypeError:
            return {"seconds": float("nan"), "extra_mib": float("nan"), "unsupported": 1.0}
    elif op == "torch_load":
        result = torch.load(path)
    elif op == "plain_read":
        buf = bytearray(os.path.getsize(path))
        with open(path, "rb", buffering=0) as f:
            view, done = memoryview(buf), 0
            while done < len(buf):
                done += f.readinto(view[done:]) or 0
        result = buf
    seconds = time.perf_counter() - t0
    with open("/proc/self/status") as f:
        hwm = next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")), _peak_mib())
    extra = hwm - base_rss
    if result is not None and op != "codec_mmap":
        extra -= payload / 2**20
    return {"seconds": seconds, "extra_mib": max(extra, 0.0)}


def measure(op: str, size: str, path: str) -> dict[str, float]:
    if op in ("torch_save", "plain_write") and os.path.exists(path):
        # Every write row writes a NEW file, as the codec's atomic write always does:
        # rewriting an existing file in place is several times faster on this disk.
        os.unlink(path)
    out = subprocess.run([sys.executable, __file__, "--child", op, size, path], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{op} {size} failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="a,b,c,d")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tmp", default=tempfile.gettempdir())
    p.add_argument("--json")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="codec-bench-") as tmp:
        for size in args.sizes.split(","):
            n, numel = SIZES[size]
            payload = n * numel * 4
            files = {"codec": f"{tmp}/{size}.dat", "torch": f"{tmp}/{size}.pt", "plain": f"{tmp}/{size}.raw"}
            best: dict[str, dict[str, float]] = {}
            for _ in range(args.repeat):
                for op in OPS:
                    target = files["torch" if op.startswith("torch") else "plain" if op.startswith("plain")
                                   else "codec"]
                    m = measure(op, size, target)
                    if op not in best or m["seconds"] < best[op]["seconds"]:
                        best[op] = m
            for op, m in best.items():
                rows.append({"size": size, "label": LABEL[size], "op": op, "tensors": n, "bytes": payload,
                             "seconds": m["seconds"], "GBps": payload / m["seconds"] / 1e9 if m["seconds"] else 0,
                             "us_per_tensor": m["seconds"] / n * 1e6, "extra_mib": m["extra_mib"]})
    print(f"{'size':<14}{'operation':<13}{'GB/s':>8}{'us/tensor':>11}{'extra MiB':>11}")
    for r in rows:
        print(f"{r['label']:<14}{r['op']:<13}{r['GBps']:8.2f}{r['us_per_tensor']:11.1f}{r['extra_mib']:11.1f}")
    print()
    verdicts = []
    for size in args.sizes.split(","):
        get = {r["op"]: r for r in rows if r["size"] == size}
        verdicts.append((size, "save >= 0.8x plain write", get["codec_save"]["GBps"] >= 0.8 * get["plain_write"]["GBps"],
                         f"{get['codec_save']['GBps'] / get['plain_write']['GBps']:.2f}x"))
        verdicts.append((size, "load >= torch.load", get["codec_load"]["GBps"] >= get["torch_load"]["GBps"],
                         f"{get['codec_load']['GBps'] / get['torch_load']['GBps']:.2f}x"))
        verdicts.append((size, "extra memory while saving <= 64 MiB", get["codec_save"]["extra_mib"] <= 64,
                         f"{get['codec_save']['extra_mib']:.1f} MiB"))
        if size == "a":
            worst = max(get["codec_save"]["us_per_tensor"] - get["plain_write"]["us_per_tensor"],
                        get["codec_load"]["us_per_tensor"] - get["plain_read"]["us_per_tensor"])
            verdicts.append((size, "per-tensor overhead <= 10 us", worst <= 10, f"{worst:.1f} us"))
    for size, target, ok, value in verdicts:
        print(f"{LABEL[size]:<14}{target:<40}{'met' if ok else 'NOT MET':>8}  ({value})")
    out = Path(args.json) if args.json else ROOT / "benchmarks" / "results" / (
        dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "targets": [
        {"size": s, "target": t, "met": ok, "value": v} for s, t, ok, v in verdicts]}, indent=2) + "\n")
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
