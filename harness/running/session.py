"""Starting the implementations a run needs (shared by the CLI and the pytest plugin).

A driver that cannot start becomes its exception: its cells are "unavailable" skips with
the reason, never a crash of the run.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from harness.codecs import CodecUnderTest
from harness.drivers.base import Driver, PythonDriver, TorchSharpSide
from harness.drivers.pytorch import PyTorchDriver
from harness.drivers.pytorch_worker import PyTorchUnavailable, chroot_pytorch
from harness.drivers.torchsharp import TorchSharpDriver, WorkerUnavailable


def start_torchsharp(versions: Sequence[str], workdir: Path,
                     env: Mapping[str, str] | None = None) -> dict[str, TorchSharpSide | Exception]:
    """One C# worker per TorchSharp version (``env``: extra variables for those processes)."""
    drivers: dict[str, TorchSharpSide | Exception] = {}
    for v in versions:
        try:
            drivers[v] = TorchSharpDriver(v, workdir=workdir, env=env)
        except WorkerUnavailable as exc:
            drivers[v] = exc
    return drivers


def start_pytorch(labels: Sequence[str], codec: CodecUnderTest, codec_spec: str,
                  workdir: Path) -> list[tuple[str, PythonDriver | Exception]]:
    """``host``: this interpreter's PyTorch, in process; ``2.6``: Debian 13's, in its chroot."""
    out: list[tuple[str, PythonDriver | Exception]] = []
    for label in labels:
        if label == "host":
            out.append((label, PyTorchDriver(codec)))
            continue
        try:
            if label != "2.6":
                raise PyTorchUnavailable(f"unknown PyTorch {label!r} (known: host, 2.6)")
            out.append((label, chroot_pytorch(workdir, codec_spec, codec.name)))
        except PyTorchUnavailable as exc:
            out.append((label, exc))
    return out


def close_all(drivers: Iterable[Driver | Exception]) -> None:
    for drv in drivers:
        if isinstance(drv, Driver):
            drv.close()
