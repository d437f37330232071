"""The codec under test: ours (``harness.codec``), a codec release, or upstream's scripts.

A codec is anything exposing upstream's entry points (docs/format.md "Upstream's Python
helpers"): ``save_state_dict(state_dict, f)``, ``load_state_dict(f)`` and ``save_<optim>(optim,
f)``, either at the top level of a module/package or in ``exportsd``/``importsd``
submodules. ``--codec`` takes ``ours``, an importable module name, a ``.py`` file, or a
folder holding ``exportsd.py``/``importsd.py`` (upstream's layout) or a package.

Optional capability beyond upstream: reading optimizer files back into a PyTorch
optimizer (``read_optimizer`` + ``optimizer_record_to_state_dict``, as ours has). A codec
without it gets that part of a cell skipped with the reason, never passed.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

import torch

from harness.verdicts.outcomes import Verdict


class CodecLoadError(RuntimeError):
    """The codec named by --codec could not be imported or lacks upstream's entry points."""


class CodecFailure(RuntimeError):
    """The codec under test raised while reading or writing: a failed cell, not a harness bug."""

    def as_verdict(self) -> Verdict:
        return Verdict("fail", str(self), {"traceback": "".join(traceback.format_exception(self))[-3000:]})


def _guard(what: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        raise CodecFailure(f"codec {what} raised {type(exc).__name__}: {exc}") from exc


def _import_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CodecLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise CodecLoadError(f"importing {path} failed: {exc!r}") from exc
    return module


def _modules_for(spec: str) -> tuple[str, list[ModuleType]]:
    if spec in ("", "ours"):
        return "ours", [importlib.import_module("harness.codec")]
    path = Path(spec)
    if path.is_dir():
        found = [p for p in (path / "exportsd.py", path / "importsd.py") if p.exists()]
        if found:  # upstream's layout: scripts that import their siblings (a leb128 module, say)
            if str(path.resolve()) not in sys.path:
                sys.path.append(str(path.resolve()))
            tag = f"codec_ut_{abs(hash(str(path.resolve())))}"
            return path.name, [_import_file(p, f"{tag}_{p.stem}") for p in found]
        if (path / "__init__.py").exists():
            sys.path.insert(0, str(path.parent))
            return path.name, [importlib.import_module(path.name)]
        raise CodecLoadError(f"{path}: neither exportsd.py/importsd.py nor a package __init__.py")
    if path.suffix == ".py" and path.exists():
        return path.stem, [_import_file(path, f"codec_ut_{path.stem}")]
    try:
        module = importlib.import_module(spec)
    except ImportError as exc:
        raise CodecLoadError(f"--codec {spec!r}: not a folder, .py file or importable module ({exc})") from exc
    return spec, [module]


@dataclass
class CodecUnderTest:
    name: str
    modules: list[ModuleType]

    def _find(self, attr: str) -> Any | None:
        for m in self.modules:
            if hasattr(m, attr):
                return getattr(m, attr)
            for sub in ("exportsd", "importsd"):
                subm = getattr(m, sub, None)
                if subm is not None and hasattr(subm, attr):
                    return getattr(subm, attr)
        return None

    def _need(self, attr: str) -> Any:
        fn = self._find(attr)
        if fn is None:
            raise CodecLoadError(f"codec {self.name!r} has no {attr}()")
        return fn

    def raw(self, attr: str) -> Any:
        """The codec's own function, unguarded (its exceptions are what a contract check judges)."""
        return self._need(attr)

    # --- upstream's entry points -------------------------------------------------
    def save_state_dict(self, state_dict: dict[str, torch.Tensor], f: BinaryIO) -> None:
        _guard("save_state_dict", self._need("save_state_dict"), state_dict, f)

    def load_state_dict(self, f: BinaryIO) -> dict[str, torch.Tensor]:
        return dict(_guard("load_state_dict", self._need("load_state_dict"), f))

    def save_optimizer(self, optimizer: torch.optim.Optimizer, f: BinaryIO) -> None:
        name = "save_" + type(optimizer).__name__.lower()
        fn = self._find(name)
        if fn is None:  # no upstream-style saver: a generic one may say why (ours: LBFGS has no file form)
            generic = self._find("save_optimizer")
            if generic is None:
                raise CodecFailure(f"codec {self.name!r} has no {name}() for {type(optimizer).__name__}")
            _guard("save_optimizer", generic, optimizer, f)
            return
        _guard(name, fn, optimizer, f)

    # --- beyond upstream -----------------------------------------------------------
    @property
    def can_read_optimizer(self) -> bool:
        return self._find("read_optimizer") is not None and self._find("optimizer_record_to_state_dict") is not None

    def load_optimizer(self, optimizer: torch.optim.Optimizer, f: BinaryIO) -> None:
        record = _guard("read_optimizer", self._need("read_optimizer"), f)
        state_dict = _guard("optimizer_record_to_state_dict", self._need("optimizer_record_to_state_dict"),
                            record, optimizer)
        _guard("(its state dict in) optimizer.load_state_dict", optimizer.load_state_dict, state_dict)

    def write_tensor(self, tensor: torch.Tensor, path: Path) -> None:
        """Upstream's ``exportsd.write_tensor(t, file_name)`` (argument order as upstream)."""
        fn = None
        for m in self.modules:
            sub = getattr(m, "exportsd", None)
            fn = getattr(sub, "write_tensor", None) if sub is not None else None
            if fn is None and not hasattr(m, "read_state_dict"):  # upstream-style module: (t, file_name)
                fn = getattr(m, "write_tensor", None)
            if fn is not None:
                break
        if fn is None:
            raise CodecFailure(f"codec {self.name!r} has no upstream-style write_tensor(t, file_name)")
        _guard("write_tensor", fn, tensor, str(path))

    @property
    def can_read_tensor(self) -> bool:
        return self._find("read_tensor") is not None

    def read_tensor(self, path: Path) -> torch.Tensor:
        return _guard("read_tensor", self._need("read_tensor"), path)  # type: ignore[no-any-return]

    def version(self) -> str:
        for m in self.modules:
            v = getattr(m, "__version__", None)
            if v:
                return str(v)
        return "unknown"


def load_codec(spec: str | None = None) -> CodecUnderTest:
    name, modules = _modules_for(spec or "ours")
    codec = CodecUnderTest(name, modules)
    for attr in ("save_state_dict", "load_state_dict"):
        if codec._find(attr) is None:
            raise CodecLoadError(f"codec {spec!r} lacks upstream's {attr}(); found modules "
                                 f"{[m.__name__ for m in modules]}")
    return codec
