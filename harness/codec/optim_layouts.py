"""The optimizer table: one :class:`Layout` row per optimizer TorchSharp can save.

Each row gives the TorchSharp and PyTorch class names, the option fields of a param group
and the state fields of a parameter in file order (kind ``f64``/``bool``/``i64``/``tensor``/
``cond``), how each option maps to PyTorch's param-group keys, which PyTorch group keys
without a TorchSharp field are accepted at which values, and what a lazily created (absent)
PyTorch state starts as (docs/format.md). harness/codec/optim.py reads and writes records
with it; harness/codec/optim_torch.py converts them to and from PyTorch.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from harness.codec.errors import UnsupportedOptimizerError

Value = float | bool | int | torch.Tensor | None
ParamSpec = tuple[tuple[int, ...], torch.dtype]          # shape, dtype of a parameter
Init = Callable[[ParamSpec, Mapping[str, Value]], Value]  # (param, record group) -> initial value


@dataclass(eq=False)
class OptimizerRecord:
    """An optimizer file's content in docs/format.md's names.

    ``class_name``: TorchSharp's exact class name ("SGD", ..., "RMSProp", ...).
    ``groups[i]``: ``initial_lr``, ``lr``, then the class's options in file order.
    ``states[j]``: one dict per parameter in group order, docs/format.md's field names in file
    order (``step`` an int, f64 fields floats, conditional tensors ``None`` when absent).
    ``param_counts``: parameters per group when known (from PyTorch); the file stores only
    the total, so a record read from a file has ``None``.
    """

    class_name: str
    groups: list[dict[str, Value]]
    states: list[dict[str, Value]]
    param_counts: list[int] | None = None


@dataclass(frozen=True)
class Opt:
    name: str            # TorchSharp / docs/format.md name
    kind: str            # "f64" | "bool"
    torch_key: str       # PyTorch param-group key
    index: int | None = None   # element of a tuple-valued key (betas, etas, step_sizes)
    default: Any = None  # TorchSharp's value when the PyTorch group lacks the key (None: required)


@dataclass(frozen=True)
class St:
    name: str            # docs/format.md state field name (also PyTorch's state key)
    kind: str            # "i64" | "f64" | "tensor" | "cond"
    init: Init           # value of a lazily created state (None for a cond: absent)


@dataclass(frozen=True)
class Layout:
    ts_name: str
    torch_name: str
    options: tuple[Opt, ...]
    states: tuple[St, ...]
    # PyTorch group keys with no TorchSharp field: the values that keep TorchSharp's math.
    # A key mapped to None accepts any value (bookkeeping or an implementation choice).
    extra_ok: Mapping[str, tuple[Any, ...] | None] = field(default_factory=dict)
    # Options PyTorch's optimizer is probed with so that every state field appears.
    probe: Mapping[str, Any] = field(default_factory=dict)

    @property
    def min_group_bytes(self) -> int:
        return 16 + sum(8 if o.kind == "f64" else 1 for o in self.options)

    @property
    def min_state_bytes(self) -> int:
        return sum({"i64": 8, "f64": 8, "tensor": 2, "cond": 1}[s.kind] for s in self.states)


def _zeros(p: ParamSpec, g: Mapping[str, Value]) -> torch.Tensor:
    return torch.zeros(p[0], dtype=p[1])


def _full(option: str) -> Init:
    def init(p: ParamSpec, g: Mapping[str, Value]) -> torch.Tensor:
        v = float(g[option])  # type: ignore[arg-type]
        fill: complex | float = complex(v, v) if p[1].is_complex and option != "lr" else v
        return torch.full(p[0], fill, dtype=p[1])  # type: ignore[arg-type]
    return init


def _when(flag: Callable[[Mapping[str, Value]], bool]) -> Init:
    return lambda p, g: _zeros(p, g) if flag(g) else None


def _const(v: Value) -> Init:
    return lambda p, g: v


_ABSENT = _const(None)
_STEP = St("step", "i64", _const(0))
_ADAM = (Opt("beta1", "f64", "betas", 0), Opt("beta2", "f64", "betas", 1), Opt("eps", "f64", "eps"),
         Opt("weight_decay", "f64", "weight_decay"))
_ADAM_STATES = (_STEP, St("exp_avg", "tensor", _zeros), St("exp_avg_sq", "tensor", _zeros),
                St("max_exp_avg_sq", "cond", _when(lambda g: bool(g["amsgrad"]))))
# Bookkeeping and implementation selectors: any value keeps the math (README.md).
_ANY = {"foreach": None, "param_names": None}
# Modes TorchSharp has no field for: accepted only at their neutral value.
_OFF = {"fused": (None, False), "capturable": (False,), "differentiable": (False,)}
_NO_MAX = {"maximize": (False,)}
_NO_DECOUPLED = {"decoupled_weight_decay": (False,)}
_MAXIMIZE = Opt("maximize", "bool", "maximize", default=False)

LAYOUTS: tuple[Layout, ...] = (
    Layout("SGD", "SGD",
           (Opt("momentum", "f64", "momentum", default=0.0), Opt("dampening", "f64", "dampening", default=0.0),
            Opt("weight_decay", "f64", "weight_decay", default=0.0), Opt("nesterov", "bool", "nesterov", default=False),
            _MAXIMIZE),
           (St("momentum_buffer", "cond", _ABSENT),), {**_ANY, **_OFF}, {"momentum": 0.9}),
    Layout("ASGD", "ASGD",
           (_MAXIMIZE, Opt("lambd", "f64", "lambd"), Opt("alpha", "f64", "alpha"),
            Opt("weight_decay", "f64", "weight_decay"), Opt("t0", "f64", "t0")),
           (_STEP, St("eta", "f64", lambda p, g: float(g["lr"])),  # type: ignore[arg-type]
            St("mu", "f64", _const(1.0)), St("ax", "tensor", _zeros)), {**_ANY, **_OFF}),
    Layout("Rprop", "Rprop",
           (_MAXIMIZE, Opt("etaminus", "f64", "etas", 0), Opt("etaplus", "f64", "etas", 1),
            Opt("min_step", "f64", "step_sizes", 0), Opt("max_step", "f64", "step_sizes", 1)),
           (_STEP, St("prev", "tensor", _zeros), St("step_size", "tensor", _full("lr"))), {**_ANY, **_OFF}),
    Layout("RMSProp", "RMSprop",
           (_MAXIMIZE, Opt("momentum", "f64", "momentum"), Opt("alpha", "f64", "alpha"), Opt("eps", "f64", "eps"),
            Opt("weight_decay", "f64", "weight_decay"), Opt("centered", "bool", "centered")),
           (_STEP, St("square_avg", "tensor", _zeros),
            St("momentum_buffer", "cond", _when(lambda g: float(g["momentum"]) > 0)),  # type: ignore[arg-type]
            St("grad_avg", "cond", _when(lambda g: bool(g["centered"])))),
           {**_ANY, **_OFF}, {"momentum": 0.5, "centered": True}),
    Layout("Adam", "Adam", (*_ADAM, Opt("amsgrad", "bool", "amsgrad", default=False), _MAXIMIZE), _ADAM_STATES,
           {**_ANY, **_OFF, **_NO_DECOUPLED}, {"amsgrad": True}),
    Layout("AdamW", "AdamW", (*_ADAM, Opt("amsgrad", "bool", "amsgrad", default=False), _MAXIMIZE), _ADAM_STATES,
           {**_ANY, **_OFF, "decoupled_weight_decay": (True,)}, {"amsgrad": True}),
    Layout("NAdam", "NAdam", (*_ADAM, Opt("momentum_decay", "f64", "momentum_decay")),
           (_STEP, St("mu_product", "f64", _const(1.0)), St("exp_avg", "tensor", _zeros),
            St("exp_avg_sq", "tensor", _zeros)), {**_ANY, **_OFF, **_NO_MAX, **_NO_DECOUPLED}),
    Layout("RAdam", "RAdam", _ADAM,
           (_STEP, St("exp_avg", "tensor", _zeros), St("exp_avg_sq", "tensor", _zeros)),
           {**_ANY, **_OFF, **_NO_MAX, **_NO_DECOUPLED}),
    Layout("Adamax", "Adamax", _ADAM,
           (_STEP, St("exp_avg", "tensor", _zeros), St("exp_inf", "tensor", _zeros)),
           {**_ANY, **_OFF, **_NO_MAX}),
    Layout("Adadelta", "Adadelta",
           (Opt("rho", "f64", "rho"), Opt("eps", "f64", "eps"), Opt("weight_decay", "f64", "weight_decay"),
            _MAXIMIZE),
           (_STEP, St("square_avg", "tensor", _zeros), St("acc_delta", "tensor", _zeros)), {**_ANY, **_OFF}),
    Layout("Adagrad", "Adagrad",
           (Opt("lr_decay", "f64", "lr_decay"), Opt("initial_accumulator_value", "f64", "initial_accumulator_value"),
            Opt("eps", "f64", "eps"), Opt("weight_decay", "f64", "weight_decay")),
           (_STEP, St("sum", "tensor", _full("initial_accumulator_value"))),
           {**_ANY, **_OFF, **_NO_MAX}),
)
BY_TS_NAME = {lay.ts_name: lay for lay in LAYOUTS}
BY_TORCH_NAME = {lay.torch_name: lay for lay in LAYOUTS}
NO_FILE_FORM = {"LBFGS": "TorchSharp has no file form for LBFGS (its state lives in native code)"}


def _layout_for_ts(name: str, offset: int | None, field_name: str = "optimizer class name") -> Layout:
    if name in NO_FILE_FORM:
        raise UnsupportedOptimizerError(field_name, offset, NO_FILE_FORM[name])
    layout = BY_TS_NAME.get(name)
    if layout is None:
        raise UnsupportedOptimizerError(field_name, offset,
                                        f"unknown optimizer class {name!r} (known: {sorted(BY_TS_NAME)})")
    return layout


def _layout_for_torch(name: str) -> Layout:
    if name in NO_FILE_FORM:
        raise UnsupportedOptimizerError("optimizer", None, NO_FILE_FORM[name])
    layout = BY_TORCH_NAME.get(name) or BY_TS_NAME.get(name)
    if layout is None:
        raise UnsupportedOptimizerError("optimizer", None,
                                        f"no TorchSharp file form for {name!r} (known: {sorted(BY_TORCH_NAME)})")
    return layout
