"""The cell plan: case x check x PyTorch x TorchSharp x device x codec x route.

Which checks a case gets comes from the check registry (harness/checks/): each check says
which kinds of case it applies to. A check that does not move state through a route
(``route_independent``: fresh builds, TorchScript files) is planned once, on the first route
of the plan, not once per route.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.cases import Case
from harness.checks import REGISTRY, kinds_of

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Cell:
    case: Case
    check: str
    pytorch: str
    torchsharp: str
    device: str
    codec: str
    route: str = "dat"

    @property
    def id(self) -> str:
        return "::".join((self.case.name, self.check, f"pt{self.pytorch}", f"ts{self.torchsharp}",
                          self.device, self.codec, self.route))


def checks_for(case: Case) -> tuple[str, ...]:
    kinds = kinds_of(case)
    return tuple(name for name, c in REGISTRY.items() if c.kinds & kinds)


def make_cells(cases: Iterable[Case], pytorch: str, torchsharp: Iterable[str], codec: str,
               checks: Iterable[str] | None = None, devices: Iterable[str] = DEVICES,
               routes: Sequence[str] = ("dat",), large_routes: Sequence[str] | None = None,
               zoo_routes: Sequence[str] | None = None) -> list[Cell]:
    """Every cell of ``cases`` x their checks x ``routes`` x TorchSharp versions x devices;
    the cells of ``large`` cases (tensors past 2 GiB, a minute each) only on ``large_routes``,
    those of ``zoo`` cases (torchvision models, seconds to a minute each) only on ``zoo_routes``
    (default for both: every route of the plan)."""
    wanted = set(REGISTRY if checks is None else checks)
    versions, devs = list(torchsharp), list(devices)
    limits = {"large": large_routes, "zoo": zoo_routes}
    return [Cell(case, check, pytorch, ts, device, codec, route)
            for case in cases for check in checks_for(case) if check in wanted
            for route in _routes_of(check, case.features, routes, limits)
            for ts in versions for device in devs]


def _routes_of(check: str, features: Iterable[str], routes: Sequence[str],
               limits: dict[str, Sequence[str] | None]) -> Sequence[str]:
    on = [r for r in routes if all(lim is None or r in lim for f, lim in limits.items() if f in features)]
    return on[:1] if REGISTRY[check].route_independent else on


def shard_of(cell: Cell, shards: int) -> int:
    """The shard (0-based) a cell belongs to among ``shards`` (``--shard I/N``, CI machines):
    by a hash of its id, so adding cases never moves the cells already there; every cell of a
    ``large`` case goes to shard 0, so tensors of several GiB never run on two shards of one
    machine at once."""
    if shards <= 1 or "large" in cell.case.features:
        return 0
    return _hash(cell) % shards


def job_of_cells(cells: Sequence[Cell], jobs: int, large_jobs: int) -> list[int]:
    """The job (0-based) of each cell of a whole plan run as ``jobs`` parallel jobs on one
    machine (``--jobs``), ``large_jobs`` of which may hold large-tensor cells (as many as the
    machine's memory carries at once: harness/memory.py). The large cells are dealt in plan
    order over jobs 0..large_jobs-1, so those jobs get equal shares of the heaviest work; the
    other cells go by the stable hash over the jobs without large cells, or over all jobs when
    every job holds some (so the small cells never wait behind large ones they could avoid)."""
    if not 1 <= large_jobs <= jobs:
        raise ValueError(f"large_jobs must be between 1 and jobs ({jobs}), not {large_jobs}")
    out, dealt = [], 0
    small_from = large_jobs if large_jobs < jobs else 0
    for cell in cells:
        if "large" in cell.case.features:
            out.append(dealt % large_jobs)
            dealt += 1
        else:
            out.append(small_from + _hash(cell) % (jobs - small_from))
    return out


def _hash(cell: Cell) -> int:
    return int.from_bytes(hashlib.sha256(cell.id.encode()).digest()[:8], "big")


def plan_fingerprint(cells: Sequence[Cell]) -> str:
    """What identifies a whole (unsharded) plan: shards of one plan carry the same one."""
    return hashlib.sha256("\n".join(c.id for c in cells).encode()).hexdigest()[:16]


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (1-based I) -> (I-1, N); ValueError naming the problem."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise ValueError(f"--shard {text!r}: I must be between 1 and N")
    return i - 1, n
