"""The cell plan: case x check x PyTorch x TorchSharp x device x codec x route.

Which checks a case gets comes from the check registry (harness/checks/): each check says
which kinds of case it applies to. A check that does not move state through a route
(``route_independent``: fresh builds, TorchScript files) is planned once, on the first route
of the plan, not once per route.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from harness.cases import Case, ModelCase
from harness.checks import REGISTRY, kinds_of
from harness.cases.zoo import PARAMETERS_M, cell_seconds

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


# Estimated seconds of a cell that runs, on the reference machine (run default-7): they only
# decide how --jobs deals the plan out, never a verdict. A zoo cell: harness/cases/zoo.py cell_seconds.
SMALL_CELL_S = 0.03
LARGE_CELL_S = 14.0


# Zoo models of this many million parameters and more (alexnet, resnet152, resnext101,
# wide_resnet, vgg: the default subset's vgg11_bn too) hold GiB in one job: a continued AdamW
# over vgg19_bn keeps its parameters, moments and float64 reference several times over (two
# such jobs at once were killed for memory on the 24 GiB machine, 2026-12-05), and vgg11_bn's
# cells beside the large-tensor cells in one job were killed too (run default-8: the job's
# processes and the other job's held all 23 GiB). So they get jobs of their own, as few as the
# large cells get, counted from the other end.
HEAVY_ZOO_M = 50.0


def zoo_arch(case: Case) -> str | None:
    """The torchvision model a zoo case (model or optimizer) is about: its ``zoo-<arch>`` feature."""
    return next((f[len("zoo-"):] for f in case.features if f.startswith("zoo-") and f[len("zoo-"):] in PARAMETERS_M),
                None)


def big_zoo_model(case: Case) -> bool:
    """A zoo case whose model has at least HEAVY_ZOO_M million parameters."""
    arch = zoo_arch(case)
    return arch is not None and PARAMETERS_M[arch] >= HEAVY_ZOO_M


def memory_heavy(case: Case) -> bool:
    """A case whose cells may hold many GiB at once: the large-tensor cases and the zoo's big
    models. --jobs keeps each kind to as many jobs as memory carries (harness/running/memory.py)."""
    return "large" in case.features or big_zoo_model(case)


def heavy_pool(case: Case, jobs: int, large_jobs: int) -> range:
    """The jobs a ``memory_heavy`` case's cells may go to: large-tensor cells the first
    ``large_jobs``, big zoo models the last ``large_jobs``, so the two kinds share a job only
    when more than half the jobs may hold large cells."""
    return range(large_jobs) if "large" in case.features else range(jobs - large_jobs, jobs)


def estimated_seconds(cell: Cell) -> float:
    if "large" in cell.case.features:
        return LARGE_CELL_S
    arch = zoo_arch(cell.case)
    if arch is not None:
        return cell_seconds(arch, optimizer=not isinstance(cell.case, ModelCase))
    return SMALL_CELL_S


def job_of_cells(cells: Sequence[Cell], jobs: int, large_jobs: int,
                 runs: Callable[[Cell], bool] | None = None) -> list[int]:
    """The job (0-based) of each cell of a whole plan run as ``jobs`` parallel jobs on one
    machine (``--jobs``), ``large_jobs`` of which may hold large-tensor cells (as many as the
    machine's memory carries at once: harness/running/memory.py) and as many the zoo's big models
    (``heavy_pool`` says which). Each cell goes to the job with the least estimated work so far
    (``estimated_seconds``; a cell that ``runs`` says will be skipped weighs nothing): first the
    large cells, then the big zoo models, then the others in plan order over every job, so a
    job that holds heavy cells takes small ones too once the others have caught up with it."""
    if not 1 <= large_jobs <= jobs:
        raise ValueError(f"large_jobs must be between 1 and jobs ({jobs}), not {large_jobs}")
    load = [0.0] * jobs
    out = [0] * len(cells)
    rank = [0 if "large" in c.case.features else 1 if memory_heavy(c.case) else 2 for c in cells]
    for i in sorted(range(len(cells)), key=lambda i: rank[i]):  # large, big zoo, the rest; each in plan order
        pool = heavy_pool(cells[i].case, jobs, large_jobs) if rank[i] < 2 else range(jobs)
        job = min(pool, key=lambda k: (load[k], k))
        out[i] = job
        if runs is None or runs(cells[i]):
            load[job] += estimated_seconds(cells[i])
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
