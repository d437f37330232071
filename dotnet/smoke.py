#!/usr/bin/python3
"""Smoke test of the .NET worker (dotnet/Worker), independent of the harness package.

    /usr/bin/python3 dotnet/smoke.py [build/worker/0.107.0/Worker.dll]

Starts the worker, drives every op of docs/protocol.md over stdin/stdout, and checks the
answers against facts computed here: module digests against the bytes of the .dat file the
worker saved (parsed by the tiny reader below), save/load round trips, error statuses.
Prints what it observed (state_dict order, dtypes, RMSProp's conditional buffers) and exits
non-zero on the first failed check. Needs only the Python standard library (plus numpy for
the random gradient bytes).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DLL = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "worker", "0.107.0", "Worker.dll")

CODES = {"uint8": 0, "int8": 1, "int16": 2, "int32": 3, "int64": 4, "float16": 5, "float32": 6, "float64": 7,
         "complex64": 9, "complex128": 10, "bool": 11, "bfloat16": 15}
NAMES = {v: k for k, v in CODES.items()}
ITEMSIZE = {"uint8": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "float16": 2, "float32": 4, "float64": 8,
            "complex64": 8, "complex128": 16, "bool": 1, "bfloat16": 2}


# --- tiny TorchSharp .dat codec (docs/format.md) ---------------------------------------
def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_uleb(f) -> int:
    shift = value = 0
    while True:
        b = f.read(1)[0]
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value


def tensor_record(dtype: str, shape: list[int], raw: bytes) -> bytes:
    return uleb(CODES[dtype]) + uleb(len(shape)) + b"".join(uleb(d) for d in shape) + raw


def read_tensor(f) -> tuple[str, list[int], bytes]:
    dtype = NAMES[read_uleb(f)]
    shape = [read_uleb(f) for _ in range(read_uleb(f))]
    n = 1
    for d in shape:
        n *= d
    raw = f.read(n * ITEMSIZE[dtype])
    assert len(raw) == n * ITEMSIZE[dtype], "truncated"
    return dtype, shape, raw


def read_str(f) -> str:
    return f.read(read_uleb(f)).decode()


def read_module(path: str) -> list[tuple[str, str, list[int], bytes]]:
    with open(path, "rb") as f:
        entries = []
        for _ in range(read_uleb(f)):
            key = read_str(f)
            entries.append((key, *read_tensor(f)))
        assert f.read() == b"", "trailing bytes"
        return entries


# --- worker client ------------------------------------------------------------------------
class Worker:
    def __init__(self, dll: str):
        t0 = time.monotonic()
        self.p = subprocess.Popen(["dotnet", dll], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(TMP, "worker.stderr"), "w"), text=True, bufsize=1)
        self.next_id = 0
        self.hello = self.call("hello")
        self.startup_s = time.monotonic() - t0

    def raw(self, line: str) -> dict:
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline()
        assert reply, f"worker died (rc {self.p.poll()})"
        return json.loads(reply)

    def send(self, op: str, **fields) -> dict:
        self.next_id += 1
        reply = self.raw(json.dumps({"id": self.next_id, "op": op, **fields}))
        assert reply["id"] == self.next_id, reply
        return reply

    def call(self, op: str, **fields) -> dict:
        reply = self.send(op, **fields)
        assert reply["status"] == "ok", f"{op}: {json.dumps(reply)[:2000]}"
        return reply["result"]


def check(cond: bool, what: str) -> None:
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


LENET = {"type": "Sequential", "children": [
    ["conv-1", {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 5}],
    ["bnrm2d-1", {"type": "BatchNorm2d", "num_features": 4}],
    ["relu-1", {"type": "ReLU"}],
    ["maxpool-1", {"type": "MaxPool2d", "kernel_size": 2}],
    ["flatten", {"type": "Flatten"}],
    ["linear-1", {"type": "Linear", "in_features": 4 * 12 * 12, "out_features": 10}],
]}
TWO_LINEAR = {"type": "Sequential", "children": [
    ["lin1", {"type": "Linear", "in_features": 10, "out_features": 10}],
    ["lin2", {"type": "Linear", "in_features": 10, "out_features": 10}],
]}
TWO_GROUPS = [{"params": ["lin1.weight", "lin1.bias"]}, {"params": ["lin2.weight", "lin2.bias"]}]
OPTIMIZERS = {
    "SGD": ({"lr": 0.1, "momentum": 0.9, "nesterov": True}, {"lr": 0.05, "dampening": 0.1, "maximize": True}),
    "ASGD": ({"lr": 0.01}, {"lambd": 1e-3, "t0": 10.0}),
    "Rprop": ({"lr": 0.01}, {"etas": [0.4, 1.3], "step_sizes": [1e-5, 10.0], "maximize": True}),
    "RMSprop": ({"lr": 0.01}, {"momentum": 0.5, "centered": True}),
    "Adam": ({"lr": 0.01}, {"amsgrad": True, "betas": [0.8, 0.9]}),
    "AdamW": ({"lr": 0.01}, {"amsgrad": True, "weight_decay": 0.1}),
    "NAdam": ({"lr": 0.01}, {"momentum_decay": 0.01}),
    "RAdam": ({"lr": 0.01}, {"betas": [0.7, 0.8]}),
    "Adamax": ({"lr": 0.01}, {"eps": 1e-6}),
    "Adadelta": ({"lr": 1.0}, {"rho": 0.95, "maximize": True}),
    "Adagrad": ({"lr": 0.01, "initial_accumulator_value": 0.1}, {"lr_decay": 0.01}),
}


def grads_for(w: Worker, names: list[str], shapes: dict[str, list[int]], seed: int, skip=()) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    out = {}
    for i, n in enumerate(names):
        if n in skip:
            continue
        g = rng.standard_normal(shapes[n]).astype("<f4")
        path = os.path.join(TMP, f"grad-{seed}-{i}.dat")
        with open(path, "wb") as f:
            f.write(tensor_record("float32", list(g.shape), g.tobytes()))
        out[n] = path
    return out


def shapes_of(w: Worker) -> dict[str, list[int]]:
    return {e["name"]: e["shape"] for e in w.call("digest")["module"]}


def main() -> None:
    w = Worker(DLL)
    print("hello:", json.dumps(w.hello))
    print(f"startup (spawn + hello, libtorch loaded): {w.startup_s:.2f} s")

    # --- status handling -----------------------------------------------------------------
    r = w.raw("this is not json")
    check(r["status"] == "parse_error" and r["id"] is None, "bad JSON line -> parse_error")
    check(w.send("frobnicate")["status"] == "parse_error", "unknown op -> parse_error")
    check(w.send("save_module")["status"] == "parse_error", "missing field -> parse_error")
    check(w.send("build", model=TWO_LINEAR, dtype="float32", device="cpu", seed="x", optimizer=None)["status"] == "parse_error",
          "mistyped field -> parse_error")
    r = w.send("build", model=TWO_LINEAR, dtype="float32", device="cuda", seed=1, optimizer=None)
    check(r["status"] == "skipped", f"cuda -> skipped ({r.get('reason')})")
    r = w.send("digest")
    check(r["status"] == "runtime_error", f"digest before build -> runtime_error ({r['error']['message']})")

    # --- LeNet1-like + Adam with two groups ------------------------------------------------
    adam = {"type": "Adam", "defaults": {"lr": 0.01},
            "groups": [{"params": ["conv-1.weight", "conv-1.bias", "bnrm2d-1.weight", "bnrm2d-1.bias"]},
                       {"params": ["linear-1.weight", "linear-1.bias"], "amsgrad": True, "betas": [0.8, 0.9]}]}
    b = w.call("build", model=LENET, dtype="float32", device="cpu", seed=1, optimizer=adam)
    print("build:", json.dumps(b))
    check(b["state_keys"][:6] == b["parameters"], "state_dict lists all parameters first")
    r = w.send("load_module", path=os.path.join(TMP, "missing.dat"))
    check(r["status"] == "runtime_error", f"missing file -> runtime_error ({r['error']['type']})")

    t0 = time.monotonic()
    losses = w.call("train", steps=2, seed=5, input_shape=[2, 1, 28, 28])["losses"]
    print(f"train 2 steps: {time.monotonic() - t0:.3f} s, losses",
          [struct.unpack(">d", bytes.fromhex(h))[0] for h in losses])
    d1 = w.call("digest")
    g = d1["optimizer"]["groups"]
    check(d1["optimizer"]["class"] == "Adam" and g[1]["amsgrad"] is True and g[0]["amsgrad"] is False,
          "optimizer digest: class and per-group amsgrad")
    check(g[1]["beta1"] == struct.pack(">d", 0.8).hex() and g[0]["beta2"] == struct.pack(">d", 0.999).hex(),
          "per-group betas, defaults from PyTorch")
    check(all(s["step"] == 2 for s in d1["optimizer"]["states"]), "step == 2 after two train steps")
    check(d1["optimizer"]["states"][0]["max_exp_avg_sq"] is None and d1["optimizer"]["states"][5]["max_exp_avg_sq"] is not None,
          "max_exp_avg_sq present exactly for the amsgrad group")
    nbt = [e for e in d1["module"] if e["name"].endswith("num_batches_tracked")][0]
    print("observed: num_batches_tracked", nbt["dtype"], nbt["shape"])

    mod = os.path.join(TMP, "lenet.dat")
    opt = os.path.join(TMP, "lenet-adam.dat")
    w.call("save_module", path=mod)
    w.call("save_optimizer", path=opt)
    entries = read_module(mod)
    check([e[0] for e in entries] == [e["name"] for e in d1["module"]], "file order == digest order (state_dict order)")
    check(all(hashlib.sha256(raw).hexdigest() == e["sha256"] and dt == e["dtype"] and shape == e["shape"]
              for (_, dt, shape, raw), e in zip(entries, d1["module"])),
          "module digest sha256 == sha256 of the .dat payload bytes")
    check(struct.unpack("<q", [raw for k, _, _, raw in entries if k.endswith("num_batches_tracked")][0])[0] == 2,
          "num_batches_tracked == 2 after two train steps")

    # rebuild fresh (different seed) and load both back
    w.call("build", model=LENET, dtype="float32", device="cpu", seed=99, optimizer=adam)
    check(w.call("digest") != d1, "a fresh build differs")
    w.call("load_module", path=mod)
    w.call("load_optimizer", path=opt)
    d2 = w.call("digest")
    check(d2 == d1, "digest after load_module + load_optimizer == digest before save")
    w.call("save_module", path=mod + ".2")
    w.call("save_optimizer", path=opt + ".2")
    check(open(mod, "rb").read() == open(mod + ".2", "rb").read()
          and open(opt, "rb").read() == open(opt + ".2", "rb").read(), "re-saved files are byte-identical")

    # step with gradient files
    shapes = shapes_of(w)
    grads = grads_for(w, b["parameters"], shapes, seed=7, skip=["conv-1.bias"])
    w.call("step", grads=grads)
    d3 = w.call("digest")
    st = d3["optimizer"]["states"]
    check(st[1]["step"] == 2 and st[0]["step"] == 3, "step: param without grad keeps its state, others advance")
    r = w.send("step", grads={"nope": grads["conv-1.weight"]})
    check(r["status"] == "parse_error", "step with an unknown parameter name -> parse_error")
    r = w.send("step", grads={"conv-1.weight": grads["linear-1.weight"]})
    check(r["status"] == "runtime_error", f"step with a wrong-shape gradient -> runtime_error ({r['error']['message'][:80]!r})")

    # forward and tensor_roundtrip
    x = np.random.default_rng(3).standard_normal([2, 1, 28, 28]).astype("<f4")
    xin, xout = os.path.join(TMP, "x.dat"), os.path.join(TMP, "y.dat")
    open(xin, "wb").write(tensor_record("float32", [2, 1, 28, 28], x.tobytes()))
    w.call("forward", input=xin, output=xout)
    with open(xout, "rb") as f:
        dt, shape, raw = read_tensor(f)
    check(dt == "float32" and shape == [2, 10], "forward writes a [2, 10] float32 tensor")
    for dtype, raw in [("bfloat16", bytes(range(24))), ("float16", bytes(range(24))), ("bool", bytes([0, 1] * 6)),
                       ("complex64", bytes(range(96))), ("int64", bytes(range(96))), ("uint8", bytes(range(12)))]:
        p = os.path.join(TMP, f"rt-{dtype}.dat")
        shape = [3, len(raw) // ITEMSIZE[dtype] // 3]
        open(p, "wb").write(tensor_record(dtype, shape, raw))
        r = w.call("tensor_roundtrip", input=p, output=p + ".out")
        check(r == {"dtype": dtype, "shape": shape, "sha256": hashlib.sha256(raw).hexdigest()}
              and open(p, "rb").read() == open(p + ".out", "rb").read(), f"tensor_roundtrip {dtype}: digest and bytes")
    p = os.path.join(TMP, "rt-0d.dat")
    open(p, "wb").write(tensor_record("float64", [], struct.pack("<d", 1.5)))
    check(w.call("tensor_roundtrip", input=p, output=p + ".out")["shape"] == [], "tensor_roundtrip 0-dim")

    # --- reduced precision models ---------------------------------------------------------------
    for dtype in ("float64", "float16", "bfloat16"):
        w.call("build", model=LENET, dtype=dtype, device="cpu", seed=1, optimizer=None)
        dd = {e["name"]: e["dtype"] for e in w.call("digest")["module"]}
        print(f"observed: model.to({dtype}): weight {dd['conv-1.weight']}, num_batches_tracked {dd['bnrm2d-1.num_batches_tracked']}")
        if dtype != "float16":   # CPU conv in half precision may be missing in libtorch
            w.call("train", steps=1, seed=1, input_shape=[2, 1, 28, 28])
        w.call("save_module", path=mod)
        check(all(hashlib.sha256(raw).hexdigest() == e["sha256"] for (_, _, _, raw), e in
                  zip(read_module(mod), w.call("digest")["module"])), f"{dtype}: digest == file payload bytes")

    # --- every persistable optimizer: build, step, save, reload, compare ------------------------
    for name, (defaults, second) in OPTIMIZERS.items():
        spec = {"type": name, "defaults": defaults, "groups": [TWO_GROUPS[0], {**TWO_GROUPS[1], **second}]}
        b = w.call("build", model=TWO_LINEAR, dtype="float32", device="cpu", seed=3, optimizer=spec)
        shapes = shapes_of(w)
        for s in range(2):
            w.call("step", grads=grads_for(w, b["parameters"], shapes, seed=10 + s, skip=["lin2.bias"]))
        d = w.call("digest")
        path = os.path.join(TMP, f"opt-{name}.dat")
        w.call("save_optimizer", path=path)
        w.call("save_module", path=mod)
        with open(path, "rb") as f:
            cls = read_str(f)
        w.call("build", model=TWO_LINEAR, dtype="float32", device="cpu", seed=4, optimizer=spec)
        w.call("load_module", path=mod)
        w.call("load_optimizer", path=path)
        check(w.call("digest") == d and cls == d["optimizer"]["class"], f"{name} ({cls}): save/load round trip")
        if name == "RMSprop":
            print("observed: RMSProp states (group 0 momentum=0, centered=False):",
                  {k: (v if not isinstance(v, dict) else "tensor") for k, v in d["optimizer"]["states"][0].items()})
            w.call("build", model=TWO_LINEAR, dtype="float32", device="cpu", seed=3,
                   optimizer={"type": "RMSprop", "defaults": {"lr": 0.01}, "groups": TWO_GROUPS})
            w.call("save_optimizer", path=path)
            print("observed: fresh RMSProp digest state:",
                  {k: (v if not isinstance(v, dict) else "tensor") for k, v in w.call("digest")["optimizer"]["states"][0].items()})
        if name == "Adam":
            print("observed: Adam digest group:", json.dumps(d["optimizer"]["groups"][1]))
    r = w.send("build", model=TWO_LINEAR, dtype="float32", device="cpu", seed=3,
               optimizer={"type": "NAdam", "defaults": {"maximize": True}, "groups": TWO_GROUPS})
    check(r["status"] == "skipped", f"an option TorchSharp lacks -> skipped ({r.get('reason')})")
    r = w.send("build", model=TWO_LINEAR, dtype="float32", device="cpu", seed=3,
               optimizer={"type": "Adam", "defaults": {"betaz": 1}, "groups": TWO_GROUPS})
    check(r["status"] == "parse_error", "an unknown optimizer kwarg -> parse_error")
    r = w.send("digest")
    check(r["status"] == "runtime_error", "a failed build leaves no half-built model (digest -> runtime_error)")

    # --- LBFGS: builds and trains; no file form --------------------------------------------------
    lbfgs = {"type": "LBFGS", "defaults": {"lr": 1.0, "max_iter": 20, "history_size": 10},
             "groups": [{"params": ["lin1.weight", "lin1.bias", "lin2.weight", "lin2.bias"]}]}
    w.call("build", model=TWO_LINEAR, dtype="float32", device="cpu", seed=3, optimizer=lbfgs)
    w.call("train", steps=1, seed=1, input_shape=[8, 10])
    r = w.send("save_optimizer", path=os.path.join(TMP, "lbfgs.dat"))
    check(r["status"] == "skipped", f"LBFGS save -> skipped ({r.get('reason')})")
    check(w.send("load_optimizer", path=os.path.join(TMP, "lbfgs.dat"))["status"] == "skipped", "LBFGS load -> skipped")
    print("LBFGS digest:", json.dumps(w.call("digest")["optimizer"]))

    # --- other module kinds build and run ----------------------------------------------------------
    extra = {"type": "Sequential", "children": [
        ["emb", {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 4}],
        ["ln", {"type": "LayerNorm", "normalized_shape": 4}],
        ["act", {"type": "GELU"}],
        ["flat", {"type": "Flatten"}],
    ]}
    b = w.call("build", model=extra, dtype="float32", device="cpu", seed=1, optimizer=None)
    check(b["parameters"] == ["emb.weight", "ln.weight", "ln.bias"], "Embedding/LayerNorm/GELU build")
    conv3 = {"type": "Sequential", "children": [
        ["c", {"type": "Conv3d", "in_channels": 2, "out_channels": 4, "kernel_size": 3, "padding": 1}],
        ["bn", {"type": "BatchNorm3d", "num_features": 4}],
        ["gn", {"type": "GroupNorm", "num_groups": 2, "num_channels": 4}],
        ["p", {"type": "PReLU"}], ["d", {"type": "Dropout", "p": 0.1}], ["t", {"type": "Tanh"}],
        ["s", {"type": "Sigmoid"}], ["i", {"type": "Identity"}]]}
    w.call("build", model=conv3, dtype="float32", device="cpu", seed=1, optimizer=None)
    w.call("train", steps=1, seed=1, input_shape=[2, 2, 4, 4, 4])
    check(True, "Conv3d/BatchNorm3d/GroupNorm/PReLU/Dropout/Tanh/Sigmoid/Identity build and train")
    r = w.send("build", model={"type": "LSTMCell"}, dtype="float32", device="cpu", seed=1, optimizer=None)
    check(r["status"] == "skipped", f"unsupported module type -> skipped ({r.get('reason')[:60]})")
    r = w.send("build", model={"type": "Linear", "in_features": 2, "out_features": 2, "bais": True},
               dtype="float32", device="cpu", seed=1, optimizer=None)
    check(r["status"] == "parse_error", "unknown module argument -> parse_error")

    check(w.call("shutdown") == {} and w.p.wait(timeout=30) == 0, "shutdown -> exit 0")
    w2 = Worker(DLL)
    w2.p.stdin.close()
    check(w2.p.wait(timeout=30) == 0, "stdin EOF -> exit 0")
    print("ALL OK")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="worker-smoke-") as TMP:
        main()
