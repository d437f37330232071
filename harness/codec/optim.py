"""Optimizer state files (``optimizer.save_state_dict`` / ``load_state_dict``).

Layout (docs/format.md)::

    str class name; uleb group count; uleb state count;
    per group: f64 initial_lr, f64 lr, then the class's options;
    per parameter (group order): the class's state fields.

Every optimizer is one :class:`Layout` row of the table :data:`LAYOUTS`: its TorchSharp and
PyTorch names, its option fields and state fields (kind ``f64``/``bool``/``i64``/
``tensor``/``cond``), how each option maps to PyTorch's param-group keys, which PyTorch
group keys without a TorchSharp field are accepted at which values, and what a lazily
created (absent) PyTorch state starts as. One generic reader/writer and one pair of
PyTorch converters serve all eleven.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from harness.codec._io import (
    Dest,
    Reader,
    Source,
    open_dest,
    open_source,
    read_bool,
    read_f64,
    read_i64,
    read_str,
    read_uleb,
    write_bool,
    write_f64,
    write_i64,
    write_str,
    write_uleb,
)
from harness.codec.errors import (
    InvalidValueError,
    OptimizerFormatError,
    UnrepresentableOptionError,
    UnsupportedOptimizerError,
)
from harness.codec.tensor import check_tensor, read_tensor_record, write_tensor_record

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


# --- bytes <-> record ---------------------------------------------------------------------
def read_optimizer(source: Source) -> OptimizerRecord:
    """Read an optimizer state file (``param_counts`` is None: the file does not say).
    Inverse of :func:`write_optimizer`."""
    with open_source(source) as f:
        r = Reader(f)
        name_at = r.offset
        name = read_str(r, "optimizer class name")
        layout = _layout_for_ts(name, name_at)
        groups_at = r.offset
        ngroups = read_uleb(r, "param group count")
        states_at = r.offset
        nstates = read_uleb(r, "parameter state count")
        r.check_fits(ngroups * layout.min_group_bytes, "param group count", groups_at,
                     f"{ngroups} {name} param groups ({layout.min_group_bytes} bytes each)")
        r.check_fits(ngroups * layout.min_group_bytes + nstates * layout.min_state_bytes, "parameter state count",
                     states_at, f"{ngroups} groups and {nstates} {name} parameter states "
                     f"(at least {layout.min_state_bytes} bytes each)")
        groups: list[dict[str, Value]] = []
        for i in range(ngroups):
            g: dict[str, Value] = {"initial_lr": read_f64(r, f"group[{i}].initial_lr"),
                                   "lr": read_f64(r, f"group[{i}].lr")}
            for opt in layout.options:
                where = f"group[{i}].{opt.name}"
                g[opt.name] = read_f64(r, where) if opt.kind == "f64" else read_bool(r, where)
            groups.append(g)
        states: list[dict[str, Value]] = []
        for j in range(nstates):
            s: dict[str, Value] = {}
            for st in layout.states:
                where = f"state[{j}].{st.name}"
                if st.kind == "i64":
                    s[st.name] = read_i64(r, where)
                elif st.kind == "f64":
                    s[st.name] = read_f64(r, where)
                elif st.kind == "tensor":
                    s[st.name] = read_tensor_record(r, where)
                else:
                    s[st.name] = read_tensor_record(r, where) if read_bool(r, where + " present") else None
            states.append(s)
        r.expect_end("end of optimizer state")
        return OptimizerRecord(name, groups, states)


def write_optimizer(dest: Dest, record: OptimizerRecord) -> None:
    """Write an optimizer state file; the whole record is checked before the destination
    is touched. Inverse of :func:`read_optimizer`."""
    if not isinstance(record, OptimizerRecord):
        raise InvalidValueError("optimizer record", None, f"expected an OptimizerRecord, got {type(record).__name__}")
    layout = _layout_for_ts(record.class_name, None, "record.class_name")
    _check_record(layout, record)
    with open_dest(dest) as f:
        f.write(write_str(layout.ts_name) + write_uleb(len(record.groups)) + write_uleb(len(record.states)))
        for i, g in enumerate(record.groups):
            out = (write_f64(g["initial_lr"], f"group[{i}].initial_lr")  # type: ignore[arg-type]
                   + write_f64(g["lr"], f"group[{i}].lr"))  # type: ignore[arg-type]
            for opt in layout.options:
                where = f"group[{i}].{opt.name}"
                value = g[opt.name]
                out += (write_f64(value, where) if opt.kind == "f64"  # type: ignore[arg-type]
                        else write_bool(value, where))  # type: ignore[arg-type]
            f.write(out)
        for j, s in enumerate(record.states):
            for st in layout.states:
                v = s[st.name]
                where = f"state[{j}].{st.name}"
                if st.kind == "i64":
                    f.write(write_i64(operator.index(v), where))  # type: ignore[arg-type]
                elif st.kind == "f64":
                    f.write(write_f64(float(v), where))  # type: ignore[arg-type]
                elif st.kind == "tensor":
                    write_tensor_record(f, v, where)  # type: ignore[arg-type]
                else:
                    f.write(write_bool(v is not None, where + " present"))
                    if v is not None:
                        write_tensor_record(f, v, where)  # type: ignore[arg-type]


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_record(layout: Layout, record: OptimizerRecord) -> None:
    """Every field present with the right kind, nothing extra, counts consistent."""
    for i, g in enumerate(record.groups):
        expected = ("initial_lr", "lr", *(o.name for o in layout.options))
        kinds = {"initial_lr": "f64", "lr": "f64", **{o.name: o.kind for o in layout.options}}
        if not isinstance(g, Mapping):
            raise OptimizerFormatError(f"group[{i}]", None, f"expected a dict, got {type(g).__name__}")
        extra = [k for k in g if k not in kinds]
        if extra:
            raise OptimizerFormatError(f"group[{i}].{extra[0]}", None,
                                       f"{layout.ts_name} groups have no option {extra[0]!r} (expected {expected})")
        for key in expected:
            if key not in g:
                raise OptimizerFormatError(f"group[{i}].{key}", None, "missing from the record")
            ok = _is_real(g[key]) if kinds[key] == "f64" else isinstance(g[key], bool)
            if not ok:
                raise InvalidValueError(f"group[{i}].{key}", None, f"expected {kinds[key]}, got {g[key]!r}")
    for j, s in enumerate(record.states):
        if not isinstance(s, Mapping):
            raise OptimizerFormatError(f"state[{j}]", None, f"expected a dict, got {type(s).__name__}")
        names = [st.name for st in layout.states]
        extra = [k for k in s if k not in names]
        if extra:
            raise OptimizerFormatError(f"state[{j}].{extra[0]}", None,
                                       f"{layout.ts_name} states have no field {extra[0]!r} (expected {names})")
        for st in layout.states:
            where = f"state[{j}].{st.name}"
            if st.name not in s:
                raise OptimizerFormatError(where, None, "missing from the record")
            v = s[st.name]
            if st.kind == "i64" and not (_is_int(v)
                                         and -(1 << 63) <= operator.index(v) < (1 << 63)):  # type: ignore[arg-type]
                raise InvalidValueError(where, None, f"expected an int64, got {v!r}")
            if st.kind == "f64" and not _is_real(v):
                raise InvalidValueError(where, None, f"expected a float, got {v!r}")
            if st.kind == "tensor" or (st.kind == "cond" and v is not None):
                check_tensor(v, where)  # type: ignore[arg-type]
    counts = record.param_counts
    if counts is not None and (len(counts) != len(record.groups) or sum(counts) != len(record.states)
                               or any(not _is_int(c) or c < 0 for c in counts)):
        raise OptimizerFormatError("record.param_counts", None,
                                   f"{counts} does not fit {len(record.groups)} groups and {len(record.states)} states")


# --- PyTorch -> record ------------------------------------------------------------------------
def _scalar(v: Any, where: str) -> float:
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise UnrepresentableOptionError(where, None, f"expected a scalar, got a tensor of shape {tuple(v.shape)}")
        return float(v.item())
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise UnrepresentableOptionError(where, None, f"expected a number, got {v!r}")
    return float(v)


def _step(v: Any, where: str) -> int:
    x = _scalar(v, where)
    if not (math.isfinite(x) and x == int(x) and -(1 << 63) <= x < (1 << 63)):
        raise UnrepresentableOptionError(where, None, f"step {x!r} is not an integer TorchSharp's i64 can hold")
    return int(x)


def _check_group_keys(layout: Layout, i: int, g: Mapping[str, Any]) -> None:
    mapped = {o.torch_key for o in layout.options} | {"params", "lr", "initial_lr"}
    for key, value in g.items():
        if key in mapped:
            continue
        if key not in layout.extra_ok:
            raise UnrepresentableOptionError(f"group[{i}].{key}", None,
                                             f"{layout.torch_name} option {key!r} has no TorchSharp field")
        allowed = layout.extra_ok[key]
        if allowed is not None and not any(value is a or (value == a and type(value) is type(a)) for a in allowed):
            raise UnrepresentableOptionError(
                f"group[{i}].{key}", None,
                f"{layout.torch_name}({key}={value!r}) changes training in a way TorchSharp's "
                f"{layout.ts_name} cannot reproduce (accepted: {list(allowed)})")


def _param_spec(p: Any, where: str) -> ParamSpec:
    if isinstance(p, torch.Tensor):
        return tuple(p.shape), p.dtype
    try:
        return tuple(operator.index(d) for d in p), torch.get_default_dtype()
    except TypeError as exc:
        raise InvalidValueError(where, None, f"expected a tensor or a shape, got {p!r}") from exc


def optimizer_record_from_state_dict(class_name: str, state_dict: Mapping[str, Any],
                                     param_shapes: Sequence[Any] | Mapping[int, Any] | None = None
                                     ) -> OptimizerRecord:
    """Convert a PyTorch ``optimizer.state_dict()`` of class ``class_name`` (PyTorch's or
    TorchSharp's name). Inverse of :func:`optimizer_record_to_state_dict`.

    ``param_shapes`` (tensors, or shapes for float parameters, indexed by PyTorch's
    parameter index) is needed only for parameters that never had a gradient: PyTorch keeps
    no state for them, TorchSharp's file needs one, so the codec writes the state
    TorchSharp's constructor (= PyTorch's lazy initialisation) creates (README.md).
    """
    layout = _layout_for_torch(class_name)
    if not isinstance(state_dict, Mapping) or "param_groups" not in state_dict:
        raise OptimizerFormatError("optimizer state dict", None, "expected a dict with 'state' and 'param_groups'")
    state = state_dict.get("state", {})
    groups: list[dict[str, Value]] = []
    states: list[dict[str, Value]] = []
    counts: list[int] = []
    for i, g in enumerate(state_dict["param_groups"]):
        _check_group_keys(layout, i, g)
        lr = _scalar(g["lr"], f"group[{i}].lr")
        rec: dict[str, Value] = {"initial_lr": _scalar(g.get("initial_lr", lr), f"group[{i}].initial_lr"), "lr": lr}
        for opt in layout.options:
            where = f"group[{i}].{opt.torch_key}"
            raw = g.get(opt.torch_key, opt.default)
            if raw is None:
                raise OptimizerFormatError(where, None, "missing from the PyTorch group")
            v = raw[opt.index] if opt.index is not None else raw
            rec[opt.name] = _scalar(v, where) if opt.kind == "f64" else bool(v)
        groups.append(rec)
        counts.append(len(g["params"]))
        for pid in g["params"]:
            st = state.get(pid) or {}
            states.append(_state_from_torch(layout, st, rec, param_shapes, pid))
    return OptimizerRecord(layout.ts_name, groups, states, counts)


def _state_from_torch(layout: Layout, st: Mapping[str, Any], rec: Mapping[str, Value],
                      param_shapes: Sequence[Any] | Mapping[int, Any] | None, pid: Any) -> dict[str, Value]:
    where = f"state of parameter {pid}"
    lazy = not any(st.get(s.name) is not None for s in layout.states)
    out: dict[str, Value] = {}
    if lazy:
        spec: ParamSpec | None = None
        for s in layout.states:
            if s.kind != "cond" and spec is None:
                p = None
                if param_shapes is not None:
                    try:
                        p = param_shapes[pid]
                    except (IndexError, KeyError, TypeError):
                        p = None
                if p is None:
                    raise OptimizerFormatError(where, None, "PyTorch has no state for it (it never had a "
                                               "gradient) and its shape is unknown: pass the optimizer or "
                                               "param_shapes")
                spec = _param_spec(p, where)
            out[s.name] = s.init(spec if spec is not None else ((), torch.float32), rec)
        return out
    for s in layout.states:
        v = st.get(s.name)
        w = f"{where}.{s.name}"
        if s.kind == "i64":
            out[s.name] = _step(v, w) if v is not None else 0
        elif s.kind == "f64":
            if v is None:
                raise OptimizerFormatError(w, None, "missing from the PyTorch state")
            out[s.name] = _scalar(v, w)
        elif v is None:
            if s.kind == "tensor":
                raise OptimizerFormatError(w, None, "missing from the PyTorch state")
            out[s.name] = None
        elif not isinstance(v, torch.Tensor):
            raise UnrepresentableOptionError(w, None, f"expected a tensor, got {type(v).__name__}")
        else:
            out[s.name] = v.detach().cpu()
    return out


def _torch_name(optimizer: torch.optim.Optimizer) -> str:
    for cls in type(optimizer).__mro__:
        if cls.__name__ in NO_FILE_FORM or getattr(torch.optim, cls.__name__, None) is cls:
            return cls.__name__
    return type(optimizer).__name__


def optimizer_record_from_torch(optimizer: torch.optim.Optimizer) -> OptimizerRecord:
    """Record of a live ``torch.optim`` optimizer (lazily created state filled in).
    Inverse of :func:`optimizer_record_to_state_dict` (given the same optimizer)."""
    name = _torch_name(optimizer)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    return optimizer_record_from_state_dict(name, optimizer.state_dict(), params)


def save_optimizer(optimizer: torch.optim.Optimizer, dest: Dest) -> None:
    """``write_optimizer(dest, optimizer_record_from_torch(optimizer))``; read back with
    :func:`read_optimizer` + :func:`optimizer_record_to_state_dict`."""
    write_optimizer(dest, optimizer_record_from_torch(optimizer))


# --- record -> PyTorch ------------------------------------------------------------------------
# What torch 1.13 keeps for scalar state when probing is impossible (2.x: tensors throughout).
_TENSOR_STEP_113 = {"Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Adagrad", "ASGD"}


@functools.lru_cache(maxsize=None)
def _torch_scalar_forms(torch_name: str) -> dict[str, torch.dtype | type]:
    """How this PyTorch keeps each scalar state field of ``torch_name`` (int, float or a
    tensor of some dtype), found by running one real step on a probe parameter."""
    layout = BY_TORCH_NAME[torch_name]
    scalars = [s.name for s in layout.states if s.kind in ("i64", "f64")]
    forms: dict[str, torch.dtype | type] = {}
    try:
        p = torch.nn.Parameter(torch.zeros(2))
        opt = getattr(torch.optim, torch_name)([p], lr=0.01, **layout.probe)
        p.grad = torch.ones(2)
        opt.step()
        st = opt.state[p]
        for name in scalars:
            v = st.get(name)
            forms[name] = v.dtype if isinstance(v, torch.Tensor) else type(v)
    except Exception:  # pragma: no cover - fall back to what torch 1.13 / 2.x are known to keep
        major = int(torch.__version__.split(".")[0])
        tensor = major >= 2 or torch_name in _TENSOR_STEP_113
        forms = {n: (torch.float32 if tensor or n != "step" else int) for n in scalars}
    return forms


def _to_torch_scalar(v: Value, form: torch.dtype | type) -> Any:
    if isinstance(form, torch.dtype):
        return torch.tensor(float(v), dtype=form)  # type: ignore[arg-type]
    return int(v) if form is int else float(v)  # type: ignore[arg-type]


def _torch_group_keys(layout: Layout, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
    """PyTorch's group keys for this class (with their defaults), in its signature order."""
    if optimizer is not None:
        return {k: v for k, v in optimizer.defaults.items() if k != "params"}
    sig = inspect.signature(getattr(torch.optim, layout.torch_name).__init__)
    return {k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in sig.parameters.items() if k not in ("self", "params")}


