"""Build PyTorch modules and optimizers from the language-neutral case specs.

The .NET worker builds the same specs with TorchSharp (dotnet/Worker); both follow
docs/protocol.md "Case specs". Constructor arguments use PyTorch's names.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from harness.cases import ModelCase

DTYPES: dict[str, torch.dtype] = {
    "uint8": torch.uint8, "int8": torch.int8, "int16": torch.int16, "int32": torch.int32,
    "int64": torch.int64, "float16": torch.float16, "float32": torch.float32,
    "float64": torch.float64, "complex64": torch.complex64, "complex128": torch.complex128,
    "bool": torch.bool, "qint8": torch.qint8, "quint8": torch.quint8, "qint32": torch.qint32,
    "bfloat16": torch.bfloat16,
}
DTYPE_NAMES: dict[torch.dtype, str] = {v: k for k, v in DTYPES.items()}


class SpecError(ValueError):
    """A module or optimizer spec names an unknown type or argument."""


def _args(spec: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    unknown = set(spec) - set(names) - {"type"}
    if unknown:
        raise SpecError(f"{spec['type']}: unknown argument(s) {sorted(unknown)}")
    return {k: spec[k] for k in names if k in spec}


def _call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The harness's forward rule for one child of a container (docs/protocol.md "Case
    specs"): MultiheadAttention runs as self-attention (x, x, x); a child returning a tuple
    (LSTM, GRU, RNN, MultiheadAttention) passes on its first element."""
    if isinstance(module, nn.MultiheadAttention):
        out = module(x, x, x, need_weights=False)
    else:
        out = module(x)
    result: torch.Tensor = out[0] if isinstance(out, tuple) else out
    return result


class SpecSequential(nn.Sequential):
    """nn.Sequential (same keys) whose forward follows the container rule of ``_call``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self:
            x = _call(child, x)
        return x


class SpecModuleList(nn.ModuleList):
    """nn.ModuleList (keys "0", "1", ...) with a forward: the children in order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self:
            x = _call(child, x)
        return x


class SpecModuleDict(nn.ModuleDict):
    """nn.ModuleDict (insertion-ordered keys) with a forward: the values in order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self.values():
            x = _call(child, x)
        return x


class SpecModule(nn.Module):
    """A custom module whose fields are the named children in declaration order (the
    docs' LeNet1: one field ``layers``); forward runs them in order."""

    def __init__(self, children: Sequence[tuple[str, nn.Module]]):
        super().__init__()
        for name, child in children:
            self.add_module(name, child)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for child in self.children():
            x = _call(child, x)
        return x


def _children(spec: Mapping[str, Any], index_names: bool = False) -> list[tuple[str, nn.Module]]:
    """``children``: ``[[name, spec], ...]``; for a ModuleList an entry may be a bare spec,
    and a given name must be its index (a ModuleList's only names)."""
    _args(spec, ("children",))
    out: list[tuple[str, nn.Module]] = []
    for entry in spec["children"]:
        index = str(len(out))
        if index_names and isinstance(entry, Mapping):
            out.append((index, build_module(entry)))
            continue
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], Mapping)):
            raise SpecError(f"{spec['type']}.children: each child must be [name, spec], got {entry!r}")
        name, child = entry
        if index_names and name != index:
            raise SpecError(f"ModuleList child {index} must be named {index!r}, got {name!r}")
        out.append((name, build_module(child)))
    return out


def _sequential(spec: Mapping[str, Any]) -> nn.Module:
    return SpecSequential(OrderedDict(_children(spec)))


def _module_list(spec: Mapping[str, Any]) -> nn.Module:
    return SpecModuleList([child for _, child in _children(spec, index_names=True)])


def _module_dict(spec: Mapping[str, Any]) -> nn.Module:
    return SpecModuleDict(OrderedDict(_children(spec)))


def _module(spec: Mapping[str, Any]) -> nn.Module:
    return SpecModule(_children(spec))


