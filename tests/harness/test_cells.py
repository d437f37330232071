"""Cell classification and comparisons, driven through FAKE TorchSharp drivers."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.cases import load_catalogue
from harness.running.plan import Cell
from harness.running.runner import CellRunner
from harness.codecs import load_codec
from harness.drivers.pytorch import PyTorchDriver
from harness.verdicts.expectations import ExpectedFailure, ExpectedFailures

from .fake_drivers import FakeTorchSharp

CAT = load_catalogue()


def runner_with(tmp_path: Path, fake: FakeTorchSharp | Exception,
                expected: ExpectedFailures | None = None) -> CellRunner:
    return CellRunner(PyTorchDriver(load_codec("ours")), {"fake": fake}, tmp_path, expected)


def cell(case: str, check: str, device: str = "cpu") -> Cell:
    c = next(x for x in CAT.all() if x.name == case)
    return Cell(c, check, "host", "fake", device, "ours")


@pytest.mark.parametrize("case", ["lenet1", "linear_conv1d_bn1d", "adam_two_groups", "adamw_lazy_state"])
@pytest.mark.parametrize("check", ["py2ts", "py2ts2py", "ts2py"])
def test_faithful_fake_passes(tmp_path, case, check):
    result = runner_with(tmp_path, FakeTorchSharp()).run(cell(case, check))
    assert result.outcome == "pass", result.reason
    assert result.evidence is None  # passing cells leave no files behind


def test_wrong_bytes_fail_and_name_the_key(tmp_path):
    result = runner_with(tmp_path, FakeTorchSharp("corrupt")).run(cell("lenet1", "py2ts"))
    assert result.outcome == "fail"
    assert "'conv-1.weight': bytes differ" in result.reason
    assert result.evidence and Path(result.evidence, "py_module.dat").exists()


def test_wrong_hyperparameter_fails(tmp_path):
    result = runner_with(tmp_path, FakeTorchSharp("beta")).run(cell("adam_two_groups", "py2ts"))
    assert result.outcome == "fail"
    assert "group[0].beta1" in result.reason


def test_runtime_error_is_a_fail_and_crash_an_error_with_restart(tmp_path):
    assert runner_with(tmp_path, FakeTorchSharp("throw")).run(cell("lenet1", "py2ts")).outcome == "fail"
    fake = FakeTorchSharp("crash")
    result = runner_with(tmp_path, fake).run(cell("lenet1", "py2ts"))
    assert result.outcome == "error"
    assert result.reason.startswith("crash:")
    assert fake.restarts == 1


def test_a_crash_restarts_the_pytorch_worker_too(tmp_path):
    # a PyTorch worker process (PyTorch 2.6) can die in a cell as well (SIGFPE in oneDNN:
    # docs/findings/onednn-conv-backward-sigfpe.md); left dead, every later cell would error
    class CountingPyTorch(PyTorchDriver):
        restarts = 0

        def ensure_alive(self) -> None:
            self.restarts += 1

    py = CountingPyTorch(load_codec("ours"))
    fake = FakeTorchSharp("crash")
    result = CellRunner(py, {"fake": fake}, tmp_path).run(cell("lenet1", "py2ts"))
    assert result.outcome == "error" and (py.restarts, fake.restarts) == (1, 1)


def test_skips_carry_reasons(tmp_path):
    r = runner_with(tmp_path, FakeTorchSharp("skip")).run(cell("lenet1", "py2ts"))
    assert (r.outcome, r.reason) == ("skip", "TorchSharp declined: fake declines")
    r = runner_with(tmp_path, FakeTorchSharp()).run(cell("lenet1", "py2ts", device="cuda"))
    assert r.outcome == "skip" and "cuda" in r.reason
    r = runner_with(tmp_path, RuntimeError("not served by the feed")).run(cell("lenet1", "py2ts"))
    assert r.outcome == "skip" and r.reason.startswith("unavailable:")


def test_expected_failure_becomes_xfail_and_stale_entry_xpass(tmp_path):
    expected = ExpectedFailures([ExpectedFailure(("lenet1::py2ts::*",), "TorchSharp holds other state", "known",
                                                 "t.toml: entry 1")])
    r = runner_with(tmp_path, FakeTorchSharp("corrupt"), expected).run(cell("lenet1", "py2ts"))
    assert r.outcome == "xfail" and "known" in r.reason
    r = runner_with(tmp_path, FakeTorchSharp(), expected).run(cell("lenet1", "py2ts"))
    assert r.outcome == "xpass"


@pytest.mark.parametrize("case", ["lenet1", "linear_conv1d_bn1d"])
def test_functional_with_faithful_fake_is_bitwise(tmp_path, case):
    result = runner_with(tmp_path, FakeTorchSharp()).run(cell(case, "functional"))
    assert result.outcome == "pass", result.reason
    assert result.details["bitwise"] is True


@pytest.mark.parametrize("case", ["tensor_bfloat16_vector", "tensor_float32_transposed", "tensor_qint8_scalar",
                                  "tensor_complex128_empty", "tensor_bool_vector"])
@pytest.mark.parametrize("check", ["tensor_py2ts", "tensor_ts2py"])
def test_tensor_cells_with_faithful_fake(tmp_path, case, check):
    result = runner_with(tmp_path, FakeTorchSharp()).run(cell(case, check))
    assert result.outcome == "pass", result.reason


def test_tensor_cases_cover_every_dtype_and_edge_shape():
    names = {c.name for c in CAT.tensors.values()}
    for dtype in ("bfloat16", "bool", "complex64", "qint32", "float16", "uint8"):
        for shape in ("scalar", "empty", "transposed"):
            assert f"tensor_{dtype}_{shape}" in names


def test_every_small_tensor_case_makes_its_own_dtype_and_shape():
    # (an empty bool tensor once came out as float32: torch.tensor([]) defaults to float)
    from harness.cases import inputs
    for case in CAT.tensors.values():
        if "large" in case.features:
            continue
        t = inputs.make_tensor(case)
        assert (str(t.dtype), tuple(t.shape)) == (f"torch.{case.dtype}", case.shape), case.name


def test_large_tensor_cases_pass_int32_in_elements_and_in_bytes():
    large = {c.name: c for c in CAT.tensors.values() if "large" in c.features}
    assert set(large) == {"tensor_uint8_huge_numel", "tensor_float32_huge_bytes"}
    numel = large["tensor_uint8_huge_numel"].shape[0]
    assert numel > 2**31 - 1
    floats = large["tensor_float32_huge_bytes"].shape[0]
    assert floats < 2**31 - 1 < floats * 4


def test_large_cells_skip_with_the_reason_when_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_SKIP_LARGE_TESTS", "1")
    result = runner_with(tmp_path, FakeTorchSharp()).run(cell("tensor_uint8_huge_numel", "tensor_py2ts"))
    assert result.outcome == "skip" and "HARNESS_SKIP_LARGE_TESTS=1" in result.reason


def test_the_room_for_large_cells_is_measured_once_per_run(tmp_path, monkeypatch):
    """Later large cells find the run's own workers holding memory for them: measuring again
    would make their verdict depend on what ran before and beside them."""
    import harness.running.runner as cells
    monkeypatch.delenv("HARNESS_SKIP_LARGE_TESTS", raising=False)
    answers = iter(["a cell of tensors past 2 GiB needs 10 GiB of free memory; 1.0 GiB available", None])
    calls = []
    monkeypatch.setattr(cells, "large_cell_obstacle", lambda d: calls.append(d) or next(answers))
    runner = runner_with(tmp_path, FakeTorchSharp())
    first = runner.run(cell("tensor_uint8_huge_numel", "tensor_py2ts"))
    second = runner.run(cell("tensor_float32_huge_bytes", "tensor_ts2py"))
    assert len(calls) == 1 and first.outcome == second.outcome == "skip" and "1.0 GiB" in second.reason


def test_a_room_measured_by_the_parent_of_jobs_is_taken_as_given(tmp_path, monkeypatch):
    import harness.running.runner as cells
    monkeypatch.delenv("HARNESS_SKIP_LARGE_TESTS", raising=False)
    monkeypatch.setattr(cells, "large_cell_obstacle", lambda d: pytest.fail("measured again"))
    why = "a cell of tensors past 2 GiB needs 10 GiB of free memory; 3.0 GiB available"
    runner = CellRunner(PyTorchDriver(load_codec("ours")), {"fake": FakeTorchSharp()}, tmp_path, large_room=why)
    result = runner.run(cell("tensor_float32_huge_bytes", "tensor_ts2py"))
    assert result.outcome == "skip" and result.reason == why
    room = CellRunner(PyTorchDriver(load_codec("ours")), {"fake": FakeTorchSharp()}, tmp_path, large_room="")
    assert room._large_room() is None


def test_large_cell_obstacles_name_memory_and_disk(tmp_path, monkeypatch):
    import harness.running.runner as cells
    monkeypatch.delenv("HARNESS_SKIP_LARGE_TESTS", raising=False)
    monkeypatch.setattr(cells, "LARGE_MIN_MEMORY", 1 << 60)
    assert "free memory" in (cells.large_cell_obstacle(tmp_path / "not" / "yet") or "")
    monkeypatch.setattr(cells, "LARGE_MIN_MEMORY", 0)
    monkeypatch.setattr(cells, "LARGE_MIN_DISK", 1 << 60)
    assert "free disk" in (cells.large_cell_obstacle(tmp_path / "not" / "yet") or "")
    monkeypatch.setattr(cells, "LARGE_MIN_DISK", 0)
    assert cells.large_cell_obstacle(tmp_path) is None


def test_failing_cell_evidence_drops_only_oversized_files(tmp_path):
    from harness.running.evidence import prune_evidence
    (tmp_path / "big.dat").write_bytes(b"x" * 101)
    (tmp_path / "small.dat").write_bytes(b"y" * 100)
    assert prune_evidence(tmp_path, limit=100) == ["big.dat (101 bytes)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.dat.omitted.txt", "small.dat"]
    assert "101 bytes" in (tmp_path / "big.dat.omitted.txt").read_text()


def test_view_load_runs_only_for_cases_with_views_and_passes_a_faithful_fake(tmp_path):
    from harness.running.plan import checks_for
    assert "view_load" in checks_for(next(c for c in CAT.all() if c.name == "buffer_views"))
    assert "view_load" not in checks_for(next(c for c in CAT.all() if c.name == "lenet1"))
    result = runner_with(tmp_path, FakeTorchSharp()).run(cell("buffer_views", "view_load"))
    assert result.outcome == "pass", result.reason
    side = result.details["side_by_side"]["lin.row0"]
    assert side["PyTorch"] == {"view": "the file's view entry",
                               "base lin.weight": "the file's base entry with the view's values written in"}


def test_view_load_catches_a_loader_that_breaks_aliasing(tmp_path):
    # The self-contradictory file round-trips bitwise through both loaders; only the
    # aliasing differs, and the cell must say so.
    result = runner_with(tmp_path, FakeTorchSharp("replace_views")).run(cell("buffer_views", "view_load"))
    assert result.outcome == "fail"
    assert "lin.weight" in result.reason or "head.weight" in result.reason
    side = result.details["side_by_side"]["lin.row0"]["TorchSharp"]
    assert side["base lin.weight"] == "the file's base entry"


def test_fresh_init_catches_uninitialised_state_that_loading_hides(tmp_path):
    runner = runner_with(tmp_path, FakeTorchSharp("uninitialised"))
    assert runner.run(cell("lenet1", "py2ts")).outcome == "pass"  # loading overwrites the garbage
    result = runner.run(cell("lenet1", "fresh_init"))
    assert result.outcome == "fail"
    assert "'bnrm2d-1.weight': bytes differ" in result.reason
    assert "bnrm2d-1.running_var" in result.details["seed_independent"]
    assert "conv-1.weight" not in result.details["seed_independent"]  # random init is not compared
    assert runner_with(tmp_path, FakeTorchSharp()).run(cell("lenet1", "fresh_init")).outcome == "pass"


def test_fresh_init_skips_with_the_reason_when_nothing_is_seed_independent(tmp_path):
    result = runner_with(tmp_path, FakeTorchSharp()).run(cell("two_linear", "fresh_init"))
    assert (result.outcome, result.reason) == ("skip", "no state tensor has a seed-independent initial value")


def test_every_expected_failure_line_matches_a_cell_of_the_default_matrix():
    # An entry that matches no cell (a renamed case or check) would go stale silently:
    # xpass only guards entries that still match something.
    import fnmatch

    from harness.paths import CASES_DIR
    from harness.running.plan import make_cells
    from harness.routes import ROUTES
    ids = [c.id for pt in ("1.13.0a0", "2.6.0")
           for c in make_cells(CAT.all(), pt, ["0.107.0"], "ours", routes=list(ROUTES), large_routes=list(ROUTES))]
    stale = [f"{e.source}: {p}" for e in ExpectedFailures.load(CASES_DIR / "expected_failures").entries
             for p in e.cells if not fnmatch.filter(ids, p)]
    assert not stale, stale


def test_skips_known_before_a_cell_runs_are_the_runners_and_weigh_nothing_for_jobs(tmp_path):
    # What --jobs weighs (matrix_run._will_run) and what the runner skips come from one place
    # (runner.static_obstacle): a check declining a case feature, a route without such state.
    from harness.running.matrix_run import _will_run
    from harness.running.plan import make_cells
    py = PyTorchDriver(load_codec("ours"))
    fake = FakeTorchSharp()
    version = py.capabilities.version  # a run's cells name the PyTorch by its version
    large = next(c for c in CAT.all() if "large" in c.features and c.name.startswith("tensor_"))
    declined = Cell(large, "tensor_overwrite", version, "fake", "cpu", "ours")
    optimizer = next(c for c in CAT.all() if c.name == "adam_two_groups")
    no_route = next(c for c in make_cells([optimizer], version, ["fake"], "ours", ["py2ts"], ["cpu"],
                                          ["safetensors"]) if c.route == "safetensors")
    runs = _will_run([("host", py)], {"fake": fake})
    small = next(c for c in CAT.all() if c.name == "tensor_float32_vector")
    for c, why in ((declined, "the overwrite check runs on the small tensor cases"),
                   (no_route, "route safetensors carries no optimizer state")):
        assert not runs(c)
        result = runner_with(tmp_path, fake).run(c)
        assert (result.outcome, result.reason[:len(why)]) == ("skip", why)
    assert runs(Cell(small, "tensor_overwrite", version, "fake", "cpu", "ours"))
    assert runs(Cell(optimizer, "py2ts", version, "fake", "cpu", "ours"))
    assert not runs(Cell(optimizer, "py2ts", version, "gone", "cpu", "ours"))  # no such TorchSharp column
    assert not runs(Cell(optimizer, "py2ts", "0.0", "fake", "cpu", "ours"))  # no such PyTorch
