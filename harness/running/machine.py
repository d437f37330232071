"""What the machine is, as far as it picks kernels: CPU model, ISA flags, oneDNN's ISA in force.

A verdict can depend on the CPU: on an AVX-512 CPU, oneDNN (inside LibTorch and PyTorch)
takes other convolution kernels than on an AVX2-only one, and some of those are wrong
(docs/findings/bf16-avx512-conv.md). So every worker process records the machine it saw
(:func:`probe`), and expected failures can be conditioned on :func:`features` of the
processes that ran a cell ("torchsharp.onednn_avx512", "pytorch.onednn_avx512", "cpu.avx512f").

One more CPU property decides a verdict: on an AMD CPU whose CPUID leaf 0x8000001D (cache
properties) answers all zero, as this harness's VM does, oneDNN's Xbyak takes every data cache
to be 1 byte, and oneDNN's strided 1x1 backward-data convolution then divides by zero
(docs/findings/onednn-conv-backward-sigfpe.md). /proc/cpuinfo does not show that leaf, so
:func:`amd_cache_leaf_zero` executes CPUID itself; the feature is "cpu.amd_cache_leaf_zero",
and "<side>.onednn_avx2" says oneDNN's ISA in force is AVX2 or above (the crash needs it).

``ONEDNN_MAX_CPU_ISA`` caps oneDNN downward only (it never enables an ISA the CPU lacks),
so the ISA in force is the lower of the CPU's best and the cap.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# CPU flags that pick kernels (as /proc/cpuinfo spells them).
KERNEL_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq",
                "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA values), lowest first, with the CPU flags each needs.
ONEDNN_ISAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SSE41", ("sse4_2",)),
    ("AVX", ("avx",)),
    ("AVX2", ("avx2",)),
    ("AVX2_VNNI", ("avx2", "avx_vnni")),
    ("AVX512_CORE", ("avx512f", "avx512bw", "avx512vl", "avx512dq")),
    ("AVX512_CORE_VNNI", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni")),
    ("AVX512_CORE_BF16", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16")),
    ("AVX512_CORE_FP16", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16",
                          "avx512_fp16")),
    ("AVX512_CORE_AMX", ("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16",
                         "amx_tile", "amx_bf16", "amx_int8")),
)
_RANK = {name: i for i, (name, _) in enumerate(ONEDNN_ISAS)}
# Old spellings oneDNN still accepts for the cap.
_ALIASES = {"ALL": "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16": "AVX512_CORE_AMX", "DEFAULT": "AVX512_CORE_AMX"}


@dataclass(frozen=True)
class Machine:
    """One process's view: CPU model, kernel-picking flags, oneDNN cap and ISA in force."""

    cpu_model: str
    flags: frozenset[str]
    onednn_cap: str | None      # ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) as set for the process
    threads: int | None = None  # the process's intra-op threads, when it reported them
    amd_cache_leaf_zero: bool | None = None  # see amd_cache_leaf_zero(); None: not known

    @property
    def onednn_isa(self) -> str:
        """The best oneDNN ISA the CPU offers, lowered to the cap."""
        best = "none"
        for name, needs in ONEDNN_ISAS:
            if all(f in self.flags for f in needs):
                best = name
        if self.onednn_cap:
            cap = _ALIASES.get(self.onednn_cap.upper(), self.onednn_cap.upper())
            if cap in _RANK and (best == "none" or _RANK[cap] < _RANK[best]):
                best = cap
        return best

    @property
    def onednn_avx512(self) -> bool:
        isa = self.onednn_isa
        return isa in _RANK and _RANK[isa] >= _RANK["AVX512_CORE"]

    @property
    def onednn_avx2(self) -> bool:
        isa = self.onednn_isa
        return isa in _RANK and _RANK[isa] >= _RANK["AVX2"]

    def describe(self) -> dict[str, str]:
        """Provenance entries (plain strings, for the reports)."""
        out = {"cpu": self.cpu_model, "cpu_flags": " ".join(sorted(self.flags)) or "(none of the kernel flags)",
               "onednn_isa": self.onednn_isa + (f" (capped by ONEDNN_MAX_CPU_ISA={self.onednn_cap})"
                                                if self.onednn_cap else " (no cap)")}
        if self.threads is not None:
            out["threads"] = str(self.threads)
        if self.amd_cache_leaf_zero:
            out["cpu_cache_leaf"] = "AMD CPUID 0x8000001D all zero (oneDNN sizes every cache as 1 byte)"
        return out

    def to_json(self) -> dict[str, object]:
        """Inverse of :meth:`from_json`."""
        return {"cpu_model": self.cpu_model, "flags": sorted(self.flags), "onednn_cap": self.onednn_cap,
                "threads": self.threads, "amd_cache_leaf_zero": self.amd_cache_leaf_zero}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Machine:
        """Inverse of :meth:`to_json`."""
        flags = data.get("flags", [])
        threads = data.get("threads")
        cap = data.get("onednn_cap")
        zero = data.get("amd_cache_leaf_zero")
        return cls(str(data.get("cpu_model", "unknown")),
                   frozenset(str(f) for f in flags) if isinstance(flags, list) else frozenset(),
                   str(cap) if cap else None, int(threads) if isinstance(threads, int) else None,
                   zero if isinstance(zero, bool) else None)

    def features(self, side: str) -> set[str]:
        """Condition names for expected failures: ``cpu.<flag>``, ``cpu.amd_cache_leaf_zero``,
        ``<side>.onednn_avx512`` and ``<side>.onednn_avx2``."""
        out = {f"cpu.{f}" for f in self.flags}
        if self.amd_cache_leaf_zero:
            out.add("cpu.amd_cache_leaf_zero")
        if self.onednn_avx512:
            out.add(f"{side}.onednn_avx512")
        if self.onednn_avx2:
            out.add(f"{side}.onednn_avx2")
        return out


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, frozenset[str]]:
    """(model name, kernel-picking flags) of the first CPU; ("unknown", {}) without cpuinfo."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown", frozenset()
    model, flags = "unknown", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split()) & frozenset(KERNEL_FLAGS)
        if model != "unknown" and flags:
            break
    return model, flags


# x86-64 System V: cpuid(leaf=edi, subleaf=esi, out=rdx -> uint32[4] eax, ebx, ecx, edx)
_CPUID_CODE = bytes([
    0x53,                    # push rbx (callee-saved; cpuid writes it)
    0x49, 0x89, 0xD0,        # mov r8, rdx
    0x89, 0xF8,              # mov eax, edi
    0x89, 0xF1,              # mov ecx, esi
    0x0F, 0xA2,              # cpuid
    0x41, 0x89, 0x00,        # mov [r8], eax
    0x41, 0x89, 0x58, 0x04,  # mov [r8+4], ebx
    0x41, 0x89, 0x48, 0x08,  # mov [r8+8], ecx
    0x41, 0x89, 0x50, 0x0C,  # mov [r8+12], edx
    0x5B,                    # pop rbx
    0xC3,                    # ret
])


def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int] | None:
    """(eax, ebx, ecx, edx) of CPUID on this CPU; None off x86-64 Linux or where no
    executable page can be mapped."""
    if platform.machine() not in ("x86_64", "AMD64") or not hasattr(mmap, "PROT_EXEC"):
        return None
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except (OSError, ValueError):
        return None
    try:
        page.write(_CPUID_CODE)
        buf = ctypes.c_char.from_buffer(page)
        func = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32))(
            ctypes.addressof(buf))
        out = (ctypes.c_uint32 * 4)()
        func(leaf, subleaf, out)
        del func, buf
        return out[0], out[1], out[2], out[3]
    finally:
        page.close()


def amd_cache_leaf_zero() -> bool | None:
    """True on an AMD CPU (vendor "AuthenticAMD") whose CPUID leaf 0x8000001D, subleaf 0 (the
    L1 data cache's properties), answers all zero. oneDNN's Xbyak reads that leaf on every AMD
    CPU, without checking that the CPU announces it (topology extensions, CPUID 0x80000001 ECX
    bit 22), and computes each cache as (0+1)*(0+1)*(0+1)*(0+1) = 1 byte (xbyak_util.h,
    setCacheHierarchy). False where the leaf describes a cache or the CPU is not AMD; None
    where CPUID cannot be run here."""
    vendor = cpuid(0)
    if vendor is None:
        return None
    name = b"".join(r.to_bytes(4, "little") for r in (vendor[1], vendor[3], vendor[2]))
    if name != b"AuthenticAMD":
        return False
    return cpuid(0x8000001D, 0) == (0, 0, 0, 0)


def onednn_cap(env: Mapping[str, str]) -> str | None:
    return env.get("ONEDNN_MAX_CPU_ISA") or env.get("DNNL_MAX_CPU_ISA") or None


def probe(env: Mapping[str, str] | None = None, threads: int | None = None) -> Machine:
    """The machine as a process started with ``env`` (default: this process's) sees it."""
    model, flags = read_cpuinfo()
    return Machine(model, flags, onednn_cap(os.environ if env is None else env), threads, amd_cache_leaf_zero())
