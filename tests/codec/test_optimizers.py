"""All eleven optimizers: a small model with two param groups, two real steps, one
parameter that never gets a gradient (lazy state); write -> read -> to_state_dict -> load
into a freshly built same optimizer -> state equal bitwise, and one more step equal bitwise."""
from __future__ import annotations

import copy
import io
import struct

import pytest
import torch

from harness import codec
from tests.codec._util import assert_same_tensor

# (PyTorch class, group-0 options, group-1 options): groups differ so per-group options are
# exercised; conditional tensors appear in one group and not the other where possible.
CASES = {
    "SGD": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
            {"lr": 0.05, "momentum": 0.0}),
    "ASGD": (torch.optim.ASGD, {"lr": 0.01, "t0": 1.0, "weight_decay": 1e-3}, {"lr": 0.02, "lambd": 1e-3}),
    "Rprop": (torch.optim.Rprop, {"lr": 0.01, "etas": (0.4, 1.3)}, {"lr": 0.02, "step_sizes": (1e-5, 10.0)}),
    "RMSprop": (torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.5, "centered": True},
                {"lr": 0.02, "alpha": 0.9, "maximize": True}),
    "Adam": (torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.9)}, {"lr": 0.02, "amsgrad": True, "weight_decay": 0.1}),
    "AdamW": (torch.optim.AdamW, {"lr": 0.01, "amsgrad": True}, {"lr": 0.02, "maximize": True}),
    "NAdam": (torch.optim.NAdam, {"lr": 0.01}, {"lr": 0.02, "momentum_decay": 0.005}),
    "RAdam": (torch.optim.RAdam, {"lr": 0.01}, {"lr": 0.02, "weight_decay": 0.01}),
    "Adamax": (torch.optim.Adamax, {"lr": 0.01}, {"lr": 0.02, "betas": (0.8, 0.99)}),
    "Adadelta": (torch.optim.Adadelta, {"lr": 1.0}, {"lr": 0.5, "rho": 0.8, "maximize": True}),
    "Adagrad": (torch.optim.Adagrad, {"lr": 0.01, "initial_accumulator_value": 0.1},
                {"lr": 0.02, "lr_decay": 0.01}),
}
TS_NAME = {"RMSprop": "RMSProp"}


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin1 = torch.nn.Linear(4, 3)
        self.lin2 = torch.nn.Linear(3, 2)
        self.unused = torch.nn.Parameter(torch.randn(2, 2))  # never in the loss: no grad, lazy state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(torch.tanh(self.lin1(x)))


def _build(name: str, seed: int = 0) -> tuple[Net, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    net = Net()
    cls, g0, g1 = CASES[name]
    opt = cls([{"params": list(net.lin1.parameters()), **g0},
               {"params": [*net.lin2.parameters(), net.unused], **g1}])
    return net, opt


def _train(net: Net, opt: torch.optim.Optimizer, steps: int, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 4, generator=gen)
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()


def _assert_state_equal(expected: dict, actual: dict, where: str) -> None:
    exp = {k: v for k, v in expected.items() if v is not None}
    act = {k: v for k, v in actual.items() if v is not None}
    assert sorted(exp) == sorted(act), f"{where}: keys {sorted(exp)} != {sorted(act)}"
    for k in exp:
        e, a = exp[k], act[k]
        if isinstance(e, torch.Tensor) or isinstance(a, torch.Tensor):
            assert isinstance(e, torch.Tensor) and isinstance(a, torch.Tensor), f"{where}.{k}: {e!r} vs {a!r}"
            assert_same_tensor(a, e, f"{where}.{k}")
        else:
            assert type(e) is type(a) and e == a, f"{where}.{k}: {e!r} vs {a!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_optimizer_round_trip_into_fresh_pytorch(name: str, tmp_path) -> None:
    net, opt = _build(name)
    _train(net, opt, 2)
    original = opt.state_dict()
    unused_index = 4  # lin1.weight, lin1.bias | lin2.weight, lin2.bias, unused
    assert unused_index not in original["state"] or not any(
        isinstance(v, torch.Tensor) and v.dim() > 0 for v in original["state"][unused_index].values()) \
        or name == "Adagrad"  # Adagrad creates its state eagerly

    rec = codec.optimizer_record_from_torch(opt)
    assert rec.class_name == TS_NAME.get(name, name)
    assert rec.param_counts == [2, 3]
    path = tmp_path / f"{name}.dat"
    codec.write_optimizer(path, rec)
    back = codec.read_optimizer(path)
    assert back.class_name == rec.class_name and back.param_counts is None
    assert back.groups == rec.groups
    for j, (a, b) in enumerate(zip(rec.states, back.states)):
        _assert_state_equal(a, b, f"record state[{j}]")
    # a second write of what was read gives the same bytes
    buf = io.BytesIO()
    codec.write_optimizer(buf, back)
    assert buf.getvalue() == path.read_bytes()

    net2, fresh = _build(name, seed=0)
    fresh.load_state_dict(codec.optimizer_record_to_state_dict(back, fresh))
    loaded = fresh.state_dict()
    for i, (g_orig, g_new) in enumerate(zip(original["param_groups"], loaded["param_groups"])):
        assert g_orig == g_new, f"group {i}"
    for pid in range(5):
        if pid in original["state"] and any(v is not None for v in original["state"][pid].values()):
            _assert_state_equal(original["state"][pid], loaded["state"][pid], f"{name} state[{pid}]")
    # the never-stepped parameter holds TorchSharp's initial state (step 0)
    lazy = back.states[unused_index]
    if "step" in lazy:
        assert lazy["step"] == 0 or name == "Adagrad"

    # continuing gives bitwise the same parameters as the original optimizer
    net2.load_state_dict(net.state_dict())
    _train(net, opt, 1, seed=7)
    _train(net2, fresh, 1, seed=7)
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values()):
        assert_same_tensor(b, a, f"{name} parameter {k} after one more step")


