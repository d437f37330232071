"""The model zoo end to end (cases/zoo/, harness/cases/zoo.py): three models, each built by
torchvision and by TorchSharp's TorchVision, through the structure check, both state
directions, eval outputs both ways, a train-mode forward and continued SGD-momentum steps,
against the real TorchSharp worker; plus the zoo's own logic on hand-made values."""
from __future__ import annotations

import pytest
import torch

from harness.cases import load_catalogue
from harness.checks.zoo import structure_differences, train_mode_problem
from harness.verdicts.digest import TensorDigest
from harness.running.plan import Cell, make_cells
from harness.running.pytest_plugin import assert_outcome
from harness.running.runner import CellRunner
from harness.cases.zoo import MIN_OUTPUT_SCALE, DegenerateState, ZooError, check_spec, require_scale, zoo_selection

MODELS = ("zoo_resnet18", "zoo_mobilenet_v2", "zoo_alexnet")
CHECKS = ("zoo_structure", "py2ts", "ts2py", "functional", "zoo_outputs_ts2py", "zoo_train_forward",
          "zoo_weights_file")


def _cells() -> list[Cell]:
    from harness.drivers.torchsharp import DEFAULT_VERSION
    cat = load_catalogue()
    version = torch.__version__.split("+")[0]
    cells = make_cells([cat.models[n] for n in MODELS], version, [DEFAULT_VERSION], "ours", CHECKS, ["cpu"])
    return cells + make_cells([cat.optimizers["zoo_resnet18_sgd"]], version, [DEFAULT_VERSION], "ours",
                              ["continue_py2ts"], ["cpu"])


@pytest.mark.parametrize("zoo_cell", _cells(), ids=lambda c: c.id)
def test_zoo_cell(zoo_cell: Cell, cell_runner: CellRunner) -> None:
    assert_outcome(cell_runner.run(zoo_cell))


def _d(shape: tuple[int, ...], dtype: str = "float32") -> TensorDigest:
    return TensorDigest(dtype, shape, "0" * 64)


def test_structure_differences_names_each_one() -> None:
    py = {"a.weight": _d((2, 3)), "a.bias": _d((2,)), "bn.running_mean": _d((2,)),
          "bn.num_batches_tracked": _d((), "int64"), "fc.weight": _d((4, 2))}
    ts = {"a.bias": _d((3,)), "a.weight": _d((2, 3)), "bn.running_mean": _d((2,)),
          "bn.num_batches_tracked": _d((), "int32"), "aux.weight": _d((1,))}
    got = structure_differences(py, ts, ["a.weight", "a.bias", "fc.weight"],
                                ["a.bias", "a.weight", "bn.running_mean", "aux.weight"])
    assert got == ["only PyTorch has fc.weight float32[4, 2]", "only TorchSharp has aux.weight float32[1]",
                   "a.bias: shape [2] in PyTorch, [3] in TorchSharp",
                   "bn.running_mean: a buffer in PyTorch, a parameter in TorchSharp",
                   "bn.num_batches_tracked: dtype int64 in PyTorch, int32 in TorchSharp",
                   "order of parameters: entry 0 is a.weight in PyTorch, a.bias in TorchSharp"]


def test_train_mode_bound_follows_pytorchs_distance() -> None:
    ref = torch.tensor([1.0, -2.0], dtype=torch.float64)
    py = torch.tensor([1.0 + 1e-5, -2.0])
    details: dict[str, object] = {}
    assert train_mode_problem(py, torch.tensor([1.0, -2.0 + 3e-5]), ref, "out", details) is None
    why = train_mode_problem(py, torch.tensor([1.0, -2.1]), ref, "out", details)
    assert why is not None and why.startswith("out: TorchSharp is wrong: 0.1 from the float64 reference")
    why = train_mode_problem(torch.tensor([1.0, -2.1]), torch.tensor([1.0, -2.0]), ref, "out", details)
    assert why is not None and why.startswith("out: PyTorch is wrong")
    near_zero = torch.tensor([1e-9], dtype=torch.float64)  # a running mean of activations of spread 1
    assert train_mode_problem(torch.tensor([3e-9]), torch.tensor([4e-9]), near_zero, "m", details) is not None
    assert train_mode_problem(torch.tensor([3e-9]), torch.tensor([4e-9]), near_zero, "m", details, 1.0) is None


def test_structure_ignores_torchsharps_parameters_before_buffers() -> None:
    py = {"c.weight": _d((1,)), "bn.running_mean": _d((1,)), "d.weight": _d((1,))}
    ts = {"c.weight": _d((1,)), "d.weight": _d((1,)), "bn.running_mean": _d((1,))}
    assert structure_differences(py, ts, ["c.weight", "d.weight"], ["c.weight", "d.weight"]) == []


def test_degenerate_outputs_are_an_error() -> None:
    details: dict[str, object] = {}
    with pytest.raises(DegenerateState) as exc:
        require_scale(torch.full((2, 3), 1e-9), details)
    assert exc.value.as_verdict().outcome == "error"
    assert details["zoo_output_scale"] == pytest.approx(1e-9)
    require_scale(torch.tensor([MIN_OUTPUT_SCALE, -2.0]), details)
    assert details["zoo_output_scale"] == 2.0


def test_spec_checks_arguments() -> None:
    assert check_spec({"type": "TorchVision", "arch": "vgg11_bn", "num_classes": 10, "dropout": 0.0}) == (
        "vgg11_bn", {"num_classes": 10, "dropout": 0.0})
    with pytest.raises(ZooError, match="resnet18 takes no 'dropout'"):
        check_spec({"type": "TorchVision", "arch": "resnet18", "dropout": 0.1})
    with pytest.raises(ZooError, match="'densenet121' is not a model both libraries build"):
        check_spec({"type": "TorchVision", "arch": "densenet121"})


def test_zoo_selection() -> None:
    cases = load_catalogue().all()
    default = {c.name for c in zoo_selection(cases, "default") if "zoo" in c.features}
    assert default == {"zoo_resnet18", "zoo_mobilenet_v3_small", "zoo_googlenet", "zoo_vgg11_bn",
                       "zoo_resnet18_sgd", "zoo_mobilenet_v3_small_adamw"}
    assert not [c for c in zoo_selection(cases, "none") if "zoo" in c.features]
    assert len([c for c in zoo_selection(cases, "full") if "zoo" in c.features]) == 72
