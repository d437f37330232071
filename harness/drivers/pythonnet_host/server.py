r"""The worker protocol (docs/protocol.md, version 1), served from Python INSIDE the pythonnet
host (dotnet/PyHost): a second TorchSharp driver, written apart from the C# worker, so
that the two can catch each other's mistakes.

```
 harness (PythonnetDriver)                 dotnet PyHost.dll pythonnet_host/server.py
 -------------------------                 --------------------------------------
  {"id":1,"op":"hello"}\n     ── stdin ──▶  embedded CPython ── clr ──▶ TorchSharp
                              ◀─ stdout ──  {"id":1,"status":"ok","result":{...}}\n
```

Runs as a script (``runpy.run_path``), never as ``harness.drivers.pythonnet_host.server``:
importing the ``harness.drivers`` package would import PyTorch, which must never be loaded
in the host's process (two LibTorch builds crash it; the host's import guard refuses it).
So this file uses the standard library and ``clr`` only.

What it can do is what ``hello`` lists (``modules``, ``optimizers``); a request for
anything else answers ``skipped`` with "pythonnet driver lacks ...", never a fake result.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

if __package__:  # imported as harness.drivers.pythonnet_host.* (the tests)
    from .pn_common import DRIVER, PROTOCOL, BadRequest, Declined, Digests, Net, Req, _Disposer, f64_bits, lacks
    from .pn_modules import ModuleFactory
    from .pn_loop import handle, protocol_stream
    from .pn_optimizers import OPTIMIZERS, OptimizerFactory
    from .pn_forms import Forms
else:  # run as a script inside the host: its siblings are beside it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pn_common import (  # type: ignore[no-redef,import]
        DRIVER, PROTOCOL, BadRequest, Declined, Digests, Net, Req, _Disposer, f64_bits, lacks)
    from pn_modules import ModuleFactory  # type: ignore[no-redef,import]
    from pn_loop import handle, protocol_stream  # type: ignore[no-redef,import]
    from pn_optimizers import OPTIMIZERS, OptimizerFactory  # type: ignore[no-redef,import]
    from pn_forms import Forms  # type: ignore[no-redef,import]


# --- the session -------------------------------------------------------------------------------
class Session:
    """One model, at most one optimizer (docs/protocol.md)."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.digests = Digests(net)
        self.modules = ModuleFactory(net)
        self.optimizers = OptimizerFactory(net, self.digests)
        self.forms = Forms(net)
        self.model: Any = None
        self.optimizer: Any = None
        self.parameters: dict[str, Any] = {}
        self.device: Any = None
        self.ops: dict[str, Callable[[Req], dict[str, Any]]] = {
            "hello": self.hello, "build": self.build, "load_module": self.load_module,
            "save_module": self.save_module, "load_optimizer": self.load_optimizer,
            "save_optimizer": self.save_optimizer, "step": self.step, "train": self.train,
            "forward": self.forward, "tensor_roundtrip": self.tensor_roundtrip, "jit_run": self.jit_run,
            "digest": self.digest, "shutdown": lambda _: {},
            "parameters": lambda _: {"names": [str(p.Item1) for p in self._model().named_parameters()]},
        }

    # --- helpers ---
    def _model(self) -> Any:
        if self.model is None:
            raise RuntimeError("no model: send 'build' first")
        return self.model

    def _optimizer(self) -> Any:
        if self.optimizer is None:
            raise RuntimeError("no optimizer: 'build' was sent without one")
        return self.optimizer

    def _persistable(self) -> Any:
        opt = self._optimizer()
        if str(opt.GetType().Name) == "LBFGS":
            raise Declined("TorchSharp has no file form for LBFGS")
        return opt

    def _no_grad(self) -> _Disposer:
        return self.net.disposing(self.net.torch.no_grad())

    def _scope(self) -> _Disposer:
        return self.net.disposing(self.net.torch.NewDisposeScope())

    def _load_tensor(self, path: str) -> Any:
        return self.net.torch.Tensor.Load(path)

    def _save_tensor(self, tensor: Any, path: str) -> None:
        self.net.TorchSharp.TensorExtensionMethods.Save(tensor, path)

    # --- ops ---
    def hello(self, req: Req) -> dict[str, Any]:
        System = self.net.System
        assembly = System.Type.GetType("TorchSharp.torch, TorchSharp").Assembly
        attr_type = System.Reflection.AssemblyInformationalVersionAttribute
        informational = None
        for attr in assembly.GetCustomAttributes(attr_type, False):
            informational = str(attr.InformationalVersion)
        if informational is None:
            informational = str(assembly.GetName().Version)
        return {
            "protocol": PROTOCOL, "implementation": "TorchSharp", "driver": DRIVER,
            "version": informational.split("+")[0], "version_informational": informational,
            "libtorch": str(self.net.torch.__version__),
            "runtime": str(self.net.Interop.RuntimeInformation.FrameworkDescription),
            "python": sys.version.split()[0],
            "os": str(self.net.Interop.RuntimeInformation.OSDescription),
            "cuda": bool(self.net.torch.cuda.is_available()),
            "optimizers": [*OPTIMIZERS, "LBFGS"], "modules": list(self.modules.makers),
            "pybridge": self.forms.version, "forms": self.forms.supported,
            "lacks": ["integer inputs ('input' of train)",
                      "module types beyond 'modules'"],
        }

    def build(self, req: Req) -> dict[str, Any]:
        spec = req.get("model", dict, what="a module spec")
        dtype = self.net.scalar_type(req.text("dtype"))
        device_name = req.text("device")
        seed = req.integer("seed")
        opt_spec = req.get("optimizer", dict, None, "an optimizer spec or null")
        tie = req.get("tie", list, [], "a list of [target, source]")
        buffers = req.get("buffers", list, [], "a list of buffer specs")
        frozen = req.names("frozen", [])
        views = req.get("views", list, [], "a list of view specs")
        if device_name == "cuda":
            if not self.net.torch.cuda.is_available():
                raise Declined("CUDA not available in this TorchSharp build/machine")
            device = self.net.torch.CUDA
        elif device_name == "cpu":
            device = self.net.torch.CPU
        else:
            raise BadRequest(f"build: device must be 'cpu' or 'cuda', got {device_name!r}")
        self._drop()
        self.modules.stand_ins.clear()
        self.net.torch.manual_seed(self.net.System.Int64(seed))
        model = self.modules.build(spec, "model")
        try:
            # Module.to is an extension method: pythonnet calls it as the static generic it is.
            to = self.net.TorchSharp.ModuleExtensionMethods.to[self.net.torch.nn.Module]
            to(model, dtype, False)
            to(model, device, False)
            # The case's extras, in the protocol's order: tie, buffers, frozen, views.
            self._tie(model, tie)
            self._buffers(model, buffers, dtype, device)
            self._freeze(model, frozen)
            self._views(model, views)
            params = {str(p.Item1): p.Item2 for p in model.named_parameters()}
            optimizer = self.optimizers.build(opt_spec, params) if opt_spec is not None else None
        except BaseException:
            model.Dispose()
            raise
        self.model, self.optimizer, self.parameters, self.device = model, optimizer, params, device
        return {"parameters": list(params), "state_keys": [str(k) for k in model.state_dict().Keys]}

    def _owner(self, model: Any, name: str, what: str) -> tuple[Any, str]:
        """The module that holds state ``name`` ("a.b.w" -> module "a.b", leaf "w")."""
        path, _, leaf = name.rpartition(".")
        owner = model if not path else self._find_module(model, path, name, what)
        if self.modules.is_stand_in(owner):
            raise lacks(f"{what}: state on a 'Module' container ({name!r}), which it builds as a Sequential")
        return owner, leaf

    @staticmethod
    def _find_module(model: Any, path: str, name: str, what: str) -> Any:
        for item in model.named_modules():
            if str(item.Item1) == path:
                return item.Item2
        raise BadRequest(f"{what}: no module {path!r} for {name!r}")

    def _tie(self, model: Any, pairs: list[Any]) -> None:
        if pairs and (self.modules.is_stand_in(model)
                      or any(self.modules.is_stand_in(m.Item2) for m in model.named_modules())):
            # TorchSharp's Sequential lists a tied weight once, a custom Module under both names:
            # the stand-in would show the Sequential's behaviour for the Module's case.
            raise lacks("tied weights inside a 'Module' container, which it builds as a Sequential")
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                raise BadRequest(f"tie[{i}]: expected [target, source]")
            target, source = pair
            params = {str(p.Item1): p.Item2 for p in model.named_parameters()}
            if source not in params:
                raise BadRequest(f"tie[{i}]: no parameter named {source!r}")
            owner, leaf = self._owner(model, target, f"tie[{i}]")
            # A module whose parameter is a .NET property (Linear.weight) takes it through the
            # property, which re-registers it; any other gets it registered under the leaf name.
            if hasattr(owner, leaf):
                setattr(owner, leaf, params[source])
            else:
                owner.register_parameter(leaf, params[source])

    def _buffers(self, model: Any, buffers: list[Any], dtype: Any, device: Any) -> None:
        net = self.net
        for i, spec in enumerate(buffers):
            b = Req(spec, f"buffers[{i}]")
            b.only("name", "shape", "persistent", "fill")
            owner, leaf = self._owner(model, b.text("name"), b.where)
            fill = net.TorchSharp.ScalarExtensionMethods.ToScalar(net.System.Double(b.number("fill", 0.0)))
            value = net.torch.full(net.longs(b.ints("shape")), fill, dtype, device, False, None)
            owner.register_buffer(leaf, value, b.flag("persistent", True))

    def _freeze(self, model: Any, names: list[str]) -> None:
        params = {str(p.Item1): p.Item2 for p in model.named_parameters()}
        for name in names:
            if name not in params:
                raise BadRequest(f"frozen: no parameter named {name!r}")
            params[name].requires_grad = False

    def _views(self, model: Any, views: list[Any]) -> None:
        for i, spec in enumerate(views):
            v = Req(spec, f"views[{i}]")
            v.only("name", "of", "dim", "start", "length")
            state = {str(item.Key): item.Value for item in model.state_dict()}
            of = v.text("of")
            if of not in state:
                raise BadRequest(f"{v.where}: no parameter or buffer named {of!r}")
            owner, leaf = self._owner(model, v.text("name"), v.where)
            view = state[of].detach().narrow(v.integer("dim"), v.integer("start"), v.integer("length"))
            owner.register_buffer(leaf, view, True)

    def _drop(self) -> None:
        if self.optimizer is not None:
            self.optimizer.Dispose()
        if self.model is not None:
            self.model.Dispose()
        self.model, self.optimizer, self.parameters = None, None, {}

    def load_module(self, req: Req) -> dict[str, Any]:
        path = req.text("path")
        strict = req.flag("strict", True)
        skip = req.names("skip", [])
        form = self.forms.of(req, "load_module", "dat", "pth", "safetensors", "checkpoint")
        self.forms.load_module(self._model(), form, path, strict, skip)
        return {}

    def save_module(self, req: Req) -> dict[str, Any]:
        form = self.forms.of(req, "save_module", "dat", "pth", "safetensors")
        self.forms.save_module(self._model(), form, req.text("path"))
        return {}

    def load_optimizer(self, req: Req) -> dict[str, Any]:
        form = self.forms.of(req, "load_optimizer", "dat", "pth")
        self.forms.load_optimizer(self._persistable(), form, req.text("path"))
        return {}

    def save_optimizer(self, req: Req) -> dict[str, Any]:
        form = self.forms.of(req, "save_optimizer", "dat", "pth")
        self.forms.save_optimizer(self._persistable(), form, req.text("path"))
        return {}

    def step(self, req: Req) -> dict[str, Any]:
        grads = req.get("grads", dict, what="an object of parameter name -> path")
        for name, path in grads.items():
            if not isinstance(path, str):
                raise BadRequest(f"step.grads: {name!r} must be a path string")
        self._model()
        unknown = [n for n in grads if n not in self.parameters]
        if unknown:
            raise BadRequest(f"step.grads: no parameter named {unknown[0]!r} (model has: {', '.join(self.parameters)})")
        opt = self._optimizer()
        if str(opt.GetType().Name) == "LBFGS":
            raise Declined("LBFGS steps need a closure; the 'step' op supplies fixed gradients")
        with self._no_grad():
            for name, param in self.parameters.items():
                if name in grads:
                    g = self._load_tensor(grads[name])
                    if str(g.dtype) != str(param.dtype) or str(g.device) != str(param.device):
                        g = g.to(param.dtype, param.device)
                    param.grad = g
                else:
                    param.grad = None
        opt.step()
        return {}

    def train(self, req: Req) -> dict[str, Any]:
        steps = req.integer("steps")
        seed = req.integer("seed")
        shape = req.ints("input_shape")
        if req.has("input"):
            raise lacks("integer inputs ('input' of train)")
        net = self.net
        model = self._model()
        generator = net.torch.Generator(net.System.UInt64(seed), None)
        model.train()
        params = list(model.parameters())
        losses: list[str] = []
        if not params:
            # Nothing to optimise: train-mode forwards still move buffers (running stats).
            floating = [t.dtype for t in (item.Value for item in model.state_dict()) if t.is_floating_point()]
            dtype = floating[0] if floating else net.ScalarType.Float32
            with self._no_grad():
                for _ in range(steps):
                    with self._scope():
                        x = net.torch.randn(net.longs(shape), net.ScalarType.Float32, None, False, generator, None)
                        model.call(x.to(dtype).to(self.device))
            return {"losses": losses}
        dtype = params[0].dtype
        owned = self.optimizer is None
        opt = net.torch.optim.SGD(model.parameters(), 0.01) if owned else self.optimizer
        is_lbfgs = str(opt.GetType().Name) == "LBFGS"
        for _ in range(steps):
            with self._scope():
                x = net.torch.randn(net.longs(shape), net.ScalarType.Float32, None, False, generator, None)
                x = x.to(dtype).to(self.device)
                if is_lbfgs:
                    def closure() -> Any:
                        opt.zero_grad()
                        value = model.call(x).square().mean()
                        value.backward()
                        return value
                    loss = opt.step(net.System.Func[net.torch.Tensor](closure))
                else:
                    loss = model.call(x).square().mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                losses.append(f64_bits(float(loss.detach().to(net.ScalarType.Float64).item[net.System.Double]())))
        opt.zero_grad()
        if owned:
            opt.Dispose()
        return {"losses": losses}

    def forward(self, req: Req) -> dict[str, Any]:
        source, target = req.text("input"), req.text("output")
        train = req.flag("train", False)
        model = self._model()
        if train:
            model.train()
        else:
            model.eval()
        with self._scope(), self._no_grad():
            x = self._load_tensor(source).to(self.device)
            y = model.call(x).detach().cpu().contiguous()
            self._save_tensor(y, target)
        return {}

    def tensor_roundtrip(self, req: Req) -> dict[str, Any]:
        source, target = req.text("input"), req.text("output")
        form = self.forms.of(req, "tensor_roundtrip", "dat", "pth", "safetensors")
        with self._scope():
            return self.digests.of(self.forms.roundtrip(form, source, target))

    def jit_run(self, req: Req) -> dict[str, Any]:
        path, source, target = req.text("path"), req.text("input"), req.text("output")
        resave = req.text("resave", None)
        net = self.net
        T = net.torch.Tensor
        # torch.jit.load<Tensor, Tensor>(path): the generic overload on a file name, CPU.
        script = net.torch.jit.load[T, T](path, net.TorchSharp.DeviceType.CPU, net.System.Int64(-1))
        try:
            script.eval()
            state = [{"name": str(item.Key), **self.digests.of(item.Value)} for item in script.state_dict()]
            with self._scope(), self._no_grad():
                x = self._load_tensor(source)
                self._save_tensor(script.call(x), target)
            if resave is not None:
                net.torch.jit.save(script, resave)
        finally:
            script.Dispose()
        return {"module": state}

    def digest(self, req: Req) -> dict[str, Any]:
        model = self._model()
        module = []
        for item in model.state_dict():
            module.append({"name": str(item.Key), **self.digests.of(item.Value)})
        return {"module": module,
                "optimizer": None if self.optimizer is None else self.optimizers.digest(self.optimizer)}


def serve(stdin: IO[str], stdout: IO[str]) -> int:
    session = Session(Net())
    for line in stdin:
        if not line.strip():
            continue
        response, done = handle(session.ops, line)
        stdout.write(json.dumps(response, separators=(",", ":")) + "\n")
        stdout.flush()
        if done:
            break
    return 0


def main() -> int:
    out = protocol_stream()
    return serve(sys.stdin, out)


if __name__ == "__main__":
    raise SystemExit(main())
