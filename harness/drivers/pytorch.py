"""In-process driver for the host's PyTorch, reading and writing through the codec under test.

The same interface as the TorchSharp worker's driver; another PyTorch (another version,
in its own environment) would run as a worker process behind this interface instead.
"""
from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy
import torch

from harness.verdicts import codec_contract
from harness.cases import torch_build
from harness.cases import Case, OptimizerCase
from harness.codecs import CodecUnderTest
from harness.verdicts.digest import module_digest
from harness import codec as trusted_codec  # snapshots only; files under test go through self.codec
from harness.verdicts.digest import TensorDigest
from harness.running.machine import probe
from harness.drivers.base import Capabilities, Digest, PythonDriver, model_case_of
from harness.verdicts.oracle import expected_digest
from harness.routes import ROUTES, RouteUnavailable
from harness.routes.base import FileForm
from harness.routes.checkpoint import write_checkpoint


class PyTorchDriver(PythonDriver):
    def __init__(self, codec: CodecUnderTest):
        self.codec = codec
        self.codec_name = codec.name
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self._forms: dict[str, FileForm] = {"dat": codec}
        routes = {name for name, r in ROUTES.items() if name != "dat" and self._form_or_none(name) is not None}
        version = torch.__version__.split("+")[0]
        devices = {"cpu"} | ({"cuda"} if torch.cuda.is_available() else set())
        machine = probe(threads=torch.get_num_threads())
        self.capabilities = Capabilities(
            name="PyTorch", version=version, devices=frozenset(devices),
            optimizers=frozenset(torch_build.OPTIMIZERS),
            features=frozenset({"read_optimizer"} if codec.can_read_optimizer else set())
            | frozenset({"read_tensor"} if codec.can_read_tensor else set()) | frozenset(routes),
            provenance={"torch": torch.__version__, "numpy": numpy.__version__,
                        "python": platform.python_version(), "codec": f"{codec.name} {codec.version()}",
                        **{f"PyTorch {version} {k}": v for k, v in machine.describe().items()}},
            machine=machine,
        )

    def _form_or_none(self, name: str) -> FileForm | None:
        try:
            return self.form(name)
        except RouteUnavailable:
            return None

    def form(self, name: str | None = None) -> FileForm:
        """The Python half of route ``name`` (default: the bound route; ``route:variant`` one of its
        file forms); "dat" is the codec under test."""
        name = name or self.route_form
        if name not in self._forms:
            route, _, variant = name.partition(":")  # "pth:p4": variant p4 of route pth
            make = ROUTES[route].python_form
            if make is None:
                raise RouteUnavailable(f"route {route} has no Python half of its own")
            self._forms[name] = make(variant)
        return self._forms[name]

    def _model(self) -> torch.nn.Module:
        if self.model is None:
            raise RuntimeError("build() first")
        return self.model

    def _optim(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            raise RuntimeError("this case has no optimizer")
        return self.optimizer

    def build(self, case: Case, device: str) -> None:
        mc = model_case_of(case)
        self.model = torch_build.build_case_model(mc, device)
        if mc.fill == "specials":  # NaN payloads, infinities, -0.0, subnormals, extreme integers
            from harness.cases.inputs import fill_with_edge_values
            fill_with_edge_values(self.model, mc.seed)
        self.optimizer = None
        self.scheduler = None
        if isinstance(case, OptimizerCase):
            self.optimizer = torch_build.build_optimizer(self.model, case.optimizer)
            if case.scheduler:
                self.scheduler = torch_build.build_scheduler(self.optimizer, case.scheduler)

    def load_module(self, path: Path, strict: bool = True) -> None:
        with open(path, "rb") as f:
            state = self.form().load_state_dict(f)
        self._model().load_state_dict(state, strict=strict)

    def save_module(self, path: Path) -> None:
        state = {k: v.detach().cpu() for k, v in self._model().state_dict().items()}
        with open(path, "wb") as f:
            self.form().save_state_dict(state, f)

    def load_optimizer(self, path: Path) -> None:
        with open(path, "rb") as f:
            self.form().load_optimizer(self._optim(), f)

    def save_optimizer(self, path: Path) -> None:
        with open(path, "wb") as f:
            self.form().save_optimizer(self._optim(), f)

    def step(self, grads: Mapping[str, torch.Tensor]) -> None:
        torch_build.apply_gradients(self._model(), grads)
        opt = self._optim()
        if isinstance(opt, torch.optim.LBFGS):  # needs a closure: re-applies the same gradients
            def closure() -> float:
                torch_build.apply_gradients(self._model(), grads)
                return 0.0
            opt.step(closure)
        else:
            opt.step()

    def train(self, steps: int, seed: int, input_shape: Sequence[int],
              input_spec: Mapping[str, Any] | None = None) -> None:
        torch_build.train_model(self._model(), input_shape, steps, seed, self.optimizer, input_spec=input_spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, train=False)

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, train=True)

    def _run(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """The model's output for ``x`` in train or eval mode, without gradients (a model returning
        a tuple, e.g. googlenet with aux logits: its first element)."""
        model = self._model()
        model.train(train)
        with torch.no_grad():
            out = model(x)
        result: torch.Tensor = out[0] if isinstance(out, tuple) else out
        return result

    def parameter_names(self) -> list[str]:
        return [name for name, _ in self._model().named_parameters()]

    def write_tensor_file(self, tensor: torch.Tensor, path: Path) -> None:
        self.form().write_tensor(tensor, path)

    def read_tensor_file(self, path: Path) -> torch.Tensor:
        return self.form().read_tensor(path)

    def load_saved_state(self, path: Path) -> None:
        saved = torch.load(path, map_location="cpu")
        self._model().load_state_dict(saved["model"])
        self._optim().load_state_dict(saved["optimizer"])

    def save_torchscript(self, path: Path, example: torch.Tensor) -> None:
        model = self._model()
        model.eval()
        with torch.no_grad():
            traced = torch.jit.trace(  # type: ignore[attr-defined]
               model, example, check_trace=False)
        torch.jit.save(traced, str(path))  # type: ignore[attr-defined]

    def run_torchscript(self, path: Path, x: torch.Tensor) -> tuple[dict[str, TensorDigest], torch.Tensor]:
        module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[attr-defined]
        module.eval()
        with torch.no_grad():
            out = module(x)
        digests = {k: TensorDigest.of(v) for k, v in module.state_dict().items()}
        return digests, out[0] if isinstance(out, tuple) else out

    def advance_schedule(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()

    def save_checkpoint(self, folder: Path, shards: int = 1) -> list[str]:
        names = ROUTES[self.route_form.partition(":")[0]].checkpoint_names
        if names is None:
            raise RouteUnavailable(f"route {self.route_form} has no checkpoint form")
        state = {k: v.detach().cpu() for k, v in self._model().state_dict().items()}
        return write_checkpoint(self.form(), names, state, folder, shards)

    def read_module(self, path: Path) -> dict[str, TensorDigest]:
        with open(path, "rb") as f:
            return {k: TensorDigest.of(v) for k, v in self.form().load_state_dict(f).items()}

    def codec_contract(self, path: Path, which: str) -> list[str]:
        contract = {"usable": codec_contract.usable_tensors, "damaged": codec_contract.clear_errors}[which]
        return contract(self.form().raw("load_state_dict"), path.read_bytes())

    def snapshot(self, module_path: Path, optimizer_path: Path | None) -> None:
        state = {k: v.detach().cpu() for k, v in self._model().state_dict().items()}
        trusted_codec.write_state_dict(module_path, state)
        if optimizer_path is not None:
            trusted_codec.write_optimizer(optimizer_path, trusted_codec.optimizer_record_from_torch(self._optim()))

    def digest(self) -> Digest:
        module = module_digest(self._model().state_dict())
        optimizer = expected_digest(self.optimizer) if self.optimizer is not None else None
        return Digest(module, optimizer)
