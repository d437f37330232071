"""Second TorchSharp driver: Python code driving TorchSharp through pythonnet, in a .NET host.

```
 harness (this process, PyTorch)           dotnet build/pyhost/<v>/PyHost.dll pythonnet_host/server.py
 -------------------------------           -----------------------------------------------------
  PythonnetDriver ── worker protocol ──▶    embedded CPython (Debian's libpython3.11)
                    (JSON lines, stdio)       └─ clr ──▶ TorchSharp <v> + LibTorch (never PyTorch)
```

The host (dotnet/PyHost) is built once per TorchSharp version into ``build/pyhost/<v>/``
(a stamp records the source hash, as for the C# worker). The server
(harness/drivers/pythonnet_host/server.py) speaks the same protocol as the C# worker, so this
driver is the C# worker's driver with another process behind it; what the server cannot do
it declines as "pythonnet driver lacks ...", which a cell reports as a skip.

``run_script`` runs a user's script in the host (``python3 -m harness pythonnet SCRIPT.py``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.drivers.base import Capabilities, TorchSharpSide
from harness.drivers.protocol import SubprocessTransport, WorkerClient, WorkerError
from harness.drivers.scratch import Scratch
from harness.drivers.torchsharp import TorchSharpDriver, WorkerUnavailable, forms_of
from harness.drivers.torchsharp_versions import DEFAULT_VERSION
from harness.builds.dotnet_build import DotnetUnavailable, build_project
from harness.running.machine import probe
from harness.paths import BUILD_DIR, DOTNET_DIR, ROOT

HOST_PROJECT = DOTNET_DIR / "PyHost"
BUILD_ROOT = BUILD_DIR / "pyhost"
SERVER = Path(__file__).resolve().parent / "pythonnet_host" / "server.py"
PYTHON_LIBRARY = Path("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0")  # Debian's libpython3.11
PYTHONNET_VERSION = "3.2.1"
DRIVER_KIND = "pythonnet"  # the TorchSharp-driver axis: "csharp" (TorchSharpDriver) | "pythonnet"


def driver_kind(driver: object) -> str:
    """Which TorchSharp driver this is: "pythonnet" or "csharp" (the C# worker)."""
    return str(getattr(driver, "driver_kind", "csharp"))


def host_dir(version: str) -> Path:
    return BUILD_ROOT / version


def python_library() -> Path:
    return Path(os.environ.get("PYTHONNET_PYDLL") or PYTHON_LIBRARY)


def build_pyhost(version: str = DEFAULT_VERSION, force: bool = False) -> Path:
    """Build the pythonnet host for ``version`` unless an up-to-date build exists; return PyHost.dll."""
    try:
        return build_project(HOST_PROJECT / "PyHost.csproj", version, host_dir(version), "PyHost.dll", force,
                             [f"-p:PythonnetVersion={PYTHONNET_VERSION}"])
    except DotnetUnavailable as exc:
        raise WorkerUnavailable(f"{exc} (the pythonnet host also needs pythonnet {PYTHONNET_VERSION})") from exc


def host_argv(version: str, *args: str) -> list[str]:
    """The command line that runs ``args`` (a script and its arguments, or ``-m MODULE ...``) in the host."""
    return ["dotnet", str(build_pyhost(version)), *args]


class PythonnetDriver(TorchSharpDriver):
    """TorchSharp ``version`` driven by pythonnet_host/server.py inside the pythonnet host.

    Same operations as the C# worker's driver (build, load/save, step, train, forward,
    digest, tensor_roundtrip, jit_run), restarted by ``ensure_alive`` after a crash or timeout.
    """

    driver_kind = DRIVER_KIND

    def __init__(self, version: str = DEFAULT_VERSION, workdir: Path | None = None, timeout: float = 120.0,
                 env: dict[str, str] | None = None):
        self.version = version
        self.env = dict(env or {})
        self._worker = None
        self._column_provenance = None
        self.timeout = timeout
        self.scratch = Scratch(Path(workdir or (BUILD_ROOT.parent / "tmp")))
        library = python_library()
        if not library.exists():
            raise WorkerUnavailable(f"the CPython library {library} is missing (Debian package libpython3.11; "
                                    "scripts/setup.sh installs it)")
        self._dll = build_pyhost(version)
        self._transport: SubprocessTransport | None = None
        self._client: WorkerClient | None = None
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
            self._transport = SubprocessTransport(self.argv, env={"DOTNET_CLI_TELEMETRY_OPTOUT": "1", **self.env},
                                                  cwd=str(ROOT))
            self._client = WorkerClient(self._transport, self.timeout)
            self.hello = self._client.call("hello", timeout=180)
        except (OSError, WorkerError) as exc:
            if self._transport is not None:
                self._transport.kill()
            raise WorkerUnavailable(f"TorchSharp {self.version} pythonnet host did not start: {exc}") from exc
        version = str(self.hello.get("version", self.version))
        cap = self.env.get("ONEDNN_MAX_CPU_ISA")
        machine = probe({"ONEDNN_MAX_CPU_ISA": cap} if cap else {})
        self.capabilities = Capabilities(
            name="TorchSharp", version=version,
            devices=frozenset({"cpu"} | ({"cuda"} if self.hello.get("cuda") else set())),
            optimizers=frozenset(self.hello.get("optimizers", [])),
            features=frozenset({"jit", "tensor_file"}) | forms_of(self.hello),
            machine=machine,
            provenance={"driver": DRIVER_KIND,
                        f"TorchSharp {version} via pythonnet": version,
                        "pythonnet": PYTHONNET_VERSION,
                        "pythonnet host python": str(self.hello.get("python", "?")),
                        "pythonnet host libtorch": str(self.hello.get("libtorch", "?")),
                        "pythonnet host dotnet": str(self.hello.get("runtime", "?")),
                        "pythonnet driver lacks": "; ".join(self.lacks) or "nothing",
                        "pythonnet host TorchSharp.PyBridge": str(self.hello.get("pybridge") or "none"),
                        **{f"TorchSharp {version} via pythonnet {k}": v for k, v in machine.describe().items()}},
        )


def start_pythonnet(versions: Sequence[str], workdir: Path,
                    env: dict[str, str] | None = None) -> dict[str, TorchSharpSide | Exception]:
    """One pythonnet driver per TorchSharp version (an Exception for a version that cannot
    start: its cells become "unavailable" skips), as ``cli.start_torchsharp`` does for C#."""
    drivers: dict[str, TorchSharpSide | Exception] = {}
    for v in versions:
        try:
            drivers[column(v)] = PythonnetDriver(v, workdir=workdir, env=env)
        except WorkerUnavailable as exc:
            drivers[column(v)] = exc
    return drivers


def column(version: str) -> str:
    """The TorchSharp axis value of ``version`` driven through pythonnet ("0.107.0@pythonnet")."""
    return f"{version}@{DRIVER_KIND}"


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
