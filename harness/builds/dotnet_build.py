"""Building one of the project's .NET programs (dotnet/Worker, dotnet/Findings, ...) against
one TorchSharp version, once: into its own folder, reused while a stamp of the project's
sources (and the version) matches."""
from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.drivers.protocol import ProcessFailed
from harness.drivers.torchsharp_versions import LIBTORCH_FOR, NOT_SERVED, companion_props
from harness.paths import ROOT


class DotnetUnavailable(RuntimeError):
    """The program cannot be built here for this TorchSharp version (no SDK, unknown or
    unserved version); the message says which."""


def source_hash(project: Path, version: str, salt: str = "") -> str:
    """The stamp of a project's sources for one TorchSharp version (bin/ and obj/ left out;
    ``salt``: anything else the build depends on, e.g. another package's version)."""
    h = hashlib.sha256(f"{version} {salt}".strip().encode())
    for path in sorted(project.rglob("*")):
        if path.is_file() and "bin" not in path.parts and "obj" not in path.parts:
            h.update(str(path.relative_to(project)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """One holder at a time of the lock file ``path`` (made with its folder if need be),
    across processes: parallel jobs, pytest-xdist workers and runs share build/."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build_project(csproj: Path, version: str, out: Path, dll_name: str, force: bool = False,
                  extra_props: Sequence[str] = ()) -> Path:
    """``dotnet build`` ``csproj`` for TorchSharp ``version`` (and its LibTorch) into ``out``
    unless an up-to-date build is there; return the built ``dll_name``. Raises
    :class:`DotnetUnavailable` when it cannot be built here (a failing build: with its command
    line and both output streams)."""
    dll, stamp = out / dll_name, out / ".source-hash"
    extra_props = [*companion_props(version), *extra_props]  # TorchSharp.PyBridge, TorchVision pinned beside it
    digest = source_hash(csproj.parent, version, " ".join(extra_props))
    if not force and dll.exists() and stamp.exists() and stamp.read_text() == digest:
        return dll
    with locked(out.parent / f".{out.name}.lock"):  # parallel jobs or test workers: one builds
        if not force and dll.exists() and stamp.exists() and stamp.read_text() == digest:
            return dll  # built by the one that held the lock
        return _build(csproj, version, out, dll, stamp, digest, extra_props)


def _build(csproj: Path, version: str, out: Path, dll: Path, stamp: Path, digest: str,
           extra_props: Sequence[str]) -> Path:
    if shutil.which("dotnet") is None:
        raise DotnetUnavailable("the .NET SDK (dotnet) is not on PATH")
    libtorch = LIBTORCH_FOR.get(version)
    if libtorch is None:
        raise DotnetUnavailable(f"TorchSharp {version}: no known LibTorch version for it "
                                f"(known: {sorted(LIBTORCH_FOR)}; dotnet/torchsharp-versions.json)")
    argv = ["dotnet", "build", str(csproj), "-c", "Release", "-nologo",
            f"-p:TorchSharpVersion={version}", f"-p:LibTorchVersion={libtorch}", *extra_props, "-o", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if any(marker in text for marker in NOT_SERVED):
            raise DotnetUnavailable(f"TorchSharp {version} (LibTorch {libtorch}) is not served by the NuGet feed: "
                                    + next((ln.strip() for ln in text.splitlines()
                                            if any(marker in ln for marker in NOT_SERVED)), ""))
        raise DotnetUnavailable(str(ProcessFailed(argv, proc.returncode, proc.stdout, proc.stderr)))
    stamp.write_text(digest)
    return dll
