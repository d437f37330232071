"""The driver interface every implementation (TorchSharp worker, PyTorch) is run through.

Modelled on Arrow's archery testers: one class per implementation, capability flags that
say what it can do, and cells that only talk to this interface, so a PyTorch in another
environment (a worker process) or another TorchSharp version slots in without touching
the cells.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from harness.cases import Case, ModelCase, OptimizerCase
from harness.verdicts.digest import TensorDigest
from harness.running.machine import Machine

# An optimizer's state as TorchSharp holds it, in docs/format.md's field names:
# f64 values as 16-hex-digit bit strings, ints, bools, tensors as TensorDigest or None.
Value = str | int | bool | TensorDigest | None


@dataclass
class OptimizerDigest:
    class_name: str
    groups: list[dict[str, Value]]
    states: list[dict[str, Value]]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OptimizerDigest:
        def conv(d: Mapping[str, Any]) -> dict[str, Value]:
            return {k: TensorDigest.from_json(v) if isinstance(v, dict) else v for k, v in d.items()}
        return cls(str(data["class"]), [conv(g) for g in data["groups"]], [conv(s) for s in data["states"]])

    def to_json(self) -> dict[str, Any]:
        def conv(d: Mapping[str, Value]) -> dict[str, Any]:
            return {k: v.to_json() if isinstance(v, TensorDigest) else v for k, v in d.items()}
        return {"class": self.class_name, "groups": [conv(g) for g in self.groups],
                "states": [conv(s) for s in self.states]}


@dataclass
class Digest:
    """Everything an implementation holds, as digests: module state in its own order."""

    module: dict[str, TensorDigest]
    optimizer: OptimizerDigest | None = None


@dataclass(frozen=True)
class Capabilities:
    name: str                     # "TorchSharp", "PyTorch"
    version: str                  # "0.107.0", "1.13.1"
    devices: frozenset[str] = frozenset({"cpu"})
    optimizers: frozenset[str] = frozenset()
    # What the driver can do beyond the Driver interface; checks declare what they need
    # (harness/checks/registry.py NEEDS). PyTorch side: "read_optimizer", "read_tensor" (the
    # codec under test has those readers); TorchSharp side: "jit", "tensor_file".
    features: frozenset[str] = frozenset()
    provenance: Mapping[str, str] = field(default_factory=dict)
    machine: Machine | None = None  # what the implementation's process runs on (kernel choice)


class Driver(ABC):
    """One implementation, holding at most one model and one optimizer at a time.

    ``route_form``: the file form its load/save/read/write operations use, the cell's route
    (harness/routes/; set by the runner for each cell, "dat" otherwise). ``snapshot`` always
    writes the harness's trusted ``.dat``."""

    capabilities: Capabilities
    route_form: str = "dat"

    @abstractmethod
    def build(self, case: Case, device: str) -> None:
        """Build the case's model (and optimizer, for an optimizer case), seeded."""

    @abstractmethod
    def load_module(self, path: Path, strict: bool = True) -> None: ...

    @abstractmethod
    def save_module(self, path: Path) -> None: ...

    @abstractmethod
    def load_optimizer(self, path: Path) -> None: ...

    @abstractmethod
    def save_optimizer(self, path: Path) -> None: ...

    @abstractmethod
    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        """Set these gradients (parameters not named get none) and take one optimizer step."""

    @abstractmethod
    def train(self, steps: int, seed: int, input_shape: Sequence[int],
              input_spec: Mapping[str, Any] | None = None) -> None:
        """Train-mode steps on the implementation's own random input (integers for an
        integer ``input_spec``) and backward pass."""

    @abstractmethod
    def digest(self) -> Digest: ...

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output for ``x`` in eval mode, without gradients."""

    @abstractmethod
    def snapshot(self, module_path: Path, optimizer_path: Path | None) -> None:
        """Write the current state as .dat files with the implementation's most trusted
        writer (TorchSharp: its own save; PyTorch: the harness's codec), for value-level
        comparison (ULP) by the semantic checks."""

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output for ``x`` in train mode without gradients (BatchNorm running
        statistics update): the zoo's train-mode check (harness/checks/zoo.py)."""
        raise NotImplementedError(f"{type(self).__name__} has no train-mode forward")

    def parameter_names(self) -> list[str]:
        """The names of the model's parameters, in its own order (the rest of its state is buffers)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list parameters")

    def close(self) -> None:
        """Release the implementation (stop a worker process)."""

    def ensure_alive(self) -> None:
        """Restart the implementation's process after a crash or timeout (in-process: nothing)."""


class TorchSharpSide(Driver):
    """A TorchSharp implementation: also TorchScript and single-tensor files, when its
    capabilities list "jit" / "tensor_file"."""

    @abstractmethod
    def jit_run(self, path: Path, x: torch.Tensor,
                resave: Path | None = None) -> tuple[dict[str, TensorDigest], torch.Tensor]:
        """``torch.jit.load``: its state digests and output for ``x`` (and ``torch.jit.save``
        to ``resave``)."""

    @abstractmethod
    def load_checkpoint(self, folder: Path, strict: bool = True) -> None:
        """TorchSharp.PyBridge's ``load_checkpoint``: a Hugging Face checkpoint folder (one file,
        or shards and their index), when capabilities list "checkpoint"."""

    @abstractmethod
    def tensor_roundtrip(self, source: Path, dest: Path) -> TensorDigest:
        """Static ``Tensor.Load(source)`` then ``Save(dest)``; the digest of what was loaded."""


class PythonDriver(Driver):
    """The PyTorch side: also reads files through the codec under test."""

    codec_name: str

    @abstractmethod
    def read_module(self, path: Path) -> dict[str, TensorDigest]:
        """Digests of what the codec under test reads from a module-state file."""

    @abstractmethod
    def codec_contract(self, path: Path, which: str) -> list[str]:
        """What the codec under test's ``load_state_dict`` breaks of a contract
        (harness/verdicts/codec_contract.py; ``which``: "usable" or "damaged") on a valid file."""

    @abstractmethod
    def write_tensor_file(self, tensor: torch.Tensor, path: Path) -> None:
        """Write a single-tensor file through the codec under test."""

    @abstractmethod
    def read_tensor_file(self, path: Path) -> torch.Tensor:
        """Read a single-tensor file through the codec under test."""

    @abstractmethod
    def load_saved_state(self, path: Path) -> None:
        """Replace model and optimizer state with a ``torch.save`` file's ``model`` and
        ``optimizer`` entries (state made elsewhere, e.g. by a newer PyTorch)."""

    @abstractmethod
    def save_torchscript(self, path: Path, example: torch.Tensor) -> None:
        """``torch.jit.trace`` the model (eval mode) on ``example`` and ``torch.jit.save`` it."""

    @abstractmethod
    def run_torchscript(self, path: Path, x: torch.Tensor) -> tuple[dict[str, TensorDigest], torch.Tensor]:
        """``torch.jit.load`` a file: digests of its state and its output for ``x``."""

    @abstractmethod
    def advance_schedule(self) -> None:
        """Step the case's LR scheduler, if it has one (only while making state)."""

    @abstractmethod
    def save_checkpoint(self, folder: Path, shards: int = 1) -> list[str]:
        """The model's state as a Hugging Face checkpoint folder in the bound route's form
        (harness/routes/checkpoint.py): one file, or ``shards`` shards and their index; the
        file names written."""


def model_case_of(case: Case) -> ModelCase:
    if isinstance(case, OptimizerCase):
        return case.model_case
    if isinstance(case, ModelCase):
        return case
    raise TypeError(f"case {case.name!r} ({case.kind}) has no model")
