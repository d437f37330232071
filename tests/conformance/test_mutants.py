"""Each single fault in an exported file turns its cell red against real TorchSharp."""
from __future__ import annotations

import types
from pathlib import Path

import pytest

from harness.cases import torch_build
from harness.cases import load_catalogue
from harness.running.plan import Cell
from harness.running.runner import CellRunner
from harness.codecs import CodecUnderTest
from harness.drivers.pytorch import PyTorchDriver

from . import mutant_codecs

CATALOGUE = load_catalogue()


def _run(cell_runner: CellRunner, tmp_path: Path, codec_module: types.ModuleType, case: str, check: str):
    codec = CodecUnderTest(codec_module.__name__, [codec_module])
    runner = CellRunner(PyTorchDriver(codec), cell_runner.ts, tmp_path)
    (version,) = list(cell_runner.ts)[:1]
    c = next(x for x in CATALOGUE.all() if x.name == case)
    return runner.run(Cell(c, check, "host", version, "cpu", codec.name))


def test_unmutated_codec_passes(cell_runner: CellRunner, tmp_path: Path) -> None:
    """The control: the wrapper with no fault passes the cells the mutants turn red."""
    for case, check in (("lenet1", "py2ts"), ("adam_two_groups", "py2ts")):
        result = _run(cell_runner, tmp_path / case, mutant_codecs._codec("control"), case, check)
        assert result.outcome == "pass", result.reason


def test_flipped_bit_in_exported_tensor_is_red(cell_runner: CellRunner, tmp_path: Path) -> None:
    result = _run(cell_runner, tmp_path, mutant_codecs.flipped_bit(), "lenet1", "py2ts")
    assert result.outcome == "fail"
    assert "'linear.bias': bytes differ" in result.reason


def test_renamed_key_is_red(cell_runner: CellRunner, tmp_path: Path) -> None:
    result = _run(cell_runner, tmp_path, mutant_codecs.renamed_key("conv-1.weight", "conv-1.weights"),
                  "lenet1", "py2ts")
    assert result.outcome == "fail"
    assert "load_module" in result.reason


@pytest.mark.parametrize("code", [3, 9])  # int32: same element size; complex64: double size
def test_wrong_dtype_code_is_red(cell_runner: CellRunner, tmp_path: Path, code: int) -> None:
    result = _run(cell_runner, tmp_path, mutant_codecs.wrong_dtype_code(code), "lenet1", "py2ts")
    assert result.outcome == "fail"
    assert "load_module" in result.reason


def test_wrong_adam_beta_is_red(cell_runner: CellRunner, tmp_path: Path) -> None:
    result = _run(cell_runner, tmp_path, mutant_codecs.wrong_adam_beta1(), "adam_two_groups", "py2ts")
    assert result.outcome == "fail"
    assert "group[0].beta1" in result.reason


def test_swapped_moments_round_trip_bitwise_but_the_semantic_check_is_red(cell_runner, tmp_path):
    mutant = mutant_codecs.swapped_adam_moments()
    case = next(x for x in CATALOGUE.all() if x.name == "adam_two_groups")
    # Through real TorchSharp: it loads the swapped file and saves exactly the same bytes.
    py = PyTorchDriver(CodecUnderTest("swapped", [mutant]))
    py.build(case, "cpu")
    params = torch_build.reference_parameters(case.model_case)
    for step in range(case.steps):
        py.step(torch_build.make_gradients(params, case.model_case.seed, step))
    py.save_optimizer(tmp_path / "swapped.dat")
    ts = next(iter(cell_runner.ts.values()))
    ts.build(case, "cpu")
    ts.load_optimizer(tmp_path / "swapped.dat")
    ts.save_optimizer(tmp_path / "resaved.dat")
    assert (tmp_path / "swapped.dat").read_bytes() == (tmp_path / "resaved.dat").read_bytes()
    # ... but continuing training on both sides shows the state means something else.
    semantic = _run(cell_runner, tmp_path / "sem", mutant, "adam_two_groups", "continue_py2ts")
    assert semantic.outcome == "fail"
    assert "exp_avg" in semantic.reason


def test_lr_written_as_initial_lr_is_red(cell_runner, tmp_path):
    result = _run(cell_runner, tmp_path, mutant_codecs.lr_as_initial_lr(), "sgd_steplr", "continue_py2ts")
    assert result.outcome == "fail"
    assert "initial_lr" in result.reason
    control = _run(cell_runner, tmp_path / "ok", mutant_codecs._codec("control"), "sgd_steplr", "continue_py2ts")
    assert control.outcome == "pass"


@pytest.mark.parametrize("check", ["contract_usable", "contract_damaged"])
def test_our_codec_keeps_the_contract(cell_runner: CellRunner, tmp_path: Path, check: str) -> None:
    result = _run(cell_runner, tmp_path, mutant_codecs._codec("control"), "lenet1", check)
    assert result.outcome == "pass", result.reason


def test_tensors_aliasing_read_only_bytes_are_red(cell_runner: CellRunner, tmp_path: Path) -> None:
    result = _run(cell_runner, tmp_path, mutant_codecs.readonly_views(), "lenet1", "contract_usable")
    assert result.outcome == "fail"
    assert "alias read-only memory" in result.reason
    # ... while every byte it reads is right: the state checks cannot see it.
    same_bytes = _run(cell_runner, tmp_path / "ts2py", mutant_codecs.readonly_views(), "lenet1", "ts2py")
    assert same_bytes.outcome == "pass"


def test_an_unclear_error_for_a_damaged_file_is_red(cell_runner: CellRunner, tmp_path: Path) -> None:
    result = _run(cell_runner, tmp_path, mutant_codecs.unclear_errors(), "lenet1", "contract_damaged")
    assert result.outcome == "fail"
    assert "truncated to" in result.reason and "unclear IndexError" in result.reason
