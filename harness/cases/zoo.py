"""The model zoo: torchvision's models, built by each library's own model code.

A zoo case (cases/zoo/*.json) is a model case whose module spec has type ``TorchVision``:
``{"type": "TorchVision", "arch": "resnet18", "num_classes": 10, ...}``. The PyTorch side
builds it with torchvision (``torchvision.models.<arch>(weights=None, ...)``, here), the
TorchSharp side with TorchSharp's TorchVision package (dotnet/Worker/Zoo.cs,
harness/drivers/pythonnet_host/pn_zoo.py), the way a user who ports such a model builds it.
Every check that takes a model case then runs on it; the zoo's own checks are in
harness/checks/zoo.py.

``DEFAULT`` is the representative subset the default matrix runs; ``--zoo full`` adds the
other cases (their feature ``zoo-full``), ``--zoo none`` drops the zoo.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from harness.cases import Case

# Every model both libraries build (src/TorchVision/models/*.cs in TorchSharp; torchvision).
ARCHS = (
    "alexnet", "googlenet", "inception_v3", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
    "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
)
# The spec's arguments (PyTorch's names); TorchVision takes each where it has it (Zoo.cs).
SPEC_ARGS = ("arch", "num_classes", "dropout", "transform_input", "aux_logits")
# Architectures whose torchvision constructor takes each argument besides num_classes.
_TAKES: dict[str, frozenset[str]] = {
    "dropout": frozenset({"alexnet", "googlenet", "inception_v3", "mobilenet_v2", "mobilenet_v3_small",
                          "mobilenet_v3_large"} | {a for a in ARCHS if a.startswith("vgg")}),
    "transform_input": frozenset({"googlenet", "inception_v3"}),
    "aux_logits": frozenset({"googlenet", "inception_v3"}),
}
# A zoo cell whose eval outputs (max |output| of the float64 reference) are below this checks
# nothing: freshly initialised mobilenets give about 1e-9 (after 30 train steps about 1e-3).
# Such a cell is an error, not a pass.
MIN_OUTPUT_SCALE = 5e-4
# Millions of parameters of each model as torchvision builds it with 1000 classes (the zoo's 10
# classes take a few million off the largest); they estimate a zoo cell's cost (cell_seconds).
PARAMETERS_M: dict[str, float] = {
    "alexnet": 61.1, "googlenet": 6.6, "inception_v3": 27.2, "mobilenet_v2": 3.5, "mobilenet_v3_small": 2.5,
    "mobilenet_v3_large": 5.5, "resnet18": 11.7, "resnet34": 21.8, "resnet50": 25.6, "resnet101": 44.5,
    "resnet152": 60.2, "resnext50_32x4d": 25.0, "resnext101_32x8d": 88.8, "resnext101_64x4d": 83.5,
    "wide_resnet50_2": 68.9, "wide_resnet101_2": 126.9, "vgg11": 132.9, "vgg11_bn": 132.9, "vgg13": 133.0,
    "vgg13_bn": 133.1, "vgg16": 138.4, "vgg16_bn": 138.4, "vgg19": 143.7, "vgg19_bn": 143.7,
}
FULL_FEATURE = "zoo-full"
ZOO_FEATURE = "zoo"


class ZooError(ValueError):
    """A zoo spec names an unknown model or an argument its model does not take."""


def check_spec(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(arch, torchvision kwargs) of a ``TorchVision`` spec; ZooError naming what is wrong."""
    unknown = set(spec) - set(SPEC_ARGS) - {"type"}
    if unknown:
        raise ZooError(f"TorchVision spec: unknown argument(s) {sorted(unknown)} (known: {list(SPEC_ARGS)})")
    arch = spec.get("arch")
    if arch not in ARCHS:
        raise ZooError(f"TorchVision spec: arch {arch!r} is not a model both libraries build (known: {list(ARCHS)})")
    kwargs: dict[str, Any] = {"num_classes": int(spec.get("num_classes", 1000))}
    for name, archs in _TAKES.items():
        if name in spec:
            if arch not in archs:
                raise ZooError(f"TorchVision spec: {arch} takes no {name!r}")
            kwargs[name] = spec[name]
    return str(arch), kwargs


# The last torchvision model this process built fresh: its spec and the random state it was
# built from, a copy of its state, and the random state after. A zoo case's model is built
# afresh for every cell (and for the float64 reference), and torchvision's random init of
# vgg's 133 M parameters takes ~2 s of each build (benchmarks/README.md: a profile of a vgg11_bn
# cell, and what copying saves). A rebuild from the same spec and random state skips the init, copies
# the kept values, and leaves the random state where the fresh build left it, so the model and
# everything drawn after it are the same as a fresh build's. One model kept: cells run case by case.
_LAST: dict[str, Any] = {}


