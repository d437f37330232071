"""pytorch-float32-optimizer-scalars: where a double in ASGD's eta/mu and NAdam's mu_product ends up.

TorchSharp keeps these three as C# doubles and writes them as f64. PyTorch keeps them as 0-dim
tensors of its *default* dtype (float32 unless torch.set_default_dtype changed it), whatever the
parameters' dtype, and Optimizer.load_state_dict casts every floating state tensor (all but
'step') to the dtype of the parameter it belongs to (torch/optim/optimizer.py, ``cast`` in 1.13,
``_process_value_according_to_param_policy`` in 2.x). So a loaded double

- is rounded to float32 for float32 parameters,
- survives bit for bit for float64 parameters (although PyTorch's own state for them is float32).

Part two: ASGD recomputes eta and mu on every step as a new tensor of the default dtype and
copies it into the state (1.13 asgd.py ``new_eta = torch.tensor(...)``, 2.6 ``torch.as_tensor``),
so even with float64 parameters the eta ASGD uses from its second step is a float32 value; with
torch.set_default_dtype(torch.float64) it is the double.

    /usr/bin/python3 scripts/findings/float32_optimizer_scalars.py

Exit status: 0 REPRODUCED (float32 parameters round, float64 parameters keep the double on load,
and float64 ASGD's eta is float32-valued after a step under the float32 default dtype only),
3 FIXED (a float32 parameter keeps the double: PyTorch no longer casts to the parameter's dtype),
2 error (anything else: the mechanism described here is not what this PyTorch does).
"""
from __future__ import annotations

import struct
import sys

import torch

# A double that float32 cannot hold: what TorchSharp saved for asgd_two_groups' eta (the matrix's
# ts2py cell reports "expected 3f847ade429681ab, PyTorch 3f847ade40000000").
DOUBLE = struct.unpack(">d", bytes.fromhex("3f847ade429681ab"))[0]
FIELDS = (("ASGD", "eta"), ("ASGD", "mu"), ("NAdam", "mu_product"))


def bits(x: float) -> str:
    return struct.pack(">d", x).hex()


def is_float32_value(x: float) -> bool:
    return float(torch.tensor(x, dtype=torch.float32)) == x


def load_double(name: str, key: str, dtype: torch.dtype) -> tuple[torch.dtype, torch.dtype, float]:
    """(dtype PyTorch creates the field in, dtype after load_state_dict, value after the load)."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=dtype))
    opt = getattr(torch.optim, name)([p], lr=0.01)
    p.grad = torch.ones(3, dtype=dtype)
    opt.step()
    created = opt.state[p][key].dtype
    sd = opt.state_dict()
    sd["state"][0][key] = torch.tensor(DOUBLE, dtype=torch.float64)
    opt.load_state_dict(sd)
    got = opt.state[p][key]
    return created, got.dtype, float(got)


def asgd_eta_after_step(default: torch.dtype) -> tuple[float, float]:
    """(eta PyTorch holds after one step of a float64 ASGD, the same formula in Python floats)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        lr, lambd, alpha = 0.01, 1e-4, 0.75
        opt = torch.optim.ASGD([p], lr=lr, lambd=lambd, alpha=alpha)
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        return float(opt.state[p]["eta"]), lr / ((1 + lambd * lr * 1) ** alpha)
    finally:
        torch.set_default_dtype(old)


def main() -> int:
    print(f"# pytorch-float32-optimizer-scalars: PyTorch {torch.__version__}, Python {sys.version.split()[0]}")
    print(f"# loading the double {DOUBLE!r} (bits {bits(DOUBLE)}) into each field with load_state_dict")
    evidence, rounded32, kept64 = [], True, True
    for name, key in FIELDS:
        for dtype in (torch.float32, torch.float64):
            created, after, value = load_double(name, key, dtype)
            kept = value == DOUBLE
            evidence.append(f"{name}.{key}, {str(dtype)[6:]} parameters: created as {str(created)[6:]}, "
                            f"after load {str(after)[6:]}, bits {bits(value)} ({'kept' if kept else 'rounded'})")
            if dtype == torch.float32:
                rounded32 &= not kept and is_float32_value(value)
            else:
                kept64 &= kept and after == torch.float64
    eta32, formula = asgd_eta_after_step(torch.float32)
    eta64, _ = asgd_eta_after_step(torch.float64)
    evidence.append(f"ASGD eta after one step, float64 parameters, default dtype float32: {bits(eta32)} "
                    f"(formula in doubles {bits(formula)}); default dtype float64: {bits(eta64)}")
    step_rounds = eta32 != formula and is_float32_value(eta32) and eta64 == formula
    if not rounded32 and kept64:
        verdict, code, summary = "FIXED", 3, "float32 parameters keep a loaded double: no cast to the parameter's dtype"
    elif rounded32 and kept64 and step_rounds:
        verdict, code, summary = ("REPRODUCED", 0, "load_state_dict casts eta/mu/mu_product to the parameter's dtype "
                                  "(float32 parameters: rounded, float64: kept), and ASGD's step recomputes eta "
                                  "in the default dtype (float32)")
    else:
        verdict, code, summary = "ERROR", 2, (f"unexpected: float32 rounds {rounded32}, float64 keeps {kept64}, "
                                              f"ASGD step rounds eta {step_rounds}")
    print(f"{verdict}: {summary}")
    for line in evidence:
        print(f"  {line}")
    return code


if __name__ == "__main__":
    sys.exit(main())
