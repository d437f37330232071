"""The conformance cells: case x check x PyTorch x TorchSharp x device x codec.

Checks (each runs real TorchSharp through its driver):

``py2ts``     PyTorch makes state (trains / steps on fixed gradients), the codec under
              test writes it, TorchSharp loads it; TorchSharp's digests of everything it
              holds equal PyTorch's (module tensors by bytes; optimizer options and
              state by the oracle, harness/oracle.py).
``py2ts2py``  ... then TorchSharp saves, the codec reads back: every tensor's bytes equal
              the original. Whole-file byte identity is recorded as a separate fact
              (TorchSharp lists parameters before buffers, so it may legitimately differ).
``ts2py``     TorchSharp builds and trains, saves; the codec reads; digests equal
              TorchSharp's, and PyTorch's model/optimizer accept the state.

A check raises :class:`CheckFailed` / :class:`CheckSkipped`; everything else that can go
wrong is classified in :meth:`CellRunner.run` (worker crash/timeout -> error + restart).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import codec as trusted_codec  # reads TorchSharp's files for the semantic checks
from harness import bounds, inputs, reference, semantics, torch_build
import torch

from harness.ulp import bitwise_equal, max_ulp
from harness.cases import CORPUS_DIR, Case, ModelCase, OptimizerCase, TensorCase
from harness.codecs import CodecFailure
from harness.digest import TensorDigest
from harness.drivers.base import Digest, Driver, OptimizerDigest, PythonDriver, Value, model_case_of
from harness.drivers.protocol import (
    WorkerCrash,
    WorkerError,
    WorkerParseError,
    WorkerRuntimeError,
    WorkerSkipped,
    WorkerTimeout,
)
from harness.expectations import ExpectedFailures, features_of
from harness.outcomes import CellResult

STATE_CHECKS = ("py2ts", "py2ts2py", "ts2py")
CONTRACT_CHECKS = ("contract_usable", "contract_damaged")  # the codec under test's promises (codec_contract.py)
MODEL_CHECKS = (*STATE_CHECKS, "functional", "partial_load", "fresh_init", "jit_py2ts", "jit_ts2py", *CONTRACT_CHECKS)
OPTIMIZER_CHECKS = (*STATE_CHECKS, "continue_py2ts", "continue_ts2py")
TENSOR_CHECKS = ("tensor_py2ts", "tensor_ts2py")
VIEW_CHECKS = ("view_load",)  # model cases with buffers that view other state
CHECKS = (*MODEL_CHECKS, *VIEW_CHECKS, "continue_py2ts", "continue_ts2py", *TENSOR_CHECKS)
ROOT = Path(__file__).resolve().parent.parent
CONTINUE_STEPS = 3
# Cells of cases tagged "large" (tensors past 2 GiB) need this much free memory and disk,
# else they are skipped with the reason; HARNESS_SKIP_LARGE_TESTS=1 switches them off.
LARGE_MIN_MEMORY = 10 << 30
LARGE_MIN_DISK = 6 << 30
# Evidence of a failing cell keeps files up to this size; bigger ones (a 2 GiB input) are
# replaced by a note: repro.sh regenerates them.
EVIDENCE_MAX_FILE = 64 << 20
DEVICES = ("cpu", "cuda")
TS_TRAIN_SEED_OFFSET = 1000


class CheckFailed(Exception):
    def __init__(self, reason: str, details: Mapping[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.details = dict(details or {})


class CheckSkipped(Exception):
    pass


@dataclass(frozen=True)
class Cell:
    case: Case
    check: str
    pytorch: str
    torchsharp: str
    device: str
    codec: str

    @property
    def id(self) -> str:
        return "::".join((self.case.name, self.check, f"pt{self.pytorch}", f"ts{self.torchsharp}",
                          self.device, self.codec))


def checks_for(case: Case) -> tuple[str, ...]:
    if isinstance(case, TensorCase):
        return TENSOR_CHECKS
    if isinstance(case, OptimizerCase):
        return OPTIMIZER_CHECKS
    return (*MODEL_CHECKS, *VIEW_CHECKS) if case.views else MODEL_CHECKS


def make_cells(cases: Iterable[Case], pytorch: str, torchsharp: Iterable[str], codec: str,
               checks: Iterable[str] = CHECKS, devices: Iterable[str] = DEVICES) -> list[Cell]:
    wanted = set(checks)
    versions, devs = list(torchsharp), list(devices)
    return [Cell(case, check, pytorch, ts, device, codec)
            for case in cases for check in checks_for(case) if check in wanted
            for ts in versions for device in devs]


def large_cell_obstacle(workdir: Path) -> str | None:
    """Why a cell moving tensors past 2 GiB cannot run here (None: it can)."""
    if os.environ.get("HARNESS_SKIP_LARGE_TESTS") == "1":
        return "cells of 'large' cases switched off by HARNESS_SKIP_LARGE_TESTS=1"
    available = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        return "cannot tell the free memory (no /proc/meminfo) for a cell of tensors past 2 GiB"
    if available < LARGE_MIN_MEMORY:
        return (f"a cell of tensors past 2 GiB needs {LARGE_MIN_MEMORY >> 30} GiB of free memory; "
                f"{available / 2**30:.1f} GiB available")
    existing = workdir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < LARGE_MIN_DISK:
        return (f"a cell of tensors past 2 GiB needs {LARGE_MIN_DISK >> 30} GiB of free disk under {workdir}; "
                f"{free / 2**30:.1f} GiB free")
    return None


def prune_evidence(folder: Path, limit: int = EVIDENCE_MAX_FILE) -> list[str]:
    """Replace each file over ``limit`` bytes in an evidence folder by ``NAME.omitted.txt``
    (its size and why), so a failing large cell leaves no multi-GiB files in reports/."""
    notes = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        size = path.stat().st_size
        if size > limit:
            path.unlink()
            path.with_name(path.name + ".omitted.txt").write_text(
                f"{path.name}: {size} bytes, not kept (over {limit} bytes); repro.sh writes it again\n",
                encoding="utf-8")
            notes.append(f"{path.name} ({size} bytes)")
    return notes


def write_repro(folder: Path, cell: Cell, result: CellResult) -> None:
    """Leave what replays just this cell: the case, the outcome, and one command."""
    case = cell.case
    spec: dict[str, Any] = {"name": case.name, "source": case.source}
    if isinstance(case, OptimizerCase):
        spec.update(model=case.model_case.model, optimizer=dict(case.optimizer), steps=case.steps,
                    no_grad=list(case.no_grad))
    elif isinstance(case, TensorCase):
        spec.update(dtype=case.dtype, shape=list(case.shape), layout=case.layout)
    else:
        spec.update(model=case.model, dtype=case.dtype, seed=case.seed, input_shape=list(case.input_shape))
    (folder / "case.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    (folder / "outcome.json").write_text(json.dumps(result.to_json(), indent=2, default=str) + "\n",
                                         encoding="utf-8")
    command = (f"python3 -m harness run --case {shlex.quote(case.name)} --check {cell.check} "
               f"--torchsharp {shlex.quote(cell.torchsharp)} --device {cell.device} "
               f"--codec {shlex.quote(cell.codec)} --keep")
    (folder / "repro.sh").write_text(
        "#!/bin/sh\n# Replays just this cell; the files beside this script are its inputs and outputs.\n"
        f'cd "$(dirname "$0")/{os.path.relpath(ROOT, folder)}" && exec {command}\n', encoding="utf-8")
    (folder / "repro.sh").chmod(0o755)


def _finite(v: float) -> float | str:
    return v if v != float("inf") else "inf"


# --- comparisons -------------------------------------------------------------------------
def _label(labels: Mapping[TensorDigest, str], held: TensorDigest | None) -> str:
    if held is None:
        return "absent"
    return labels.get(held, f"other: {held}")


def _same_bytes(a: Path, b: Path) -> bool:
    """Whole files byte for byte, streamed (files of several GiB never sit in memory)."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(1 << 24), fb.read(1 << 24)
            if x != y:
                return False
            if not x:
                return True


