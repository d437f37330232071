"""f32-avx512-conv, PyTorch side: is a float32 convolution of ones right in this PyTorch?

conv2d (padding k//2) of an all-ones float32 input [N, C, 4, 4] with an all-ones weight
[4, C, k, k]: an interior output element is C*k*k, exact in float32. Measured on an AMD EPYC
VM with AVX-512 (2026-12-05), PyTorch 2.6 (oneDNN 3.7.2): where oneDNN blocks channels by 16
(its AVX-512 kernels) the sums are short when C > 16 leaves a partial block of 16; capped at
AVX2 (blocks of 8) they are short when C > 8 leaves a partial block of 8 (C = 24 is then
right); capped at SSE41 all are right. Batch 1 is right because PyTorch's conv2d does not use
oneDNN for it here. oneDNN reads ONEDNN_MAX_CPU_ISA once per process, so each setting runs in
a child process. The channels_last line is evidence only (not counted): the same convolution
with channels-last tensors.

    /usr/bin/python3 scripts/findings/f32_conv.py     # host PyTorch (1.13: right)
    python3 -m harness finding f32-avx512-conv         # + TorchSharp and PyTorch 2.6

Exit status: 0 REPRODUCED, 3 FIXED (right here), 4 NOT-APPLICABLE (no AVX-512 and right), 2 error.
"""
from __future__ import annotations

import os
import subprocess
import sys

# (batch, channels, kernel): the interior of each output is channels * kernel * kernel;
# (2, 24, 3) is googlenet's inception4b.branch3.1.conv, (2, 12, 3) leaves a partial block of 8
SHAPES = ((2, 24, 3), (2, 40, 3), (2, 12, 3), (1, 24, 3), (2, 16, 3), (2, 32, 3), (2, 24, 1))
SETTINGS = (("default", None), ("ONEDNN_MAX_CPU_ISA=AVX2", "AVX2"), ("ONEDNN_MAX_CPU_ISA=SSE41", "SSE41"))
AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


def conv_line(n: int, c: int, k: int, channels_last: bool = False) -> str:
    import torch
    x = torch.ones(n, c, 4, 4, dtype=torch.float32)
    w = torch.ones(4, c, k, k, dtype=torch.float32)
    if channels_last:
        x, w = x.to(memory_format=torch.channels_last), w.to(memory_format=torch.channels_last)
    y = torch.nn.functional.conv2d(x, w, None, 1, k // 2)
    inner = y[:, :, 1:-1, 1:-1] if k > 1 else y
    expected = float(c * k * k)
    values = sorted({float(v) for v in inner.flatten().tolist()}, key=lambda v: (v != v, v))
    verdict = "right" if values == [expected] else "WRONG"
    layout = " channels_last" if channels_last else ""
    got = ", ".join(f"{v:g}" for v in values[:6])
    shapes = f"ones[{n},{c},4,4], ones[4,{c},{k},{k}]"
    return f"{verdict} conv2d({shapes}){layout} float32 interior: expected {expected:g}, got {{{got}}}"


def child() -> int:
    for n, c, k in SHAPES:
        print("CONV " + conv_line(n, c, k))
    print("CL " + conv_line(2, 24, 3, channels_last=True))
    return 0


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return []


def run_child(isa: str | None) -> tuple[list[str], list[str]]:
    """(the CONV lines, the channels_last lines) of a child run with ONEDNN_MAX_CPU_ISA=isa."""
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    if isa is not None:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    argv = [sys.executable, os.path.abspath(__file__), "--child"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    conv = [ln[5:] for ln in lines if ln.startswith("CONV ")]
    if proc.returncode != 0 or len(conv) != len(SHAPES):
        raise RuntimeError(f"{argv} (ONEDNN_MAX_CPU_ISA={isa}) exited {proc.returncode}\n"
                           f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return conv, [ln[3:] for ln in lines if ln.startswith("CL ")]


def main() -> int:
    if "--child" in sys.argv:
        return child()
    import torch
    version = torch.__version__
    print(f"# f32-avx512-conv: PyTorch {version}, Python {sys.version.split()[0]}")
    flags = cpu_flags()
    core = all(f in flags for f in AVX512_CORE)
    avx512 = " ".join(sorted(f for f in flags if f.startswith("avx512"))) or "no avx512*"
    evidence = [f"CPU flags seen: {avx512}; avx2={'avx2' in flags}"]
    wrong: list[int] = []
    for label, isa in SETTINGS:
        conv, cl = run_child(isa)
        evidence += [f"{label}: {ln}" for ln in conv] + [f"{label}: (not counted) {ln}" for ln in cl]
        wrong.append(sum(ln.startswith("WRONG") for ln in conv))
    capped = "; ".join(f"{label}: {n} wrong" for (label, _), n in zip(SETTINGS[1:], wrong[1:]))
    if not wrong[0]:
        verdict, code = ("FIXED", 3) if core else ("NOT-APPLICABLE", 4)
        summary = (f"float32 convolutions of ones are right by default in PyTorch {version} on this "
                   f"{'AVX-512 ' if core else ''}CPU ({capped})")
        if not core:
            summary = f"no avx512f/bw/vl/dq on this CPU, and {summary}"
    else:
        where = ("on this AVX-512 CPU" if core else
                 "on this CPU WITHOUT AVX-512 (oneDNN's AVX2 path: partial blocks of 8 channels)")
        verdict, code = "REPRODUCED", 0
        summary = (f"PyTorch {version} {where}: {wrong[0]} of {len(SHAPES)} float32 conv2d of ones give wrong sums "
                   f"by default (batch >= 2, channels that leave a partial channel block); {capped}")
    print(f"{verdict}: {summary}")
    for line in evidence:
        print(f"  {line}")
    return code


if __name__ == "__main__":
    sys.exit(main())
