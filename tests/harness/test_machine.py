"""harness/running/machine.py's features: the oneDNN ISA levels and the AMD all-zero cache leaf."""
from __future__ import annotations

from harness.running.machine import Machine, amd_cache_leaf_zero, cpuid

ZEN5 = frozenset({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"})


def test_onednn_avx2_feature_follows_the_isa_in_force():
    assert {"torchsharp.onednn_avx2", "torchsharp.onednn_avx512"} <= Machine("x", ZEN5, None).features("torchsharp")
    capped = Machine("x", ZEN5, "AVX2").features("torchsharp")
    assert "torchsharp.onednn_avx2" in capped and "torchsharp.onednn_avx512" not in capped
    assert not {"pytorch.onednn_avx2", "pytorch.onednn_avx512"} & Machine("x", ZEN5, "SSE41").features("pytorch")


def test_amd_cache_leaf_zero_is_a_cpu_feature_and_survives_json():
    m = Machine("AMD EPYC", ZEN5, None, 2, True)
    assert "cpu.amd_cache_leaf_zero" in m.features("pytorch")
    assert "cpu_cache_leaf" in m.describe()
    assert Machine.from_json(m.to_json()) == m
    for unknown in (None, False):
        other = Machine("AMD EPYC", ZEN5, None, 2, unknown)
        assert "cpu.amd_cache_leaf_zero" not in other.features("pytorch")
        assert Machine.from_json(other.to_json()) == other
    # a worker that predates the field reports none: unknown, never the feature
    assert Machine.from_json({"cpu_model": "x", "flags": []}).amd_cache_leaf_zero is None


def test_cpuid_reads_this_cpu():
    regs = cpuid(0)
    if regs is None:  # not x86-64, or no executable mapping allowed
        assert amd_cache_leaf_zero() is None
        return
    vendor = b"".join(r.to_bytes(4, "little") for r in (regs[1], regs[3], regs[2])).decode("ascii", "replace")
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
        listed = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("vendor_id")), None)
    if listed is not None:
        assert vendor == listed
    assert amd_cache_leaf_zero() in (True, False)
    if vendor != "AuthenticAMD":
        assert amd_cache_leaf_zero() is False
