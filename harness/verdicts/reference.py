"""The float64 reference: what the numbers should be, independent of both sides.

Two implementations agreeing does not make them right (PyTorch 2.6 and LibTorch 2.10 share a
wrong bfloat16 convolution on AVX-512 CPUs), and disagreeing does not say which one is wrong.
So every check that compares computed numbers also computes them here, in float64, from the
same state and inputs, and reports each side's distance from this reference:

* :func:`forward` runs the case's model (the host's PyTorch, every floating tensor and the
  input in float64; float64 kernels do not go through oneDNN) in eval mode;
* :func:`optimizer_steps` takes optimizer steps written out here from the algorithms PyTorch
  documents (torch.optim, 2.x, single-tensor form), on float64 copies of the state. It is
  deliberately NOT PyTorch's implementation: PyTorch 1.13's NAdam is one of the things it
  must be able to call wrong (it multiplies ``mu`` into ``mu_product`` twice; fixed by
  pytorch/pytorch#92699).

State uses the .dat format's field names (docs/format.md; :mod:`harness.codec.optim`).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from harness.cases import torch_build
from harness.cases import ModelCase

Tensor = torch.Tensor
State = dict[str, Any]
Group = Mapping[str, Any]


def _f64(v: Any) -> Any:
    if isinstance(v, Tensor):
        return v.detach().to(torch.float64, copy=True) if v.is_floating_point() else v.detach().clone()
    return v


# --- forward passes ----------------------------------------------------------------------
# The model zoo's float64 model, kept for the next call with the same case: a torchvision
# model is built with its own random init and widened, seconds of newly touched memory for
# vgg's 132 million parameters (benchmarks/README.md), while loading a state into the kept one
# copies in place. A torchvision model's state dict holds every parameter and buffer it has,
# so a strict load leaves nothing of the previous cell's state behind. Catalogue models are
# small and built afresh each time.
_KEPT: dict[str, Any] = {}


def float64_model(case: ModelCase, state: Mapping[str, Tensor]) -> torch.nn.Module:
    """The case's model in float64 holding ``state`` (floating tensors widened, others as they are)."""
    zoo = case.model.get("type") == "TorchVision"
    key = json.dumps([case.name, case.model], sort_keys=True)
    model = _KEPT.get("model") if zoo and _KEPT.get("key") == key else None
    if model is None:
        _KEPT.clear()  # frees the last one first, so its memory is reused
        model = torch_build.build_case_model(case, "cpu").to(torch.float64)
        if zoo:
            _KEPT.update(key=key, model=model)
    model.load_state_dict(dict(state))  # copy_ widens in place (no widened copy of the state)
    return model


def forward(case: ModelCase, state: Mapping[str, Tensor], x: Tensor) -> Tensor:
    """The case's model holding ``state`` (every floating tensor widened to float64), run on
    ``x`` (widened too when floating) in eval mode, on the host's CPU."""
    model = float64_model(case, state)
    model.eval()
    with torch.no_grad():
        out: Tensor = model(_f64(x))
    return out


# --- optimizer steps ---------------------------------------------------------------------
def _decay(p: Tensor, g: Tensor, group: Group) -> Tensor:
    wd = float(group.get("weight_decay", 0.0))
    return g + wd * p if wd else g


def _signed(g: Tensor, group: Group) -> Tensor:
    return -g if group.get("maximize") else g


