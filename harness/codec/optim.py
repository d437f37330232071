"""Optimizer state files (``optimizer.save_state_dict`` / ``load_state_dict``).

Layout (FORMAT.md)::

    str class name; uleb group count; uleb state count;
    per group: f64 initial_lr, f64 lr, then the class's options;
    per parameter (group order): the class's state fields.

Every optimizer is one :class:`Layout` row of the table :data:`LAYOUTS`: its TorchSharp and
PyTorch names, its option fields and state fields (kind ``f64``/``bool``/``i64``/
``tensor``/``cond``), how each option maps to PyTorch's param-group keys, and what a
lazily created (absent) PyTorch state starts as. One generic reader/writer and one pair of
PyTorch converters serve all eleven.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from harness.codec._io import (
    Dest,
    Reader,
    Source,
    bool_bytes,
    f64_bytes,
    i64_bytes,
    open_dest,
    open_source,
    string_bytes,
    uleb_bytes,
)
from harness.codec.errors import (
    OptimizerFormatError,
    UnrepresentableOptionError,
    UnsupportedOptimizerError,
)
from harness.codec.tensor import read_tensor_record, write_tensor_record

Value = float | bool | int | torch.Tensor | None
Group = Mapping[str, Any]
Init = Callable[[torch.Tensor, Group], Value]


@dataclass
class OptimizerRecord:
    """An optimizer file's content in FORMAT.md's names.

    ``groups[i]`` holds ``initial_lr``, ``lr`` and the class's options; ``states[j]`` one
    dict per parameter in group order (conditional tensors ``None`` when absent);
    ``group_sizes`` the parameters per group when known (the file does not store it).
    """

    class_name: str
    groups: list[dict[str, Value]]
    states: list[dict[str, Value]]
    group_sizes: list[int] | None = None


@dataclass(frozen=True)
class Opt:
    name: str            # TorchSharp / FORMAT.md name
    kind: str            # "f64" | "bool"
    torch_key: str       # PyTorch param-group key
    index: int | None = None   # element of a tuple-valued key (betas, etas, step_sizes)
    default: Any = None  # used when the PyTorch group lacks the key (older/newer versions)


@dataclass(frozen=True)
class St:
    name: str            # FORMAT.md state field name (also PyTorch's state key)
    kind: str            # "i64" | "f64" | "tensor" | "cond"
    init: Init | None    # value of a lazily created PyTorch state; None: absent (cond only)


@dataclass(frozen=True)
class Layout:
    ts_name: str
    torch_name: str
    options: tuple[Opt, ...]
    states: tuple[St, ...]
    # PyTorch group keys with no TorchSharp field: value(s) that keep TorchSharp's math.
    # A key mapped to None accepts any value (an implementation choice, same math).
    extra_ok: Mapping[str, tuple[Any, ...] | None] = field(default_factory=dict)


def _zeros(p: torch.Tensor, g: Group) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.contiguous_format)


def _when(flag: Callable[[Group], bool]) -> Init:
    return lambda p, g: _zeros(p, g) if flag(g) else None


_STEP = St("step", "i64", lambda p, g: 0)
_ADAM = (Opt("beta1", "f64", "betas", 0), Opt("beta2", "f64", "betas", 1), Opt("eps", "f64", "eps"),
         Opt("weight_decay", "f64", "weight_decay"))
# Implementation selectors: any value keeps the math (documented in README.md).
_IMPL = {"foreach": None, "fused": None}
# Modes TorchSharp has no field for: accepted only at their neutral value.
_OFF = {"capturable": (False,), "differentiable": (False,)}
_NO_MAX = {"maximize": (False,)}
_NO_DECOUPLED = {"decoupled_weight_decay": (False,)}

LAYOUTS: tuple[Layout, ...] = (
    Layout("SGD", "SGD",
           (Opt("momentum", "f64", "momentum"), Opt("dampening", "f64", "dampening"),
            Opt("weight_decay", "f64", "weight_decay"), Opt("nesterov", "bool", "nesterov"),
            Opt("maximize", "bool", "maximize", default=False)),
           (St("momentum_buffer", "cond", None),), {**_IMPL, **_OFF}),
    Layout("ASGD", "ASGD",
           (Opt("maximize", "bool", "maximize", default=False), Opt("lambd", "f64", "lambd"),
            Opt("alpha", "f64", "alpha"), Opt("weight_decay", "f64", "weight_decay"), Opt("t0", "f64", "t0")),
           (_STEP, St("eta", "f64", lambda p, g: float(g["lr"])), St("mu", "f64", lambda p, g: 1.0),
            St("ax", "tensor", _zeros)), {**_IMPL, **_OFF}),
    Layout("Rprop", "Rprop",
           (Opt("maximize", "bool", "maximize", default=False), Opt("etaminus", "f64", "etas", 0),
            Opt("etaplus", "f64", "etas", 1), Opt("min_step", "f64", "step_sizes", 0),
            Opt("max_step", "f64", "step_sizes", 1)),
           (_STEP, St("prev", "tensor", _zeros),
            St("step_size", "tensor", lambda p, g: torch.full_like(p, g["lr"], memory_format=torch.contiguous_format))),
           {**_IMPL, **_OFF}),
    Layout("RMSProp", "RMSprop",
           (Opt("maximize", "bool", "maximize", default=False), Opt("momentum", "f64", "momentum"),
            Opt("alpha", "f64", "alpha"), Opt("eps", "f64", "eps"), Opt("weight_decay", "f64", "weight_decay"),
            Opt("centered", "bool", "centered")),
           (_STEP, St("square_avg", "tensor", _zeros),
            St("momentum_buffer", "cond", _when(lambda g: g["momentum"] > 0)),
            St("grad_avg", "cond", _when(lambda g: bool(g["centered"])))), {**_IMPL, **_OFF}),
    Layout("Adam", "Adam",
           (*_ADAM, Opt("amsgrad", "bool", "amsgrad"), Opt("maximize", "bool", "maximize", default=False)),
           (_STEP, St("exp_avg", "tensor", _zeros), St("exp_avg_sq", "tensor", _zeros),
            St("max_exp_avg_sq", "cond", _when(lambda g: bool(g["amsgrad"])))),
           {**_IMPL, **_OFF, **_NO_DECOUPLED}),
    Layout("AdamW", "AdamW",
           (*_ADAM, Opt("amsgrad", "bool", "amsgrad"), Opt("maximize", "bool", "maximize", default=False)),
           (_STEP, St("exp_avg", "tensor", _zeros), St("exp_avg_sq", "tensor", _zeros),
            St("max_exp_avg_sq", "cond", _when(lambda g: bool(g["amsgrad"])))),
           {**_IMPL, **_OFF, "decoupled_weight_decay": (True, False)}),
    Layout("NAdam", "NAdam", (*_ADAM, Opt("momentum_decay", "f64", "momentum_decay")),
           (_STEP, St("mu_product", "f64", lambda p, g: 1.0), St("exp_avg", "tensor", _zeros),
            St("exp_avg_sq", "tensor", _zeros)), {**_IMPL, **_OFF, **_NO_MAX, **_NO_DECOUPLED}),
    Layout("RAdam", "RAdam", _ADAM,
           (_STEP, St("exp_avg", "tensor", _zeros), St("exp_avg_sq", "tensor", _zeros)),
           {**_IMPL, **_OFF, **_NO_MAX, **_NO_DECOUPLED}),
    Layout("Adamax", "Adamax", _ADAM,
           (_STEP, St("exp_avg", "tensor", _zeros), St("exp_inf", "tensor", _zeros)),
           {**_IMPL, **_OFF, **_NO_MAX}),
    Layout("Adadelta", "Adadelta",
           (Opt("rho", "f64", "rho"), Opt("eps", "f64", "eps"), Opt("weight_decay", "f64", "weight_decay"),
            Opt("maximize", "bool", "maximize", default=False)),
           (_STEP, St("square_avg", "tensor", _zeros), St("acc_delta", "tensor", _zeros)), {**_IMPL, **_OFF}),
    Layout("Adagrad", "Adagrad",
           (Opt("lr_decay", "f64", "lr_decay"), Opt("initial_accumulator_value", "f64", "initial_accumulator_value"),
            Opt("eps", "f64", "eps"), Opt("weight_decay", "f64", "weight_decay")),
           (_STEP, St("sum", "tensor",
                      lambda p, g: torch.full_like(p, g["initial_accumulator_value"],
                                                   memory_format=torch.contiguous_format)),),
           {**_IMPL, **_OFF, **_NO_MAX}),
)
BY_TS_NAME = {lay.ts_name: lay for lay in LAYOUTS}
BY_TORCH_NAME = {lay.torch_name: lay for lay in LAYOUTS}
NO_FILE_FORM = {"LBFGS": "TorchSharp has no file form for LBFGS (its state lives in native code)"}


def _layout_for_ts(name: str, offset: int | None) -> Layout:
    if name in NO_FILE_FORM:
        raise UnsupportedOptimizerError("optimizer class name", offset, NO_FILE_FORM[name])
    layout = BY_TS_NAME.get(name)
    if layout is None:
        raise UnsupportedOptimizerError("optimizer class name", offset,
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


# --- bytes <-> record ---------------------------------------------------------------------
_MIN_GROUP = 16   # initial_lr + lr
_MIN_STATE = 1    # at least one byte per parameter state (SGD: one bool)


def read_optimizer(source: Source) -> OptimizerRecord:
    """Read an optimizer state file. Inverse of :func:`write_optimizer`."""
    with open_source(source) as f:
        r = Reader(f)
        name = r.string("optimizer class name")
        layout = _layout_for_ts(name, 0)
        groups_at = r.offset
        ngroups = r.uleb("param group count")
        states_at = r.offset
        nstates = r.uleb("parameter state count")
        r.check_fits(ngroups * _MIN_GROUP, "param group count", groups_at, f"{ngroups} param groups")
        r.check_fits(ngroups * _MIN_GROUP + nstates * _MIN_STATE, "parameter state count", states_at,
                     f"{nstates} parameter states")
        groups: list[dict[str, Value]] = []
        for i in range(ngroups):
            g: dict[str, Value] = {"initial_lr": r.f64(f"group[{i}].initial_lr"), "lr": r.f64(f"group[{i}].lr")}
            for opt in layout.options:
                where = f"group[{i}].{opt.name}"
                g[opt.name] = r.f64(where) if opt.kind == "f64" else r.boolean(where)
            groups.append(g)
        states: list[dict[str, Value]] = []
        for j in range(nstates):
            s: dict[str, Value] = {}
            for st in layout.states:
                where = f"state[{j}].{st.name}"
                if st.kind == "i64":
                    s[st.name] = r.i64(where)
                elif st.kind == "f64":
                    s[st.name] = r.f64(where)
                elif st.kind == "tensor":
                    s[st.name] = read_tensor_record(r, where)
                else:
                    s[st.name] = read_tensor_record(r, where) if r.boolean(where + " present") else None
            states.append(s)
        r.expect_end("end of optimizer state")
        return OptimizerRecord(name, groups, states)


def write_optimizer(dest: Dest, record: OptimizerRecord) -> None:
    """Write an optimizer state file. Inverse of :func:`read_optimizer`."""
    layout = _layout_for_ts(record.class_name, None)
    _check_record(layout, record)
    with open_dest(dest) as f:
        f.write(string_bytes(layout.ts_name) + uleb_bytes(len(record.groups)) + uleb_bytes(len(record.states)))
        for g in record.groups:
            out = f64_bytes(g["initial_lr"]) + f64_bytes(g["lr"])  # type: ignore[arg-type]
            for opt in layout.options:
                out += f64_bytes(g[opt.name]) if opt.kind == "f64" else bool_bytes(bool(g[opt.name]))  # type: ignore[arg-type]
            f.write(out)
        for j, s in enumerate(record.states):
            for st in layout.states:
                v = s[st.name]
                where = f"state[{j}].{st.name}"
                if st.kind == "i64":
                    f.write(i64_bytes(int(v)))  # type: ignore[arg-type]
                elif st.kind == "f64":
                    f.write(f64_bytes(float(v)))  # type: ignore[arg-type]
                elif st.kind == "tensor":
                    write_tensor_record(f, v, where)  # type: ignore[arg-type]
                else:
                    f.write(bool_bytes(v is not None))
                    if v is not None:
                        write_tensor_record(f, v, where)  # type: ignore[arg-type]


def _check_record(layout: Layout, record: OptimizerRecord) -> None:
    for i, g in enumerate(record.groups):
        for key in ("initial_lr", "lr", *(o.name for o in layout.options)):
            if key not in g or g[key] is None:
                raise OptimizerFormatError(f"group[{i}].{key}", None, "missing from the record")
    for j, s in enumerate(record.states):
        for st in layout.states:
            if st.name not in s or (s[st.name] is None and st.kind != "cond"):
                raise OptimizerFormatError(f"state[{j}].{st.name}", None, "missing from the record")


# --- PyTorch <-> record ---------------------------------------------------------------------
def _scalar(v: Any) -> float:
    return float(v.item()) if isinstance(v, torch.Tensor) else float(v)


def _check_group_keys(layout: Layout, i: int, g: Group) -> None:
    mapped = {o.torch_key for o in layout.options} | {"params", "lr", "initial_lr"}
    for key, value in g.items():
        if key in mapped:
            continue
        if key not in layout.extra_ok:
            raise UnrepresentableOptionError(f"group[{i}].{key}", None,
                                             f"{layout.torch_name} option {key!r} has no TorchSharp field")
        allowed = layout.extra_ok[key]
        if allowed is not None and value not in allowed:
            raise UnrepresentableOptionError(
                f"group[{i}].{key}", None,
                f"{layout.torch_name}({key}={value!r}) changes training in a way TorchSharp's "
                f"{layout.ts_name} cannot reproduce (accepted: {list(allowed)})")


def optimizer_record_from_state_dict(class_name: str, state_dict: Mapping[str, Any],
                                     params: Sequence[torch.Tensor] | None = None) -> OptimizerRecord:
    """Convert a PyTorch ``optimizer.state_dict()``. Inverse of :func:`optimizer_record_to_state_dict`.

    ``params`` (the parameters in group order) are needed only for parameters that never
    had a gradient: PyTorch keeps no state for them, and TorchSharp's file needs one, so
    the codec writes what PyTorch's lazy initialisation would create (README.md).
    """
    layout = _layout_for_torch(class_name)
    state = state_dict.get("state", {})
    groups: list[dict[str, Value]] = []
    states: list[dict[str, Value]] = []
    sizes: list[int] = []
    flat = 0
    for i, g in enumerate(state_dict["param_groups"]):
        _check_group_keys(layout, i, g)
        rec: dict[str, Value] = {"initial_lr": float(g.get("initial_lr", g["lr"])), "lr": float(g["lr"])}
        for opt in layout.options:
            raw = g.get(opt.torch_key, opt.default)
            if raw is None:
                raise OptimizerFormatError(f"group[{i}].{opt.torch_key}", None, "missing from the PyTorch group")
            v = raw[opt.index] if opt.index is not None else raw
            rec[opt.name] = float(v) if opt.kind == "f64" else bool(v)
        groups.append(rec)
        sizes.append(len(g["params"]))
        for pid in g["params"]:
            st = state.get(pid) or {}
            param = params[flat] if params is not None and flat < len(params) else None
            states.append(_state_from_torch(layout, st, g, param, pid))
            flat += 1
    return OptimizerRecord(layout.ts_name, groups, states, sizes)


def _state_from_torch(layout: Layout, st: Mapping[str, Any], g: Group, param: torch.Tensor | None,
                      pid: Any) -> dict[str, Value]:
    lazy = not any(k in st and st[k] is not None for k in (s.name for s in layout.states))
    out: dict[str, Value] = {}
    for s in layout.states:
        if lazy:
            if s.init is None:
                out[s.name] = None
                continue
            if param is None:
                raise OptimizerFormatError(f"state of parameter {pid}", None,
                                           "PyTorch has no state for it (never had a gradient) and its shape "
                                           "is unknown: pass the optimizer or its parameters")
            out[s.name] = s.init(param.detach().cpu(), g)
            continue
        v = st.get(s.name)
        if s.kind == "i64":
            out[s.name] = int(_scalar(v)) if v is not None else 0
        elif s.kind == "f64":
            if v is None:
                raise OptimizerFormatError(f"state of parameter {pid}.{s.name}", None, "missing")
            out[s.name] = _scalar(v)
        elif v is None:
            if s.kind == "tensor":
                raise OptimizerFormatError(f"state of parameter {pid}.{s.name}", None, "missing")
            out[s.name] = None
        else:
            out[s.name] = v.detach().cpu()
    return out


def optimizer_record_from_torch(optimizer: torch.optim.Optimizer) -> OptimizerRecord:
    """Record of a live ``torch.optim`` optimizer (lazily created state filled in)."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    return optimizer_record_from_state_dict(type(optimizer).__name__, optimizer.state_dict(), params)