def _simple(cls: Callable[..., nn.Module], *names: str) -> Callable[[Mapping[str, Any]], nn.Module]:
    def make(spec: Mapping[str, Any]) -> nn.Module:
        return cls(**_args(spec, names))
    return make


_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
_NORM = ("num_features", "eps", "momentum", "affine", "track_running_stats")
_RNN = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional")

# The same types, argument names and defaults as dotnet/Worker/Modules.cs.
MODULES: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {
    "Sequential": _sequential,
    "Module": _module,
    "ModuleList": _module_list,
    "ModuleDict": _module_dict,
    "Linear": _simple(nn.Linear, "in_features", "out_features", "bias"),
    "Conv1d": _simple(nn.Conv1d, *_CONV),
    "Conv2d": _simple(nn.Conv2d, *_CONV),
    "Conv3d": _simple(nn.Conv3d, *_CONV),
    "ConvTranspose2d": _simple(nn.ConvTranspose2d, *_CONV, "output_padding"),
    "BatchNorm1d": _simple(nn.BatchNorm1d, *_NORM),
    "BatchNorm2d": _simple(nn.BatchNorm2d, *_NORM),
    "BatchNorm3d": _simple(nn.BatchNorm3d, *_NORM),
    "InstanceNorm1d": _simple(nn.InstanceNorm1d, *_NORM),
    "InstanceNorm2d": _simple(nn.InstanceNorm2d, *_NORM),
    "InstanceNorm3d": _simple(nn.InstanceNorm3d, *_NORM),
    "LayerNorm": _simple(nn.LayerNorm, "normalized_shape", "eps", "elementwise_affine"),
    "GroupNorm": _simple(nn.GroupNorm, "num_groups", "num_channels", "eps", "affine"),
    "Embedding": _simple(nn.Embedding, "num_embeddings", "embedding_dim", "padding_idx", "max_norm",
                         "norm_type", "scale_grad_by_freq", "sparse"),
    "PReLU": _simple(nn.PReLU, "num_parameters", "init"),
    "ReLU": _simple(nn.ReLU, "inplace"),
    "Tanh": _simple(nn.Tanh),
    "Sigmoid": _simple(nn.Sigmoid),
    "GELU": _simple(nn.GELU, "approximate"),
    "Identity": _simple(nn.Identity),
    "Dropout": _simple(nn.Dropout, "p", "inplace"),
    "MaxPool2d": _simple(nn.MaxPool2d, "kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "Flatten": _simple(nn.Flatten, "start_dim", "end_dim"),
    "LSTM": _simple(nn.LSTM, *_RNN, "proj_size"),
    "GRU": _simple(nn.GRU, *_RNN),
    "RNN": _simple(nn.RNN, *_RNN, "nonlinearity"),
    "MultiheadAttention": _simple(nn.MultiheadAttention, "embed_dim", "num_heads", "dropout", "bias", "add_bias_kv",
                                  "add_zero_attn", "kdim", "vdim", "batch_first"),
    "TransformerEncoderLayer": _simple(nn.TransformerEncoderLayer, "d_model", "nhead", "dim_feedforward", "dropout",
                                       "activation", "layer_norm_eps", "batch_first", "norm_first"),
    "EmbeddingBag": _simple(nn.EmbeddingBag, "num_embeddings", "embedding_dim", "max_norm", "norm_type",
                            "scale_grad_by_freq", "mode", "sparse", "include_last_offset", "padding_idx"),
}


def _torchvision(spec: Mapping[str, Any]) -> nn.Module:
    from harness.cases.zoo import build_torchvision  # the model zoo: torchvision builds it
    return build_torchvision(spec)


MODULES["TorchVision"] = _torchvision


def build_module(spec: Mapping[str, Any]) -> nn.Module:
    kind = spec.get("type")
    if kind not in MODULES:
        raise SpecError(f"unknown module type {kind!r} (known: {sorted(MODULES)})")
    return MODULES[kind](spec)


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module holding the state named ``name`` ("a.b.weight" -> (model.a.b, "weight"))."""
    owner_name, _, leaf = name.rpartition(".")
    return (model.get_submodule(owner_name) if owner_name else model), leaf


def build_model(spec: Mapping[str, Any], dtype: str, seed: int, device: str = "cpu",
                tie: Sequence[tuple[str, str]] = (),
                views: Sequence[tuple[str, str, int, int, int]] = (),
                buffers: Sequence[tuple[str, tuple[int, ...], bool, float]] = (),
                frozen: Sequence[str] = ()) -> nn.Module:
    """The module ``spec`` describes, in ``dtype`` on ``device``, then (in this order, as the
    worker's ``build``) tied weights, extra buffers, frozen parameters and view buffers."""
    torch.manual_seed(seed)
    model = build_module(spec).to(device=torch.device(device), dtype=DTYPES[dtype])
    for target, source in tie:  # tied weights: one Parameter under two names
        owner, leaf = _owner(model, target)
        setattr(owner, leaf, model.get_parameter(source))
    for name, shape, persistent, fill in buffers:  # extra buffers with a constant value
        owner, leaf = _owner(model, name)
        owner.register_buffer(leaf, torch.full(shape, fill, dtype=DTYPES[dtype], device=torch.device(device)),
                              persistent=persistent)
    for name in frozen:  # parameters that are state but not trained
        model.get_parameter(name).requires_grad_(False)
    for name, of, dim, start, length in views:  # a buffer viewing other state (shared memory)
        state = model.state_dict(keep_vars=True)
        if of not in state:
            raise SpecError(f"views: no parameter or buffer named {of!r} (model has {sorted(state)})")
        owner, leaf = _owner(model, name)
        owner.register_buffer(leaf, state[of].detach().narrow(dim, start, length))
    built: nn.Module = model
    return built


def build_case_model(case: ModelCase, device: str = "cpu", seed: int | None = None) -> nn.Module:
    """:func:`build_model` with everything a model case says (``seed`` overrides the case's)."""
    return build_model(case.model, case.dtype, case.seed if seed is None else seed, device, case.tie,
                       case.views, case.buffers, case.frozen)


# PyTorch optimizer classes by the case's type name, and the kwargs each accepts.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "SGD": torch.optim.SGD, "ASGD": torch.optim.ASGD, "Rprop": torch.optim.Rprop,
    "RMSprop": torch.optim.RMSprop, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW,
    "NAdam": torch.optim.NAdam, "RAdam": torch.optim.RAdam, "Adamax": torch.optim.Adamax,
    "Adadelta": torch.optim.Adadelta, "Adagrad": torch.optim.Adagrad, "LBFGS": torch.optim.LBFGS,
}


def _torch_value(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def build_optimizer(model: nn.Module, spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    kind = spec["type"]
    if kind not in OPTIMIZERS:
        raise SpecError(f"unknown optimizer type {kind!r} (known: {sorted(OPTIMIZERS)})")
    params = dict(model.named_parameters())
    groups = []
    for i, group in enumerate(spec["groups"]):
        missing = [n for n in group["params"] if n not in params]
        if missing:
            raise SpecError(f"optimizer group {i}: no parameter named {missing} (model has {sorted(params)})")
        g = {k: _torch_value(v) for k, v in group.items() if k != "params"}
        g["params"] = [params[n] for n in group["params"]]
        groups.append(g)
    defaults = {k: _torch_value(v) for k, v in spec.get("defaults", {}).items()}
    return OPTIMIZERS[kind](groups, **defaults)


SCHEDULERS: dict[str, Any] = {"StepLR": torch.optim.lr_scheduler.StepLR,
                              "ExponentialLR": torch.optim.lr_scheduler.ExponentialLR}


def build_scheduler(optimizer: torch.optim.Optimizer, spec: Mapping[str, Any]) -> Any:
    """An LR scheduler (it gives every group an ``initial_lr`` distinct from ``lr``)."""
    kind = spec.get("type")
    if kind not in SCHEDULERS:
        raise SpecError(f"unknown scheduler type {kind!r} (known: {sorted(SCHEDULERS)})")
    return SCHEDULERS[kind](optimizer, **{k: v for k, v in spec.items() if k != "type"})


def reference_parameters(case: ModelCase) -> dict[str, torch.Tensor]:
    """Named parameters of the case's model (ties, extra buffers and frozen parameters
    included, as :func:`build_case_model` builds it) on the host's PyTorch: the shapes and
    dtypes gradients are made for, whichever implementation then consumes them."""
    return {name: p.detach() for name, p in build_case_model(case).named_parameters()}


def make_gradients(params: Mapping[str, torch.Tensor], seed: int, step: int,
                   skip: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """Deterministic gradients for one optimizer step (the same values feed both sides)."""
    gen = torch.Generator().manual_seed(seed * 1000 + step)
    grads: dict[str, torch.Tensor] = {}
    for name, p in params.items():
        g = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
        if name not in skip:
            grads[name] = g
    return grads


def apply_gradients(model: nn.Module, grads: Mapping[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        p.grad = grads[name].to(p.device).clone() if name in grads else None


INT_DTYPES = ("uint8", "int8", "int16", "int32", "int64")


def make_input(input_shape: Sequence[int], generator: torch.Generator, dtype: torch.dtype,
               input_spec: Mapping[str, Any] | None = None, draw: torch.dtype = torch.float32) -> torch.Tensor:
    """One model input: ``randn(input_shape)`` drawn in ``draw`` (training: float32; the
    output checks: float64, so the input is the same whatever the model's dtype), then the
    model's ``dtype``; or, for a case's ``input`` spec ``{"dtype": "int64", "low": 0, "high":
    N}``, ``randint(low, high)`` of that integer dtype (Embedding / EmbeddingBag models)."""
    shape = list(input_shape)
    if input_spec:
        unknown = set(input_spec) - {"dtype", "low", "high"}
        if unknown:
            raise SpecError(f"input: unknown field(s) {sorted(unknown)}")
        name = input_spec.get("dtype", "float32")
        if name in INT_DTYPES:
            return torch.randint(int(input_spec.get("low", 0)), int(input_spec["high"]), shape,
                                 generator=generator, dtype=DTYPES[name])
        return torch.randn(shape, generator=generator, dtype=draw).to(DTYPES[name])
    return torch.randn(shape, generator=generator, dtype=draw).to(dtype)


def train_model(model: nn.Module, input_shape: Sequence[int], steps: int, seed: int,
                optimizer: torch.optim.Optimizer | None = None,
                input_spec: Mapping[str, Any] | None = None) -> None:
    """A few train-mode steps so that BatchNorm buffers and parameters move off their init.

    loss = mean(output**2) on seeded ``randn`` input (``randint`` for an integer
    ``input_spec``, see ``make_input``); the case's optimizer when given, else
    SGD(lr=0.01) (the worker's ``train`` does the same, docs/protocol.md).
    """
    gen = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    model.train()
    if not params:  # nothing to optimise: train-mode forwards still move BatchNorm buffers
        dtype = next((t.dtype for t in model.state_dict().values() if t.is_floating_point()), torch.float32)
        with torch.no_grad():
            for _ in range(steps):
                model(make_input(input_shape, gen, dtype, input_spec))
        return
    opt = optimizer or torch.optim.SGD(params, lr=0.01)
    dtype = params[0].dtype
    for _ in range(steps):
        x = make_input(input_shape, gen, dtype, input_spec)
        out = model(x)  # torchvision's googlenet / inception_v3 train: (logits, aux, ...)
        loss = (out[0] if isinstance(out, tuple) else out).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    opt.zero_grad()