@contextlib.contextmanager
def _init_skipped() -> Iterator[None]:
    """torch.nn.init's in-place initialisers do nothing inside (the values are loaded after)."""
    from torch.nn import init
    names = [n for n in dir(init) if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))]
    saved = {n: getattr(init, n) for n in names}
    try:
        for n in names:
            setattr(init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)


def build_torchvision(spec: Mapping[str, Any]) -> nn.Module:
    """torchvision's own model for a ``TorchVision`` spec (no pretrained weights), initialised
    from torch's random state as torchvision does it (see ``_LAST`` for a rebuild)."""
    import torch
    import torchvision  # only the zoo needs it (python3-torchvision: scripts/setup.sh)
    arch, kwargs = check_spec(spec)
    if arch in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True  # torchvision's own default for weights=None, without its warning
    make = getattr(torchvision.models, arch)
    key = [json.dumps(dict(spec), sort_keys=True), hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest()]
    if _LAST.get("key") == key:
        with _init_skipped():
            model: nn.Module = make(weights=None, **kwargs)
        model.load_state_dict(_LAST["state"])  # strict: every parameter and buffer
        torch.set_rng_state(_LAST["rng_after"])
        return model
    _LAST.clear()  # frees the last one first, so its memory is reused
    model = make(weights=None, **kwargs)
    if not any(m._non_persistent_buffers_set for m in model.modules()):  # all of it is in the state dict
        _LAST.update(key=key, state={k: v.detach().clone() for k, v in model.state_dict().items()},
                     rng_after=torch.get_rng_state())
    return model


class DegenerateState(Exception):
    """A zoo cell's outputs are below MIN_OUTPUT_SCALE: it would check nothing (an error)."""

    def as_verdict(self) -> Any:
        from harness.verdicts.outcomes import Verdict
        return Verdict("error", str(self))


def nonfinite_entries(state: Mapping[str, Any]) -> list[str]:
    """The names of ``state``'s floating entries that hold a NaN or an infinity, in order."""
    import torch
    return [name for name, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def require_scale(reference: Any, details: dict[str, Any], state: Mapping[str, Any] | None = None) -> None:
    """Record the float64 reference output's scale; a non-finite one, or one below
    MIN_OUTPUT_SCALE, raises DegenerateState. ``state``: the state the reference ran (named in
    the reason when the output is not finite)."""
    scale = float(reference.detach().abs().max()) if reference.numel() else 0.0
    details["zoo_output_scale"] = scale
    details["zoo_min_output_scale"] = MIN_OUTPUT_SCALE
    if not math.isfinite(scale):
        what = "NaN" if scale != scale else "infinite"
        cause = "so the trained state holds or makes non-finite values"
        if state is not None:
            bad = nonfinite_entries(state)
            details["zoo_nonfinite_state"] = bad
            cause = (f"and the trained state holds non-finite values (first: {bad[0]}; {len(bad)} of {len(state)} "
                     "entries)" if bad else "though every entry of the trained state is finite")
        raise DegenerateState(f"degenerate zoo state: output scale {scale:.3g}: the float64 reference output is "
                              f"{what}, {cause}")
    if not scale >= MIN_OUTPUT_SCALE:
        raise DegenerateState(f"degenerate zoo state: output scale {scale:.3g} is below {MIN_OUTPUT_SCALE:g} "
                              "(the cell would check nothing; train the case longer: harness/cases/zoo_cases.py)")


def cell_seconds(arch: str, optimizer: bool) -> float:
    """Estimated seconds of one zoo cell that runs, on the reference machine (2 cores): fitted
    to run default-7 (a model case's cell: vgg11_bn 7.1 s, googlenet 1.7, mobilenet_v3_small 2.0,
    resnet18 1.1; an optimizer case's cells step and snapshot both sides and the float64
    reference three times, by parameter count: resnet18's SGD 4.8 s, mobilenet_v3_small's AdamW 2.1)."""
    millions = PARAMETERS_M.get(arch, 25.0)
    return 1.0 + 0.32 * millions if optimizer else 1.2 + 0.045 * millions


def zoo_selection(cases: Sequence[Case], zoo: str, named: bool = False) -> list[Case]:
    """``--zoo``: "default" drops the cases outside the representative subset (feature
    ``zoo-full``), "none" every zoo case, "full" none; cases named on the command line stay."""
    if named or zoo == "full":
        return list(cases)
    drop = FULL_FEATURE if zoo == "default" else ZOO_FEATURE
    return [c for c in cases if drop not in c.features]
