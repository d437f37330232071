"""The case catalogue: language-neutral JSON descriptions both sides build from.

A *model case* (cases/models/*.json) describes a module tree (docs/protocol.md "Case
specs"), its dtype, seed, an input shape and how many training steps make its state
non-trivial. An *optimizer case* (cases/optimizers/*.json) names a model case and adds an
optimizer spec with param groups, the number of steps and parameters that never get a
gradient (``no_grad``: PyTorch then creates no state for them).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.paths import CASES_DIR

# Files made elsewhere (e.g. by a newer PyTorch), kept in the repository: cases/corpus/README.md.
CORPUS_DIR = CASES_DIR / "corpus"


class CaseError(ValueError):
    """A case file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class ModelCase:
    name: str
    model: Mapping[str, Any]
    dtype: str = "float32"
    seed: int = 0
    input_shape: tuple[int, ...] = ()
    train_steps: int = 1
    features: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    input: Mapping[str, Any] | None = None  # e.g. {"dtype": "int64", "low": 0, "high": 100}
    fill: str | None = None  # "specials": PyTorch's state is overwritten with edge values
    tie: tuple[tuple[str, str], ...] = ()  # (target, source): target becomes source's Parameter
    # Buffers that are views of other state: (name, of, dim, start, length) registers buffer
    # ``name`` as ``of.narrow(dim, start, length)``, sharing its memory.
    views: tuple[tuple[str, str, int, int, int], ...] = ()
    # Extra buffers (name, shape, persistent, fill): registered with a constant value;
    # a non-persistent one must be absent from both sides' state.
    buffers: tuple[tuple[str, tuple[int, ...], bool, float], ...] = ()
    frozen: tuple[str, ...] = ()  # parameters with requires_grad off (still state)

    kind = "model"


@dataclass(frozen=True)
class OptimizerCase:
    name: str
    model_case: ModelCase
    optimizer: Mapping[str, Any]
    steps: int = 2
    no_grad: tuple[str, ...] = ()
    scheduler: Mapping[str, Any] | None = None  # PyTorch-side only, while the state is made
    state_from: str | None = None  # a torch.save file under cases/corpus/ holding {"model", "optimizer"}
    features: tuple[str, ...] = ()
    description: str = ""
    source: str = ""

    kind = "optimizer"

    @property
    def optimizer_type(self) -> str:
        return str(self.optimizer["type"])


@dataclass(frozen=True)
class TensorCase:
    """One tensor for the single-tensor file form (``Tensor.Save`` / ``Tensor.Load``)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    layout: str = "contiguous"   # or "transposed": written from a non-contiguous view
    features: tuple[str, ...] = ()
    description: str = ""
    source: str = ""

    kind = "tensor"


Case = ModelCase | OptimizerCase | TensorCase


@dataclass
class Catalogue:
    models: dict[str, ModelCase] = field(default_factory=dict)
    optimizers: dict[str, OptimizerCase] = field(default_factory=dict)
    tensors: dict[str, TensorCase] = field(default_factory=dict)

    def all(self) -> list[Case]:
        return [*self.models.values(), *self.optimizers.values(), *self.tensors.values()]

    def select(self, names: Iterable[str] | None = None,
               features: Iterable[str] | None = None) -> list[Case]:
        wanted = set(names or [])
        feats = set(features or [])
        out: list[Case] = []
        for case in self.all():
            if wanted and case.name not in wanted:
                continue
            if feats and not feats & set(case.features):
                continue
            out.append(case)
        return out


def _require(data: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise CaseError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, typ):
        raise CaseError(f"{where}: field {key!r} must be {typ}, got {type(value).__name__}")
    return value


def parse_model_case(data: Mapping[str, Any], where: str = "<model case>") -> ModelCase:
    return ModelCase(
        name=_require(data, "name", str, where),
        model=_require(data, "model", dict, where),
        dtype=data.get("dtype", "float32"),
        seed=int(data.get("seed", 0)),
        input_shape=tuple(_require(data, "input_shape", list, where)),
        train_steps=int(data.get("train_steps", 1)),
        features=tuple(data.get("features", ())),
        description=str(data.get("description", "")),
        source=where,
        input=data.get("input"),
        fill=data.get("fill"),
        tie=tuple((str(a), str(b)) for a, b in data.get("tie", ())),
        views=tuple(_parse_view(v, f"{where} views[{i}]") for i, v in enumerate(data.get("views", ()))),
        buffers=tuple(_parse_buffer(b, f"{where} buffers[{i}]") for i, b in enumerate(data.get("buffers", ()))),
        frozen=tuple(str(n) for n in data.get("frozen", ())),
    )


def _parse_buffer(data: Any, where: str) -> tuple[str, tuple[int, ...], bool, float]:
    if not isinstance(data, dict):
        raise CaseError(f"{where}: expected an object {{name, shape, persistent, fill}}")
    shape = _require(data, "shape", list, where)
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise CaseError(f"{where}.shape: {shape!r} must be sizes >= 0")
    persistent = data.get("persistent", True)
    fill = data.get("fill", 0.0)
    if not isinstance(persistent, bool) or not isinstance(fill, (int, float)) or isinstance(fill, bool):
        raise CaseError(f"{where}: persistent must be a bool and fill a number")
    return _require(data, "name", str, where), tuple(shape), persistent, float(fill)


def _parse_view(data: Any, where: str) -> tuple[str, str, int, int, int]:
    if not isinstance(data, dict):
        raise CaseError(f"{where}: expected an object {{name, of, dim, start, length}}")
    name, of = _require(data, "name", str, where), _require(data, "of", str, where)
    dim, start, length = (_require(data, k, int, where) for k in ("dim", "start", "length"))
    if dim < 0 or start < 0 or length < 0:
        raise CaseError(f"{where}: dim, start and length must be >= 0")
    return name, of, dim, start, length


def _corpus_file(value: Any, corpus: Path, where: str) -> str | None:
    """``state_from``: a path relative to the corpus folder naming a file that is there. The
    corpus is part of the repository, so a missing file is an error, never a skipped cell."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or Path(value).is_absolute() or ".." in Path(value).parts:
        raise CaseError(f"{where}: field 'state_from' must be a path relative to {corpus}, got {value!r}")
    if not (corpus / value).is_file():
        raise CaseError(f"{where}: field 'state_from' names {corpus / value}, which does not exist "
                        "(the corpus is part of the repository: cases/corpus/README.md)")
    return value


