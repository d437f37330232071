#!/usr/bin/env python3
"""Codec speed and memory beside torch.save/torch.load and the plain-file limits.

    python3 benchmarks/bench_codec.py [--sizes a,b,c,d] [--repeat 3] [--tmp DIR] [--json PATH] [--cold]

Sizes: (a) 2,000 float32 tensors of 8 KiB, (b) 16 MiB, (c) 256 MiB, (d) 1 GiB of float32
(b-d as 4 tensors). Rows per size, all measured in this one run:

  codec_save    harness.codec.write_state_dict(path, state)   atomic: temp file, write, fsync, rename
  torch_save    torch.save(state, f); f.flush(); fsync         into a new file
  plain_write   open(); write(memoryview) per tensor; fsync    into a new file: the write limit
  codec_load    harness.codec.read_state_dict(path)            owning, writable tensors (records of at
                least one huge page read into huge-page advised memory where THP allows)
  codec_load_plain  the same with HARNESS_CODEC_HUGEPAGES=off: every record into torch.empty
  torch_load    torch.load(path)
  plain_read    readinto() one existing, already-touched buffer: the read limit
  plain_read_new  torch.empty(file size) + readinto() it: the read limit for a loader that
                must return NEW memory (it pays the page faults, as codec_load and torch_load do)
  codec_load_mmap read_state_dict(path, mmap=True), only where the codec has it: zero-copy
                views of a mapping, nothing read until touched (information, no target)
  codec_load_1proc (size a only) read_state_dict(path) 10 times in ONE process after one
                warm-up load, each result dropped before the next: the best load (per-tensor
                cost without the fresh process's start-up faults)

Every load row also reports the memory backed by huge pages after the load (AnonHugePages,
MiB) and the codec's own account of its load path (codec.hugepage_loads()).

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
READS = ["codec_load", "codec_load_plain", "torch_load", "plain_read", "plain_read_new"]
MMAP_ROW = "codec_load_mmap"  # only where read_state_dict takes mmap= (informational, no target)
ONE_PROC = "codec_load_1proc"  # size a: loads in one process
FILE_OF = {"codec_save": "codec", "codec_load": "codec", "torch_save": "torch", "torch_load": "torch",
           "plain_write": "plain", "plain_read": "plain", "plain_read_new": "plain", MMAP_ROW: "codec",
           "codec_load_plain": "codec", ONE_PROC: "codec"}
ENV_OF = {"codec_load_plain": {"HARNESS_CODEC_HUGEPAGES": "off"}}
LOAD_TARGET = {"a": 1.0, "b": 1.0, "c": 1.5, "d": 1.5}  # codec_load >= this x torch_load's speed (issue 16)


def _status(key: str) -> float:
    """A /proc/self/status value in MiB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def _anon_huge_mib() -> float:
    """This process's memory backed by transparent huge pages (AnonHugePages), MiB."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def child(op: str, size: str, path: str) -> dict[str, Any]:
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
    one_proc = []
    if op == ONE_PROC:
        codec.read_state_dict(path)  # warm-up: imports, caches, the allocator
    base = _status("VmRSS")
    huge_before = _anon_huge_mib()
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
    elif op in ("codec_load", "codec_load_plain"):
        result = codec.read_state_dict(path)
    elif op == ONE_PROC:
        for _ in range(10):
            t1 = time.perf_counter()
            result = None
            result = codec.read_state_dict(path)
            one_proc.append(time.perf_counter() - t1)
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
    seconds = min(one_proc) if one_proc else time.perf_counter() - t0
    extra = _status("VmHWM") - base
    if op in ("codec_load", "codec_load_plain", "torch_load", "plain_read_new"):
        extra -= payload / 2**20
    if op in ("codec_load", "codec_load_plain", "torch_load", MMAP_ROW, ONE_PROC):
        assert sum(t.numel() for t in result.values()) * 4 == payload
    out: dict[str, Any] = {"seconds": seconds, "extra_mib": extra, "base_rss_mib": base,
                           "huge_mib": _anon_huge_mib() - huge_before}
    if op.startswith("codec_load"):
        out["load_path"] = codec.hugepage_loads() if hasattr(codec, "hugepage_loads") else "plain (no huge-page path)"
    if one_proc:
        out["one_proc_s"] = one_proc
    return out


def _drop_caches() -> bool:
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1\n")
        return True
    except OSError:
        return False


def measure(op: str, size: str, path: str, cold: bool) -> dict[str, Any]:
    if op in WRITES:
        for p in (path, *Path(path).parent.glob(f".{Path(path).name}.*.tmp")):
            if os.path.exists(p):
                os.unlink(p)
    os.sync()
    if cold and not _drop_caches():
        raise SystemExit("--cold needs root (cannot write /proc/sys/vm/drop_caches)")
    out = subprocess.run([sys.executable, __file__, "--child", op, size, path], capture_output=True, text=True,
                         check=False, env={**os.environ, **ENV_OF.get(op, {})})
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
        want = LOAD_TARGET[size]
        out.append({"size": size, "target": f"load >= {want:g}x torch.load" if want != 1 else "load >= torch.load",
                    "met": ratio >= want, "value": f"{ratio:.2f}x ({get['codec_load']['load_path_short']})"})
        mib = get["codec_save"]["extra_mib"]
        out.append({"size": size, "target": "extra memory while saving <= 64 MiB", "met": mib <= 64,
                    "value": f"{mib:.1f} MiB"})
        if size == "a":
            for what, mine, limit in (("save", "codec_save", "plain_write"), ("load", "codec_load", "plain_read"),
                                      ("load", "codec_load", "plain_read_new")):
                us = (get[mine]["seconds"] - get[limit]["seconds"]) / n * 1e6
                out.append({"size": size, "target": f"per-tensor overhead, {what} vs {limit} <= 10 us",
                            "met": us <= 10, "value": f"{us:.1f} us"})
            if ONE_PROC in get:
                us = get[ONE_PROC]["seconds"] / n * 1e6
                out.append({"size": size, "target": "per-tensor load, one process <= 10 us", "met": us <= 10,
                            "value": f"{us:.1f} us"})
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _thp() -> str:
    """THP enabled/defrag modes, e.g. ``enabled [madvise], defrag [madvise]``."""
    out = []
    for name in ("enabled", "defrag"):
        try:
            with open(f"/sys/kernel/mm/transparent_hugepage/{name}") as f:
                text = f.read()
            out.append(f"{name} {text[text.index('['):text.index(']') + 1]}")
        except (OSError, ValueError):
            out.append(f"{name} unknown")
    return ", ".join(out)


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
    load_path = codec.hugepage_loads() if hasattr(codec, "hugepage_loads") else "plain (no huge-page path)"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="codec-bench-") as tmp:
        for size in sizes:
            n, numel = SIZES[size]
            payload = n * numel * 4
            size_reads = reads + ([ONE_PROC] if size == "a" else [])
            samples: dict[str, list[dict[str, Any]]] = {op: [] for op in WRITES + size_reads}
            for rep in range(args.repeat):
                # rotate the order each repeat, so no row always follows the same other row
                k = rep % len(WRITES)
                for op in WRITES[k:] + WRITES[:k] + size_reads[k:] + size_reads[:k]:
                    samples[op].append(measure(op, size, f"{tmp}/{size}.{FILE_OF[op]}", args.cold))
            for op, ms in samples.items():
                best = min(ms, key=lambda m: m["seconds"])
                row = {"size": size, "label": LABEL[size], "op": op, "tensors": n, "bytes": payload,
                       "seconds": best["seconds"], "GBps": payload / best["seconds"] / 1e9,
                       "us_per_tensor": best["seconds"] / n * 1e6,
                       "extra_mib": max(m["extra_mib"] for m in ms),
                       "huge_mib": best.get("huge_mib", 0.0),
                       "samples_s": [m["seconds"] for m in ms]}
                if "load_path" in best:
                    row["load_path"] = best["load_path"]
                    # what actually ran: huge pages seen after the load, or not
                    row["load_path_short"] = "hugepage" if best["huge_mib"] > 0 else "plain"
                rows.append(row)
            for f in Path(tmp).iterdir():
                f.unlink()
    verdicts = targets(rows, sizes)
    elapsed = time.monotonic() - started
    cache = "COLD (page cache dropped before each measurement)" if args.cold else "warm (file just written)"
    print(f"codec benchmark: best of {args.repeat}, one process per measurement, fsync in every write row, "
          f"reads {cache}; {os.cpu_count()} cpu, files in {args.tmp}; codec files as of {_codec_stamp()}")
    print(f"codec load path: {load_path}; THP {_thp()}; CPU {_cpu_model()}")
    print(f"{'size':<14}{'operation':<18}{'best s':>9}{'GB/s':>8}{'us/tensor':>11}{'peak extra MiB':>16}"
          f"{'huge MiB':>10}   samples (s)")
    for r in rows:
        spread = " ".join(f"{s:.3f}" for s in r["samples_s"])
        print(f"{r['label']:<14}{r['op']:<18}{r['seconds']:9.3f}{r['GBps']:8.2f}{r['us_per_tensor']:11.1f}"
              f"{r['extra_mib']:16.1f}{r['huge_mib']:10.0f}   {spread}")
    print("\n(huge MiB: memory backed by transparent huge pages after the best sample (AnonHugePages): the load "
          "path that ran;\n codec_load_1proc: best of 10 loads in one process, samples are each process's best)")
    print("(peak extra MiB: the largest over the samples; for codec_load/torch_load/plain_read_new, over the "
          "payload the result holds;\n for codec_load_mmap, the whole increase: mapped file pages touched and "
          "any copies)")
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
            "tmp": args.tmp, "seconds": round(elapsed, 1), "codec_files_modified": _codec_stamp(),
            "cpu_model": _cpu_model(), "thp": _thp(), "codec_load_path": load_path}
    out.write_text(json.dumps({"meta": meta, "rows": rows, "targets": verdicts}, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
