"""FAKE TorchSharp drivers for unit tests of the cells (no .NET involved).

``FakeTorchSharp`` is PyTorch plus our codec pretending to be a TorchSharp worker; a
``fault`` makes it misbehave in one named way. Real conformance runs never use it. On the
pth and safetensors routes it reads and writes with PyTorch's own torch.load/torch.save (a
FAKE PyBridge: faithful by construction, so a cell that fails with it is the harness's fault).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from harness.cases import Case
from harness.codecs import load_codec
from harness.verdicts.digest import TensorDigest
from harness.drivers.base import Capabilities, Digest, TorchSharpSide
from harness.drivers.protocol import WorkerCrash, WorkerRuntimeError, WorkerSkipped
from harness.drivers.pytorch import PyTorchDriver


class FakeTorchSharp(TorchSharpSide):
    def __init__(self, fault: str | None = None):
        self.inner = PyTorchDriver(load_codec("ours"))
        self.fault = fault
        self.restarts = 0
        self.capabilities = Capabilities(name="FakeTorchSharp", version="0.0-fake", devices=frozenset({"cpu"}),
                                         optimizers=self.inner.capabilities.optimizers,
                                         features=frozenset({"jit", "tensor_file", "pth", "checkpoint"}))

    def build(self, case: Case, device: str) -> None:
        self.inner.build(case, device)
        if self.fault == "uninitialised":  # like an uninitialised GroupNorm: garbage at build
            assert self.inner.model is not None
            with torch.no_grad():
                for t in self.inner.model.state_dict().values():
                    if t.is_floating_point():
                        t.fill_(-1.9884e25)

    def load_module(self, path: Path, strict: bool = True) -> None:
        if self.fault == "crash":
            raise WorkerCrash("fake worker died during 'load_module' (exit code -9)")
        if self.fault == "skip":
            raise WorkerSkipped("fake declines")
        if self.fault == "throw":
            raise WorkerRuntimeError("load_module", {"type": "ArgumentException", "message": "Mismatched"})
        if self.fault == "replace_views":  # a loader that REPLACES tensors (aliasing lost)
            from harness import codec
            model = self.inner.model
            assert model is not None
            for name, value in codec.read_state_dict(path).items():
                owner_name, _, leaf = name.rpartition(".")
                owner = model.get_submodule(owner_name) if owner_name else model
                if leaf in owner._buffers:
                    owner._buffers[leaf] = value
                else:
                    with torch.no_grad():
                        owner.get_parameter(leaf).copy_(value)
            return
        if self.fault == "crash_on_empty" and path.stat().st_size == 0:
            raise WorkerCrash(f"fake worker died loading the empty {path.name} (exit code 134)")
        if self.fault == "lenient":  # a loader that never says no: damaged files "load" (nothing changes)
            try:
                self._synced().load_module(path, strict)
            except Exception:
                pass
            return
        try:
            self._synced().load_module(path, strict)
        except Exception as exc:  # as a real worker answers: the exception's type and message
            raise WorkerRuntimeError("load_module", {"type": type(exc).__name__, "message": str(exc)}) from exc
        if self.fault == "scale_on_load":  # a road that changes the state on the way in
            assert self.inner.model is not None
            with torch.no_grad():
                next(p for p in self.inner.model.parameters() if p.is_floating_point()).mul_(3)

    def _synced(self) -> PyTorchDriver:
        """The inner PyTorch bound to the route this fake is bound to."""
        self.inner.route_form = self.route_form
        return self.inner

    def load_checkpoint(self, folder: Path, strict: bool = True) -> None:
        names = [n for n in ("pytorch_model.bin.index.json", "pytorch_model.bin") if (folder / n).exists()]
        if not names:
            raise WorkerRuntimeError("load_checkpoint", {"type": "ArgumentException", "message": "no checkpoint"})
        shards = [] if names[0].endswith(".bin") else json.loads((folder / names[0]).read_text())["weight_map"].values()
        files = [folder / f for f in dict.fromkeys(shards)] or [folder / names[0]]
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(torch.load(f))
        assert self.inner.model is not None
        self.inner.model.load_state_dict(state, strict=strict)

    def save_module(self, path: Path) -> None:
        self._synced().save_module(path)

    def load_optimizer(self, path: Path) -> None:
        self._synced().load_optimizer(path)

    def save_optimizer(self, path: Path) -> None:
        self._synced().save_optimizer(path)

    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        self.inner.step(grads)

    def train(self, steps: int, seed: int, input_shape: Sequence[int], input_spec=None) -> None:
        self.inner.train(steps, seed, input_shape, input_spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.forward(x)

    def jit_run(self, path: Path, x: torch.Tensor, resave: Path | None = None):
        state, out = self.inner.run_torchscript(path, x)
        if resave is not None:
            torch.jit.save(torch.jit.load(str(path)), str(resave))
        return state, out

    def tensor_roundtrip(self, source: Path, dest: Path) -> TensorDigest:
        t = self._synced().read_tensor_file(source)
        self._synced().write_tensor_file(t, dest)
        return TensorDigest.of(t)

    def load_saved_state(self, path: Path) -> None:
        self.inner.load_saved_state(path)

    def snapshot(self, module_path: Path, optimizer_path: Path | None) -> None:
        self.inner.snapshot(module_path, optimizer_path)

    def digest(self) -> Digest:
        d = self.inner.digest()
        if self.fault == "corrupt" and d.module:
            key = next(iter(d.module))
            e = d.module[key]
            d.module[key] = TensorDigest(e.dtype, e.shape, "0" * 64)
        if self.fault == "beta" and d.optimizer is not None:
            d.optimizer.groups[0]["beta1"] = "3fe9eb851eb851ec"  # 0.81, not 0.8
        return d

    def ensure_alive(self) -> None:
        self.restarts += 1