def parse_optimizer_case(data: Mapping[str, Any], models: Mapping[str, ModelCase],
                         where: str = "<optimizer case>", corpus: Path = CORPUS_DIR) -> OptimizerCase:
    model_ref = data.get("model")
    if isinstance(model_ref, str):
        if model_ref not in models:
            raise CaseError(f"{where}: field 'model' names unknown model case {model_ref!r}")
        model_case = models[model_ref]
    elif isinstance(model_ref, dict):
        model_case = parse_model_case(model_ref, where + " (inline model)")
    else:
        raise CaseError(f"{where}: field 'model' must name a model case or hold one")
    opt = _require(data, "optimizer", dict, where)
    _require(opt, "type", str, where + " optimizer")
    groups = _require(opt, "groups", list, where + " optimizer")
    for i, group in enumerate(groups):
        params = _require(group, "params", list, f"{where} optimizer group {i}")
        for p in params:
            if not isinstance(p, str):
                raise CaseError(f"{where} optimizer group {i}: params must be names, got {p!r}")
    return OptimizerCase(
        name=_require(data, "name", str, where),
        model_case=model_case,
        optimizer=opt,
        steps=int(data.get("steps", 2)),
        no_grad=tuple(data.get("no_grad", ())),
        scheduler=data.get("scheduler"),
        state_from=_corpus_file(data.get("state_from"), corpus, where),
        features=tuple(data.get("features", ())),
        description=str(data.get("description", "")),
        source=where,
    )


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CaseError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise CaseError(f"{path}: a case file holds one JSON object")
    return data


def load_catalogue(root: Path = CASES_DIR) -> Catalogue:
    cat = Catalogue()
    for path in [*sorted((root / "models").glob("*.json")), *sorted((root / "generated").glob("*.json")),
                 *sorted((root / "zoo" / "models").glob("*.json"))]:  # the model zoo: harness/cases/zoo.py
        case = parse_model_case(_read_json(path), str(path))
        if case.name in cat.models:
            raise CaseError(f"{path}: duplicate model case name {case.name!r}")
        cat.models[case.name] = case
    for path in [*sorted((root / "optimizers").glob("*.json")), *sorted((root / "zoo" / "optimizers").glob("*.json"))]:
        ocase = parse_optimizer_case(_read_json(path), cat.models, str(path))
        if ocase.name in cat.optimizers or ocase.name in cat.models:
            raise CaseError(f"{path}: duplicate case name {ocase.name!r}")
        cat.optimizers[ocase.name] = ocase
    tensor_file = root / "tensors.json"
    if tensor_file.exists():
        for tcase in parse_tensor_cases(_read_json(tensor_file), str(tensor_file)):
            if tcase.name in cat.tensors:
                raise CaseError(f"{tensor_file}: duplicate tensor case {tcase.name!r}")
            cat.tensors[tcase.name] = tcase
    return cat


def parse_tensor_cases(data: Mapping[str, Any], where: str) -> list[TensorCase]:
    """cases/tensors.json: every dtype x every named shape (values: harness/cases/inputs.py). A
    shape may name its own ``dtypes`` (a subset) and extra ``features`` (e.g. ``large``)."""
    dtypes = _require(data, "dtypes", list, where)
    shapes = _require(data, "shapes", dict, where)
    out = []
    for shape_name, spec in shapes.items():  # validate every shape first
        at = f"{where} shapes.{shape_name}"
        _require(spec, "shape", list, at)
        only = spec.get("dtypes", dtypes)
        if not isinstance(only, list) or not set(only) <= set(dtypes):
            raise CaseError(f"{at}.dtypes: {only!r} must be a list of the file's dtypes {dtypes}")
        extra = spec.get("features", [])
        if not isinstance(extra, list) or not all(isinstance(f, str) for f in extra):
            raise CaseError(f"{at}.features: {extra!r} must be a list of strings")
    for dtype in dtypes:
        for shape_name, spec in shapes.items():
            if dtype not in spec.get("dtypes", dtypes):
                continue
            shape = spec["shape"]
            out.append(TensorCase(
                name=f"tensor_{dtype}_{shape_name}", dtype=str(dtype), shape=tuple(int(d) for d in shape),
                layout=str(spec.get("layout", "contiguous")),
                features=("tensor-file", f"dtype-{dtype}", f"shape-{shape_name}", *spec.get("features", [])),
                description=str(spec.get("description", f"{dtype} tensor, {shape_name} {shape}: edge values")),
                source=where))
    return out
