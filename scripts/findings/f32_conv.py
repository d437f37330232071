"""f32-avx512-conv, PyTorch side: is a float32 convolution of ones right in this PyTorch?

conv2d (padding 1) of an all-ones float32 input [N, C, 4, 4] with an all-ones weight
[4, C, 3, 3]: an interior output element is C*9, exact in float32. Measured on an AMD EPYC
VM with AVX-512 (2026-12-05): PyTorch 2.6's oneDNN gives wrong interior sums (off by
multiples of 8, or NaN) when the batch is 2 or more and C is above 16 and not a multiple of
16; batch 1, C = 16 or 32 and 1x1 kernels are right; ONEDNN_MAX_CPU_ISA=AVX2 makes all of
them right. oneDNN reads the variable once per process, so each setting runs in a child.

    /usr/bin/python3 scripts/findings/f32_conv.py     # host PyTorch (1.13: right)
    python3 -m harness finding f32-avx512-conv         # + TorchSharp and PyTorch 2.6

Exit status: 0 REPRODUCED, 3 FIXED (right here), 4 NOT-APPLICABLE (no AVX-512 and right), 2 error.
"""
from __future__ import annotations

import os
import subprocess
import sys

# (batch, channels, kernel): the interior of each output is channels * kernel * kernel
SHAPES = ((2, 24, 3), (2, 40, 3), (1, 24, 3), (2, 16, 3), (2, 32, 3), (2, 24, 1))
AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


def child() -> int:
    import torch
    for n, c, k in SHAPES:
        x = torch.ones(n, c, 4, 4, dtype=torch.float32)
        w = torch.ones(4, c, k, k, dtype=torch.float32)
        y = torch.nn.functional.conv2d(x, w, None, 1, k // 2)
        inner = y[:, :, 1:-1, 1:-1] if k > 1 else y
        expected = float(c * k * k)
        values = sorted({float(v) for v in inner.flatten().tolist()}, key=lambda v: (v != v, v))
        verdict = "right" if values == [expected] else "WRONG"
        print(f"CONV {verdict} conv2d(ones[{n},{c},4,4], ones[4,{c},{k},{k}]) float32 interior: expected {expected:g}, "
              f"got {{{', '.join(f'{v:g}' for v in values[:6])}}}")
    return 0


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return []


def run_child(isa: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    if isa is not None:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    argv = [sys.executable, os.path.abspath(__file__), "--child"]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} (ONEDNN_MAX_CPU_ISA={isa}) exited {proc.returncode}\n"
                           f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return [ln[5:] for ln in proc.stdout.splitlines() if ln.startswith("CONV ")]


def main() -> int:
    if "--child" in sys.argv:
        return child()
    import torch
    print(f"# f32-avx512-conv: PyTorch {torch.__version__}, Python {sys.version.split()[0]}")
    flags = cpu_flags()
    core = all(f in flags for f in AVX512_CORE)
    evidence = [f"CPU flags seen: {' '.join(sorted(f for f in flags if f.startswith('avx512'))) or 'no avx512*'}"]
    default, capped = run_child(None), run_child("AVX2")
    evidence += [f"default: {ln}" for ln in default] + [f"ONEDNN_MAX_CPU_ISA=AVX2: {ln}" for ln in capped]
    wrong = [ln for ln in default if ln.startswith("WRONG")]
    version = torch.__version__
    if not wrong and core:
        verdict, code, summary = "FIXED", 3, f"float32 convolutions of ones are right in PyTorch {version} on this CPU"
    elif not wrong:
        verdict, code, summary = "NOT-APPLICABLE", 4, "no avx512f/bw/vl/dq on this CPU, and the convolutions are right"
    elif not core:
        verdict, code, summary = "ERROR", 2, "float32 conv is wrong on a CPU WITHOUT AVX-512: a different defect"
    else:
        note = "; with ONEDNN_MAX_CPU_ISA=AVX2 all are right" if all(ln.startswith("right") for ln in capped) else ""
        verdict, code, summary = ("REPRODUCED", 0, f"PyTorch {version} on this AVX-512 CPU: {len(wrong)} of "
                                  f"{len(default)} float32 conv2d of ones give wrong sums (batch >= 2, channels above "
                                  f"16 and not a multiple of 16, 3x3){note}")
    print(f"{verdict}: {summary}")
    for line in evidence:
        print(f"  {line}")
    return code


if __name__ == "__main__":
    sys.exit(main())
