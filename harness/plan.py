"""The cell plan: case x check x PyTorch x TorchSharp x device x codec.

Which checks a case gets comes from the check registry (harness/checks/): each check says
which kinds of case it applies to.
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

    @property
    def id(self) -> str:
        return "::".join((self.case.name, self.check, f"pt{self.pytorch}", f"ts{self.torchsharp}",
                          self.device, self.codec))


def checks_for(case: Case) -> tuple[str, ...]:
    kinds = kinds_of(case)
    return tuple(name for name, c in REGISTRY.items() if c.kinds & kinds)


def make_cells(cases: Iterable[Case], pytorch: str, torchsharp: Iterable[str], codec: str,
               checks: Iterable[str] | None = None, devices: Iterable[str] = DEVICES) -> list[Cell]:
    wanted = set(REGISTRY if checks is None else checks)
    versions, devs = list(torchsharp), list(devices)
    return [Cell(case, check, pytorch, ts, device, codec)
            for case in cases for check in checks_for(case) if check in wanted
            for ts in versions for device in devs]


def shard_of(cell: Cell, shards: int, large_apart: bool = False) -> int:
    """The shard (0-based) a cell belongs to among ``shards``: by a hash of its id, so adding
    cases never moves the cells already there; every cell of a ``large`` case goes to shard 0,
    so tensors of several GiB never run on two shards of one machine at once. ``large_apart``
    (parallel jobs on one machine): shard 0 holds only the large cells, the others share the
    rest, so the small cells never wait behind them."""
    if shards <= 1 or "large" in cell.case.features:
        return 0
    h = int.from_bytes(hashlib.sha256(cell.id.encode()).digest()[:8], "big")
    return 1 + h % (shards - 1) if large_apart else h % shards


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
