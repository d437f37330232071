"""The cell plan: case x check x PyTorch x TorchSharp x device x codec.

Which checks a case gets comes from the check registry (harness/checks/): each check says
which kinds of case it applies to.
"""
from __future__ import annotations

from collections.abc import Iterable
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
