"""nadam-pytorch113-mu-product: PyTorch 1.13's single-tensor NAdam multiplies mu in twice.

NAdam's step divides the momentum term by 1 - prod_{i<=t+1} mu_i. PyTorch 1.13's
_single_tensor_nadam (the default: foreach=None means False in 1.13) computes that product as
`mu_product * mu * mu_next` AFTER `mu_product *= mu` already took mu in, i.e. mu_t twice;
its own _multi_tensor_nadam (foreach=True) uses `mu_product * mu_next`. Fixed upstream by
pytorch/pytorch#92699 (PyTorch 2.0); TorchSharp's NAdam follows the fixed formula.

The script steps a float64 parameter with both implementations and with the algorithm
written out in plain floats (the update of PyTorch's NAdam documentation), and compares
the updates step by step.

    /usr/bin/python3 scripts/findings/nadam_mu_product.py

Exit status: 0 REPRODUCED (the default path differs from the algorithm, foreach agrees),
3 FIXED (both agree), 2 error.
"""
from __future__ import annotations

import math
import sys

import torch

LR, BETA1, BETA2, EPS, MOMENTUM_DECAY, STEPS = 0.01, 0.9, 0.999, 1e-8, 4e-3, 4
START = [1.0, -0.5, 0.25]


def grad_at(t: int) -> list[float]:
    return [(0.3 - 0.2 * i) * (1 + 0.1 * t) for i in range(len(START))]


def torch_updates(foreach: bool) -> list[list[float]]:
    p = torch.nn.Parameter(torch.tensor(START, dtype=torch.float64))
    opt = torch.optim.NAdam([p], lr=LR, betas=(BETA1, BETA2), eps=EPS, momentum_decay=MOMENTUM_DECAY, foreach=foreach)
    out = []
    for t in range(1, STEPS + 1):
        before = p.detach().clone()
        p.grad = torch.tensor(grad_at(t), dtype=torch.float64)
        opt.step()
        out.append((before - p.detach()).tolist())
    return out


def reference_updates() -> list[list[float]]:
    m = [0.0] * len(START)
    v = [0.0] * len(START)
    mu_product = 1.0
    out = []
    for t in range(1, STEPS + 1):
        g = grad_at(t)
        mu = BETA1 * (1 - 0.5 * 0.96 ** (t * MOMENTUM_DECAY))
        mu_next = BETA1 * (1 - 0.5 * 0.96 ** ((t + 1) * MOMENTUM_DECAY))
        mu_product *= mu                      # prod_{i<=t} mu_i
        mu_product_next = mu_product * mu_next  # prod_{i<=t+1} mu_i
        upd = []
        for i in range(len(START)):
            m[i] = BETA1 * m[i] + (1 - BETA1) * g[i]
            v[i] = BETA2 * v[i] + (1 - BETA2) * g[i] * g[i]
            denom = math.sqrt(v[i] / (1 - BETA2 ** t)) + EPS
            upd.append(LR * (1 - mu) / (1 - mu_product) * g[i] / denom
                       + LR * mu_next / (1 - mu_product_next) * m[i] / denom)
        out.append(upd)
    return out


def close(a: list[float], b: list[float]) -> bool:
    # PyTorch 1.13 keeps mu_product as a float32 tensor: agreement to float32 precision
    return all(abs(x - y) <= 1e-6 * abs(y) for x, y in zip(a, b))


def main() -> int:
    print(f"# nadam-pytorch113-mu-product: PyTorch {torch.__version__}, Python {sys.version.split()[0]}")
    ref = reference_updates()
    single = torch_updates(foreach=False)
    multi = torch_updates(foreach=True)
    evidence = []
    for t in range(STEPS):
        evidence.append(f"step {t + 1}: algorithm {ref[t][0]:.9e}  foreach=False {single[t][0]:.9e} "
                        f"(ratio {single[t][0] / ref[t][0]:.6f})  foreach=True {multi[t][0]:.9e} "
                        f"(ratio {multi[t][0] / ref[t][0]:.6f})")
    single_ok = all(close(a, b) for a, b in zip(single, ref))
    multi_ok = all(close(a, b) for a, b in zip(multi, ref))
    if single_ok and multi_ok:
        verdict, code, summary = "FIXED", 3, f"PyTorch {torch.__version__}'s NAdam updates equal the algorithm on both paths"
    elif multi_ok:
        verdict, code, summary = ("REPRODUCED", 0, f"PyTorch {torch.__version__}'s default (single-tensor) NAdam update differs "
                                  "from the algorithm and from its own foreach=True path, which agrees")
    else:
        verdict, code, summary = "ERROR", 2, "the foreach path disagrees with the algorithm too: the reference is wrong"
    print(f"{verdict}: {summary}")
    for line in evidence:
        print(f"  {line}")
    return code


if __name__ == "__main__":
    sys.exit(main())
