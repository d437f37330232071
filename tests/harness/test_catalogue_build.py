"""Every model case of the catalogue builds in PyTorch, runs forward on an input of its
``input_shape`` (integer input where the case says so) and trains; the container types keep
nn.Sequential's / nn.Module's keys; lenet1_docs has the keys of the corpus file."""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.cases import CORPUS_DIR, load_catalogue
from harness.paths import CASES_DIR
from harness.cases.torch_build import (DTYPES, INT_DTYPES, SpecError, SpecSequential, build_model, build_module,
                                       make_input, train_model)

MODEL_FILES = sorted((CASES_DIR / "models").glob("*.json"))


def _raw(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    except RuntimeError as exc:  # PyTorch 1.13 has no float16 conv/addmm kernels on the CPU
        if x.dtype == torch.float16 or "for 'Half'" in str(exc):
            pytest.skip(f"this PyTorch cannot run the model on CPU: {exc}")
        raise


@pytest.mark.parametrize("path", MODEL_FILES, ids=[p.stem for p in MODEL_FILES])
def test_model_case_builds_runs_and_trains(path: Path) -> None:
    case = _raw(path)
    assert case["name"] == path.stem
    assert case.get("features"), "a case carries feature tags"
    model = build_model(case["model"], case.get("dtype", "float32"), case.get("seed", 0))
    dtype = DTYPES[case.get("dtype", "float32")]
    state = model.state_dict()
    assert state, "the model has state to exchange"
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            assert t.dtype == torch.int64 and t.dim() == 0, name
        else:
            assert t.dtype == dtype, name
    spec = case.get("input")
    if spec is not None:
        assert spec["dtype"] in INT_DTYPES and 0 <= spec.get("low", 0) < spec["high"]
    x = make_input(case["input_shape"], torch.Generator().manual_seed(0), dtype, spec)
    assert list(x.shape) == case["input_shape"]
    y = _forward(model, x)
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and torch.isfinite(y).all()
    before = {k: v.clone() for k, v in state.items()}
    train_model(model, case["input_shape"], case.get("train_steps", 1), case.get("seed", 0), input_spec=spec)
    if case.get("train_steps", 1) > 0:
        assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items()), "training moved nothing"


def test_catalogue_loads_every_model_file() -> None:
    assert {p.stem for p in MODEL_FILES} <= set(load_catalogue().models)


def test_spec_sequential_keeps_sequential_keys_and_unwraps_tuples() -> None:
    spec = _raw(CASES_DIR / "models" / "lstm_stack.json")["model"]
    torch.manual_seed(0)
    ours = build_module(spec)
    assert isinstance(ours, SpecSequential)
    plain = nn.Sequential(OrderedDict(ours.named_children()))
    assert list(ours.state_dict()) == list(plain.state_dict())
    assert list(ours.state_dict())[:3] == ["embedding.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0"]
    assert "lstm.weight_ih_l1" in ours.state_dict()
    y = ours(torch.randint(0, 100, (3, 7)))
    assert y.shape == (3, 7, 1)


def test_containers_keys() -> None:
    model = build_model(_raw(CASES_DIR / "models" / "nested_containers.json")["model"], "float32", 0)
    keys = list(model.state_dict())
    assert "blöck-1.0.weight" in keys and "blöck-1.2.proj-α.weight" in keys
    assert "heads.hëad-0.weight" in keys and "heads.out.bn.num_batches_tracked" in keys
    mha = build_model(_raw(CASES_DIR / "models" / "mha_bias_kv.json")["model"], "float32", 0)
    assert list(mha.state_dict())[:6] == ["attn.in_proj_weight", "attn.in_proj_bias", "attn.bias_k", "attn.bias_v",
                                          "attn.out_proj.weight", "attn.out_proj.bias"]
    norm = build_model(_raw(CASES_DIR / "models" / "batchnorm_no_running_stats.json")["model"], "float32", 0)
    assert not [k for k in norm.state_dict() if "running" in k or "num_batches" in k]
    inorm = build_model(_raw(CASES_DIR / "models" / "instancenorm_affine.json")["model"], "float32", 0)
    assert {"inorm.weight", "inorm.running_mean", "inorm.num_batches_tracked"} <= set(inorm.state_dict())


def test_module_list_names_must_be_indices() -> None:
    lin = {"type": "Linear", "in_features": 2, "out_features": 2}
    assert list(build_module({"type": "ModuleList", "children": [lin, ["1", lin]]}).state_dict())[0] == "0.weight"
    with pytest.raises(SpecError, match="must be named '0'"):
        build_module({"type": "ModuleList", "children": [["first", lin]]})
    with pytest.raises(SpecError, match="unknown argument"):
        build_module({"type": "Module", "children": [], "extra": 1})


def test_lenet1_docs_keys_match_corpus() -> None:
    corpus = torch.load(CORPUS_DIR / "torch-2.13" / "model_lenet1.pt")["state_dict"]  # in the repository
    case = _raw(CASES_DIR / "models" / "lenet1_docs.json")
    state = build_model(case["model"], case["dtype"], case["seed"]).state_dict()
    assert list(state) == list(corpus)
    for k, t in corpus.items():
        assert (state[k].dtype, state[k].shape) == (t.dtype, t.shape), k
