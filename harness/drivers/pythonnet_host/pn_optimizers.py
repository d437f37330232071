"""Optimizer specs -> TorchSharp optimizers, and their state as digests, through ``clr``."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

if __package__:  # imported as harness.drivers.pythonnet_host.* (the tests)
    from .pn_common import BadRequest, Declined, Digests, Net, Req, f64_bits, lacks
else:  # run as a script inside the host: its siblings are beside it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pn_common import BadRequest, Declined, Digests, Net, Req, f64_bits, lacks  # type: ignore[no-redef,import]


# --- optimizers ------------------------------------------------------------------------------
# One row per optimizer, from PyTorch's signatures and docs/format.md's table: TorchSharp class,
# PyTorch kwargs with PyTorch's defaults, kwargs TorchSharp has no field for (accepted only
# when null/false), option fields after initial_lr/lr and per-parameter state fields.
_NO_FIELD = ("foreach", "capturable", "differentiable")
_BETAS = (0.9, 0.999)
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "SGD": {"cls": "SGD", "defaults": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
                                       "nesterov": False, "maximize": False},
            "no_field": ("foreach", "differentiable", "fused"),
            "options": ("momentum", "dampening", "weight_decay", "nesterov", "maximize"),
            "state": ("momentum_buffer",)},
    "ASGD": {"cls": "ASGD", "defaults": {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6, "weight_decay": 0.0,
                                         "maximize": False},
             "no_field": _NO_FIELD, "options": ("maximize", "lambd", "alpha", "weight_decay", "t0"),
             "state": ("step", "eta", "mu", "ax")},
    "Rprop": {"cls": "Rprop", "defaults": {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0),
                                           "maximize": False},
              "no_field": _NO_FIELD, "options": ("maximize", "etaminus", "etaplus", "min_step", "max_step"),
              "state": ("step", "prev", "step_size")},
    "RMSprop": {"cls": "RMSProp", "defaults": {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
                                               "momentum": 0.0, "centered": False, "maximize": False},
                "no_field": _NO_FIELD,
                "options": ("maximize", "momentum", "alpha", "eps", "weight_decay", "centered"),
                "state": ("step", "square_avg", "momentum_buffer", "grad_avg")},
    "Adam": {"cls": "Adam", "defaults": {"lr": 1e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0,
                                         "amsgrad": False, "maximize": False},
             "no_field": (*_NO_FIELD, "fused", "decoupled_weight_decay"),
             "options": ("beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"),
             "state": ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")},
    "AdamW": {"cls": "AdamW", "defaults": {"lr": 1e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 1e-2,
                                           "amsgrad": False, "maximize": False},
              "no_field": (*_NO_FIELD, "fused"),
              "options": ("beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"),
              "state": ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")},
    "NAdam": {"cls": "NAdam", "defaults": {"lr": 2e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0,
                                           "momentum_decay": 4e-3},
              "no_field": (*_NO_FIELD, "maximize", "decoupled_weight_decay"),
              "options": ("beta1", "beta2", "eps", "weight_decay", "momentum_decay"),
              "state": ("step", "mu_product", "exp_avg", "exp_avg_sq")},
    "RAdam": {"cls": "RAdam", "defaults": {"lr": 1e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0},
              "no_field": (*_NO_FIELD, "maximize", "decoupled_weight_decay"),
              "options": ("beta1", "beta2", "eps", "weight_decay"), "state": ("step", "exp_avg", "exp_avg_sq")},
    "Adamax": {"cls": "Adamax", "defaults": {"lr": 2e-3, "betas": _BETAS, "eps": 1e-8, "weight_decay": 0.0},
               "no_field": (*_NO_FIELD, "maximize"),
               "options": ("beta1", "beta2", "eps", "weight_decay"), "state": ("step", "exp_avg", "exp_inf")},
    "Adadelta": {"cls": "Adadelta", "defaults": {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "weight_decay": 0.0,
                                                 "maximize": False},
                 "no_field": _NO_FIELD, "options": ("rho", "eps", "weight_decay", "maximize"),
                 "state": ("step", "square_avg", "acc_delta")},
    "Adagrad": {"cls": "Adagrad", "defaults": {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0,
                                               "initial_accumulator_value": 0.0, "eps": 1e-10},
                "no_field": ("foreach", "differentiable", "fused", "maximize"),
                "options": ("lr_decay", "initial_accumulator_value", "eps", "weight_decay"),
                "state": ("step", "sum")},
}
# PyTorch kwargs that hold two TorchSharp fields.
PAIRS = {"betas": ("beta1", "beta2"), "etas": ("etaminus", "etaplus"), "step_sizes": ("min_step", "max_step")}
LBFGS_DEFAULTS: dict[str, Any] = {"lr": 1.0, "max_iter": 20, "max_eval": None, "tolerance_grad": 1e-7,
                                  "tolerance_change": 1e-9, "history_size": 100, "line_search_fn": None}


def _kwargs(level: Any, known: set[str], where: str, kind: str) -> dict[str, Any]:
    if not isinstance(level, dict):
        raise BadRequest(f"{where}: expected an object of {kind} arguments")
    out = {}
    for key, value in level.items():
        if key == "params":
            continue
        if key not in known:
            raise BadRequest(f"{where}: {kind} has no argument {key!r} (known: {sorted(known)})")
        out[key] = value
    return out


class OptimizerFactory:
    def __init__(self, net: Net, digests: Digests) -> None:
        self.net = net
        self.digests = digests

    def build(self, spec: Any, parameters: dict[str, Any]) -> Any:
        req = Req(spec, "optimizer")
        req.only("defaults", "groups")
        kind = req.text("type")
        groups = req.get("groups", list, what="a list of groups")
        members = []
        for i, group in enumerate(groups):
            g = Req(group, f"optimizer.groups[{i}]")
            names = g.names("params")
            missing = [n for n in names if n not in parameters]
            if missing:
                raise BadRequest(f"{g.where}: no parameter named {missing[0]!r} (model has: {', '.join(parameters)})")
            members.append([parameters[n] for n in names])
        if kind == "LBFGS":
            return self._lbfgs(req, groups, members)
        row = OPTIMIZERS.get(kind)
        if row is None:
            raise lacks(f"optimizer type {kind!r} (it builds: {', '.join([*OPTIMIZERS, 'LBFGS'])})")
        known = set(row["defaults"]) | set(row["no_field"])
        defaults = {**row["defaults"], **_kwargs(req.data.get("defaults") or {}, known, "optimizer.defaults", kind)}
        cls = getattr(self.net.Modules, row["cls"])
        group_list = self.net.Generic.List[cls.ParamGroup]()
        for i, (group, params) in enumerate(zip(groups, members)):
            merged = {**defaults, **_kwargs(group, known, f"optimizer.groups[{i}]", kind)}
            options = cls.Options()
            for field, value in self._fields(kind, row, merged, f"optimizer.groups[{i}]"):
                if field == "lr":
                    options.LearningRate = value
                else:
                    if not hasattr(options, field):
                        raise RuntimeError(f"TorchSharp's {row['cls']}.Options has no field {field!r}")
                    setattr(options, field, value)
            plist = self.net.Generic.List[self.net.Modules.Parameter]()
            for p in params:
                plist.Add(p)
            group_list.Add(cls.ParamGroup(plist, options))
        lr = float(defaults["lr"])
        return cls(group_list, lr)

    @staticmethod
    def _fields(kind: str, row: dict[str, Any], kwargs: dict[str, Any], where: str) -> Iterator[tuple[str, Any]]:
        for key, value in kwargs.items():
            if key in row["no_field"]:
                if value is None or value is False:
                    continue
                raise Declined(f"TorchSharp's {row['cls']} has no option {key!r} (requested {json.dumps(value)})")
            if key in PAIRS:
                if (not isinstance(value, (list, tuple)) or len(value) != 2
                        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                    raise BadRequest(f"{where}: {key!r} must be a list of two numbers")
                yield PAIRS[key][0], float(value[0])
                yield PAIRS[key][1], float(value[1])
            elif isinstance(row["defaults"].get(key), bool):
                if not isinstance(value, bool):
                    raise BadRequest(f"{where}: {kind} option {key!r} must be true or false")
                yield key, value
            else:
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise BadRequest(f"{where}: {kind} option {key!r} must be a number")
                yield key, float(value)

    def _lbfgs(self, req: Req, groups: list[Any], members: list[list[Any]]) -> Any:
        known = set(LBFGS_DEFAULTS)
        if len(groups) != 1:
            raise Declined("TorchSharp's LBFGS takes a single parameter group")
        kw = {**LBFGS_DEFAULTS, **_kwargs(req.data.get("defaults") or {}, known, "optimizer.defaults", "LBFGS"),
              **_kwargs(groups[0], known, "optimizer.groups[0]", "LBFGS")}
        if kw["line_search_fn"] is not None:
            raise Declined(f"TorchSharp's LBFGS has no line_search_fn (requested {kw['line_search_fn']!r})")
        System = self.net.System
        plist = self.net.Generic.List[self.net.Modules.Parameter]()
        for p in members[0]:
            plist.Add(p)

        def whole(key: str) -> Any:
            value = kw[key]
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadRequest(f"LBFGS {key!r} must be an integer")
            return System.Int64(value)

        max_eval = None if kw["max_eval"] is None else System.Nullable[System.Int64](whole("max_eval"))
        return self.net.torch.optim.LBFGS(plist, float(kw["lr"]), whole("max_iter"), max_eval,
                                          float(kw["tolerance_grad"]), float(kw["tolerance_change"]),
                                          whole("history_size"))

    def digest(self, opt: Any) -> dict[str, Any]:
        class_name = str(opt.GetType().Name)
        row = next((r for r in OPTIMIZERS.values() if r["cls"] == class_name), None)
        groups: list[dict[str, Any]] = []
        states: list[dict[str, Any]] = []
        if row is None:  # LBFGS: learning rates only; its state is native
            for g in opt.ParamGroups:
                groups.append({"initial_lr": f64_bits(g.InitialLearningRate), "lr": f64_bits(g.LearningRate)})
            return {"class": class_name, "groups": groups, "states": states}
        sd = opt.state_dict()
        for options in sd.Options:
            entry: dict[str, Any] = {"initial_lr": f64_bits(options.InitialLearningRate),
                                     "lr": None if options.LearningRate is None else f64_bits(options.LearningRate)}
            for name in row["options"]:
                entry[name] = self._value(getattr(options, name))
            groups.append(entry)
        for state in sd.State:
            states.append({name: self._value(getattr(state, name)) for name in row["state"]})
        return {"class": class_name, "groups": groups, "states": states}

    def _value(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return f64_bits(value)
        if hasattr(value, "WriteBytesToStream"):
            return self.digests.of(value)
        raise RuntimeError(f"unexpected optimizer field value of type {type(value).__name__}")
