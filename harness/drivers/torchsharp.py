"""Driver for one TorchSharp version: a long-lived .NET worker process (dotnet/Worker).

Each version is built once into ``build/worker/<version>/`` (a stamp file records the
source hash, so an edited worker is rebuilt and an unchanged one is reused); the worker
speaks the protocol in harness/drivers/protocol.py. A version that cannot be restored,
built or started raises :class:`WorkerUnavailable`: its cells become "unavailable" skips.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.cases import Case, OptimizerCase
from harness.verdicts.digest import TensorDigest, module_digest_from_json
from harness.running.machine import probe
from harness.drivers.base import Capabilities, Digest, OptimizerDigest, TorchSharpSide, model_case_of
from harness.drivers.protocol import SubprocessTransport, WorkerClient, WorkerError
from harness.drivers.scratch import Scratch
from harness.drivers.torchsharp_versions import DEFAULT_VERSION as DEFAULT_VERSION  # re-exported (cli, tests)
from harness.builds.dotnet_build import DotnetUnavailable, build_project
from harness.paths import BUILD_DIR, CASES_DIR, DOTNET_DIR, ROOT

WORKER_PROJECT = DOTNET_DIR / "Worker"
BUILD_ROOT = BUILD_DIR / "worker"


def discover_versions() -> list[str]:
    """The TorchSharp versions the configured NuGet feed serves, asked with
    ``dotnet package search TorchSharp --exact-match`` (empty when it cannot answer)."""
    if shutil.which("dotnet") is None:
        return []
    try:
        proc = subprocess.run(["dotnet", "package", "search", "TorchSharp", "--exact-match", "--format", "json"],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        data = json.loads(proc.stdout)
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return []
    found = {p["version"] for r in data.get("searchResult", []) for p in r.get("packages", [])
             if str(p.get("id", "")).lower() == "torchsharp"}
    return sorted(found, key=lambda v: tuple(int(x) if x.isdigit() else 0 for x in v.split(".")))


def tracked_versions() -> list[str]:
    """Versions listed in cases/torchsharp-versions.txt (one a line; '#' comments)."""
    path = CASES_DIR / "torchsharp-versions.txt"
    if not path.exists():
        return []
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines())
    return [ln for ln in lines if ln]


def default_versions() -> list[str]:
    """Every version the feed serves plus every tracked one (unserved ones become
    'unavailable' columns, never a crash)."""
    versions = dict.fromkeys([*discover_versions(), *tracked_versions()])
    return list(versions) or [DEFAULT_VERSION]


def forms_of(hello: Mapping[str, Any]) -> frozenset[str]:
    """The route forms a worker's hello lists beyond "dat" (docs/protocol.md): its capabilities."""
    return frozenset(str(f) for f in hello.get("forms", []) if f != "dat")


class WorkerUnavailable(RuntimeError):
    """This TorchSharp version cannot be restored, built or started here."""


def worker_dir(version: str) -> Path:
    return BUILD_ROOT / version


def build_worker(version: str = DEFAULT_VERSION, force: bool = False) -> Path:
    """Build the worker for ``version`` unless an up-to-date build exists; return Worker.dll."""
    try:
        return build_project(WORKER_PROJECT / "Worker.csproj", version, worker_dir(version), "Worker.dll", force)
    except DotnetUnavailable as exc:
        raise WorkerUnavailable(str(exc)) from exc


