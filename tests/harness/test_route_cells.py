"""The route axis end to end through the cells, with a FAKE TorchSharp (tests/harness/
fake_drivers.py) whose PyBridge stand-in is PyTorch's own torch.save/torch.load: every check
passes on the pth route with a faithful fake, and each named fault turns its check red with
the road named where the road is at fault."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.cases import load_catalogue
from harness.codecs import load_codec
from harness.drivers.pytorch import PyTorchDriver
from harness.running.plan import Cell
from harness.routes import ROUTES
from harness.running.runner import CellRunner

from .fake_drivers import FakeTorchSharp

CAT = load_catalogue()


def run(tmp_path: Path, case: str, check: str, route: str, fake: FakeTorchSharp | None = None):
    c = next(x for x in CAT.all() if x.name == case)
    runner = CellRunner(PyTorchDriver(load_codec("ours")), {"fake": fake or FakeTorchSharp()}, tmp_path)
    return runner.run(Cell(c, check, "host", "fake", "cpu", "ours", route))


@pytest.mark.parametrize("case, check", [
    ("lenet1", "py2ts"), ("lenet1", "py2ts2py"), ("lenet1", "ts2py"), ("lenet1", "functional"),
    ("lenet1", "partial_load"), ("buffer_views", "view_load"), ("lenet1", "checkpoint"),
    ("lenet1", "checkpoint_sharded"), ("lenet1", "pth_protocols"), ("lenet1", "pth_legacy"),
    ("lenet1", "damaged_load"), ("adam_two_groups", "py2ts"), ("adam_two_groups", "py2ts2py"),
    ("adam_two_groups", "continue_py2ts"), ("adam_two_groups", "continue_ts2py"),
    ("tensor_float32_vector", "tensor_py2ts"), ("tensor_float32_vector", "tensor_ts2py"),
    ("tensor_bfloat16_vector", "tensor_overwrite"),
])
def test_a_faithful_fake_passes_every_check_on_the_pth_route(tmp_path, case, check):
    result = run(tmp_path, case, check, "pth")
    assert (result.outcome, result.route) == ("pass", "pth"), result.reason
    assert result.id.endswith("::ours::pth")


def test_the_route_files_carry_the_routes_suffix(tmp_path):
    result = run(tmp_path, "lenet1", "py2ts", "pth", FakeTorchSharp("corrupt"))
    assert result.outcome == "fail"
    assert Path(result.evidence or "", "py_module.pth").exists()
    assert "--route pth" in Path(result.evidence or "", "repro.sh").read_text()


def test_a_route_the_case_kind_needs_but_lacks_is_a_skip(tmp_path):
    result = run(tmp_path, "adam_two_groups", "py2ts", "safetensors")
    assert result.outcome == "skip"
    assert result.reason == "route safetensors carries no optimizer state (it holds tensors only)"
    assert run(tmp_path, "lenet1", "contract_usable", "pth").reason.startswith("route pth carries no codec under test")
    assert run(tmp_path, "lenet1", "checkpoint", "dat").reason == "route dat carries no checkpoint folders"


def test_a_road_that_changes_the_state_is_blamed_not_torchsharp(tmp_path):
    result = run(tmp_path, "lenet1", "functional", "pth", FakeTorchSharp("scale_on_load"))
    assert result.outcome == "fail"
    assert result.reason.startswith("route pth (torch.save/torch.load <-> TorchSharp.PyBridge load_py/save_py) is "
                                    "wrong: TorchSharp received other state than was sent (")
    assert "'conv-1.weight': bytes differ" in result.reason and result.details["road_changed"]
    cont = run(tmp_path, "adam_two_groups", "continue_py2ts", "pth", FakeTorchSharp("scale_on_load"))
    assert cont.outcome == "fail" and cont.reason.startswith("after 3 more steps")
    assert "route pth (" in cont.reason and "is wrong: TorchSharp received other state" in cont.reason


def test_a_loader_that_accepts_damaged_files_fails_damaged_load(tmp_path):
    result = run(tmp_path, "lenet1", "damaged_load", "pth", FakeTorchSharp("lenient"))
    assert result.outcome == "fail"
    assert result.reason.startswith("TorchSharp did not refuse every damaged file: truncated to 8 of ")
    assert set(result.details["damaged"]) >= {"an empty file", "the same state as a safetensors file"}
    assert all(v.startswith("loaded") for v in result.details["damaged"].values())


def test_every_damaged_dat_file_is_refused_by_a_faithful_fake(tmp_path):
    result = run(tmp_path, "lenet1", "damaged_load", "dat")
    assert result.outcome == "pass", result.reason
    assert len(result.details["damaged"]) == 8  # five cuts, garbled bytes, empty, another form
    assert all(v.startswith("refused: ") for v in result.details["damaged"].values())


def test_the_routes_own_damaged_forms_are_loaded_last_and_judged_like_the_others(tmp_path, monkeypatch):
    # a route declaring one form of its own: the undamaged file, which a faithful loader takes
    monkeypatch.setitem(ROUTES, "pth", replace(ROUTES["pth"], damaged_forms_of=lambda data: [("as is", data)]))
    result = run(tmp_path, "lenet1", "damaged_load", "pth")
    assert list(result.details["damaged"])[-2:] == ["the same state as a safetensors file", "as is"]
    assert result.outcome == "fail"
    assert result.reason == "TorchSharp did not refuse every damaged file: as is: loaded without an error"
    assert result.details["damaged"]["as is"] == "loaded, same values as the undamaged file"


def test_a_crash_on_a_damaged_file_is_isolated_and_fails(tmp_path):
    fake = FakeTorchSharp("crash_on_empty")
    result = run(tmp_path, "lenet1", "damaged_load", "dat", fake)
    assert result.outcome == "fail" and fake.restarts == 1
    assert "an empty file: the TorchSharp process died or hung (crash)" in result.reason
    refused = [k for k, v in result.details["damaged"].items() if v.startswith("refused: ")]
    assert len(refused) == 7  # the copies after the crash were still tried
