"""What TorchSharp must hold after loading a PyTorch optimizer's state.

The oracle is written independently of the codec (it shares no code with
``harness.codec``): it reads a live ``torch.optim`` optimizer and states, in docs/format.md's
field names, every option and every per-parameter state TorchSharp must end up with. The
TorchSharp worker reports the same structure from its own objects; the two are compared.

Parameters that never had a gradient have no PyTorch state; the oracle expects what a
fresh PyTorch state would hold for them right after its lazy initialisation (step 0,
zero buffers, Rprop's step_size = lr, Adagrad's sum = initial_accumulator_value, ASGD's
eta = lr and mu = 1, NAdam's mu_product = 1; conditional buffers present exactly when the
options make PyTorch create them: amsgrad, RMSprop momentum > 0 / centered).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from harness.verdicts.digest import TensorDigest, f64_hex
from harness.drivers.base import OptimizerDigest, Value

Group = Mapping[str, Any]
Init = Callable[[torch.Tensor, Group], Any]


def _zeros(p: torch.Tensor, g: Group) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.contiguous_format)


@dataclass(frozen=True)
class Spec:
    ts_class: str
    # (TorchSharp option name, kind "f64"|"bool", getter from the PyTorch group)
    options: tuple[tuple[str, str, Callable[[Group], Any]], ...]
    # (TorchSharp state name, kind "i64"|"f64"|"tensor"|"cond", PyTorch key, initial value
    #  for lazily created state; None for a conditional that starts absent)
    states: tuple[tuple[str, str, str, Init | None], ...]


def _opt(name: str, kind: str = "f64", key: str | None = None, index: int | None = None,
         default: Any = None) -> tuple[str, str, Callable[[Group], Any]]:
    k = key or name

    def get(g: Group) -> Any:
        v = g.get(k, default)
        return v[index] if index is not None else v
    return (name, kind, get)


_ADAM_OPTS = (_opt("beta1", key="betas", index=0), _opt("beta2", key="betas", index=1),
              _opt("eps"), _opt("weight_decay"))
_STEP = ("step", "i64", "step", lambda p, g: 0)

SPECS: dict[str, Spec] = {
    "SGD": Spec("SGD", (_opt("momentum"), _opt("dampening"), _opt("weight_decay"),
                        _opt("nesterov", "bool"), _opt("maximize", "bool", default=False)),
                (("momentum_buffer", "cond", "momentum_buffer", None),)),
    "ASGD": Spec("ASGD", (_opt("maximize", "bool", default=False), _opt("lambd"), _opt("alpha"),
                          _opt("weight_decay"), _opt("t0")),
                 (_STEP, ("eta", "f64", "eta", lambda p, g: g["lr"]), ("mu", "f64", "mu", lambda p, g: 1.0),
                  ("ax", "tensor", "ax", _zeros))),
    "Rprop": Spec("Rprop", (_opt("maximize", "bool", default=False), _opt("etaminus", key="etas", index=0),
                            _opt("etaplus", key="etas", index=1), _opt("min_step", key="step_sizes", index=0),
                            _opt("max_step", key="step_sizes", index=1)),
                  (_STEP, ("prev", "tensor", "prev", _zeros),
                   ("step_size", "tensor", "step_size", lambda p, g: torch.full_like(p, g["lr"])))),
    "RMSprop": Spec("RMSProp", (_opt("maximize", "bool", default=False), _opt("momentum"), _opt("alpha"),
                                _opt("eps"), _opt("weight_decay"), _opt("centered", "bool")),
                    (_STEP, ("square_avg", "tensor", "square_avg", _zeros),
                     ("momentum_buffer", "cond", "momentum_buffer",
                      lambda p, g: _zeros(p, g) if g["momentum"] > 0 else None),
                     ("grad_avg", "cond", "grad_avg", lambda p, g: _zeros(p, g) if g["centered"] else None))),
    "Adam": Spec("Adam", (*_ADAM_OPTS, _opt("amsgrad", "bool"), _opt("maximize", "bool", default=False)),
                 (_STEP, ("exp_avg", "tensor", "exp_avg", _zeros), ("exp_avg_sq", "tensor", "exp_avg_sq", _zeros),
                  ("max_exp_avg_sq", "cond", "max_exp_avg_sq", lambda p, g: _zeros(p, g) if g["amsgrad"] else None))),
    "NAdam": Spec("NAdam", (*_ADAM_OPTS, _opt("momentum_decay")),
                  (_STEP, ("mu_product", "f64", "mu_product", lambda p, g: 1.0),
                   ("exp_avg", "tensor", "exp_avg", _zeros), ("exp_avg_sq", "tensor", "exp_avg_sq", _zeros))),
    "RAdam": Spec("RAdam", _ADAM_OPTS,
                  (_STEP, ("exp_avg", "tensor", "exp_avg", _zeros), ("exp_avg_sq", "tensor", "exp_avg_sq", _zeros))),
    "Adamax": Spec("Adamax", _ADAM_OPTS,
                   (_STEP, ("exp_avg", "tensor", "exp_avg", _zeros), ("exp_inf", "tensor", "exp_inf", _zeros))),
    "Adadelta": Spec("Adadelta", (_opt("rho"), _opt("eps"), _opt("weight_decay"),
                                  _opt("maximize", "bool", default=False)),
                     (_STEP, ("square_avg", "tensor", "square_avg", _zeros),
                      ("acc_delta", "tensor", "acc_delta", _zeros))),
    "Adagrad": Spec("Adagrad", (_opt("lr_decay"), _opt("initial_accumulator_value"), _opt("eps"), _opt("weight_decay")),
                    (_STEP, ("sum", "tensor", "sum",
                             lambda p, g: torch.full_like(p, g["initial_accumulator_value"])),)),
}
SPECS["AdamW"] = Spec("AdamW", SPECS["Adam"].options, SPECS["Adam"].states)


def _scalar(v: Any) -> float:
    return float(v.item()) if isinstance(v, torch.Tensor) else float(v)


def _encode(kind: str, v: Any) -> Value:
    if kind == "f64":
        return f64_hex(_scalar(v))
    if kind == "bool":
        return bool(v)
    if kind == "i64":
        return int(_scalar(v))
    if v is None:
        return None
    return TensorDigest.of(v)


def expected_digest(optimizer: torch.optim.Optimizer) -> OptimizerDigest:
    """The optimizer digest TorchSharp must report after loading ``optimizer``'s state."""
    name = type(optimizer).__name__
    if name not in SPECS:
        raise KeyError(f"no oracle for optimizer {name!r}")
    spec = SPECS[name]
    groups: list[dict[str, Value]] = []
    states: list[dict[str, Value]] = []
    for g in optimizer.param_groups:
        entry: dict[str, Value] = {"initial_lr": f64_hex(g.get("initial_lr", g["lr"])), "lr": f64_hex(g["lr"])}
        for opt_name, kind, get in spec.options:
            entry[opt_name] = _encode(kind, get(g))
        groups.append(entry)
        for p in g["params"]:
            st = optimizer.state.get(p)
            s: dict[str, Value] = {}
            for st_name, kind, key, init in spec.states:
                if st:
                    raw = st.get(key)
                else:
                    raw = init(p.detach(), g) if init else None
                s[st_name] = _encode(kind, raw)
            states.append(s)
    return OptimizerDigest(spec.ts_class, groups, states)
