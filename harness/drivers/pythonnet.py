"""Second TorchSharp driver: Python code driving TorchSharp through pythonnet, in a .NET host.

```
 harness (this process, PyTorch)           dotnet build/pyhost/<v>/PyHost.dll pythonnet_server.py
 -------------------------------           -----------------------------------------------------
  PythonnetDriver ── worker protocol ──▶    embedded CPython (Debian's libpython3.11)
                    (JSON lines, stdio)       └─ clr ──▶ TorchSharp <v> + LibTorch (never PyTorch)
```

The host (dotnet/PyHost) is built once per TorchSharp version into ``build/pyhost/<v>/``
(a stamp records the source hash, as for the C# worker). The server
(harness/drivers/pythonnet_server.py) speaks the same protocol as the C# worker, so this
driver is the C# worker's driver with another process behind it; what the server cannot do
it declines as "pythonnet driver lacks ...", which a cell reports as a skip.

``run_script`` runs a user's script in the host (``python3 -m harness pythonnet SCRIPT.py``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.drivers.base import Capabilities, Driver
from harness.drivers.protocol import ProcessFailed, SubprocessTransport, WorkerClient, WorkerError
from harness.drivers.torchsharp import (
    BUILD_ROOT as WORKER_BUILD_ROOT,
)
from harness.drivers.torchsharp import (
    DEFAULT_VERSION,
    LIBTORCH_FOR,
    TorchSharpDriver,
    WorkerUnavailable,
)

ROOT = Path(__file__).resolve().parents[2]
HOST_PROJECT = ROOT / "dotnet" / "PyHost"
BUILD_ROOT = WORKER_BUILD_ROOT.parent / "pyhost"
SERVER = Path(__file__).resolve().with_name("pythonnet_server.py")
PYTHON_LIBRARY = Path("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0")  # Debian's libpython3.11
PYTHONNET_VERSION = "3.2.1"
DRIVER_KIND = "pythonnet"  # the TorchSharp-driver axis: "csharp" (TorchSharpDriver) | "pythonnet"


def driver_kind(driver: object) -> str:
    """Which TorchSharp driver this is: "pythonnet" or "csharp" (the C# worker)."""
    return str(getattr(driver, "driver_kind", "csharp"))


def _source_hash(version: str) -> str:
    h = hashlib.sha256(f"{version} pythonnet {PYTHONNET_VERSION}".encode())
    for path in sorted(HOST_PROJECT.rglob("*")):
        if path.is_file() and "bin" not in path.parts and "obj" not in path.parts:
            h.update(str(path.relative_to(HOST_PROJECT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def host_dir(version: str) -> Path:
    return BUILD_ROOT / version


def python_library() -> Path:
    return Path(os.environ.get("PYTHONNET_PYDLL") or PYTHON_LIBRARY)


def build_pyhost(version: str = DEFAULT_VERSION, force: bool = False) -> Path:
    """Build the pythonnet host for ``version`` unless an up-to-date build exists; return PyHost.dll."""
    out = host_dir(version)
    dll = out / "PyHost.dll"
    stamp = out / ".source-hash"
    digest = _source_hash(version)
    if not force and dll.exists() and stamp.exists() and stamp.read_text() == digest:
        return dll
    if shutil.which("dotnet") is None:
        raise WorkerUnavailable("the .NET SDK (dotnet) is not on PATH")
    libtorch = LIBTORCH_FOR.get(version)
    if libtorch is None:
        raise WorkerUnavailable(f"TorchSharp {version}: no known LibTorch version for it (known: {sorted(LIBTORCH_FOR)})")
    argv = ["dotnet", "build", str(HOST_PROJECT / "PyHost.csproj"), "-c", "Release", "-nologo",
            f"-p:TorchSharpVersion={version}", f"-p:LibTorchVersion={libtorch}",
            f"-p:PythonnetVersion={PYTHONNET_VERSION}", "-o", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if "NU1102" in text or "NU1101" in text or "Unable to find package" in text:
            raise WorkerUnavailable(f"TorchSharp {version} (LibTorch {libtorch}) or pythonnet {PYTHONNET_VERSION} "
                                    "is not served by the NuGet feed: "
                                    + next((ln.strip() for ln in text.splitlines() if "NU110" in ln), ""))
        raise WorkerUnavailable(str(ProcessFailed(argv, proc.returncode, proc.stdout, proc.stderr)))
    stamp.write_text(digest)
    return dll


def host_argv(version: str, *args: str) -> list[str]:
    """The command line that runs ``args`` (a script and its arguments, or ``-m MODULE ...``) in the host."""
    return ["dotnet", str(build_pyhost(version)), *args]


class PythonnetDriver(TorchSharpDriver):
    """TorchSharp ``version`` driven by pythonnet_server.py inside the pythonnet host.

    Same operations as the C# worker's driver (build, load/save, step, train, forward,
    digest, tensor_roundtrip, jit_run), restarted by ``ensure_alive`` after a crash or timeout.
    """

    driver_kind = DRIVER_KIND

    def __init__(self, version: str = DEFAULT_VERSION, workdir: Path | None = None, timeout: float = 120.0):
        self.version = version
        self.timeout = timeout
        self.workdir = Path(workdir or (BUILD_ROOT.parent / "tmp"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        library = python_library()
        if not library.exists():
            raise WorkerUnavailable(f"the CPython library {library} is missing (Debian package libpython3.11; "
                                    "scripts/setup.sh installs it)")
        self._dll = build_pyhost(version)
        self._transport: SubprocessTransport | None = None
        self._client: WorkerClient | None = None
        self._step_no = 0
        self.hello = {}
        self.start()

    @property
    def argv(self) -> list[str]:
        return ["dotnet", str(self._dll), str(SERVER)]

    @property
    def lacks(self) -> list[str]:
        """What the pythonnet server says it cannot do (its hello's ``lacks``)."""
        return [str(x) for x in self.hello.get("lacks", [])]

    def start(self) -> None:
        try:
            self._transport = SubprocessTransport(self.argv, env={"DOTNET_CLI_TELEMETRY_OPTOUT": "1"}, cwd=str(ROOT))
            self._client = WorkerClient(self._transport, self.timeout)
            self.hello = self._client.call("hello", timeout=180)
        except (OSError, WorkerError) as exc:
            if self._transport is not None:
                self._transport.kill()
            raise WorkerUnavailable(f"TorchSharp {self.version} pythonnet host did not start: {exc}") from exc
        version = str(self.hello.get("version", self.version))
        self.capabilities = Capabilities(
            name="TorchSharp", version=version,
            devices=frozenset({"cpu"} | ({"cuda"} if self.hello.get("cuda") else set())),
            optimizers=frozenset(self.hello.get("optimizers", [])),
            modules=frozenset(self.hello.get("modules", [])),
            provenance={"driver": DRIVER_KIND,
                        f"TorchSharp {version} via pythonnet": version,
                        "pythonnet": PYTHONNET_VERSION,
                        "pythonnet host python": str(self.hello.get("python", "?")),
                        "pythonnet host libtorch": str(self.hello.get("libtorch", "?")),
                        "pythonnet host dotnet": str(self.hello.get("runtime", "?")),
                        "pythonnet driver lacks": "; ".join(self.lacks) or "nothing"},
        )


def start_pythonnet(versions: Sequence[str], workdir: Path) -> dict[str, Driver | Exception]:
    """One pythonnet driver per TorchSharp version (an Exception for a version that cannot
    start: its cells become "unavailable" skips), as ``cli.start_torchsharp`` does for C#."""
    drivers: dict[str, Driver | Exception] = {}
    for v in versions:
        try:
            drivers[v] = PythonnetDriver(v, workdir=workdir)
        except WorkerUnavailable as exc:
            drivers[v] = exc
    return drivers


def run_script(script: str, args: Sequence[str] = (), version: str = DEFAULT_VERSION) -> int:
    """Run a user's Python script inside the pythonnet host against TorchSharp ``version``,
    with this process's stdin/stdout/stderr; return its exit status."""
    if not Path(script).is_file():
        raise FileNotFoundError(f"no such script: {script}")
    library = python_library()
    if not library.exists():
        raise WorkerUnavailable(f"the CPython library {library} is missing (Debian package libpython3.11; "
                                "scripts/setup.sh installs it)")
    argv = host_argv(version, script, *args)
    return subprocess.run(argv, check=False, env={**os.environ, "DOTNET_CLI_TELEMETRY_OPTOUT": "1"}).returncode


def main_pythonnet(script: str, args: Sequence[str], version: str) -> int:
    """``python3 -m harness pythonnet [--torchsharp V] SCRIPT.py [--torchsharp V] [args...]``."""
    rest = list(args)
    if rest[:1] == ["--torchsharp"] and len(rest) >= 2:  # the option given right after the script
        version, rest = rest[1], rest[2:]
    try:
        return run_script(script, rest, version)
    except (FileNotFoundError, WorkerUnavailable) as exc:
        print(f"pythonnet: {exc}", file=sys.stderr)
        return 2
