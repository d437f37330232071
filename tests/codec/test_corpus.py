"""The corpus in cases/corpus/torch-2.13/ (saved by PyTorch 2.13; never regenerated): every file holding module or
optimizer state exports without error (LBFGS: UnsupportedOptimizerError), round trips
bitwise, and the optimizer records load into this PyTorch's optimizers."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch

from harness import codec
from tests.codec._util import CORPUS, assert_same_tensor

_DIR = CORPUS / "torch-2.13"
# No fallback: the corpus is part of the repository, so a missing manifest fails collection.
NAMES = sorted(json.loads((_DIR / "manifest.json").read_text(encoding="utf-8"))["files"])
TS_TO_TORCH = {"RMSProp": "RMSprop"}


def _load(corpus_dir: Path, name: str):
    return torch.load(corpus_dir / name, map_location="cpu")


@pytest.mark.parametrize("name", NAMES)
def test_corpus_file_exports(name: str, corpus_dir: Path) -> None:
    d = _load(corpus_dir, name)
    if name.startswith("model_"):
        sd = d["state_dict"]
        buf = io.BytesIO()
        codec.write_state_dict(buf, sd)
        back = codec.read_state_dict(io.BytesIO(buf.getvalue()))
        assert list(back) == list(sd)
        for k in sd:
            assert_same_tensor(back[k], sd[k], k)
    elif name.startswith("optim_"):
        cls, osd, params = d["optimizer_class"], d["optimizer"], list(d["model"].values())
        if cls == "LBFGS":
            with pytest.raises(codec.UnsupportedOptimizerError, match="TorchSharp has no file form for LBFGS"):
                codec.optimizer_record_from_state_dict(cls, osd, params)
            return
        rec = codec.optimizer_record_from_state_dict(cls, osd, params)
        buf = io.BytesIO()
        codec.write_optimizer(buf, rec)
        back = codec.read_optimizer(io.BytesIO(buf.getvalue()))
        assert back.groups == rec.groups and len(back.states) == len(params)
        for j, (a, b) in enumerate(zip(rec.states, back.states)):
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(a[k], torch.Tensor):
                    assert_same_tensor(b[k], a[k], f"state[{j}].{k}")
                else:
                    assert a[k] == b[k]
        # each stored state equals PyTorch 2.13's, bit for bit
        flat = [pid for g in osd["param_groups"] for pid in g["params"]]
        for j, pid in enumerate(flat):
            for k, v in osd["state"].get(pid, {}).items():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    assert_same_tensor(back.states[j][k], v, f"{name} state[{j}].{k}")
                elif k == "step":
                    assert back.states[j][k] == int(float(v))
    elif name == "tensors_all_dtypes.pt":
        buf = io.BytesIO()
        codec.write_state_dict(buf, d)
        back = codec.read_state_dict(io.BytesIO(buf.getvalue()))
        assert list(back) == list(d)
        for k, t in d.items():
            assert_same_tensor(back[k], t, k)
    else:  # pragma: no cover - a new corpus file this test does not know yet
        pytest.fail(f"corpus file {name} is not covered by test_corpus_file_exports")


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("optim_") and "lbfgs" not in n])
def test_corpus_optimizer_loads_into_this_pytorch(name: str, corpus_dir: Path) -> None:
    d = _load(corpus_dir, name)
    rec = codec.optimizer_record_from_state_dict(d["optimizer_class"], d["optimizer"], list(d["model"].values()))
    model = torch.nn.ModuleDict({"lin1": torch.nn.Linear(10, 10), "lin2": torch.nn.Linear(10, 10)})
    model.load_state_dict(d["model"])
    sizes = [len(g["params"]) for g in d["optimizer"]["param_groups"]]
    params = list(model.parameters())
    groups, at = [], 0
    for n in sizes:
        groups.append({"params": params[at:at + n]})
        at += n
    cls = getattr(torch.optim, TS_TO_TORCH.get(rec.class_name, rec.class_name))
    opt = cls(groups, lr=0.01)
    opt.load_state_dict(codec.optimizer_record_to_state_dict(rec, opt))
    x = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    opt.zero_grad()
    model["lin2"](model["lin1"](x)).pow(2).mean().backward()
    opt.step()  # PyTorch 1.13 steps with the state PyTorch 2.13 saved
    assert all(torch.isfinite(p).all() for p in params)


def test_corpus_specifics(corpus_dir: Path) -> None:
    d = _load(corpus_dir, "optim_sgd_steplr.pt")
    rec = codec.optimizer_record_from_state_dict(d["optimizer_class"], d["optimizer"], list(d["model"].values()))
    assert (rec.groups[0]["initial_lr"], rec.groups[0]["lr"]) == (0.1, 0.0125)
    d = _load(corpus_dir, "optim_adam_lazy_state.pt")
    rec = codec.optimizer_record_from_state_dict(d["optimizer_class"], d["optimizer"], list(d["model"].values()))
    assert [s["step"] for s in rec.states] == [1, 1, 0, 0]
    assert not rec.states[2]["exp_avg"].any() and rec.states[2]["exp_avg"].shape == (10, 10)
    d = _load(corpus_dir, "optim_sgd_no_momentum.pt")
    rec = codec.optimizer_record_from_state_dict(d["optimizer_class"], d["optimizer"], list(d["model"].values()))
    assert all(s["momentum_buffer"] is None for s in rec.states) and rec.param_counts == [2, 2]
    d = _load(corpus_dir, "tensors_all_dtypes.pt")
    assert not d["transposed_view"].is_contiguous()
    buf = io.BytesIO()
    codec.write_tensor(buf, d["f32_nan_payloads"])
    assert buf.getvalue()[3:] == d["f32_nan_payloads"].numpy().tobytes()