@pytest.mark.parametrize("name", sorted(CASES))
def test_to_state_dict_without_optimizer_uses_param_counts(name: str) -> None:
    net, opt = _build(name)
    _train(net, opt, 1)
    rec = codec.optimizer_record_from_torch(opt)
    sd = codec.optimizer_record_to_state_dict(rec)
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3, 4]]
    _, fresh = _build(name)
    fresh.load_state_dict(sd)
    assert codec.optimizer_record_from_torch(fresh).groups == rec.groups


def test_state_step_form_matches_this_pytorch() -> None:
    """torch 1.13 keeps step as an int for Rprop/RMSprop/Adadelta and a float32 tensor for
    the others; whatever this PyTorch does after a real step, the codec's dict does too."""
    for name in CASES:
        net, opt = _build(name)
        _train(net, opt, 1)
        sd = codec.optimizer_record_to_state_dict(codec.optimizer_record_from_torch(opt), opt)
        for pid, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                if v is not None and (not isinstance(v, torch.Tensor) or v.dim() == 0):
                    got = sd["state"][pid][k]
                    assert type(got) is type(v), (name, k, type(got), type(v))
                    if isinstance(v, torch.Tensor):
                        assert got.dtype == v.dtype, (name, k)


def test_rmsprop_cond_tensors_follow_pytorch() -> None:
    net, opt = _build("RMSprop")
    _train(net, opt, 1)
    rec = codec.optimizer_record_from_torch(opt)
    assert all(s["momentum_buffer"] is not None and s["grad_avg"] is not None for s in rec.states[:2])
    assert all(s["momentum_buffer"] is None and s["grad_avg"] is None for s in rec.states[2:])


def test_sgd_without_momentum_has_absent_buffers() -> None:
    net, opt = _build("SGD")
    _train(net, opt, 1)
    rec = codec.optimizer_record_from_torch(opt)
    assert [s["momentum_buffer"] is not None for s in rec.states] == [True, True, False, False, False]


def test_lazy_initial_state_per_optimizer() -> None:
    """A parameter PyTorch never stepped is written as TorchSharp's constructor creates it."""
    for name in CASES:
        net, opt = _build(name)
        rec = codec.optimizer_record_from_torch(opt)  # no step at all: everything lazy
        g1 = rec.groups[1]
        s = rec.states[4]
        if name == "ASGD":
            assert (s["step"], s["eta"], s["mu"]) == (0, g1["lr"], 1.0)
        if name == "NAdam":
            assert s["mu_product"] == 1.0
        if name == "Rprop":
            assert torch.equal(s["step_size"], torch.full((2, 2), g1["lr"]))
        if name == "Adagrad":
            assert torch.equal(s["sum"], torch.full((2, 2), g1["initial_accumulator_value"]))
        if name in ("Adam", "AdamW"):
            assert (s["max_exp_avg_sq"] is not None) == g1["amsgrad"]
        for k, v in s.items():
            if isinstance(v, torch.Tensor) and k not in ("step_size", "sum"):
                assert v.shape == (2, 2) and not v.any(), (name, k)


