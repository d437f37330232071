#!/usr/bin/env python3
"""Codec speed and memory beside torch.save/torch.load and the plain-file limits.

    python3 benchmarks/bench_codec.py [--sizes a,b,c,d] [--repeat 3] [--tmp DIR] [--json PATH] [--cold]

Sizes: (a) 2,000 float32 tensors of 8 KiB, (b) 16 MiB, (c) 256 MiB, (d) 1 GiB of float32
(b-d as 4 tensors). Rows per size, all measured in this one run:

  codec_save    harness.codec.write_state_dict(path, state)   atomic: temp file, write, fsync, rename
  torch_save    torch.save(state, f); f.flush(); fsync         into a new file
  plain_write   open(); write(memoryview) per tensor; fsync    into a new file: the write limit
  codec_load    harness.codec.read_state_dict(path)            owning, writable tensors
  torch_load    torch.load(path)
  plain_read    readinto() one existing, already-touched buffer: the read limit
  plain_read_new  torch.empty(file size) + readinto() it: the read limit for a loader that
                must return NEW memory (it pays the page faults, as codec_load and torch_load do)
  codec_load_mmap read_state_dict(path, mmap=True), only where the codec has it: zero-copy
                views of a mapping, nothing read until touched (information, no target)

fsync is INCLUDED in every write row (the codec fsyncs on path writes because it writes
atomically). Every write row writes a file that does not exist yet (the target is deleted
before the measurement, outside the timing, for the codec too). Before each measurement
the page cache is synced (`sync`), so no row pays for an earlier row's write-back; with
--cold the page cache is also dropped (echo 1 > /proc/sys/vm/drop_caches, root only) so
reads come from the disk; without it reads are warm-cache for every row alike.

Each measurement runs in a fresh subprocess: the state is built (or the read buffer
allocated) first, then VmHWM is reset (/proc/self/clear_refs), the operation timed, and
the peak extra memory taken as VmHWM minus the RSS before the call, minus the payload for
loads (which must hold it). Best of --repeat by time; every sample is kept in the JSON.
"""
from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"a": (2000, 2048), "b": (4, 16 * 2**20 // 16), "c": (4, 256 * 2**20 // 16), "d": (4, 2**30 // 16)}
LABEL = {"a": "2000 x 8 KiB", "b": "16 MiB", "c": "256 MiB", "d": "1 GiB"}
WRITES = ["codec_save", "torch_save", "plain_write"]
READS = ["codec_load", "torch_load", "plain_read", "plain_read_new"]
MMAP_ROW = "codec_load_mmap"  # only where read_state_dict takes mmap= (informational, no target)
FILE_OF = {"codec_save": "codec", "codec_load": "codec", "torch_save": "torch", "torch_load": "torch",
           "plain_write": "plain", "plain_read": "plain", "plain_read_new": "plain", MMAP_ROW: "codec"}


def _status(key: str) -> float:
    """A /proc/self/status value in MiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def child(op: str, size: str, path: str) -> dict[str, float]:
    """One measurement, in its own process."""
    import torch

    sys.path.insert(0, str(ROOT))
    from harness import codec

    n, numel = SIZES[size]
    payload = n * numel * 4
    state: dict[str, torch.Tensor] = {}
    buf = None
    if op in WRITES:
        g = torch.Generator().manual_seed(0)
        state = {f"layer{i}.weight": torch.randn(numel, generator=g) for i in range(n)}
    elif op == "plain_read":
        buf = bytearray(b"\x01") * os.path.getsize(path)  # the existing buffer: allocated and touched
    base = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS: the peak below is this call's alone
    result: Any = None
    t0 = time.perf_counter()
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
    elif op == MMAP_ROW:
        result = codec.read_state_dict(path, mmap=True)
    elif op == "torch_load":
        result = torch.load(path)
    elif op in ("plain_read", "plain_read_new"):
        if op == "plain_read_new":
            result = torch.empty(os.path.getsize(path), dtype=torch.uint8)
            buf = result.numpy()
        assert buf is not None
        with open(path, "rb", buffering=0) as f:
            view, done = memoryview(buf), 0
            while done < len(buf):
                got = f.readinto(view[done:])
                if not got:
                    raise RuntimeError("short file")
                done += got
    seconds = time.perf_counter() - t0
    extra = _status("VmHWM") - base
    if op in ("codec_load", "torch_load", "plain_read_new"):
        extra -= payload / 2**20
    if op in ("codec_load", "torch_load", MMAP_ROW):
        assert sum(t.numel() for t in result.values()) * 4 == payload
    return {"seconds": seconds, "extra_mib": extra, "base_rss_mib": base}


def _drop_caches() -> bool:
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
        return True
    except OSError:
        return False


def measure(op: str, size: str, path: str, cold: bool) -> dict[str, float]:
    if op in WRITES:
        for p in (path, *Path(path).parent.glob(f".{Path(path).name}.*.tmp")):
            if os.path.exists(p):
                os.unlink(p)
    os.sync()
    if cold and not _drop_caches():
        raise SystemExit("--cold needs root (cannot write /proc/sys/vm/drop_caches)")
    out = subprocess.run([sys.executable, __file__, "--child", op, size, path], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{op} {size} failed:\n{out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def targets(rows: list[dict[str, Any]], sizes: list[str]) -> list[dict[str, Any]]:
    out = []
    for size in sizes:
        get = {r["op"]: r for r in rows if r["size"] == size}
        n = get["codec_save"]["tensors"]
        ratio = get["codec_save"]["GBps"] / get["plain_write"]["GBps"]
        out.append({"size": size, "target": "save >= 0.8x plain write", "met": ratio >= 0.8, "value": f"{ratio:.2f}x"})
        ratio = get["codec_load"]["GBps"] / get["torch_load"]["GBps"]
        out.append({"size": size, "target": "load >= torch.load", "met": ratio >= 1.0, "value": f"{ratio:.2f}x"})
        mib = get["codec_save"]["extra_mib"]
        out.append({"size": size, "target": "extra memory while saving <= 64 MiB", "met": mib <= 64,
                    "value": f"{mib:.1f} MiB"})
        if size == "a":
            for what, mine, limit in (("save", "codec_save", "plain_write"), ("load", "codec_load", "plain_read"),
                                      ("load", "codec_load", "plain_read_new")):
                us = (get[mine]["seconds"] - get[limit]["seconds"]) / n * 1e6
                out.append({"size": size, "target": f"per-tensor overhead, {what} vs {limit} <= 10 us",
                            "met": us <= 10, "value": f"{us:.1f} us"})
    return out


def _codec_stamp() -> str:
    """The newest modification time of harness/codec/*.py (the codec measured), UTC."""
    newest = max(p.stat().st_mtime for p in (ROOT / "harness" / "codec").glob("*.py"))
    return dt.datetime.fromtimestamp(newest, dt.timezone.utc).isoformat(timespec="seconds")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    p.add_argument("--repeat", type=int, default=3, help="measurements per row; the best is reported")
    p.add_argument("--tmp", default=tempfile.gettempdir(), help="folder for the benchmark files (deleted after)")
    p.add_argument("--json", help="write the results here instead of benchmarks/results/<time>.json")
    p.add_argument("--cold", action="store_true", help="drop the page cache before every measurement (root)")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    sizes = [s for s in args.sizes.split(",") if s]
    unknown = set(sizes) - set(SIZES)
    if unknown:
        p.error(f"unknown sizes {sorted(unknown)} (choose from a,b,c,d)")
    started = time.monotonic()
    sys.path.insert(0, str(ROOT))
    from harness import codec

    reads = READS + ([MMAP_ROW] if "mmap" in inspect.signature(codec.read_state_dict).parameters else [])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="codec-bench-") as tmp:
        for size in sizes:
            n, numel = SIZES[size]
            payload = n * numel * 4
            samples: dict[str, list[dict[str, float]]] = {op: [] for op in WRITES + reads}
            for rep in range(args.repeat):
                # rotate the order each repeat, so no row always follows the same other row
                k = rep % len(WRITES)
                for op in WRITES[k:] + WRITES[:k] + reads[k:] + reads[:k]:
                    samples[op].append(measure(op, size, f"{tmp}/{size}.{FILE_OF[op]}", args.cold))
            for op, ms in samples.items():
                best = min(ms, key=lambda m: m["seconds"])
                rows.append({"size": size, "label": LABEL[size], "op": op, "tensors": n, "bytes": payload,
                             "seconds": best["seconds"], "GBps": payload / best["seconds"] / 1e9,
                             "us_per_tensor": best["seconds"] / n * 1e6,
                             "extra_mib": max(m["extra_mib"] for m in ms),
                             "samples_s": [m["seconds"] for m in ms]})
            for f in Path(tmp).iterdir():
                f.unlink()
    verdicts = targets(rows, sizes)
    elapsed = time.monotonic() - started
    cache = "COLD (page cache dropped before each measurement)" if args.cold else "warm (file just written)"
    print(f"codec benchmark: best of {args.repeat}, one process per measurement, fsync in every write row, "
          f"reads {cache}; {os.cpu_count()} cpu, files in {args.tmp}; codec files as of {_codec_stamp()}")
    print(f"{'size':<14}{'operation':<16}{'best s':>9}{'GB/s':>8}{'us/tensor':>11}{'peak extra MiB':>16}   samples (s)")
    for r in rows:
        spread = " ".join(f"{s:.3f}" for s in r["samples_s"])
        print(f"{r['label']:<14}{r['op']:<16}{r['seconds']:9.3f}{r['GBps']:8.2f}{r['us_per_tensor']:11.1f}"
              f"{r['extra_mib']:16.1f}   {spread}")
    print("\n(peak extra MiB: the largest over the samples; for codec_load/torch_load/plain_read_new, over the "
          "payload the result holds;\n for codec_load_mmap, the whole increase: mapped file pages touched "
          "and any copies)")
    print("\ntargets:")
    for v in verdicts:
        print(f"  {LABEL[v['size']]:<14}{v['target']:<52}{'met' if v['met'] else 'NOT MET':>8}  ({v['value']})")
    print(f"\nran in {elapsed:.0f} s")
    out = Path(args.json) if args.json else ROOT / "benchmarks" / "results" / (
        dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    import torch

    meta = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "repeat": args.repeat,
            "cache": "cold" if args.cold else "warm", "fsync_in_every_write": True, "cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "tmp": args.tmp, "seconds": round(elapsed, 1), "codec_files_modified": _codec_stamp()}
    out.write_text(json.dumps({"meta": meta, "rows": rows, "targets": verdicts}, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
