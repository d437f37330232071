"""The check registry: name -> what runs, for which cases, needing which capabilities.

A check is a function of a :class:`Context` registered with :func:`check`; it raises
:class:`CheckFailed` or :class:`CheckSkipped` (everything else that can go wrong is the
runner's business: harness/running/runner.py). Registration order is report order. Capabilities a
check needs are declared here and compared with what the drivers declare
(``Capabilities.features``): a missing one skips the cell with its reason, never by hand in
the check.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cases import Case, ModelCase, OptimizerCase, TensorCase
from harness.drivers.base import PythonDriver, TorchSharpSide
from harness.verdicts.outcomes import Verdict
from harness.routes import DAT
from harness.routes.base import CARRIABLE, Route

if TYPE_CHECKING:  # harness.running.plan builds cells from this registry
    from harness.running.plan import Cell


class CheckFailed(Exception):
    def __init__(self, reason: str, details: Mapping[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.details = dict(details or {})

    def as_verdict(self) -> Verdict:
        return Verdict("fail", self.reason, self.details)


class CheckSkipped(Exception):
    def as_verdict(self) -> Verdict:
        return Verdict("skip", str(self))


@dataclass
class Context:
    """What a check works with: its cell, both sides, its folder and its details record."""

    cell: Cell
    py: PythonDriver
    ts: TorchSharpSide
    d: Path
    details: dict[str, Any] = field(default_factory=dict)
    route: Route = DAT  # the road the cell's state takes (harness/routes/); the drivers are bound to it

    def file(self, stem: str) -> Path:
        """The cell's file ``stem`` in the form its route carries (``py_module`` -> py_module.dat)."""
        return self.d / f"{stem}{self.route.suffix}"


# Why a side's missing capability skips a check (format keys: codec, name, version).
NEEDS = {
    "read_optimizer": "codec {codec!r} cannot read optimizer files",
    "read_tensor": "codec {codec!r} has no single-tensor reader",
    "jit": "{name} {version} driver lacks TorchScript (jit_run)",
    "tensor_file": "{name} {version} driver lacks single-tensor files (Tensor.Save/Load)",
}


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Context], None]
    kinds: frozenset[str]                     # "model", "views" (a model case with views), "optimizer", "tensor"
    pytorch_needs: frozenset[str] = frozenset()
    torchsharp_needs: frozenset[str] = frozenset()
    # What the cell's route must carry beyond what the case kind needs (harness/routes/base.py);
    # route_independent: the check moves no state through a route (planned once, harness/running/plan.py).
    route_needs: frozenset[str] = frozenset()
    route_independent: bool = False
    # Case features the check declines, each with the skip's reason: known before the cell runs,
    # so --jobs weighs such cells nothing (harness/running/plan.py job_of_cells).
    declines: Mapping[str, str] = field(default_factory=dict)

    def declined(self, case: Case) -> str | None:
        """Why this check declines ``case`` (None: it takes it)."""
        return next((why for feature, why in self.declines.items() if feature in case.features), None)

    def needs_of_route(self, case: Case) -> frozenset[str]:
        """What a route must carry for this check on ``case``: the case kind's state, and the
        check's own needs."""
        kind = {TensorCase: "tensor", OptimizerCase: "optimizer"}.get(type(case), "module")
        return self.route_needs | {kind} | ({"module"} if kind == "optimizer" else set())

    def missing(self, py: PythonDriver, ts: TorchSharpSide) -> str | None:
        """The reason this check cannot run with these drivers (None: it can)."""
        for need in sorted(self.pytorch_needs - py.capabilities.features):
            return NEEDS[need].format(codec=py.codec_name, name=py.capabilities.name, version=py.capabilities.version)
        for need in sorted(self.torchsharp_needs - ts.capabilities.features):
            return NEEDS[need].format(codec="", name=ts.capabilities.name, version=ts.capabilities.version)
        return None


REGISTRY: dict[str, Check] = {}


def check(name: str, kinds: set[str], pytorch_needs: set[str] | None = None,
          torchsharp_needs: set[str] | None = None, route_needs: set[str] | None = None,
          route_independent: bool = False, declines: Mapping[str, str] | None = None
          ) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    """Register the decorated function as the check ``name``."""
    unknown = (pytorch_needs or set()) | (torchsharp_needs or set())
    if unknown - set(NEEDS):
        raise ValueError(f"check {name!r}: unknown capabilities {sorted(unknown - set(NEEDS))}")
    if (route_needs or set()) - CARRIABLE:
        raise ValueError(f"check {name!r}: unknown route needs {sorted((route_needs or set()) - CARRIABLE)}")

    def register(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        REGISTRY[name] = Check(name, fn, frozenset(kinds), frozenset(pytorch_needs or ()),
                               frozenset(torchsharp_needs or ()), frozenset(route_needs or ()), route_independent,
                               dict(declines or {}))
        return fn
    return register


def kinds_of(case: Case) -> set[str]:
    if isinstance(case, TensorCase):
        return {"tensor"}
    if isinstance(case, OptimizerCase):
        return {"optimizer"}
    assert isinstance(case, ModelCase)
    if case.model.get("type") == "TorchVision":  # the model zoo: its checks and those it reuses (checks/zoo.py)
        return {"zoo"}
    return {"model", "views"} if case.views else {"model"}


def fail_if(problems: list[str], what: str, details: dict[str, Any]) -> None:
    """Fail the check with ``what`` and the first problems (all of them in the details)."""
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... {len(problems) - 6} more" if len(problems) > 6 else "")
        details["mismatches"] = problems
        raise CheckFailed(f"{what}: {shown}", details)