def save_optimizer(optimizer: torch.optim.Optimizer, dest: Dest) -> None:
    """Write a live optimizer's state in TorchSharp's form."""
    write_optimizer(dest, optimizer_record_from_torch(optimizer))


# torch 1.13 keeps `step` as a float32 tensor for these (an int for the others); 2.x always a tensor.
_TENSOR_STEP_113 = {"Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Adagrad", "ASGD"}
_TENSOR_F64 = {"ASGD", "NAdam"}  # eta, mu, mu_product are tensors in PyTorch (float32 when it makes them)


def _torch_major_minor() -> tuple[int, int]:
    parts = torch.__version__.split(".")
    return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)


def optimizer_record_to_state_dict(record: OptimizerRecord,
                                   optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """A dict ``torch.optim.<X>.load_state_dict`` accepts. Inverse of
    :func:`optimizer_record_from_state_dict`.

    With ``optimizer`` its groups' other keys (foreach, ...) are kept and its group sizes
    used; without it the record's ``group_sizes`` must be known (or there is one group).
    """
    layout = _layout_for_ts(record.class_name, None)
    sizes = ([len(g["params"]) for g in optimizer.param_groups] if optimizer is not None
             else record.group_sizes or ([len(record.states)] if len(record.groups) == 1 else None))
    if sizes is None:
        raise OptimizerFormatError("group sizes", None, "the file does not say which parameters belong to which "
                                   "group: pass the optimizer it is for")
    if len(sizes) != len(record.groups) or sum(sizes) != len(record.states):
        raise OptimizerFormatError("param groups", None,
                                   f"file has {len(record.groups)} groups / {len(record.states)} states, the "
                                   f"optimizer {len(sizes)} groups / {sum(sizes)} parameters")
    if optimizer is not None and type(optimizer).__name__ != layout.torch_name:
        raise OptimizerFormatError("optimizer class name", 0, f"file holds {layout.ts_name}, the optimizer is "
                                   f"{type(optimizer).__name__}")
    tensor_step = _torch_major_minor() >= (2, 0) or layout.torch_name in _TENSOR_STEP_113
    groups: list[dict[str, Any]] = []
    state: dict[int, dict[str, Any]] = {}
    flat = 0
    for i, (g, n) in enumerate(zip(record.groups, sizes)):
        pg: dict[str, Any] = {}
        if optimizer is not None:
            pg.update({k: v for k, v in optimizer.param_groups[i].items() if k != "params"})
        tuples: dict[str, list[Any]] = {}
        for opt in layout.options:
            if opt.index is not None:
                tuples.setdefault(opt.torch_key, [None, None])[opt.index] = g[opt.name]
            elif opt.torch_key in pg or optimizer is None or opt.default is None:
                pg[opt.torch_key] = g[opt.name]
        pg.update({k: tuple(v) for k, v in tuples.items()})
        pg["lr"] = g["lr"]
        if g["initial_lr"] != g["lr"] or "initial_lr" in pg:
            pg["initial_lr"] = g["initial_lr"]
        pg["params"] = list(range(flat, flat + n))
        groups.append(pg)
        for j in range(flat, flat + n):
            s = record.states[j]
            out: dict[str, Any] = {}
            for st in layout.states:
                v = s[st.name]
                if st.kind == "i64":
                    out[st.name] = torch.tensor(float(v)) if tensor_step else int(v)  # type: ignore[arg-type]
                elif st.kind == "f64":
                    # float64 tensors keep TorchSharp's double exactly (PyTorch reads them with .item())
                    out[st.name] = (torch.tensor(float(v), dtype=torch.float64)  # type: ignore[arg-type]
                                    if layout.torch_name in _TENSOR_F64 else float(v))  # type: ignore[arg-type]
                elif v is not None:
                    out[st.name] = v
            if layout.ts_name == "SGD" and out.get("momentum_buffer") is None:
                out["momentum_buffer"] = None
            state[j] = out
        flat += n
    return {"state": state, "param_groups": groups}