class TorchSharpDriver(TorchSharpSide):
    def __init__(self, version: str = DEFAULT_VERSION, workdir: Path | None = None, timeout: float = 120.0,
                 env: Mapping[str, str] | None = None, worker: Path | None = None,
                 provenance: Mapping[str, str] | None = None):
        """``version``: a NuGet version, built with :func:`build_worker`; or, with ``worker``
        (a ready worker folder, e.g. a source build's from harness/builds/torchsharp_source.py), any
        column label such as "0.107.0+radam-fix", whose ``provenance`` replaces the default.
        ``env``: extra environment of the worker process (e.g. ONEDNN_MAX_CPU_ISA)."""
        self.version = version
        self.env = dict(env or {})
        self.timeout = timeout
        self.scratch = Scratch(Path(workdir or (BUILD_ROOT.parent / "tmp")))
        self._dll = worker / "Worker.dll" if worker is not None else build_worker(version)
        self._worker = worker
        self._column_provenance = dict(provenance) if worker is not None and provenance is not None else None
        self._transport: SubprocessTransport | None = None
        self._client: WorkerClient | None = None
        self.hello: dict[str, Any] = {}
        self.start()

    # --- process life ---------------------------------------------------------------
    @property
    def argv(self) -> list[str]:
        return ["dotnet", str(self._dll)]

    def start(self) -> None:
        try:
            self._transport = SubprocessTransport(self.argv, env={"DOTNET_CLI_TELEMETRY_OPTOUT": "1", **self.env})
            self._client = WorkerClient(self._transport, self.timeout)
            self.hello = self._client.call("hello", timeout=120)
        except (OSError, WorkerError) as exc:
            raise WorkerUnavailable(f"TorchSharp {self.version} worker did not start: {exc}") from exc
        threads = self.hello.get("threads")
        cap = self.hello.get("onednn_max_cpu_isa")  # as the worker process itself sees it
        machine = probe({"ONEDNN_MAX_CPU_ISA": str(cap)} if cap else {},
                        threads=threads if isinstance(threads, int) else None)
        self.capabilities = Capabilities(
            name="TorchSharp",
            version=self.version if self._worker is not None else str(self.hello.get("version", self.version)),
            devices=frozenset({"cpu"} | ({"cuda"} if self.hello.get("cuda") else set())),
            optimizers=frozenset(self.hello.get("optimizers", [])),
            features=frozenset({"jit", "tensor_file"}) | forms_of(self.hello),
            provenance={**(self._column_provenance if self._column_provenance is not None else
                           {"TorchSharp": str(self.hello.get("version", self.version)),
                            "libtorch": str(self.hello.get("libtorch", "?")),
                            "dotnet": str(self.hello.get("runtime", "?")),
                            "worker_os": str(self.hello.get("os", "?")),
                            "TorchSharp.PyBridge": str(self.hello.get("pybridge") or "none")}),
                        **{f"TorchSharp {self.version} {k}": v for k, v in machine.describe().items()}},
            machine=machine,
        )

    @property
    def pid(self) -> int | None:
        return self._transport.pid if self._transport else None

    def ensure_alive(self) -> None:
        """Restart the worker after a crash or timeout, so the run goes on."""
        if self._transport is None or not self._transport.alive:
            self.start()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        if self._client is None:
            raise WorkerUnavailable("worker not started")
        return self._client.call(op, **fields)

    # --- Driver ---------------------------------------------------------------------
    def build(self, case: Case, device: str) -> None:
        mc = model_case_of(case)
        self.call("build", model=mc.model, dtype=mc.dtype, device=device, seed=mc.seed,
                  optimizer=case.optimizer if isinstance(case, OptimizerCase) else None,
                  **({"tie": [list(t) for t in mc.tie]} if mc.tie else {}),
                  **({"views": [dict(zip(("name", "of", "dim", "start", "length"), v)) for v in mc.views]}
                     if mc.views else {}),
                  **({"buffers": [{"name": n, "shape": list(shape), "persistent": p, "fill": f}
                                  for n, shape, p, f in mc.buffers]} if mc.buffers else {}),
                  **({"frozen": list(mc.frozen)} if mc.frozen else {}))

    def _form(self, form: str | None = None) -> dict[str, str]:
        """The ``format`` field of a request: ``form``, else the bound route's (none for "dat")."""
        form = form or self.route_form
        return {} if form == "dat" else {"format": form}

    def load_module(self, path: Path, strict: bool = True, form: str | None = None) -> None:
        self.call("load_module", path=str(path), strict=strict, skip=[], **self._form(form))

    def save_module(self, path: Path, form: str | None = None) -> None:
        self.call("save_module", path=str(path), **self._form(form))

    def load_optimizer(self, path: Path, form: str | None = None) -> None:
        self.call("load_optimizer", path=str(path), **self._form(form))

    def save_optimizer(self, path: Path, form: str | None = None) -> None:
        self.call("save_optimizer", path=str(path), **self._form(form))

    def load_checkpoint(self, folder: Path, strict: bool = True) -> None:
        self.call("load_module", path=str(folder), strict=strict, skip=[], **self._form("checkpoint"))

    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        self.scratch.exchange(grads, [], lambda p: self.call("step", grads={n: str(f) for n, f in p.items()}))

    def train(self, steps: int, seed: int, input_shape: Sequence[int],
              input_spec: Mapping[str, Any] | None = None) -> None:
        self.call("train", steps=steps, seed=seed, input_shape=list(input_shape),
                  **({"input": dict(input_spec)} if input_spec else {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, out = self.scratch.exchange({"input": x}, ["output"], lambda p: self.call(
            "forward", input=str(p["input"]), output=str(p["output"]), train=False))
        return out["output"]

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        _, out = self.scratch.exchange({"input": x}, ["output"], lambda p: self.call(
            "forward", input=str(p["input"]), output=str(p["output"]), train=True))
        return out["output"]

    def parameter_names(self) -> list[str]:
        return [str(n) for n in self.call("parameters")["names"]]

    def jit_run(self, path: Path, x: torch.Tensor,
                resave: Path | None = None) -> tuple[dict[str, TensorDigest], torch.Tensor]:
        r, out = self.scratch.exchange({"input": x}, ["output"], lambda p: self.call(
            "jit_run", path=str(path), input=str(p["input"]), output=str(p["output"]),
            resave=str(resave) if resave else None))
        return module_digest_from_json(r["module"]), out["output"]

    def tensor_roundtrip(self, source: Path, dest: Path, form: str | None = None) -> TensorDigest:
        return TensorDigest.from_json(self.call("tensor_roundtrip", input=str(source), output=str(dest),
                                                **self._form(form)))

    def snapshot(self, module_path: Path, optimizer_path: Path | None) -> None:
        self.call("save_module", path=str(module_path))  # TorchSharp's own .dat, whatever the route
        if optimizer_path is not None:
            self.call("save_optimizer", path=str(optimizer_path))

    def digest(self) -> Digest:
        result = self.call("digest")
        module = module_digest_from_json(result["module"])
        opt = result.get("optimizer")
        return Digest(module, OptimizerDigest.from_json(opt) if opt else None)
