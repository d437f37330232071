"""How many parallel jobs this machine's memory carries (``--jobs``), and how many of them may
hold large-tensor cells.

Figures measured on the reference machine (2 cores, 24 GiB, harness/running/allocator.py's jemalloc):
a job of small cells stays under 1.5 GiB; a job that runs the large-tensor cells (2 GiB
tensors) peaks at about 10 GiB (the harness process 4.3 GiB, the C# worker 2.2, the pythonnet
host 2.3, the PyTorch 2.6 worker 2.6 RSS, and the files in the page cache), and keeps most of
it until it ends, because each process keeps its peak for the next large tensor. Two such
jobs at once (HARNESS_LARGE_JOBS=2) left 9 GiB of 23 available, but each large cell ran 1.5x
slower beside the other (host page faults and the disk's fsyncs are shared): the default
matrix took 302.6 s that way against 266.8 s with one large job (benchmarks/README.md), so
LARGE_JOB_BYTES keeps this machine at one. The zoo's big models (vgg, wide ResNets: 50 M
parameters and more) hold 4-6 GiB in a job; they go to as many jobs as the large cells, counted
from the other end (harness/running/plan.py heavy_pool), since one job of both was killed for memory.
"""
from __future__ import annotations

import os

GiB = 1 << 30
SMALL_JOB_BYTES = 4 * GiB    # per job: its own PyTorch and TorchSharp workers, with room
LARGE_JOB_BYTES = 12 * GiB   # per job that holds large-tensor cells (measured peak ~10 GiB)


def available_bytes() -> int:
    """MemAvailable of /proc/meminfo (0 where it cannot be read)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            return next((int(ln.split()[1]) * 1024 for ln in f if ln.startswith("MemAvailable:")), 0)
    except OSError:
        return 0


def auto_jobs(cells: int, available: int | None = None, cpus: int | None = None) -> int:
    """--jobs by default: one per CPU, at most one per SMALL_JOB_BYTES of available memory,
    and 1 for a plan too small to gain from it (each job starts its own workers)."""
    if cells < 200:
        return 1
    available = available_bytes() if available is None else available
    cpus = (os.cpu_count() or 1) if cpus is None else cpus
    return max(1, min(cpus, available // SMALL_JOB_BYTES))


def large_jobs(jobs: int, available: int | None = None) -> int:
    """How many of ``jobs`` may hold large-tensor cells: as many as LARGE_JOB_BYTES fit in the
    available memory, at least one (a single large job is what a serial run needs anyway).
    ``HARNESS_LARGE_JOBS=K`` sets it (e.g. 1 on a machine shared with other work)."""
    forced = os.environ.get("HARNESS_LARGE_JOBS", "")
    if forced.isdigit() and int(forced) >= 1:
        return min(jobs, int(forced))
    available = available_bytes() if available is None else available
    return max(1, min(jobs, available // LARGE_JOB_BYTES))
