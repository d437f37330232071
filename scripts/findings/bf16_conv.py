"""bf16-avx512-conv, PyTorch side: is a bfloat16 convolution of ones right in this PyTorch?

conv2d of an all-ones bfloat16 input with an all-ones bfloat16 weight must give C*kH*kW
everywhere (exact in bfloat16). Known upstream as pytorch/pytorch#163347: on an AVX-512 CPU
oneDNN's AVX-512 bf16 path gives wrong sums (PyTorch 2.6, LibTorch 2.10);
ONEDNN_MAX_CPU_ISA=AVX2 gives the right ones. oneDNN reads the variable once per process,
so each setting runs in a child process of this interpreter.

    /usr/bin/python3 scripts/findings/bf16_conv.py        # host PyTorch (1.13: right)
    python3 -m harness finding bf16-avx512-conv            # + TorchSharp and PyTorch 2.6

Exit status: 0 REPRODUCED (wrong by default, right with AVX2), 3 FIXED (right here),
4 NOT-APPLICABLE (CPU without AVX-512 and right), 2 error.
"""
from __future__ import annotations

import os
import subprocess
import sys

# (channels, kernel, input size): the right answer is C * k * k; (1, 2, 2) is
# pytorch/pytorch#163347's own example (right answer 4)
SHAPES = ((1, 2, 2), (16, 3, 8), (64, 3, 8), (3, 5, 8))
AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


def child() -> int:
    import torch
    for c, k, h in SHAPES:
        expected = float(c * k * k)
        try:
            x = torch.ones(1, c, h, h, dtype=torch.bfloat16)
            w = torch.ones(4, c, k, k, dtype=torch.bfloat16)
            y = torch.nn.functional.conv2d(x, w).float()
        except RuntimeError as exc:
            print(f"CONV ERROR conv2d(ones[1,{c},{h},{h}], ones[4,{c},{k},{k}]) bfloat16 raised: {str(exc).splitlines()[0]}")
            continue
        values = sorted(set(y.flatten().tolist()))
        verdict = "right" if values == [expected] else "WRONG"
        print(f"CONV {verdict} conv2d(ones[1,{c},{h},{h}], ones[4,{c},{k},{k}]) bfloat16: expected {expected:g}, "
              f"got {{{', '.join(f'{v:g}' for v in values[:6])}}}")
    return 0


def cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].split()
    except OSError:
        pass
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
    print(f"# bf16-avx512-conv: PyTorch {torch.__version__}, Python {sys.version.split()[0]}")
    flags = cpu_flags()
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    core = all(f in flags for f in AVX512_CORE)
    evidence = [f"CPU flags seen: {' '.join(avx512) if avx512 else 'no avx512*'}; avx2={'avx2' in flags}"]
    default = run_child(None)
    capped = run_child("AVX2")
    evidence += [f"default: {ln}" for ln in default] + [f"ONEDNN_MAX_CPU_ISA=AVX2: {ln}" for ln in capped]
    wrong = any(ln.startswith("WRONG") for ln in default)
    errored = any(ln.startswith("ERROR") for ln in default)
    capped_right = all(ln.startswith("right") for ln in capped)
    if errored:
        verdict, code, summary = "ERROR", 2, "the default bf16 convolution raised"
    elif not core and not wrong:
        verdict, code, summary = ("NOT-APPLICABLE", 4, "not reproducible on this CPU (no avx512f/avx512bw/avx512vl/avx512dq): "
                                  "the bf16 convolutions are right here")
    elif not wrong:
        verdict, code, summary = "FIXED", 3, f"bf16 convolutions of ones are right in PyTorch {torch.__version__} on this AVX-512 CPU"
    elif not core:
        verdict, code, summary = "ERROR", 2, "bf16 conv is wrong on a CPU WITHOUT AVX-512: a different defect"
    elif capped_right:
        verdict, code, summary = ("REPRODUCED", 0, f"PyTorch {torch.__version__} on this AVX-512 CPU: bf16 conv2d of ones gives "
                                  "wrong sums; with ONEDNN_MAX_CPU_ISA=AVX2 they are right")
    else:
        verdict, code, summary = ("REPRODUCED", 0, f"PyTorch {torch.__version__} on this AVX-512 CPU: bf16 conv2d of ones gives "
                                  "wrong sums (ONEDNN_MAX_CPU_ISA=AVX2 did not give right ones in this PyTorch)")
    print(f"{verdict}: {summary}")
    for line in evidence:
        print(f"  {line}")
    return code


if __name__ == "__main__":
    sys.exit(main())
