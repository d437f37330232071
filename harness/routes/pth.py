"""The ``pth`` route: ``torch.save``/``torch.load`` <-> TorchSharp.PyBridge's ``load_py``/``save_py``
(modules and optimizers) and ``PyTorchUnpickler``/``PyTorchPickler`` (a single tensor, as the
one-entry dict ``{"tensor": t}``).

PyTorch's side is what its users run: ``torch.save`` with its defaults (the zip format, pickle
protocol 2) and ``torch.load`` with its defaults (``weights_only=True`` from PyTorch 2.6 on), so
a file PyBridge writes is loaded the way a PyTorch 2.6 user loads it. The other forms users
hold (the legacy format, other pickle protocols) are the ``pth_forms`` check's.
"""
from __future__ import annotations

from typing import Any, BinaryIO

import torch

from harness.routes.base import Route, guarded

TENSOR_KEY = "tensor"  # a single tensor travels as {TENSOR_KEY: t} (PyBridge reads and writes dicts)


def load(f: Any) -> Any:
    """``torch.load`` as a user calls it (defaults; tensors onto the CPU)."""
    return torch.load(f, map_location="cpu")


# The other file forms of torch.save that users hold (the pth_forms checks): variant -> (zip format, protocol).
# "" is torch.save's default (the zip format, pickle protocol 2).
VARIANTS = {"": (True, 2), "p3": (True, 3), "p4": (True, 4), "p5": (True, 5),
            "legacy": (False, 2), "legacy-p4": (False, 4)}


class TorchSaveForm:
    """The Python half: PyTorch's own serialisation. Inverse pairs: save_state_dict /
    load_state_dict, save_optimizer / load_optimizer, write_tensor / read_tensor.
    ``variant`` (a key of VARIANTS) picks the file form module state is saved in."""

    name = "torch.save"
    can_read_optimizer = True
    can_read_tensor = True

    def __init__(self, variant: str = "") -> None:
        if variant not in VARIANTS:
            raise ValueError(f"route pth: no file form {variant!r} (known: {sorted(VARIANTS)})")
        self.variant = variant
        zipped, protocol = VARIANTS[variant]
        self.options: dict[str, Any] = ({"pickle_protocol": protocol} if protocol != 2 else {}) | (
            {} if zipped else {"_use_new_zipfile_serialization": False})

    def save_state_dict(self, state_dict: dict[str, torch.Tensor], f: BinaryIO) -> None:
        """``torch.save(state_dict, f)`` (in the variant's form); inverse of :meth:`load_state_dict`."""
        guarded("pth", "torch.save", lambda: torch.save(state_dict, f, **self.options))

    def load_state_dict(self, f: BinaryIO) -> dict[str, torch.Tensor]:
        """``torch.load(f)``; inverse of :meth:`save_state_dict`."""
        return dict(guarded("pth", "torch.load", load, f))

    def save_optimizer(self, optimizer: torch.optim.Optimizer, f: BinaryIO) -> None:
        """``torch.save(optimizer.state_dict(), f)``; inverse of :meth:`load_optimizer`."""
        guarded("pth", "torch.save of the optimizer's state_dict", torch.save, optimizer.state_dict(), f)

    def load_optimizer(self, optimizer: torch.optim.Optimizer, f: BinaryIO) -> None:
        """``optimizer.load_state_dict(torch.load(f))``; inverse of :meth:`save_optimizer`."""
        state = guarded("pth", "torch.load", load, f)
        guarded("pth", "the optimizer's load_state_dict", optimizer.load_state_dict, state)

    def write_tensor(self, tensor: torch.Tensor, path: Any) -> None:
        """``torch.save({"tensor": t}, path)``; inverse of :meth:`read_tensor`."""
        guarded("pth", "torch.save", torch.save, {TENSOR_KEY: tensor}, str(path))

    def read_tensor(self, path: Any) -> torch.Tensor:
        """The one tensor of a ``{"tensor": t}`` file; inverse of :meth:`write_tensor`."""
        data = guarded("pth", "torch.load", load, str(path))
        return one_tensor(data, "pth", path)

    def raw(self, attr: str) -> Any:
        return {"load_state_dict": load}[attr]


def one_tensor(data: Any, route: str, path: Any) -> torch.Tensor:
    """The tensor of a single-tensor file's one-entry dict; the route's failure otherwise."""
    from harness.codecs import CodecFailure
    if not (isinstance(data, dict) and list(data) == [TENSOR_KEY] and isinstance(data[TENSOR_KEY], torch.Tensor)):
        keys = list(data) if isinstance(data, dict) else type(data).__name__
        raise CodecFailure(f"route {route}: {path} should hold one tensor under {TENSOR_KEY!r}, holds {keys}")
    tensor: torch.Tensor = data[TENSOR_KEY]
    return tensor


def write_state_dict(path: Any, state: dict[str, torch.Tensor]) -> None:
    """The harness's own ``.pth`` writer (the host's ``torch.save``, zip format)."""
    torch.save(state, str(path))


CHECKPOINT_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-{i:05d}-of-{n:05d}.bin")

PTH = Route(
    name="pth", suffix=".pth",
    title="torch.save/torch.load <-> TorchSharp.PyBridge load_py/save_py",
    carries=frozenset({"module", "optimizer", "tensor", "checkpoint", "pickle_forms"}), byte_stable=False,
    python_form=TorchSaveForm, write_state_dict=write_state_dict, checkpoint_names=CHECKPOINT_NAMES)
