"""Optimizer records to and from PyTorch (``optimizer.state_dict()`` / ``load_state_dict``):
one pair of converters for all eleven optimizers, driven by harness/codec/optim_layouts.py.
Inverse pairs: :func:`optimizer_record_from_state_dict` / :func:`optimizer_record_to_state_dict`.
"""

import functools
import inspect
import math
import numbers
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from harness.codec._io import Dest
from harness.codec.errors import InvalidValueError, OptimizerFormatError, UnrepresentableOptionError
from harness.codec.optim import _check_record, write_optimizer
from harness.codec.optim_layouts import (
    BY_TORCH_NAME,
    NO_FILE_FORM,
    Layout,
    OptimizerRecord,
    ParamSpec,
    Value,
    _layout_for_torch,
    _layout_for_ts,
)


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


def _f64_form(form: torch.dtype | type, param: Any) -> torch.dtype | type:
    """The form of an f64 state field (ASGD's eta/mu, NAdam's mu_product) for ``param``.
    PyTorch creates these as tensors of its default dtype (the probe's float32) but its
    ``load_state_dict`` casts floating state to the dtype of the parameter it belongs to
    (torch/optim/optimizer.py, ``cast``), so a float64 parameter keeps the file's double:
    the tensor takes the parameter's dtype (float64 when the parameter is unknown, lossless),
    never a narrower one that would round the double before PyTorch sees it."""
    if not isinstance(form, torch.dtype) or not form.is_floating_point:
        return form
    if isinstance(param, torch.Tensor):
        return param.dtype if param.is_floating_point() else form
    return torch.float64


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
    probing; a double (ASGD's eta/mu, NAdam's mu_product) a tensor of its parameter's dtype
    (:func:`_f64_form`). Inverse of :func:`optimizer_record_from_state_dict`.

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
        params = list(optimizer.param_groups[i]["params"]) if optimizer is not None else [None] * n
        for j, param in zip(range(flat, flat + n), params):
            out: dict[str, Any] = {}
            for st in layout.states:
                v = record.states[j][st.name]
                if st.kind == "i64":
                    out[st.name] = _to_torch_scalar(v, forms.get(st.name, float))
                elif st.kind == "f64":
                    out[st.name] = _to_torch_scalar(v, _f64_form(forms.get(st.name, float), param))
                elif v is not None:
                    out[st.name] = v
            if out:
                state[j] = out
        flat += n
    return {"state": state, "param_groups": groups}