def optimizer_record_to_state_dict(record: OptimizerRecord,
                                   optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """A dict ``torch.optim.<X>.load_state_dict`` accepts: state keyed 0..n-1 in group order,
    ``param_groups`` with ``params`` index lists and PyTorch's option names. Scalar state
    takes the form this PyTorch keeps (``step`` an int or a float32 tensor, ...), found by
    probing. Inverse of :func:`optimizer_record_from_state_dict`.

    With ``optimizer`` its groups' other keys (foreach, ...) are kept and its group sizes
    used; without it the record's ``param_counts`` must be known (or there is one group).
    An option this PyTorch has no key for is dropped at TorchSharp's default value and
    refused (:class:`UnrepresentableOptionError`) otherwise.
    """
    layout = _layout_for_ts(record.class_name, None, "record.class_name")
    _check_record(layout, record)
    if optimizer is not None:
        actual = _layout_for_torch(_torch_name(optimizer))
        if actual is not layout:
            raise OptimizerFormatError("optimizer class name", None, f"the record holds {layout.ts_name}, the "
                                       f"optimizer is {type(optimizer).__name__}")
    counts = ([len(g["params"]) for g in optimizer.param_groups] if optimizer is not None
              else record.param_counts or ([len(record.states)] if len(record.groups) == 1 else None))
    if counts is None:
        raise OptimizerFormatError("param_counts", None, "the file does not say which parameters belong to which "
                                   "group: pass the optimizer it is for")
    if len(counts) != len(record.groups) or sum(counts) != len(record.states):
        raise OptimizerFormatError("param groups", None,
                                   f"the record has {len(record.groups)} groups / {len(record.states)} states, the "
                                   f"optimizer {len(counts)} groups / {sum(counts)} parameters")
    known = _torch_group_keys(layout, optimizer)
    forms = _torch_scalar_forms(layout.torch_name)
    groups: list[dict[str, Any]] = []
    state: dict[int, dict[str, Any]] = {}
    flat = 0
    for i, (g, n) in enumerate(zip(record.groups, counts)):
        base = optimizer.param_groups[i] if optimizer is not None else known
        pg: dict[str, Any] = {k: v for k, v in base.items() if k != "params"}
        tuples: dict[str, list[Any]] = {}
        for opt in layout.options:
            value = g[opt.name]
            if opt.torch_key not in known:
                if opt.default is not None and value == opt.default:
                    continue
                raise UnrepresentableOptionError(f"group[{i}].{opt.name}", None,
                                                 f"torch {torch.__version__}'s {layout.torch_name} has no "
                                                 f"{opt.torch_key!r} option to hold {value!r}")
            if opt.index is not None:
                tuples.setdefault(opt.torch_key, [None, None])[opt.index] = value
            else:
                pg[opt.torch_key] = value
        pg.update({k: tuple(v) for k, v in tuples.items()})
        pg["lr"] = g["lr"]
        if g["initial_lr"] != g["lr"] or "initial_lr" in pg:
            pg["initial_lr"] = g["initial_lr"]
        pg["params"] = list(range(flat, flat + n))
        groups.append(pg)
        for j in range(flat, flat + n):
            out: dict[str, Any] = {}
            for st in layout.states:
                v = record.states[j][st.name]
                if st.kind in ("i64", "f64"):
                    out[st.name] = _to_torch_scalar(v, forms.get(st.name, float))
                elif v is not None:
                    out[st.name] = v
            if out:
                state[j] = out
        flat += n
    return {"state": state, "param_groups": groups}
