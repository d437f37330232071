r"""A PyTorch worker process: the PyTorch side of the cells, run in another environment.

Another PyTorch (e.g. Debian 13's 2.6 in a chroot) cannot be imported into the host's
Python, so it runs this module and speaks the same JSON-lines protocol as the .NET worker
(docs/protocol.md): one request a line on stdin, one response a line on stdout.

```
 harness (host Python)                      harness.pyworker (other PyTorch)
  {"id":1,"op":"hello"}          ── stdin ──▶  PyTorchDriver(codec under test)
                                 ◀─ stdout ──  {"id":1,"status":"ok","result":{...}}
  {"id":2,"op":"build","case":"lenet1",...} ─▶ the same catalogue, read from its checkout
                                 ◀─ stdout ──  ok | parse_error | runtime_error
```

Every op is one method of :class:`harness.drivers.base.PythonDriver`; tensors travel as
files (the single-tensor form written and read by the harness's own codec); paths are the
worker's (the host translates them). A codec failure answers ``runtime_error`` with type
``CodecFailure`` so the host classifies the cell as the codec's failure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

from harness.verdicts.digest import module_digest_to_json
from harness.drivers.scratch import read_scratch_tensor, write_scratch_tensor
from harness.cases import load_catalogue
from harness.codecs import CodecFailure, load_codec
from harness.drivers.pytorch import PyTorchDriver


class Server:
    def __init__(self, codec_spec: str):
        self.driver = PyTorchDriver(load_codec(codec_spec))
        self.catalogue = load_catalogue()

    def _case(self, name: str) -> Any:
        for case in self.catalogue.all():
            if case.name == name:
                return case
        raise KeyError(f"no case named {name!r} in this worker's catalogue")

    def handle(self, op: str, r: dict[str, Any]) -> dict[str, Any]:
        d = self.driver
        d.route_form = str(r.get("format", "dat"))  # the cell's route (harness/routes/), per request
        if op == "hello":
            c = d.capabilities
            return {"protocol": 1, "implementation": c.name, "version": c.version, "devices": sorted(c.devices),
                    "optimizers": sorted(c.optimizers), "features": sorted(c.features),
                    "provenance": dict(c.provenance),
                    "machine": c.machine.to_json() if c.machine else None}
        if op == "build":
            d.build(self._case(r["case"]), r["device"])
        elif op == "load_module":
            d.load_module(Path(r["path"]), bool(r.get("strict", True)))
        elif op == "save_module":
            d.save_module(Path(r["path"]))
        elif op == "load_optimizer":
            d.load_optimizer(Path(r["path"]))
        elif op == "save_optimizer":
            d.save_optimizer(Path(r["path"]))
        elif op == "step":
            d.step({name: read_scratch_tensor(path) for name, path in r["grads"].items()})
        elif op == "train":
            d.train(int(r["steps"]), int(r["seed"]), list(r["input_shape"]), r.get("input"))
        elif op == "forward":
            write_scratch_tensor(r["output"], d.forward(read_scratch_tensor(r["input"])))
        elif op == "train_forward":  # the model zoo's train-mode check
            write_scratch_tensor(r["output"], d.train_forward(read_scratch_tensor(r["input"])))
        elif op == "parameters":
            return {"names": d.parameter_names()}
        elif op == "digest":
            dg = d.digest()
            return {"module": module_digest_to_json(dg.module),
                    "optimizer": dg.optimizer.to_json() if dg.optimizer else None}
        elif op == "read_module":
            return {"module": module_digest_to_json(d.read_module(Path(r["path"])))}
        elif op == "codec_contract":
            return {"problems": d.codec_contract(Path(r["path"]), str(r["which"]))}
        elif op == "snapshot":
            d.snapshot(Path(r["module"]), Path(r["optimizer"]) if r.get("optimizer") else None)
        elif op == "load_saved_state":
            d.load_saved_state(Path(r["path"]))
        elif op == "write_tensor_file":
            d.write_tensor_file(read_scratch_tensor(r["input"]), Path(r["output"]))
        elif op == "read_tensor_file":
            write_scratch_tensor(r["output"], d.read_tensor_file(Path(r["input"])))
        elif op == "save_torchscript":
            d.save_torchscript(Path(r["path"]), read_scratch_tensor(r["example"]))
        elif op == "run_torchscript":
            state, out = d.run_torchscript(Path(r["path"]), read_scratch_tensor(r["input"]))
            write_scratch_tensor(r["output"], out)
            return {"module": module_digest_to_json(state)}
        elif op == "advance_schedule":
            d.advance_schedule()
        elif op == "save_checkpoint":
            return {"files": d.save_checkpoint(Path(r["folder"]), int(r.get("shards", 1)))}
        else:
            raise LookupError(op)
        return {}


def serve(codec_spec: str, stdin: TextIO, out: TextIO) -> None:
    server = Server(codec_spec)

    def reply(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    for line in stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            rid, op = request["id"], request["op"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            reply({"id": None, "status": "parse_error", "error": {"type": type(exc).__name__, "message": str(exc)}})
            continue
        if op == "shutdown":
            reply({"id": rid, "status": "ok", "result": {}})
            return
        try:
            reply({"id": rid, "status": "ok", "result": server.handle(op, request)})
        except LookupError as exc:
            if isinstance(exc, KeyError) and op != "build":
                kind = "parse_error"
            else:
                kind = "parse_error" if str(exc) == op else "runtime_error"
            reply({"id": rid, "status": kind, "error": {"type": type(exc).__name__, "message": f"{op}: {exc}"}})
        except Exception as exc:  # every failure is an answer, never a dead pipe
            kind = "CodecFailure" if isinstance(exc, CodecFailure) else type(exc).__name__
            reply({"id": rid, "status": "runtime_error",
                   "error": {"type": kind, "message": str(exc), "stack": traceback.format_exc()[-3000:]}})


def main() -> int:
    p = argparse.ArgumentParser(prog="python3 -m harness.pyworker")
    p.add_argument("--codec", default="ours")
    args = p.parse_args()
    protocol_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    serve(args.codec, sys.stdin, protocol_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