def compare_modules(expected: Mapping[str, TensorDigest], actual: Mapping[str, TensorDigest],
                    exp_name: str, act_name: str) -> list[str]:
    problems: list[str] = []
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    if missing:
        problems.append(f"{act_name} lacks key(s) {missing}")
    if extra:
        problems.append(f"{act_name} has unexpected key(s) {extra}")
    for key, e in expected.items():
        a = actual.get(key)
        if a is None or a == e:
            continue
        if a.dtype != e.dtype:
            problems.append(f"{key!r}: dtype {exp_name} {e.dtype}, {act_name} {a.dtype}")
        elif a.shape != e.shape:
            problems.append(f"{key!r}: shape {exp_name} {list(e.shape)}, {act_name} {list(a.shape)}")
        else:
            problems.append(f"{key!r}: bytes differ ({exp_name} sha256 {e.sha256[:12]}, {act_name} {a.sha256[:12]})")
    return problems


def _fmt(v: Value) -> str:
    return str(v) if v is not None else "absent"


def _compare_fields(where: str, expected: Mapping[str, Value], actual: Mapping[str, Value],
                    act_name: str) -> list[str]:
    problems = []
    for k in expected.keys() | actual.keys():
        if k not in actual:
            problems.append(f"{where}.{k}: {act_name} does not report it")
        elif k not in expected:
            problems.append(f"{where}.{k}: {act_name} reports an unexpected field")
        elif expected[k] != actual[k]:
            problems.append(f"{where}.{k}: expected {_fmt(expected[k])}, {act_name} {_fmt(actual[k])}")
    return sorted(problems)


