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

from harness import codec as trusted_codec  # plumbing: tensors travel as files
from harness.cases import Case
from harness.codecs import CodecFailure
from harness.digest import TensorDigest
from harness.machine import Machine
from harness.drivers.base import Capabilities, Digest, OptimizerDigest, PythonDriver
from harness.drivers.protocol import SubprocessTransport, WorkerClient, WorkerError, WorkerRuntimeError

ROOT = Path(__file__).resolve().parents[2]
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
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.codec_name = codec_name
        self.timeout = timeout
        self._n = 0
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
            optimizers=frozenset(hello["optimizers"]), modules=frozenset(hello["modules"]),
            can_read_optimizer=bool(hello["can_read_optimizer"]), can_read_tensor=bool(hello["can_read_tensor"]),
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
        try:
            return self._client.call(op, **fields)
        except WorkerRuntimeError as exc:
            if exc.error_type == "CodecFailure":
                raise CodecFailure(exc.error_message) from exc
            raise RemotePyTorchError(f"{exc.error_type}: {exc.error_message}") from exc

    def _tmp(self, stem: str) -> Path:
        self._n += 1
        return self.workdir / f"{stem}-{os.getpid()}-{self._n}.dat"

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
        files = {name: self._tmp("grad") for name in grads}
        try:
            for name, g in grads.items():
                trusted_codec.write_tensor(files[name], g)
            self._call("step", grads={name: self._p(p) for name, p in files.items()})
        finally:
            for p in files.values():
                p.unlink(missing_ok=True)

    def train(self, steps: int, seed: int, input_shape: Sequence[int],
              input_spec: Mapping[str, Any] | None = None) -> None:
        self._call("train", steps=steps, seed=seed, input_shape=list(input_shape), input=input_spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inp, out = self._tmp("input"), self._tmp("output")
        try:
            trusted_codec.write_tensor(inp, x)
            self._call("forward", input=self._p(inp), output=self._p(out))
            return trusted_codec.read_tensor(out)
        finally:
            inp.unlink(missing_ok=True)
            out.unlink(missing_ok=True)

    def digest(self) -> Digest:
        r = self._call("digest")
        return Digest({e["name"]: TensorDigest.from_json(e) for e in r["module"]},
                      OptimizerDigest.from_json(r["optimizer"]) if r["optimizer"] else None)

    def read_module(self, path: Path) -> dict[str, TensorDigest]:
        return {e["name"]: TensorDigest.from_json(e) for e in self._call("read_module", path=self._p(path))["module"]}

    def snapshot(self, module_path: Path, optimizer_path: Path | None) -> None:
        self._call("snapshot", module=self._p(module_path),
                   optimizer=self._p(optimizer_path) if optimizer_path is not None else None)

    def load_saved_state(self, path: Path) -> None:
        self._call("load_saved_state", path=self._p(path))

    def write_tensor_file(self, tensor: torch.Tensor, path: Path) -> None:
        inp = self._tmp("tensor")
        try:
            trusted_codec.write_tensor(inp, tensor)
            self._call("write_tensor_file", input=self._p(inp), output=self._p(path))
        finally:
            inp.unlink(missing_ok=True)

    def read_tensor_file(self, path: Path) -> torch.Tensor:
        out = self._tmp("tensor")
        try:
            self._call("read_tensor_file", input=self._p(path), output=self._p(out))
            return trusted_codec.read_tensor(out)
        finally:
            out.unlink(missing_ok=True)

    def save_torchscript(self, path: Path, example: torch.Tensor) -> None:
        inp = self._tmp("example")
        try:
            trusted_codec.write_tensor(inp, example)
            self._call("save_torchscript", path=self._p(path), example=self._p(inp))
        finally:
            inp.unlink(missing_ok=True)

    def run_torchscript(self, path: Path, x: torch.Tensor) -> tuple[dict[str, TensorDigest], torch.Tensor]:
        inp, out = self._tmp("input"), self._tmp("output")
        try:
            trusted_codec.write_tensor(inp, x)
            r = self._call("run_torchscript", path=self._p(path), input=self._p(inp), output=self._p(out))
            return {e["name"]: TensorDigest.from_json(e) for e in r["module"]}, trusted_codec.read_tensor(out)
        finally:
            inp.unlink(missing_ok=True)
            out.unlink(missing_ok=True)

    def advance_schedule(self) -> None:
        self._call("advance_schedule")


def chroot_pytorch(workdir: Path, codec_spec: str, codec_name: str,
                   rootfs: Path = PYTORCH26_ROOT) -> PyTorchWorkerDriver:
    """Debian 13's PyTorch 2.6 in the root scripts/setup-pytorch26.sh made."""
    if not (rootfs / ".harness-ready").exists():
        raise PyTorchUnavailable(f"no PyTorch 2.6 root at {rootfs} (scripts/setup-pytorch26.sh makes it)")
    spec = codec_spec
    if Path(codec_spec).exists() and Path(codec_spec).resolve().is_relative_to(ROOT):
        spec = str(Path("/mnt/x") / Path(codec_spec).resolve().relative_to(ROOT))
    r, q = str(rootfs), shlex.quote
    inner = f"cd /mnt/x && exec env PYTHONPATH=/mnt/x python3 -m harness.pyworker --codec {q(spec)}"
    script = (f"mount -t proc proc {q(r)}/proc && mount --bind {q(str(ROOT))} {q(r)}/mnt/x && "
              f"exec chroot {q(r)} sh -c {q(inner)}")
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    path_map = {ROOT: "/mnt/x"}
    return PyTorchWorkerDriver(argv, path_map, workdir, codec_name)
