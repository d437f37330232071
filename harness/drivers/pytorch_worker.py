"""Driver for a PyTorch in its own environment: a ``harness.pyworker`` process.

The same interface as the in-process :class:`harness.drivers.pytorch.PyTorchDriver`, so
the cells run unchanged against another PyTorch. :class:`ChrootPyTorch` starts Debian 13's
PyTorch 2.6 in the root made by scripts/setup-pytorch26.sh: ``unshare`` gives it private
mounts (/proc, the checkout at /mnt/x) that vanish with it. Host paths under the
checkout (the corpus in cases/corpus/ included) are translated to that mount point.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.cases import Case
from harness.codecs import CodecFailure
from harness.verdicts.digest import TensorDigest, module_digest_from_json
from harness.running.machine import Machine
from harness.running.allocator import JEMALLOC
from harness.paths import ROOT
from harness.drivers.base import Capabilities, Digest, OptimizerDigest, PythonDriver
from harness.drivers.scratch import Scratch
from harness.drivers.protocol import SubprocessTransport, WorkerClient, WorkerError, WorkerRuntimeError

PYTORCH26_ROOT = Path(os.environ.get("PYTORCH26_ROOT", ROOT / "build" / "pytorch-2.6" / "root"))


class PyTorchUnavailable(RuntimeError):
    """This PyTorch environment is not set up or does not start."""


class RemotePyTorchError(RuntimeError):
    """The other PyTorch raised (e.g. load_state_dict refused a state)."""


class PyTorchWorkerDriver(PythonDriver):
    def __init__(self, argv: Sequence[str], path_map: Mapping[Path, str], workdir: Path,
                 codec_name: str, timeout: float = 300.0):
        self.argv = list(argv)
        self.path_map = dict(path_map)
        self.scratch = Scratch(workdir)
        self.codec_name = codec_name
        self.timeout = timeout
        self.start()

    def start(self) -> None:
        try:
            self._transport = SubprocessTransport(self.argv)
            self._client = WorkerClient(self._transport, self.timeout)
            hello = self._client.call("hello", timeout=300)
        except (OSError, WorkerError) as exc:
            raise PyTorchUnavailable(f"PyTorch worker did not start: {exc}") from exc
        self.capabilities = Capabilities(
            name="PyTorch", version=str(hello["version"]), devices=frozenset(hello["devices"]),
            optimizers=frozenset(hello["optimizers"]), features=frozenset(hello["features"]),
            provenance={f"{k} (PyTorch {hello['version']} worker)": str(v) for k, v in hello["provenance"].items()},
            machine=Machine.from_json(hello["machine"]) if hello.get("machine") else None)

    def ensure_alive(self) -> None:
        if not self._transport.alive:
            self.start()

    def close(self) -> None:
        self._transport.close()

    def _p(self, path: Path) -> str:
        path = Path(path).resolve()
        for host, inside in self.path_map.items():
            if path.is_relative_to(host):
                return str(Path(inside) / path.relative_to(host))
        raise PyTorchUnavailable(f"{path} is outside every folder the PyTorch worker can see")

    def _call(self, op: str, **fields: Any) -> dict[str, Any]:
        if self.route_form != "dat":  # the cell's route: the worker's driver binds it per request
            fields["format"] = self.route_form
        try:
            return self._client.call(op, **fields)
        except WorkerRuntimeError as exc:
            if exc.error_type == "CodecFailure":
                raise CodecFailure(exc.error_message) from exc
            raise RemotePyTorchError(f"{exc.error_type}: {exc.error_message}") from exc

    def build(self, case: Case, device: str) -> None:
        self._call("build", case=case.name, device=device)

    def load_module(self, path: Path, strict: bool = True) -> None:
        self._call("load_module", path=self._p(path), strict=strict)

    def save_module(self, path: Path) -> None:
        self._call("save_module", path=self._p(path))

    def load_optimizer(self, path: Path) -> None:
        self._call("load_optimizer", path=self._p(path))

    def save_optimizer(self, path: Path) -> None:
        self._call("save_optimizer", path=self._p(path))

    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        self.scratch.exchange(grads, [], lambda p: self._call("step", grads={n: self._p(f) for n, f in p.items()}))

    def train(self, steps: int, seed: int, input_shape: Sequence[int],
              input_spec: Mapping[str, Any] | None = None) -> None:
        self._call("train", steps=steps, seed=seed, input_shape=list(input_shape), input=input_spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, out = self.scratch.exchange({"input": x}, ["output"], lambda p: self._call(
            "forward", input=self._p(p["input"]), output=self._p(p["output"])))
        return out["output"]

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        _, out = self.scratch.exchange({"input": x}, ["output"], lambda p: self._call(
            "train_forward", input=self._p(p["input"]), output=self._p(p["output"])))
        return out["output"]

    def parameter_names(self) -> list[str]:
        return [str(n) for n in self._call("parameters")["names"]]

    def digest(self) -> Digest:
        r = self._call("digest")
        return Digest(module_digest_from_json(r["module"]),
                      OptimizerDigest.from_json(r["optimizer"]) if r["optimizer"] else None)

    def read_module(self, path: Path) -> dict[str, TensorDigest]:
        return module_digest_from_json(self._call("read_module", path=self._p(path))["module"])

    def codec_contract(self, path: Path, which: str) -> list[str]:
        return [str(p) for p in self._call("codec_contract", path=self._p(path), which=which)["problems"]]

    def snapshot(self, module_path: Path, optimizer_path: Path | None) -> None:
        self._call("snapshot", module=self._p(module_path),
                   optimizer=self._p(optimizer_path) if optimizer_path is not None else None)

    def load_saved_state(self, path: Path) -> None:
        self._call("load_saved_state", path=self._p(path))

    def write_tensor_file(self, tensor: torch.Tensor, path: Path) -> None:
        self.scratch.exchange({"tensor": tensor}, [], lambda p: self._call(
            "write_tensor_file", input=self._p(p["tensor"]), output=self._p(path)))

    def read_tensor_file(self, path: Path) -> torch.Tensor:
        _, out = self.scratch.exchange({}, ["tensor"], lambda p: self._call(
            "read_tensor_file", input=self._p(path), output=self._p(p["tensor"])))
        return out["tensor"]

    def save_torchscript(self, path: Path, example: torch.Tensor) -> None:
        self.scratch.exchange({"example": example}, [], lambda p: self._call(
            "save_torchscript", path=self._p(path), example=self._p(p["example"])))

    def run_torchscript(self, path: Path, x: torch.Tensor) -> tuple[dict[str, TensorDigest], torch.Tensor]:
        r, out = self.scratch.exchange({"input": x}, ["output"], lambda p: self._call(
            "run_torchscript", path=self._p(path), input=self._p(p["input"]), output=self._p(p["output"])))
        return module_digest_from_json(r["module"]), out["output"]

    def advance_schedule(self) -> None:
        self._call("advance_schedule")

    def save_checkpoint(self, folder: Path, shards: int = 1) -> list[str]:
        return [str(f) for f in self._call("save_checkpoint", folder=self._p(folder), shards=shards)["files"]]


def chroot_pytorch(workdir: Path, codec_spec: str, codec_name: str,
                   rootfs: Path = PYTORCH26_ROOT) -> PyTorchWorkerDriver:
    """Debian 13's PyTorch 2.6 in the root scripts/setup-pytorch26.sh made."""
    if not (rootfs / ".harness-ready").exists():
        raise PyTorchUnavailable(f"no PyTorch 2.6 root at {rootfs} (scripts/setup-pytorch26.sh makes it)")
    spec, codec_mount, pythonpath = codec_spec, "", "/mnt/x"
    r, q = str(rootfs), shlex.quote
    path = Path(codec_spec)
    if path.exists():  # a codec by path: inside the checkout it is already visible, else mount it read-only
        path = path.resolve()
        if path.is_relative_to(ROOT):
            spec = str(Path("/mnt/x") / path.relative_to(ROOT))
        else:
            folder = path if path.is_dir() else path.parent
            spec = "/mnt/codec" + ("" if path.is_dir() else f"/{path.name}")
            codec_mount = (f"mkdir -p {q(r)}/mnt/codec && mount --bind -o ro {q(str(folder))} {q(r)}/mnt/codec && ")
        if path.is_dir():  # its sibling modules (a leb128 stand-in beside upstream's scripts) import too
            pythonpath += ":" + spec
    inner = f"cd /mnt/x && exec env PYTHONPATH={q(pythonpath)} python3 -m harness.pyworker --codec {q(spec)}"
    # the run's allocator (harness/running/allocator.py) goes in only where the root has it too
    keep_alloc = (rootfs / str(JEMALLOC).lstrip("/")).exists()
    chroot = "chroot" if keep_alloc else "env -u LD_PRELOAD -u MALLOC_CONF chroot"
    script = (f"mount -t proc proc {q(r)}/proc && mount --bind {q(str(ROOT))} {q(r)}/mnt/x && {codec_mount}"
              f"exec {chroot} {q(r)} sh -c {q(inner)}")
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    path_map = {ROOT: "/mnt/x"}
    return PyTorchWorkerDriver(argv, path_map, workdir, codec_name)