def _sgd(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g = _decay(p, _signed(g, group), group)
    momentum = float(group["momentum"])
    if momentum:
        buf = s.get("momentum_buffer")
        buf = g.clone() if buf is None else buf * momentum + (1 - float(group["dampening"])) * g
        s["momentum_buffer"] = buf
        g = g + momentum * buf if group["nesterov"] else buf
    return p - float(group["lr"]) * g


def _asgd(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g = _decay(p, _signed(g, group), group)
    s["step"] += 1
    eta, lr, lambd = float(s["eta"]), float(group["lr"]), float(group["lambd"])
    p = p * (1 - lambd * eta) - eta * g
    s["ax"] = p.clone() if float(s["mu"]) == 1 else s["ax"] + (p - s["ax"]) * float(s["mu"])
    s["eta"] = lr / ((1 + lambd * lr * s["step"]) ** float(group["alpha"]))
    s["mu"] = 1 / max(1, s["step"] - float(group["t0"]))
    return p


def _rprop(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g = _signed(g, group)
    s["step"] += 1
    sign = torch.sign(g * s["prev"])
    factor = torch.where(sign > 0, float(group["etaplus"]), torch.where(sign < 0, float(group["etaminus"]), 1.0))
    s["step_size"] = (s["step_size"] * factor).clamp(float(group["min_step"]), float(group["max_step"]))
    g = torch.where(sign < 0, torch.zeros_like(g), g)
    s["prev"] = g.clone()
    return p - torch.sign(g) * s["step_size"]


def _rmsprop(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g = _decay(p, _signed(g, group), group)
    s["step"] += 1
    alpha = float(group["alpha"])
    s["square_avg"] = s["square_avg"] * alpha + (1 - alpha) * g * g
    if group["centered"]:
        s["grad_avg"] = s["grad_avg"] + (g - s["grad_avg"]) * (1 - alpha)
        avg = (s["square_avg"] - s["grad_avg"] * s["grad_avg"]).sqrt() + float(group["eps"])
    else:
        avg = s["square_avg"].sqrt() + float(group["eps"])
    if float(group["momentum"]) > 0:
        s["momentum_buffer"] = s["momentum_buffer"] * float(group["momentum"]) + g / avg
        return p - float(group["lr"]) * s["momentum_buffer"]
    return p - float(group["lr"]) * g / avg


def _moments(g: Tensor, s: State, group: Group) -> tuple[float, float]:
    b1, b2 = float(group["beta1"]), float(group["beta2"])
    s["exp_avg"] = s["exp_avg"] + (g - s["exp_avg"]) * (1 - b1)
    s["exp_avg_sq"] = s["exp_avg_sq"] * b2 + (1 - b2) * g * g
    return b1, b2


def _adam(p: Tensor, g: Tensor, s: State, group: Group, decoupled: bool = False) -> Tensor:
    g, lr = _signed(g, group), float(group["lr"])
    if decoupled:
        p = p * (1 - lr * float(group["weight_decay"]))
    else:
        g = _decay(p, g, group)
    s["step"] += 1
    b1, b2 = _moments(g, s, group)
    bc1, bc2 = 1 - b1 ** s["step"], 1 - b2 ** s["step"]
    second = s["exp_avg_sq"]
    if group["amsgrad"]:
        s["max_exp_avg_sq"] = torch.maximum(s["max_exp_avg_sq"], s["exp_avg_sq"])
        second = s["max_exp_avg_sq"]
    denom = second.sqrt() / math.sqrt(bc2) + float(group["eps"])
    return p - (lr / bc1) * s["exp_avg"] / denom


def _adamw(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    return _adam(p, g, s, group, decoupled=True)


def _nadam(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g, lr = _decay(p, g, group), float(group["lr"])
    s["step"] += 1
    step, decay = s["step"], float(group["momentum_decay"])
    b1, b2 = _moments(g, s, group)
    mu = b1 * (1 - 0.5 * 0.96 ** (step * decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((step + 1) * decay))
    s["mu_product"] = float(s["mu_product"]) * mu
    denom = (s["exp_avg_sq"] / (1 - b2 ** step)).sqrt() + float(group["eps"])
    p = p - lr * (1 - mu) / (1 - s["mu_product"]) * g / denom
    return p - lr * mu_next / (1 - s["mu_product"] * mu_next) * s["exp_avg"] / denom


def _radam(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g, lr = _decay(p, g, group), float(group["lr"])
    s["step"] += 1
    step = s["step"]
    b1, b2 = _moments(g, s, group)
    bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
    corrected = s["exp_avg"] / bc1
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * step * b2 ** step / bc2
    if rho_t <= 5:
        return p - lr * corrected
    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    adaptive = math.sqrt(bc2) / (s["exp_avg_sq"].sqrt() + float(group["eps"]))
    return p - lr * corrected * adaptive * rect


def _adamax(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g = _decay(p, _signed(g, group), group)
    s["step"] += 1
    b1, b2 = float(group["beta1"]), float(group["beta2"])
    s["exp_avg"] = s["exp_avg"] + (g - s["exp_avg"]) * (1 - b1)
    s["exp_inf"] = torch.maximum(s["exp_inf"] * b2, g.abs() + float(group["eps"]))
    return p - float(group["lr"]) / (1 - b1 ** s["step"]) * s["exp_avg"] / s["exp_inf"]


def _adadelta(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g = _decay(p, _signed(g, group), group)
    s["step"] += 1
    rho, eps = float(group["rho"]), float(group["eps"])
    s["square_avg"] = s["square_avg"] * rho + (1 - rho) * g * g
    delta = (s["acc_delta"] + eps).sqrt() / (s["square_avg"] + eps).sqrt() * g
    s["acc_delta"] = s["acc_delta"] * rho + (1 - rho) * delta * delta
    return p - float(group["lr"]) * delta


def _adagrad(p: Tensor, g: Tensor, s: State, group: Group) -> Tensor:
    g = _decay(p, _signed(g, group), group)
    s["step"] += 1
    clr = float(group["lr"]) / (1 + (s["step"] - 1) * float(group["lr_decay"]))
    s["sum"] = s["sum"] + g * g
    return p - clr * g / (s["sum"].sqrt() + float(group["eps"]))


Update = Callable[[Tensor, Tensor, State, Group], Tensor]
# By PyTorch's class name (the case's optimizer type).
UPDATES: dict[str, Update] = {
    "SGD": _sgd, "ASGD": _asgd, "Rprop": _rprop, "RMSprop": _rmsprop, "Adam": _adam, "AdamW": _adamw,
    "NAdam": _nadam, "RAdam": _radam, "Adamax": _adamax, "Adadelta": _adadelta, "Adagrad": _adagrad,
}


@dataclass
class OptimizerState:
    """Parameters by name and the optimizer's groups and per-parameter states (format names),
    parameters in state order (``order[j]`` owns ``states[j]``)."""

    params: dict[str, Tensor]
    groups: list[dict[str, Any]]
    states: list[State]
    order: list[str]
    group_of: list[int] = field(default_factory=list)


def start_state(module: Mapping[str, Tensor], record: Any, group_params: Sequence[Sequence[str]]) -> OptimizerState:
    """Float64 copies of a module state and an optimizer record (harness.codec.optim's
    ``OptimizerRecord``), with ``group_params`` naming each group's parameters in order."""
    order = [n for names in group_params for n in names]
    group_of = [i for i, names in enumerate(group_params) for _ in names]
    if len(order) != len(record.states):
        raise ValueError(f"the record holds {len(record.states)} parameter states, the case names {len(order)} "
                         "parameters")
    return OptimizerState({n: _f64(module[n]) for n in order}, [dict(g) for g in record.groups],
                          [{k: _f64(v) for k, v in s.items()} for s in record.states], order, group_of)


def optimizer_steps(optimizer_type: str, state: OptimizerState, grads: Sequence[Mapping[str, Tensor]]) -> None:
    """Take one step per entry of ``grads`` (name -> gradient; every parameter gets one),
    in place, in float64."""
    update = UPDATES.get(optimizer_type)
    if update is None:
        raise KeyError(f"no reference update for optimizer {optimizer_type!r} (known: {sorted(UPDATES)})")
    for step_grads in grads:
        for j, name in enumerate(state.order):
            g = step_grads[name].detach().to(torch.float64)
            state.params[name] = update(state.params[name], g, state.states[j], state.groups[state.group_of[j]])
