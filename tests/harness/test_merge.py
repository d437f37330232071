"""Shards and their merge: a stable split, one matrix back, refusals that name the mismatch."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cases import load_catalogue
from harness.running.merge import MergeError, main_merge, merge_runs
from harness.verdicts.outcomes import CellResult
from harness.running.plan import (LARGE_CELL_S, estimated_seconds, job_of_cells, make_cells, parse_shard,
                                  plan_fingerprint, shard_of)
from harness.report import Run
from harness.report.files import write_reports

CAT = load_catalogue()


def _cells(cases=None):
    chosen = [c for c in CAT.all() if cases is None or c.name in cases]
    return make_cells(chosen, "1.13.0a0", ["0.107.0"], "ours", None, ["cpu"])


def _shards(tmp_path: Path, n: int, commit: str = "abc123", cells=None) -> list[Path]:
    cells = cells or _cells()
    paths = []
    for k in range(n):
        mine = [(i, c) for i, c in enumerate(cells) if shard_of(c, n) == k]
        run = Run(run_id=f"r-shard{k + 1}of{n}", started=f"2026-12-02T10:0{k}:00+00:00",
                  provenance={"commit": commit, "plan": plan_fingerprint(cells), "plan_cells": str(len(cells)),
                              "shards": str(n), "shard": f"{k + 1}/{n}",
                              "plan_index": ",".join(str(i) for i, _ in mine), f"machine {k}": "x"})
        run.cells = [CellResult(id=c.id, case=c.case.name, check=c.check, pytorch=c.pytorch, torchsharp=c.torchsharp,
                                device=c.device, codec=c.codec, outcome="pass") for _, c in mine]
        write_reports(run, tmp_path / f"s{k + 1}")
        paths.append(tmp_path / f"s{k + 1}" / "matrix.json")
    return paths


def test_the_split_is_stable_when_cases_are_added_and_large_cells_share_shard_1():
    fewer = _cells({"lenet1", "adam_two_groups", "tensor_float32_vector"})
    more = _cells({"lenet1", "adam_two_groups", "tensor_float32_vector", "two_linear", "radam_two_groups"})
    before = {c.id: shard_of(c, 4) for c in fewer}
    after = {c.id: shard_of(c, 4) for c in more}
    assert all(after[i] == s for i, s in before.items())
    assert len(set(after.values())) > 1
    assert {shard_of(c, 4) for c in _cells() if "large" in c.case.features} == {0}


def test_merged_shards_are_the_whole_plan_in_its_order(tmp_path):
    cells = _cells()
    run = merge_runs(_shards(tmp_path, 3, cells=cells))
    assert [c.id for c in run.cells] == [c.id for c in cells]
    assert run.run_id == "r"
    assert {"machine 0", "machine 1", "machine 2"} <= set(run.provenance)
    assert "shard" not in run.provenance and "plan_index" not in run.provenance
    assert main_merge(_shards(tmp_path / "again", 3, cells=cells), tmp_path / "out") == 0
    assert json.loads((tmp_path / "out" / "matrix.json").read_text())["summary"]["pass"] == len(cells)


def _edit(path: Path, **provenance: str) -> None:
    data = json.loads(path.read_text())
    data["provenance"].update(provenance)
    path.write_text(json.dumps(data))


def test_shards_of_another_commit_are_refused(tmp_path):
    paths = _shards(tmp_path, 2)
    _edit(paths[1], commit="def456")
    with pytest.raises(MergeError, match=r"s2/matrix.json: commit 'def456' differs .* 'abc123'"):
        merge_runs(paths)


def test_shards_of_another_plan_are_refused(tmp_path):
    a = _shards(tmp_path / "a", 2)
    b = _shards(tmp_path / "b", 2, cells=_cells({"lenet1", "two_linear"}))
    with pytest.raises(MergeError, match="plan .* differs"):
        merge_runs([a[0], b[1]])


def test_a_missing_or_doubled_shard_is_refused(tmp_path):
    paths = _shards(tmp_path, 3)
    with pytest.raises(MergeError, match=r"shard\(s\) \['3/3'\] missing"):
        merge_runs(paths[:2])
    with pytest.raises(MergeError, match="shard 1/3 given twice"):
        merge_runs([paths[0], paths[0], paths[1], paths[2]])


def test_a_cell_in_two_shards_is_refused(tmp_path):
    paths = _shards(tmp_path, 2)
    one = json.loads(paths[0].read_text())
    two = json.loads(paths[1].read_text())
    two["cells"].append(one["cells"][0])
    two["provenance"]["plan_index"] += "," + one["provenance"]["plan_index"].split(",")[0]
    paths[1].write_text(json.dumps(two))
    with pytest.raises(MergeError, match="is in .* and in"):
        merge_runs(paths)


def test_shards_that_lost_a_cell_are_refused(tmp_path):
    cells = _cells({"lenet1", "adam_two_groups", "two_linear"})
    paths = _shards(tmp_path, 2, cells=cells)
    data = json.loads(paths[1].read_text())
    data["cells"].pop()
    data["provenance"]["plan_index"] = ",".join(data["provenance"]["plan_index"].split(",")[:-1])
    paths[1].write_text(json.dumps(data))
    with pytest.raises(MergeError, match=rf"^the shards hold {len(cells) - 1} cells, the plan {len(cells)}$"):
        merge_runs(paths)


def test_a_report_that_is_no_shard_is_refused(tmp_path):
    run = Run(run_id="plain", started="2026-12-02T10:00:00+00:00", provenance={"commit": "abc"})
    write_reports(run, tmp_path / "plain")
    with pytest.raises(MergeError, match="not a shard report"):
        merge_runs([tmp_path / "plain"])
    assert main_merge([tmp_path / "nowhere.json"], tmp_path / "o") == 2


@pytest.mark.parametrize(("text", "message"), [("0/2", "between 1 and N"), ("3/2", "between 1 and N"),
                                               ("a/b", "expected I/N"), ("1", "expected I/N")])
def test_bad_shard_arguments_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


def test_parallel_jobs_keep_the_large_cells_to_the_jobs_memory_carries_and_balance_the_rest():
    cells = [c for c in _cells() if "zoo-full" not in c.case.features]  # --zoo full's big models: below
    owners = job_of_cells(cells, 3, large_jobs=1)
    assert {j for c, j in zip(cells, owners) if "large" in c.case.features} == {0}
    load = [0.0, 0.0, 0.0]
    for c, j in zip(cells, owners):
        load[j] += estimated_seconds(c)
    biggest = max(estimated_seconds(c) for c in cells if "large" not in c.case.features)
    assert abs(load[1] - load[2]) <= biggest  # the jobs without large cells: as even as whole cells allow
    small_large_job = [c for c, j in zip(cells, owners) if j == 0 and "large" not in c.case.features]
    if small_large_job:  # the large job caught up with: every job as even as whole cells allow
        assert max(load) - min(load) <= max(biggest, LARGE_CELL_S)
    else:  # the large cells alone outweigh the others' share
        assert load[0] >= max(load[1:]) - biggest


def test_parallel_jobs_deal_the_large_cells_evenly_over_the_jobs_memory_carries():
    cells = _cells()
    large = [c for c in cells if "large" in c.case.features]
    assert len(large) >= 4
    owners = job_of_cells(cells, 3, large_jobs=2)
    counts = [sum(1 for c, j in zip(cells, owners) if "large" in c.case.features and j == k) for k in range(3)]
    assert counts[2] == 0 and abs(counts[0] - counts[1]) <= 1
    every = job_of_cells(cells, 3, large_jobs=3)  # every job may hold them: small cells over all jobs too
    assert {j for c, j in zip(cells, every) if "large" not in c.case.features} == {0, 1, 2}
    with pytest.raises(ValueError, match="large_jobs"):
        job_of_cells(cells, 3, large_jobs=0)


def test_the_zoo_outweighs_the_large_cells_and_skipped_cells_weigh_nothing():
    zoo = [c for c in make_cells(CAT.select(features=["zoo"]), "1.13.0a0", ["0.107.0"], "ours", None, ["cpu"])
           if "zoo-full" not in c.case.features]
    large = [c for c in _cells() if "large" in c.case.features]
    cells = large + zoo
    owners = job_of_cells(cells, 2, large_jobs=1)
    assert any(j == 0 for c, j in zip(cells, owners) if c in zoo)  # job 0 shares the zoo's work
    vgg = [c for c in zoo if c.case.name == "zoo_vgg11_bn"][0]
    assert estimated_seconds(vgg) > 4 * estimated_seconds([c for c in zoo if c.case.name == "zoo_resnet18"][0])
    # every zoo cell skipped (an unavailable TorchSharp): job 1 takes them all, weightless
    skipped = job_of_cells(cells, 2, large_jobs=1, runs=lambda c: c not in zoo)
    assert {j for c, j in zip(cells, skipped) if c in zoo} == {1}


def test_memory_bounds_the_jobs_and_the_large_jobs():
    from harness.running import memory
    gib = memory.GiB
    assert memory.auto_jobs(10_000, available=23 * gib, cpus=2) == 2
    assert memory.auto_jobs(10_000, available=6 * gib, cpus=16) == 1
    assert memory.auto_jobs(50, available=64 * gib, cpus=16) == 1  # too small a plan to gain
    assert memory.large_jobs(2, available=23 * gib) == 1   # the reference machine: one large job
    assert memory.large_jobs(16, available=60 * gib) == 5
    assert memory.large_jobs(4, available=1 * gib) == 1    # a serial run needs one anyway


def test_the_zoos_big_models_get_jobs_of_their_own_away_from_the_large_cells():
    from harness.running.plan import memory_heavy
    cat = CAT.all()
    by = {c.name: c for c in cat}
    assert memory_heavy(by["zoo_vgg19_bn"]) and memory_heavy(by["zoo_vgg19_bn_adamw"])
    assert memory_heavy(by["zoo_wide_resnet101_2"]) and memory_heavy(by["zoo_alexnet"])
    assert memory_heavy(by["zoo_vgg11_bn"])            # the default subset's vgg: 133 M parameters too
    assert not memory_heavy(by["zoo_mobilenet_v2"]) and not memory_heavy(by["lenet1"])
    large = [c for c in _cells() if "large" in c.case.features]
    cells = large + make_cells([by["zoo_vgg19_bn"], by["zoo_vgg11_bn"], by["zoo_mobilenet_v2"], by["lenet1"]],
                               "1.13.0a0", ["0.107.0"], "ours", None, ["cpu"])
    owners = job_of_cells(cells, 2, large_jobs=1)
    assert {j for c, j in zip(cells, owners) if c.case.name.startswith("zoo_vgg")} == {1}
    assert {j for c, j in zip(cells, owners) if c in large} == {0}
    four = job_of_cells(cells, 4, large_jobs=2)
    assert {j for c, j in zip(cells, four) if c.case.name.startswith("zoo_vgg")} == {2, 3}
    assert {j for c, j in zip(cells, four) if c in large} == {0, 1}
    alone = job_of_cells(cells, 1, large_jobs=1)  # one job holds everything
    assert set(alone) == {0}