def compare_optimizers(expected: OptimizerDigest | None, actual: OptimizerDigest | None, act_name: str) -> list[str]:
    if expected is None or actual is None:
        return [] if expected is actual else [f"optimizer: expected {expected}, {act_name} {actual}"]
    problems = []
    if expected.class_name != actual.class_name:
        problems.append(f"optimizer class: expected {expected.class_name}, {act_name} {actual.class_name}")
    if len(expected.groups) != len(actual.groups):
        problems.append(f"param groups: expected {len(expected.groups)}, {act_name} {len(actual.groups)}")
    if len(expected.states) != len(actual.states):
        problems.append(f"parameter states: expected {len(expected.states)}, {act_name} {len(actual.states)}")
    for i, (e, a) in enumerate(zip(expected.groups, actual.groups)):
        problems += _compare_fields(f"group[{i}]", e, a, act_name)
    for i, (e, a) in enumerate(zip(expected.states, actual.states)):
        problems += _compare_fields(f"state[{i}]", e, a, act_name)
    return problems


def _fail_if(problems: list[str], what: str, details: dict[str, Any]) -> None:
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... {len(problems) - 6} more" if len(problems) > 6 else "")
        details["mismatches"] = problems
        raise CheckFailed(f"{what}: {shown}", details)


# --- the checks --------------------------------------------------------------------------
class CellRunner:
    """Runs cells against one PyTorch driver and one TorchSharp driver per version."""

    def __init__(self, pytorch: PythonDriver | Exception, torchsharp: Mapping[str, Driver | Exception],
                 workdir: Path, expected: ExpectedFailures | None = None, keep_passing: bool = False):
        self.py: PythonDriver = pytorch  # type: ignore[assignment]  # an Exception: every cell "unavailable"
        self.ts = dict(torchsharp)
        self.workdir = workdir
        self.expected = expected or ExpectedFailures()
        self.keep_passing = keep_passing

    # Make PyTorch-side state: train a model case, step an optimizer case on fixed grads.
    def _make_python_state(self, case: Case, device: str) -> None:
        self.py.build(case, device)
        mc = model_case_of(case)
        if isinstance(case, OptimizerCase) and case.state_from:
            path = CORPUS_DIR / case.state_from
            if not path.exists():
                raise CheckFailed(f"corpus file {path} is missing (cases/corpus/ is part of the repository)")
            self.py.load_saved_state(path)
        elif isinstance(case, OptimizerCase):
            params = torch_build.reference_parameters(mc.model, mc.dtype, mc.seed)
            for step in range(case.steps):
                grads = torch_build.make_gradients(params, mc.seed, step, skip=case.no_grad)
                self.py.step(grads)
                self.py.advance_schedule()
        else:
            self.py.train(mc.train_steps, mc.seed, mc.input_shape, mc.input)

    def _py_to_ts(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any], compare: bool = True) -> Digest:
        case = cell.case
        is_opt = isinstance(case, OptimizerCase)
        self._make_python_state(case, cell.device)
        self.py.save_module(d / "py_module.dat")
        if is_opt:
            self.py.save_optimizer(d / "py_optimizer.dat")
        expected = self.py.digest()
        ts.build(case, cell.device)
        ts.load_module(d / "py_module.dat")
        if is_opt:
            ts.load_optimizer(d / "py_optimizer.dat")
        if not compare:
            return expected
        got = ts.digest()
        details["tensors"] = len(expected.module)
        details["torchsharp_order_matches"] = list(expected.module) == list(got.module)
        problems = compare_modules(expected.module, got.module, "PyTorch", "TorchSharp")
        problems += compare_optimizers(expected.optimizer, got.optimizer, "TorchSharp")
        _fail_if(problems, "TorchSharp holds other state than PyTorch exported", details)
        return expected

    def check_py2ts(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        self._py_to_ts(cell, ts, d, details)

    def check_py2ts2py(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        expected = self._py_to_ts(cell, ts, d, details)
        is_opt = isinstance(cell.case, OptimizerCase)
        ts.save_module(d / "ts_module.dat")
        back = self.py.read_module(d / "ts_module.dat")
        details["module_file_identical"] = _same_bytes(d / "py_module.dat", d / "ts_module.dat")
        problems = compare_modules(expected.module, back, "original", "read back")
        if is_opt:
            ts.save_optimizer(d / "ts_optimizer.dat")
            details["optimizer_file_identical"] = (
                _same_bytes(d / "py_optimizer.dat", d / "ts_optimizer.dat"))
        _fail_if(problems, "state read back from TorchSharp's file differs from the original", details)
        if is_opt:
            if not self.py.capabilities.can_read_optimizer:
                raise CheckSkipped(f"module state round-tripped; codec {self.py.codec_name!r} cannot read "
                                   "optimizer files, so the optimizer half is not checked")
            self.py.build(cell.case, cell.device)
            self.py.load_optimizer(d / "ts_optimizer.dat")
            back_opt = self.py.digest().optimizer
            _fail_if(compare_optimizers(expected.optimizer, back_opt, "read back"),
                     "optimizer state read back from TorchSharp's file differs from the original", details)

    def check_ts2py(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        case = cell.case
        is_opt = isinstance(case, OptimizerCase)
        mc = model_case_of(case)
        ts.build(case, cell.device)
        ts.train(case.steps if isinstance(case, OptimizerCase) else mc.train_steps,
                 mc.seed + TS_TRAIN_SEED_OFFSET, mc.input_shape, mc.input)
        ts.save_module(d / "ts_module.dat")
        if is_opt:
            ts.save_optimizer(d / "ts_optimizer.dat")
        got = ts.digest()
        problems = compare_modules(got.module, self.py.read_module(d / "ts_module.dat"), "TorchSharp", "codec")
        _fail_if(problems, "the codec read other state than TorchSharp holds", details)
        self.py.build(case, cell.device)
        try:
            self.py.load_module(d / "ts_module.dat")
        except RuntimeError as exc:
            if isinstance(exc, CodecFailure):
                raise
            raise CheckFailed(f"PyTorch's load_state_dict refused TorchSharp's state: {exc}", details) from exc
        _fail_if(compare_modules(got.module, self.py.digest().module, "TorchSharp", "PyTorch model"),
                 "PyTorch's model holds other state after loading", details)
        if is_opt:
            if not self.py.capabilities.can_read_optimizer:
                raise CheckSkipped(f"module state checked; codec {self.py.codec_name!r} cannot read "
                                   "optimizer files, so the optimizer half is not checked")
            self.py.load_optimizer(d / "ts_optimizer.dat")
            _fail_if(compare_optimizers(got.optimizer, self.py.digest().optimizer, "PyTorch"),
                     "PyTorch's optimizer holds other state than TorchSharp saved", details)

    # --- functional: the same input through both models after loading PyTorch's state ----
    def check_functional(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        assert isinstance(cell.case, ModelCase)  # only model cases get this check
        self._py_to_ts(cell, ts, d, details, compare=False)
        x = inputs.make_input(cell.case, cell.case.seed + 7)
        try:
            py_out = self.py.forward(x)
        except (RuntimeError, NotImplementedError) as exc:
            if "not implemented for" not in str(exc):
                raise
            raise CheckSkipped(f"PyTorch {self.py.capabilities.version} cannot run this model on "
                               f"{cell.device}: {str(exc).splitlines()[0]}") from exc
        ts_out = ts.forward(x)
        ref = self._reference_output(cell.case, x, d)
        self._compare_outputs(py_out, ts_out, ref, details, "PyTorch", "TorchSharp")

    def _reference_output(self, case: ModelCase, x: torch.Tensor, d: Path) -> torch.Tensor:
        """The float64 reference for ``x`` from the state PyTorch holds (harness/reference.py)."""
        self.py.snapshot(d / "reference_state.dat", None)
        return reference.forward(case, trusted_codec.read_state_dict(d / "reference_state.dat"), x)

    def _compare_outputs(self, py_out: torch.Tensor, ts_out: torch.Tensor, ref: torch.Tensor | None,
                         details: dict[str, Any], a_name: str, b_name: str) -> None:
        """Outputs agree with each other and each with the float64 reference (harness/bounds.py)."""
        problem = bounds.compare_outputs(py_out, ts_out, ref, a_name, b_name, details)
        if problem:
            raise CheckFailed(problem, details)

    # --- partial loading: PyTorch strict=False next to TorchSharp load(strict: false) ----------
    def check_partial_load(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        """A file lacking the model's first key and carrying one unknown key, loaded
        non-strictly by both: each must load exactly the keys present and keep its own value
        for the missing one (PyTorch reports missing/unexpected keys; TorchSharp reads past
        the unknown key). The file is made with the harness's codec: this cell is about load
        semantics, not about the codec under test."""
        assert isinstance(cell.case, ModelCase)  # only model cases get this check
        self._make_python_state(cell.case, cell.device)
        self.py.snapshot(d / "full.dat", None)
        full = trusted_codec.read_state_dict(d / "full.dat")
        if not full:
            raise CheckSkipped("the model has no state to load partially")
        digests = [TensorDigest.of(v) for v in full.values()]
        # Drop a key whose tensor has no alias: a tied twin would load it anyway, and a buffer
        # viewing it (or viewed by it) would write part of it.
        aliased = {n for v in cell.case.views for n in v[:2]} | {n for t in cell.case.tie for n in t}
        dropped = next((k for k, dg in zip(full, digests) if digests.count(dg) == 1 and k not in aliased),
                       next(iter(full)))
        extra = "unexpected-extra.weight"
        partial = {k: v for k, v in full.items() if k != dropped}
        partial[extra] = torch.zeros(2, 2)
        trusted_codec.write_state_dict(d / "partial.dat", partial)
        expected = {k: TensorDigest.of(v) for k, v in full.items()}
        side: dict[str, Any] = {"dropped": dropped, "unexpected": extra}
        for name, drv in (("PyTorch", self.py), ("TorchSharp", ts)):
            drv.build(cell.case, cell.device)
            fresh = drv.digest().module
            drv.load_module(d / "partial.dat", strict=False)
            got = drv.digest().module
            want = dict(expected)
            if dropped in fresh:
                want[dropped] = fresh[dropped]
            problems = compare_modules(want, got, "expected", name)  # (names a key the side lacks)
            side[name] = {"kept_own_value_for_missing": dropped in got and got.get(dropped) == fresh.get(dropped),
                          "loaded": sorted(k for k in got if k != dropped and got[k] == expected[k])}
            details["side_by_side"] = side
            _fail_if(problems, f"{name}'s non-strict load did not load exactly the keys present", details)

    def check_fresh_init(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        """A freshly built model, nothing loaded: every state tensor whose initial value does
        not depend on the seed in PyTorch (norm weights 1 and biases 0, running stats, zero
        biases, PReLU's 0.25, ...: found by building with two seeds) must start with the
        same bytes in TorchSharp. Loading hides a wrong initial value; a model trained from
        scratch in TorchSharp does not."""
        case = cell.case
        assert isinstance(case, ModelCase)  # only model cases get this check
        if case.fill:
            raise CheckSkipped(f"the case overwrites its state when built (fill={case.fill!r})")
        a = torch_build.build_case_model(case).state_dict()
        b = torch_build.build_case_model(case, seed=case.seed + 1).state_dict()
        fixed = [k for k in a if k in b and TensorDigest.of(a[k]) == TensorDigest.of(b[k])]
        details["seed_independent"] = fixed
        if not fixed:
            raise CheckSkipped("no state tensor has a seed-independent initial value")
        self.py.build(cell.case, cell.device)
        expected = {k: v for k, v in self.py.digest().module.items() if k in fixed}
        ts.build(cell.case, cell.device)
        got = {k: v for k, v in ts.digest().module.items() if k in fixed}
        _fail_if(compare_modules(expected, got, "PyTorch's fresh model", "TorchSharp's fresh model"),
                 "a freshly built TorchSharp model starts with other values than PyTorch's where PyTorch's "
                 "initial value does not depend on the seed", details)

    def check_view_load(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        """Buffers that view other state, loaded from a file where they DISAGREE with their
        bases (each view's entry holds new values): the file is self-contradictory, so what
        each side holds afterwards shows whether loading keeps the aliasing and in which
        order entries land. Both sides must end with the same bytes under every name; the
        side-by-side record says, per view, which of the file's two values the view and its
        base's slice hold. The file is made with the harness's codec."""
        case = cell.case
        assert isinstance(case, ModelCase)  # only model cases with views get this check
        self._make_python_state(case, cell.device)
        self.py.snapshot(d / "consistent.dat", None)
        full = trusted_codec.read_state_dict(d / "consistent.dat")
        conflicting = dict(full)
        for name, *_ in case.views:
            t = full[name]
            conflicting[name] = (torch.arange(t.numel(), dtype=torch.float64).reshape(t.shape) * 0.25 + 100).to(t.dtype)
        trusted_codec.write_state_dict(d / "conflicting.dat", conflicting)
        held: dict[str, Mapping[str, TensorDigest]] = {}
        for side, drv in (("PyTorch", self.py), ("TorchSharp", ts)):
            drv.build(case, cell.device)
            drv.load_module(d / "conflicting.dat")
            held[side] = drv.digest().module
        record: dict[str, Any] = {}
        for name, of, dim, start, length in case.views:
            base_with_view = full[of].clone()
            base_with_view.narrow(dim, start, length).copy_(conflicting[name])
            base_labels = {TensorDigest.of(full[of]): "the file's base entry",
                           TensorDigest.of(base_with_view): "the file's base entry with the view's values written in"}
            view_labels = {TensorDigest.of(conflicting[name]): "the file's view entry",
                           TensorDigest.of(full[of].narrow(dim, start, length)): "the base's slice from the file"}
            record[name] = {side: {"view": _label(view_labels, h.get(name)),
                                   f"base {of}": _label(base_labels, h.get(of))}
                            for side, h in held.items()}
        details["side_by_side"] = record
        _fail_if(compare_modules(held["PyTorch"], held["TorchSharp"], "PyTorch", "TorchSharp"),
                 "after loading a file whose views disagree with their bases, PyTorch and TorchSharp hold "
                 f"different state: {json.dumps(record)}", details)

    # --- TorchScript: a traced PyTorch model run by TorchSharp's torch.jit.load, and back ----
    def _jit(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        assert isinstance(cell.case, ModelCase)  # only model cases get this check
        self._make_python_state(cell.case, cell.device)
        x = inputs.make_input(cell.case, cell.case.seed + 7)
        try:
            self.py.save_torchscript(d / "py_script.pt", x)
        except Exception as exc:  # tracing is PyTorch's business, not the conformance's
            raise CheckSkipped(f"PyTorch cannot trace this model: {str(exc).splitlines()[0][:300]}") from exc
        py_out = self.py.forward(x)
        state, ts_out = ts.jit_run(d / "py_script.pt", x, d / "ts_script.pt")  # type: ignore[attr-defined]
        # What PyTorch itself holds after torch.jit.load of the same file: a script's
        # state_dict also lists non-persistent buffers (TorchScript keeps no such flag).
        expected, _ = self.py.run_torchscript(d / "py_script.pt", x)
        eager = self.py.digest().module
        details["script_only_keys"] = sorted(set(expected) - set(eager))
        _fail_if(compare_modules(eager, {k: v for k, v in expected.items() if k in eager}, "PyTorch model",
                                 "PyTorch's own ScriptModule"), "PyTorch's script holds other state than its model",
                 details)
        problems = compare_modules(expected, state, "PyTorch's ScriptModule", "TorchSharp's ScriptModule")
        _fail_if(problems, "TorchSharp's torch.jit.load holds other state", details)
        details["jit_state"] = expected
        return py_out, ts_out

    def check_jit_py2ts(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        py_out, ts_out = self._jit(cell, ts, d, details)
        details.pop("jit_state")
        assert isinstance(cell.case, ModelCase)  # only model cases get this check
        ref = self._reference_output(cell.case, inputs.make_input(cell.case, cell.case.seed + 7), d)
        self._compare_outputs(py_out, ts_out, ref, details, "PyTorch", "TorchSharp's ScriptModule")

    def check_jit_ts2py(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        py_out, _ = self._jit(cell, ts, d, details)
        script_state = details.pop("jit_state")
        assert isinstance(cell.case, ModelCase)  # only model cases get this check
        x = inputs.make_input(cell.case, cell.case.seed + 7)
        try:
            state, back_out = self.py.run_torchscript(d / "ts_script.pt", x)
        except RuntimeError as exc:
            raise CheckFailed(f"PyTorch {self.py.capabilities.version} cannot torch.jit.load what TorchSharp "
                              f"saved: {str(exc).splitlines()[0][:300]}", details) from exc
        _fail_if(compare_modules(script_state, state, "PyTorch's ScriptModule", "re-loaded script"),
                 "the script TorchSharp saved holds other state", details)
        ref = self._reference_output(cell.case, x, d)
        self._compare_outputs(py_out, back_out, ref, details, "PyTorch", "TorchSharp-saved script")

    # --- single-tensor files (Tensor.Save / Tensor.Load) ---------------------------------
    def check_tensor_py2ts(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        assert isinstance(cell.case, TensorCase)
        t = inputs.make_tensor(cell.case)
        self.py.write_tensor_file(t, d / "py_tensor.dat")
        got = ts.tensor_roundtrip(d / "py_tensor.dat", d / "ts_tensor.dat")  # type: ignore[attr-defined]
        expected = TensorDigest.of(t)
        if got != expected:
            raise CheckFailed(f"TorchSharp's Tensor.Load holds {got}, PyTorch wrote {expected}", details)
        same = _same_bytes(d / "py_tensor.dat", d / "ts_tensor.dat")
        details["file_identical"] = same
        if not same:
            raise CheckFailed("TorchSharp's Tensor.Save wrote other bytes than it loaded", details)

    def check_tensor_ts2py(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        assert isinstance(cell.case, TensorCase)
        if not self.py.capabilities.can_read_tensor:
            raise CheckSkipped(f"codec {self.py.codec_name!r} has no single-tensor reader")
        trusted_codec.write_tensor(d / "input.dat", inputs.make_tensor(cell.case))
        got = ts.tensor_roundtrip(d / "input.dat", d / "ts_tensor.dat")  # type: ignore[attr-defined]
        back = TensorDigest.of(self.py.read_tensor_file(d / "ts_tensor.dat"))
        if back != got:
            raise CheckFailed(f"the codec read {back} from TorchSharp's file; TorchSharp held {got}", details)

    # --- the codec under test's contract on a file TorchSharp wrote ---------------------------
    def _contract(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any], which: str, what: str) -> None:
        mc = model_case_of(cell.case)
        ts.build(cell.case, cell.device)
        ts.train(mc.train_steps, mc.seed + TS_TRAIN_SEED_OFFSET, mc.input_shape, mc.input)
        ts.save_module(d / "ts_module.dat")
        _fail_if(self.py.codec_contract(d / "ts_module.dat", which), what, details)

    def check_contract_usable(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        """What the codec reads from TorchSharp's file owns writable memory, unshared."""
        self._contract(cell, ts, d, details, "usable",
                       f"codec {self.py.codec_name!r} returns tensors that are not safely usable")

    def check_contract_damaged(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        """Damaged copies of TorchSharp's file give a clear data error that says where."""
        self._contract(cell, ts, d, details, "damaged",
                       f"codec {self.py.codec_name!r} gives no clear error for a damaged file")

    # --- semantic checks: both sides continue training and must agree -------------
    def _continue_both(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any],
                       start: tuple[Path, Path]) -> None:
        """Both sides hold the same state (``start``: the files of the side that made it):
        take CONTINUE_STEPS steps on identical gradients (every parameter gets one now), the
        float64 reference (harness/reference.py) too. After each step both sides' parameters,
        buffers and optimizer state are compared with each other (bitwise, else within the
        optimizer's tolerance) and with the reference; the record per step shows where a
        side leaves the reference."""
        assert isinstance(cell.case, OptimizerCase)  # only optimizer cases get these checks
        case, mc = cell.case, cell.case.model_case
        ref = reference.start_state(trusted_codec.read_state_dict(start[0]), trusted_codec.read_optimizer(start[1]),
                                    [list(g["params"]) for g in case.optimizer["groups"]])
        params = torch_build.reference_parameters(mc.model, mc.dtype, mc.seed)
        per_step: list[dict[str, Any]] = []
        sides: dict[str, semantics.ReferenceDistance] = {}
        verdict = semantics.Verdict(0.0)
        first_off: dict[str, int] = {}
        for k in range(CONTINUE_STEPS):
            grads = torch_build.make_gradients(params, mc.seed, 100 + case.steps + k)
            self.py.step(grads)
            ts.step(grads)
            reference.optimizer_steps(case.optimizer_type, ref, [grads])
            ts.snapshot(d / "ts_continued_module.dat", d / "ts_continued_optimizer.dat")
            self.py.snapshot(d / "py_continued_module.dat", d / "py_continued_optimizer.dat")
            held = {"PyTorch": (trusted_codec.read_state_dict(d / "py_continued_module.dat"),
                                trusted_codec.read_optimizer(d / "py_continued_optimizer.dat")),
                    "TorchSharp": (trusted_codec.read_state_dict(d / "ts_continued_module.dat"),
                                   trusted_codec.read_optimizer(d / "ts_continued_optimizer.dat"))}
            verdict = semantics.compare_continued(case.optimizer_type, *held["PyTorch"][:1], held["TorchSharp"][0],
                                                  held["PyTorch"][1], held["TorchSharp"][1], cell.pytorch)
            sides = {side: semantics.reference_distance(m, r, ref)
                     for side, (m, r) in held.items()}
            step_no = ref.states[0].get("step") if ref.states else None
            label = step_no if isinstance(step_no, int) else case.steps + k + 1
            for side, dist in sides.items():
                if not dist.ok:
                    first_off.setdefault(side, label)
            per_step.append({"step": label, "between_ulp": _finite(verdict.max_ulp),
                             **{f"{side}_from_reference_eps": _finite(dist.max_eps) for side, dist in sides.items()},
                             **{f"{side}_off_reference": not dist.ok for side, dist in sides.items()}})
        details.update(verdict.details())
        details["per_step"] = per_step
        details["reference"] = {side: dist.to_json() for side, dist in sides.items()}
        problems = []
        for side, dist in sides.items():
            if not dist.ok:
                others = ", ".join(f"{o} {x.max_eps:.3g}" for o, x in sides.items() if o != side)
                before = [s["step"] for s in per_step if s["step"] != first_off[side]
                          and not s[f"{side}_off_reference"]]
                problems.append(f"{side} is wrong: {dist.summary()} from the float64 reference (bound "
                                f"{dist.tolerance:g}; {others}); off the reference from step {first_off[side]}"
                                + (f", within it at step(s) {before}" if before else ""))
        problems += verdict.problems
        _fail_if(problems, f"after {CONTINUE_STEPS} more steps on identical gradients (max {verdict.max_ulp:g} ULP "
                 f"apart, tolerance {verdict.tolerance:g})", details)

    def check_continue_py2ts(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        # No digest comparison here: this check must stand on its own (a state that loads
        # and round-trips but means something else is caught by continuing, not by digests).
        self._py_to_ts(cell, ts, d, details, compare=False)
        self.py.snapshot(d / "start_module.dat", d / "start_optimizer.dat")
        self._continue_both(cell, ts, d, details, (d / "start_module.dat", d / "start_optimizer.dat"))

    def check_continue_ts2py(self, cell: Cell, ts: Driver, d: Path, details: dict[str, Any]) -> None:
        case = cell.case
        assert isinstance(case, OptimizerCase)  # only optimizer cases get this check
        mc = case.model_case
        if not self.py.capabilities.can_read_optimizer:
            raise CheckSkipped(f"codec {self.py.codec_name!r} cannot read optimizer files")
        ts.build(case, cell.device)
        ts.train(case.steps, mc.seed + TS_TRAIN_SEED_OFFSET, mc.input_shape, mc.input)
        ts.save_module(d / "ts_module.dat")
        ts.save_optimizer(d / "ts_optimizer.dat")
        self.py.build(case, cell.device)
        self.py.load_module(d / "ts_module.dat")
        self.py.load_optimizer(d / "ts_optimizer.dat")
        self._continue_both(cell, ts, d, details, (d / "ts_module.dat", d / "ts_optimizer.dat"))

    # --- classification ------------------------------------------------------------
    def _cell_dir(self, cell: Cell) -> Path:
        d = self.workdir / re.sub(r"[^A-Za-z0-9_.-]+", "_", cell.id)
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def run(self, cell: Cell) -> CellResult:
        result = CellResult(id=cell.id, case=cell.case.name, check=cell.check, pytorch=cell.pytorch,
                            torchsharp=cell.torchsharp, device=cell.device, codec=cell.codec,
                            outcome="pass", features=list(cell.case.features))
        start = time.monotonic()
        d: Path | None = None
        ts = self.ts.get(cell.torchsharp)
        try:
            if isinstance(self.py, Exception):
                raise CheckSkipped(f"unavailable: PyTorch {cell.pytorch}: {self.py}")
            if ts is None or isinstance(ts, Exception):
                raise CheckSkipped(f"unavailable: TorchSharp {cell.torchsharp}: {ts}")
            for drv in (self.py, ts):
                if cell.device not in drv.capabilities.devices:
                    raise CheckSkipped(f"device {cell.device!r} not available to {drv.capabilities.name} "
                                       f"{drv.capabilities.version} here (no CUDA device, and no CUDA build "
                                       "of TorchSharp is served)")
            if isinstance(cell.case, OptimizerCase) and cell.case.optimizer_type not in ts.capabilities.optimizers:
                raise CheckSkipped(f"the TorchSharp worker cannot build optimizer {cell.case.optimizer_type}")
            if "large" in cell.case.features:
                obstacle = large_cell_obstacle(self.workdir)
                if obstacle:
                    raise CheckSkipped(obstacle)
            d = self._cell_dir(cell)
            check: Callable[[Cell, Driver, Path, dict[str, Any]], None] = getattr(self, "check_" + cell.check)
            check(cell, ts, d, result.details)
        except CheckFailed as exc:
            result.outcome, result.reason = "fail", exc.reason
            result.details.update(exc.details)
        except CheckSkipped as exc:
            result.outcome, result.reason = "skip", str(exc)
        except WorkerSkipped as exc:
            result.outcome, result.reason = "skip", f"TorchSharp declined: {exc}"
        except WorkerRuntimeError as exc:
            result.outcome, result.reason = "fail", f"TorchSharp threw in {exc}"
            result.details["stack"] = exc.stack[-2000:]
        except CodecFailure as exc:
            result.outcome, result.reason = "fail", str(exc)
            result.details["traceback"] = traceback.format_exc()[-3000:]
        except (WorkerTimeout, WorkerCrash, WorkerParseError) as exc:
            result.outcome = "error"
            result.reason = f"{exc.kind}: {str(exc)[:1500]}"
            result.details["worker"] = exc.kind
            self._restart(cell.torchsharp)
        except WorkerError as exc:  # pragma: no cover - every subclass is handled above
            result.outcome, result.reason = "error", f"{exc.kind}: {exc}"
        except Exception as exc:  # the harness itself broke: never hide it as a pass
            result.outcome, result.reason = "error", f"harness error: {type(exc).__name__}: {exc}"
            result.details["harness_error"] = True
            result.details["traceback"] = traceback.format_exc()[-3000:]
        result.duration_s = round(time.monotonic() - start, 3)
        machines = {"pytorch": getattr(getattr(self.py, "capabilities", None), "machine", None),
                    "torchsharp": getattr(getattr(ts, "capabilities", None), "machine", None)}
        features = features_of(machines)
        if any(e.when for e in self.expected.entries if e.matches_cell(cell.id)):  # a machine-dependent verdict
            result.details["machine_features"] = sorted(f for f in features if not f.startswith("cpu."))
        result = self.expected.apply(result, features)
        if d is not None:
            if result.outcome == "pass" and not self.keep_passing:
                shutil.rmtree(d, ignore_errors=True)
            else:
                result.evidence = str(d)
                if not self.keep_passing:  # --keep keeps every file whole
                    omitted = prune_evidence(d)
                    if omitted:
                        result.details["evidence_omitted"] = omitted
                write_repro(d, cell, result)
        return result

    def _restart(self, version: str) -> None:
        ts = self.ts.get(version)
        restart = getattr(ts, "ensure_alive", None)
        if restart is None:
            return
        try:
            restart()
        except Exception as exc:  # a worker that cannot come back: its later cells are unavailable
            self.ts[version] = exc
