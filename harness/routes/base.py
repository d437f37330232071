"""What a route is: one road state takes between PyTorch and TorchSharp, as data.

A route pairs a Python half (how PyTorch's side writes and reads the files: the codec
under test's ``.dat``, ``torch.save``/``torch.load``, safetensors' ``save``/``load``) with a
TorchSharp half (the ``format`` both TorchSharp drivers are asked for: ``Module.load``/
``save`` and the optimizer's state-dict files, or PyBridge's ``load_py``/``save_py``,
``load_safetensors``/``save_safetensors``). The checks never branch on a route: the drivers
are bound to the cell's route (:mod:`harness.routes.binding`) and every check that needs
something a route does not carry is skipped with that reason, by declaration.

What a route can carry (``Route.carries``):

``module``       a model's state dict
``optimizer``    an optimizer's state dict
``tensor``       a single tensor (on PyBridge's routes: a one-entry dict ``{"tensor": t}``)
``checkpoint``   a Hugging Face style checkpoint folder (PyBridge's ``load_checkpoint``)
``pickle_forms`` the other forms of a ``torch.save`` file users hold (legacy format, pickle protocols)
``codec``        a codec under test on the Python side (the contract checks judge it)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import torch

from harness.codecs import CodecFailure

CARRIABLE = frozenset({"module", "optimizer", "tensor", "checkpoint", "pickle_forms", "codec"})
# How a missing carriable reads in a skip's reason ("route safetensors carries no optimizer state").
WHAT = {"module": "module state", "optimizer": "optimizer state (it holds tensors only)",
        "tensor": "single tensors", "checkpoint": "checkpoint folders",
        "pickle_forms": "torch.save's other file forms (legacy format, pickle protocols)",
        "codec": "codec under test (the contract checks judge the --codec reader; this route's Python side is "
                 "PyTorch's own)"}


class FileForm(Protocol):
    """The Python half of a route, as the PyTorch driver uses it (the codec under test is one:
    harness/codecs.py ``CodecUnderTest``). Runs where PyTorch runs (the host or a worker)."""

    name: str

    @property
    def can_read_optimizer(self) -> bool: ...

    @property
    def can_read_tensor(self) -> bool: ...

    def save_state_dict(self, state_dict: dict[str, torch.Tensor], f: BinaryIO) -> None: ...

    def load_state_dict(self, f: BinaryIO) -> dict[str, torch.Tensor]: ...

    def save_optimizer(self, optimizer: torch.optim.Optimizer, f: BinaryIO) -> None: ...

    def load_optimizer(self, optimizer: torch.optim.Optimizer, f: BinaryIO) -> None: ...

    def write_tensor(self, tensor: torch.Tensor, path: Any) -> None: ...

    def read_tensor(self, path: Any) -> torch.Tensor: ...

    def raw(self, attr: str) -> Any: ...


class RouteUnavailable(RuntimeError):
    """A route's Python half cannot run in this PyTorch (e.g. no safetensors package)."""


@dataclass(frozen=True)
class Route:
    name: str                      # "dat", "pth", "safetensors": the --route value and the cell id's last part
    suffix: str                    # the files' extension (".dat")
    title: str                     # one line for reports: what each side calls
    carries: frozenset[str]        # see the module docstring
    byte_stable: bool              # TorchSharp re-saving what it loaded must give the same bytes
    # The Python half (None: the codec under test), made in the PyTorch process that uses it,
    # from a variant name ("" the route's own form; "pth:p4" binds variant "p4" of route pth).
    python_form: Callable[[str], FileForm] | None = None
    # The harness's own writer of a state-dict file of this form (partial_load, view_load): runs
    # on the host, whatever PyTorch the cell uses.
    write_state_dict: Callable[[Any, dict[str, torch.Tensor]], None] | None = None
    python_unavailable: str = ""   # why a PyTorch without the route's Python half lacks it
    # A Hugging Face checkpoint folder's file names (save_pretrained's): the single file, the
    # sharded index, and the shards' pattern ({i}, {n}); None: the route has no checkpoint form.
    checkpoint_names: tuple[str, str, str] | None = None
    # The dtypes its files can hold (harness dtype names, harness/cases/torch_build.py DTYPES); None: all.
    dtypes: frozenset[str] | None = None
    # Damaged copies that only this route's format can express (damaged_load adds them to the
    # truncated, garbled and empty copies every route gets): (what, bytes) made from the bytes of
    # a valid file of this form; None: the route declares none.
    damaged_forms_of: Callable[[bytes], list[tuple[str, bytes]]] | None = None

    def refuses_dtype(self, dtype: str) -> str | None:
        """Why a case of ``dtype`` cannot take this route (None: it can)."""
        if self.dtypes is None or dtype in self.dtypes:
            return None
        return f"route {self.name} carries no {dtype} tensors (its format has no such dtype)"

    def write_state(self, path: Any, state: dict[str, torch.Tensor]) -> None:
        """The harness's own state-dict file of this form (files the checks make themselves)."""
        if self.write_state_dict is None:
            raise RouteUnavailable(f"route {self.name} has no harness writer")
        self.write_state_dict(path, state)

    def damaged_forms(self, data: bytes) -> list[tuple[str, bytes]]:
        """The route's own damaged copies of a valid file's ``data`` (see ``damaged_forms_of``)."""
        return [] if self.damaged_forms_of is None else self.damaged_forms_of(data)

    def write_tensor(self, path: Any, tensor: torch.Tensor) -> None:
        """The harness's own single-tensor file of this form (tensor_ts2py's input for TorchSharp)."""
        self.write_state(path, {"tensor": tensor})

    def __post_init__(self) -> None:
        if self.carries - CARRIABLE:
            raise ValueError(f"route {self.name!r}: unknown carries {sorted(self.carries - CARRIABLE)}")

    def obstacle(self, needs: frozenset[str], py_features: frozenset[str], py_label: str,
                 ts_features: frozenset[str], ts_label: str) -> str | None:
        """Why a check needing ``needs`` cannot run on this route with these drivers (None: it
        can): a need the route does not carry, or a side without this route's half."""
        for need in sorted(needs - self.carries):
            return f"route {self.name} carries no {WHAT[need]}"
        if self.python_form is not None and self.name not in py_features:
            return f"unavailable: route {self.name}: {py_label}: {self.python_unavailable}"
        ts_wanted = ({self.name} if self.python_form is not None else set()) | (needs & {"checkpoint"})
        for feature in sorted(ts_wanted - ts_features):
            return f"unavailable: route {self.name}: {ts_label} driver has no {feature!r} form (TorchSharp.PyBridge)"
        return None

    @property
    def form(self) -> str:
        """The ``format`` the TorchSharp drivers are asked for (docs/protocol.md)."""
        return self.name


def guarded(route: str, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call a route's Python half; what it raises is the route's failure (a failed cell that
    names the route), never a harness error."""
    try:
        return fn(*args)
    except Exception as exc:
        raise CodecFailure(f"route {route}: {what} raised {type(exc).__name__}: {exc}") from exc
