"""onednn-conv-backward-sigfpe, PyTorch side: does a strided 1x1 convolution's backward kill
this PyTorch with SIGFPE?

x = randn[2, 512, 8, 8] (requires_grad), w = randn[1024, 512, 1, 1], conv2d stride 2,
.sum().backward(): ResNet50's first downsampling shortcut of its last stage. On an AMD CPU
whose CPUID leaf 0x8000001D answers all zero (this harness's VM) oneDNN 3.7 takes every
cache to be 1 byte and its strided backward-data convolution divides by zero while choosing
its blocking (docs/findings/onednn-conv-backward-sigfpe.md). A crash takes the process down,
so each convolution runs in a child process of this interpreter: the crashing shape with
oneDNN's default ISA, the same with ONEDNN_MAX_CPU_ISA=SSE41 (no brgemm kernels) and, as a
control, 512 -> 768 channels (not one of the channel pairs the faulty line special-cases).

    /usr/bin/python3 scripts/findings/conv_backward_sigfpe.py   # host PyTorch (1.13: no crash)
    python3 -m harness finding onednn-conv-backward-sigfpe       # + TorchSharp and PyTorch 2.6

Exit status: 0 REPRODUCED (SIGFPE by default), 3 FIXED (no crash on a CPU with the zero
cache leaf), 4 NOT-APPLICABLE (CPU without that leaf or AVX2, and no crash), 2 error.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from harness.running.machine import amd_cache_leaf_zero, read_cpuinfo  # noqa: E402

CRASHING = (512, 1024)   # (in, out) channels: crashes here
CONTROL = (512, 768)     # not one of the special-cased channel pairs: trains here


def child(ic: int, oc: int) -> int:
    import torch
    torch.manual_seed(0)
    x = torch.randn(2, ic, 8, 8, requires_grad=True)
    w = torch.randn(oc, ic, 1, 1)
    torch.nn.functional.conv2d(x, w, stride=2).sum().backward()
    assert x.grad is not None
    print(f"BACKWARD ok, grad shape {list(x.grad.shape)}")
    return 0


def run_child(ic: int, oc: int, isa: str | None) -> tuple[bool, str]:
    """(crashed with SIGFPE, what happened) for one child process."""
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")}
    if isa is not None:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    argv = [sys.executable, os.path.abspath(__file__), "--child", str(ic), str(oc)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    label = (f"conv2d(randn[2,{ic},8,8], randn[{oc},{ic},1,1], stride=2).sum().backward() "
             f"with ONEDNN_MAX_CPU_ISA={isa or '(unset)'}")
    if proc.returncode == -signal.SIGFPE:
        return True, f"{label}: killed by SIGFPE (exit {proc.returncode})"
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} (ONEDNN_MAX_CPU_ISA={isa}) exited {proc.returncode}\n"
                           f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    ok = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BACKWARD ")), "no output")
    return False, f"{label}: {ok[9:]}"


def main() -> int:
    if "--child" in sys.argv:
        i = sys.argv.index("--child")
        return child(int(sys.argv[i + 1]), int(sys.argv[i + 2]))
    import torch
    print(f"# onednn-conv-backward-sigfpe: PyTorch {torch.__version__}, Python {sys.version.split()[0]}")
    model, flags = read_cpuinfo()
    zero = amd_cache_leaf_zero()
    evidence = [f"CPU: {model}; avx2={'avx2' in flags}; AMD CPUID leaf 0x8000001D all zero: "
                f"{'unknown' if zero is None else zero}"]
    crashed, line = run_child(*CRASHING, None)
    evidence.append(f"default: {line}")
    control_crashed, control = run_child(*CONTROL, None)
    evidence.append(f"control: {control}")
    sse_crashed, sse = run_child(*CRASHING, "SSE41")
    evidence.append(f"capped: {sse}")
    applicable = bool(zero) and "avx2" in flags
    if crashed and not applicable:
        verdict, code, summary = ("ERROR", 2, "SIGFPE on a CPU whose cache leaf is described (or without AVX2): "
                                  "not the cause the report names")
    elif crashed:
        verdict, code, summary = ("REPRODUCED", 0, f"PyTorch {torch.__version__} is killed by SIGFPE in a strided 1x1 "
                                  "convolution's backward on this AMD CPU with an all-zero cache leaf"
                                  + ("; with ONEDNN_MAX_CPU_ISA=SSE41 it runs" if not sse_crashed else
                                     " (ONEDNN_MAX_CPU_ISA=SSE41 crashes too)"))
    elif applicable:
        verdict, code, summary = ("FIXED", 3, f"no crash in PyTorch {torch.__version__} on this AMD CPU with an "
                                  "all-zero cache leaf")
    else:
        verdict, code, summary = ("NOT-APPLICABLE", 4, "not reproducible on this CPU (it describes its caches in "
                                  "CPUID leaf 0x8000001D, is not AMD, or lacks AVX2): the backward runs here")
    if control_crashed and code != 2:
        verdict, code, summary = "ERROR", 2, "the control shape (512 -> 768 channels) crashed too: another defect"
    print(f"{verdict}: {summary}")
    for line in evidence:
        print(f"  {line}")
    return code


if __name__ == "__main__":
    sys.exit(main())
