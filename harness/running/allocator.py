"""The memory allocator of a matrix run's processes: jemalloc, told to keep what is freed.

Why: a large-tensor cell moves 2 GiB several times (make the input, the codec's file,
TorchSharp's load and save, the read-back). With glibc, every 2 GiB allocation is a fresh
``mmap`` and every free a ``munmap``; on a VM whose balloon reports free pages to the host
(virtio-balloon free-page reporting), each fresh page then faults in the *host*: measured
here at 3-5 s per 2 GiB, and the same again for every cell. jemalloc with decay switched off
(``dirty_decay_ms:-1,muzzy_decay_ms:-1``) hands the next 2 GiB allocation the pages of the
last one instead: make_tensor 6.3 s -> 1.4 s, TorchSharp's Tensor.Load + Save 18 s -> 9 s
(benchmarks/README.md, bench_large_cell.py). Each process keeps its own peak until it ends,
which is why --jobs gives the large-tensor cells only as many jobs as memory carries
(harness/running/memory.py).

Verdicts do not depend on it: the allocator places bytes, it does not change them. The run's
provenance names the allocator in force. ``HARNESS_ALLOCATOR=system`` keeps glibc's.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

# Debian's libjemalloc2 (scripts/setup.sh installs it; setup-pytorch26.sh into the 2.6 root too)
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
RETAIN_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
_MARK = "HARNESS_ALLOCATOR"


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether this run should use jemalloc: it is installed and not switched off."""
    env = os.environ if env is None else env
    return env.get(_MARK, "jemalloc") != "system" and JEMALLOC.exists()


def in_force(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (this process's, by default) preloads jemalloc with retention."""
    env = os.environ if env is None else env
    return str(JEMALLOC) in env.get("LD_PRELOAD", "").split(":") and env.get("MALLOC_CONF") == RETAIN_CONF


def retaining_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus what preloads jemalloc with retention (children inherit it: the
    TorchSharp workers, the pythonnet host, the PyTorch 2.6 worker in its root)."""
    preload = [p for p in env.get("LD_PRELOAD", "").split(":") if p and p != str(JEMALLOC)]
    return {**env, "LD_PRELOAD": ":".join([str(JEMALLOC), *preload]), "MALLOC_CONF": RETAIN_CONF,
            _MARK: "jemalloc"}


def describe(env: Mapping[str, str] | None = None) -> str:
    """The allocator in force, for a run's provenance."""
    if in_force(env):
        return f"jemalloc ({JEMALLOC.name}, {RETAIN_CONF}: freed memory is reused, not returned)"
    return "system (glibc malloc)"


def reexec_with_jemalloc(argv: list[str]) -> None:
    """Start this command again under jemalloc when it is wanted and not yet in force (an
    allocator can only be chosen before the process starts). Returns only when nothing is
    to be done."""
    if in_force() or not wanted():
        return
    os.execve(sys.executable, [sys.executable, "-m", "harness", *argv], retaining_env(os.environ))
