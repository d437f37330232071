"""The PyBridge file forms of the worker protocol (docs/protocol.md "File forms") on real
TorchSharp 0.107.0 + TorchSharp.PyBridge, through both TorchSharp drivers (the C# worker and
the pythonnet host): files PyTorch 1.13 writes with ``torch.save`` (and safetensors written by
hand: the host has no safetensors package) load with equal digests, files PyBridge writes load
with ``torch.load`` holding equal tensors, and the two drivers report identical digests.

Needs the built worker and host (``python3 -m harness build-worker``) and libpython3.11.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from harness.cases import torch_build
from harness.cases import OptimizerCase, load_catalogue
from harness.codecs import load_codec
from harness.verdicts.compare import compare_modules, compare_optimizers
from harness.verdicts.digest import TensorDigest
from harness.drivers.base import TorchSharpSide
from harness.drivers.protocol import WorkerParseError, WorkerRuntimeError
from harness.drivers.pythonnet import PythonnetDriver
from harness.drivers.pytorch import PyTorchDriver
from harness.drivers.torchsharp import DEFAULT_VERSION, TorchSharpDriver
from harness.routes.safetensors import decode, write_state_dict

CAT = load_catalogue()
MODEL = CAT.models["linear_conv1d_bn1d"]      # Linear + Conv1d + BatchNorm1d: parameters and buffers
ADAM = CAT.optimizers["adam_two_groups"]      # two groups, the second with amsgrad (max_exp_avg_sq)
DRIVERS = {"csharp": TorchSharpDriver, "pythonnet": PythonnetDriver}


@pytest.fixture(scope="module", params=sorted(DRIVERS))
def ts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorchSharpSide]:
    driver = DRIVERS[request.param](DEFAULT_VERSION, workdir=tmp_path_factory.mktemp(f"pybridge-{request.param}"))
    yield driver
    driver.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TorchSharpSide]]:
    drivers = {k: cls(DEFAULT_VERSION, workdir=tmp_path_factory.mktemp(f"both-{k}")) for k, cls in DRIVERS.items()}
    yield drivers
    for d in drivers.values():
        d.close()


def trained(case: object = MODEL) -> PyTorchDriver:
    """PyTorch's state for a case: a model trained, an optimizer stepped on fixed gradients."""
    py = PyTorchDriver(load_codec("ours"))
    py.build(case, "cpu")  # type: ignore[arg-type]
    if isinstance(case, OptimizerCase):
        params = torch_build.reference_parameters(case.model_case)
        for step in range(max(case.steps, 3)):
            py.step(torch_build.make_gradients(params, case.model_case.seed, step, skip=case.no_grad))
    else:
        py.train(MODEL.train_steps, MODEL.seed, MODEL.input_shape, MODEL.input)
    return py


def module_digests(state: dict[str, torch.Tensor]) -> dict[str, TensorDigest]:
    return {k: TensorDigest.of(v) for k, v in state.items()}


def test_hello_lists_the_pybridge_forms(ts: TorchSharpSide) -> None:
    hello = ts.hello  # type: ignore[attr-defined]
    assert hello["forms"] == ["dat", "pth", "safetensors", "checkpoint"]
    assert str(hello["pybridge"]).startswith("1.4.4+")
    assert {"pth", "safetensors", "checkpoint"} <= ts.capabilities.features


def test_torch_save_state_dict_loads_with_load_py(ts: TorchSharpSide, tmp_path: Path) -> None:
    py = trained()
    state = py.model.state_dict()  # type: ignore[union-attr]
    torch.save(state, tmp_path / "m.pth")
    ts.build(MODEL, "cpu")
    before = ts.digest().module
    ts.load_module(tmp_path / "m.pth", form="pth")
    got = ts.digest().module
    assert compare_modules(module_digests(state), got, "PyTorch", "TorchSharp") == []
    assert got != before  # the load changed TorchSharp's state (it is not PyTorch's build state)