def test_record_round_trips_through_torch_state_dict() -> None:
    net, opt = _build("Adam")
    _train(net, opt, 2)
    rec = codec.optimizer_record_from_torch(opt)
    sd = codec.optimizer_record_to_state_dict(rec, opt)
    again = codec.optimizer_record_from_state_dict("Adam", sd, [p for g in opt.param_groups for p in g["params"]])
    assert again.groups == rec.groups
    for a, b in zip(rec.states, again.states):
        _assert_state_equal(a, b, "state")


def test_upstream_savers_and_optimizers_table() -> None:
    assert sorted(codec.OPTIMIZERS) == sorted(["SGD", "ASGD", "Rprop", "RMSProp", "Adam", "AdamW", "NAdam",
                                               "RAdam", "Adamax", "Adadelta", "Adagrad"])
    for name in CASES:
        net, opt = _build(name)
        _train(net, opt, 1)
        buf, ref = io.BytesIO(), io.BytesIO()
        getattr(codec, f"save_{name.lower()}")(opt, buf)
        codec.write_optimizer(ref, codec.optimizer_record_from_torch(opt))
        assert buf.getvalue() == ref.getvalue()
        codec.save_optimizer(opt, ref := io.BytesIO())
        assert ref.getvalue() == buf.getvalue()


def test_option_torch_lacks_is_dropped_at_default_and_refused_otherwise(monkeypatch) -> None:
    from harness.codec import optim_torch as o
    net, opt = _build("SGD")
    rec = codec.optimizer_record_from_torch(opt)
    fake_defaults = {k: v for k, v in opt.defaults.items() if k != "maximize"}
    fresh = copy.copy(opt)
    monkeypatch.setattr(fresh, "defaults", fake_defaults)
    monkeypatch.setattr(fresh, "param_groups", [{k: v for k, v in g.items() if k != "maximize"}
                                                for g in opt.param_groups])
    sd = o.optimizer_record_to_state_dict(rec, fresh)
    assert all("maximize" not in g for g in sd["param_groups"])
    rec.groups[0]["maximize"] = True
    with pytest.raises(codec.UnrepresentableOptionError) as info:
        o.optimizer_record_to_state_dict(rec, fresh)
    assert info.value.field == "group[0].maximize"


# What TorchSharp saved for asgd_two_groups' eta: a double float32 cannot hold.
TS_DOUBLE = struct.unpack(">d", bytes.fromhex("3f847ade429681ab"))[0]
TS_DOUBLE_AS_FLOAT32 = struct.unpack(">d", bytes.fromhex("3f847ade40000000"))[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name,key", [("ASGD", "eta"), ("ASGD", "mu"), ("NAdam", "mu_product")])
def test_f64_state_takes_its_parameters_dtype(name: str, key: str, dtype: torch.dtype) -> None:
    """A double from TorchSharp's file (ASGD's eta/mu, NAdam's mu_product) is handed to PyTorch in
    its parameter's dtype, which is what PyTorch's load_state_dict casts it to: a float64
    parameter keeps the double bit for bit (PyTorch itself creates the field as float32), a
    float32 one holds it rounded (docs/findings/pytorch-float32-optimizer-scalars.md)."""
    p = torch.nn.Parameter(torch.zeros(3, dtype=dtype))
    opt = getattr(torch.optim, name)([p], lr=0.01)
    p.grad = torch.ones(3, dtype=dtype)
    opt.step()
    rec = codec.optimizer_record_from_torch(opt)
    rec.states[0][key] = TS_DOUBLE
    sd = codec.optimizer_record_to_state_dict(rec, opt)
    assert sd["state"][0][key].dtype == dtype
    opt.load_state_dict(sd)
    want = TS_DOUBLE if dtype == torch.float64 else TS_DOUBLE_AS_FLOAT32
    assert struct.pack(">d", float(opt.state[p][key])).hex() == struct.pack(">d", want).hex()
    # without the optimizer the dict keeps the double (load_state_dict will cast it later)
    alone = codec.optimizer_record_to_state_dict(rec)
    assert alone["state"][0][key].dtype == torch.float64 and float(alone["state"][0][key]) == TS_DOUBLE
