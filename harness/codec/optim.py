"""Optimizer state files (``optimizer.save_state_dict`` / ``load_state_dict``).

Layout (docs/format.md)::

    str class name; uleb group count; uleb state count;
    per group: f64 initial_lr, f64 lr, then the class's options;
    per parameter (group order): the class's state fields.

Every optimizer is one row of the table in harness/codec/optim_layouts.py; one generic
reader/writer (here, an inverse pair: :func:`read_optimizer` / :func:`write_optimizer`) and
one pair of PyTorch converters (harness/codec/optim_torch.py) serve all eleven.
"""
from __future__ import annotations

import numbers
import operator
from collections.abc import Mapping
from typing import Any

from harness.codec._io import (
    Dest,
    Reader,
    Source,
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
from harness.codec._sink import open_dest
from harness.codec.errors import InvalidValueError, OptimizerFormatError
from harness.codec.optim_layouts import Layout, OptimizerRecord, Value, _layout_for_ts
from harness.codec.tensor import check_tensor, read_tensor_record, write_tensor_record


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