def test_save_py_loads_with_torch_load(ts: TorchSharpSide, tmp_path: Path) -> None:
    py = trained()
    state = py.model.state_dict()  # type: ignore[union-attr]
    torch.save(state, tmp_path / "m.pth")
    ts.build(MODEL, "cpu")
    ts.load_module(tmp_path / "m.pth", form="pth")
    ts.save_module(tmp_path / "back.pth", form="pth")
    back = torch.load(tmp_path / "back.pth")
    assert sorted(back) == sorted(state)  # TorchSharp orders buffers after parameters
    for k in state:
        assert torch.equal(back[k], state[k]), k


def test_safetensors_both_ways(ts: TorchSharpSide, tmp_path: Path) -> None:
    state = trained().model.state_dict()  # type: ignore[union-attr]
    write_state_dict(tmp_path / "m.safetensors", state)
    ts.build(MODEL, "cpu")
    ts.load_module(tmp_path / "m.safetensors", form="safetensors")
    assert compare_modules(module_digests(state), ts.digest().module, "PyTorch", "TorchSharp") == []
    ts.save_module(tmp_path / "back.safetensors", form="safetensors")
    back = decode(Path(tmp_path / "back.safetensors").read_bytes())
    assert sorted(back) == sorted(state)
    for k in state:
        assert torch.equal(back[k], state[k]), k


def test_adam_amsgrad_state_round_trip(ts: TorchSharpSide, tmp_path: Path) -> None:
    py = trained(ADAM)
    torch.save(py.model.state_dict(), tmp_path / "m.pth")  # type: ignore[union-attr]
    saved = py.optimizer.state_dict()  # type: ignore[union-attr]
    torch.save(saved, tmp_path / "o.pth")
    ts.build(ADAM, "cpu")
    ts.load_module(tmp_path / "m.pth", form="pth")
    ts.load_optimizer(tmp_path / "o.pth", form="pth")
    expected = py.digest()
    assert compare_optimizers(expected.optimizer, ts.digest().optimizer, "TorchSharp") == []
    ts.save_optimizer(tmp_path / "back.pth", form="pth")
    back = torch.load(tmp_path / "back.pth")
    assert sorted(back["state"]) == sorted(saved["state"])
    for index, state in saved["state"].items():
        assert "max_exp_avg_sq" in state or index < 2  # the second group has amsgrad
        for name, value in state.items():
            if name == "step":  # PyTorch 1.13 keeps a float32 tensor, PyBridge writes an int64 one
                assert float(back["state"][index][name]) == float(value) == 3.0
            else:
                assert torch.equal(back["state"][index][name], value), (index, name)
    assert [g["params"] for g in back["param_groups"]] == [g["params"] for g in saved["param_groups"]]
    assert [g["betas"] for g in back["param_groups"]] == [(0.8, 0.9), (0.7, 0.79)]


@pytest.mark.parametrize("form", ["pth", "safetensors"])
def test_tensor_roundtrip(ts: TorchSharpSide, tmp_path: Path, form: str) -> None:
    t = torch.arange(-6, 6, dtype=torch.float64).reshape(3, 4) / 7
    src, dest = tmp_path / f"t.{form}", tmp_path / f"back.{form}"
    if form == "pth":
        torch.save({"tensor": t}, src)
    else:
        write_state_dict(src, {"tensor": t})
    assert ts.tensor_roundtrip(src, dest, form=form) == TensorDigest.of(t)
    back = torch.load(dest) if form == "pth" else decode(Path(dest).read_bytes())
    assert list(back) == ["tensor"] and torch.equal(back["tensor"], t)


def test_tensor_roundtrip_refuses_other_entries(ts: TorchSharpSide, tmp_path: Path) -> None:
    torch.save({"tensor": torch.ones(2), "extra": torch.zeros(1)}, tmp_path / "two.pth")
    with pytest.raises(WorkerRuntimeError) as info:
        ts.tensor_roundtrip(tmp_path / "two.pth", tmp_path / "out.pth", form="pth")
    assert info.value.error_type == "System.IO.InvalidDataException"
    assert "a single-tensor file holds one tensor under 'tensor'; it holds [extra, tensor]" in info.value.error_message


def test_bare_torch_save_of_a_tensor_is_refused(ts: TorchSharpSide, tmp_path: Path) -> None:
    """``torch.save(t)`` (no dict) pickles a tensor, not a dictionary: PyBridge's
    UnpickleStateDict casts the unpickled object to Hashtable and fails with InvalidCastException."""
    torch.save(torch.ones(3), tmp_path / "bare.pth")
    with pytest.raises(WorkerRuntimeError) as info:
        ts.tensor_roundtrip(tmp_path / "bare.pth", tmp_path / "out.pth", form="pth")
    assert info.value.error_type == "System.InvalidCastException"


@pytest.mark.parametrize("layout", ["pytorch_model.bin", "model.safetensors", "sharded"])
def test_load_checkpoint_folder(ts: TorchSharpSide, tmp_path: Path, layout: str) -> None:
    state = trained().model.state_dict()  # type: ignore[union-attr]
    folder = tmp_path / layout
    folder.mkdir()
    if layout == "pytorch_model.bin":
        torch.save(state, folder / layout)
    elif layout == "model.safetensors":
        write_state_dict(folder / layout, state)
    else:  # save_pretrained's sharded form: an index naming each key's shard
        keys = list(state)
        shards = {"pytorch_model-00001-of-00002.bin": keys[: len(keys) // 2],
                  "pytorch_model-00002-of-00002.bin": keys[len(keys) // 2:]}
        for name, part in shards.items():
            torch.save({k: state[k] for k in part}, folder / name)
        index = {"metadata": {"total_size": 0}, "weight_map": {k: n for n, part in shards.items() for k in part}}
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    ts.build(MODEL, "cpu")
    ts.load_checkpoint(folder)
    assert compare_modules(module_digests(state), ts.digest().module, "PyTorch", "TorchSharp") == []


@pytest.mark.parametrize("op, fields, message", [
    ("load_module", {"path": "x", "format": "onnx"},
     "load_module.format: 'onnx' is not one of dat, pth, safetensors, checkpoint"),
    ("save_module", {"path": "x", "format": "checkpoint"},
     "save_module.format: 'checkpoint' is not one of dat, pth, safetensors"),
    ("load_optimizer", {"path": "x", "format": "safetensors"},
     "load_optimizer.format: 'safetensors' is not one of dat, pth"),
    ("tensor_roundtrip", {"input": "x", "output": "y", "format": "PTH"},
     "tensor_roundtrip.format: 'PTH' is not one of dat, pth, safetensors"),
])
def test_unknown_format_is_a_parse_error(ts: TorchSharpSide, op: str, fields: dict[str, str], message: str) -> None:
    ts.build(ADAM, "cpu")
    with pytest.raises(WorkerParseError) as info:
        ts.call(op, **fields)  # type: ignore[attr-defined]
    assert message in str(info.value)


def test_both_drivers_give_identical_digests(both: dict[str, TorchSharpSide], tmp_path: Path) -> None:
    py = trained(ADAM)
    torch.save(py.model.state_dict(), tmp_path / "m.pth")  # type: ignore[union-attr]
    torch.save(py.optimizer.state_dict(), tmp_path / "o.pth")  # type: ignore[union-attr]
    write_state_dict(tmp_path / "m.safetensors", py.model.state_dict())  # type: ignore[union-attr]
    t = torch.randn(5, 3, generator=torch.Generator().manual_seed(3)).to(torch.bfloat16)
    torch.save({"tensor": t}, tmp_path / "t.pth")
    seen = {}
    for kind, d in both.items():
        d.build(ADAM, "cpu")
        d.load_module(tmp_path / "m.pth", form="pth")
        d.load_optimizer(tmp_path / "o.pth", form="pth")
        after_pth = d.digest()
        d.load_module(tmp_path / "m.safetensors", form="safetensors")
        seen[kind] = (after_pth.module, after_pth.optimizer, d.digest().module,
                      d.tensor_roundtrip(tmp_path / "t.pth", tmp_path / f"t-{kind}.pth", form="pth"))
    assert seen["csharp"] == seen["pythonnet"]
    assert seen["csharp"][3] == TensorDigest.of(t)
