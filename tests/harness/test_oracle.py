"""The oracle (harness/verdicts/oracle.py): the optimizer digest TorchSharp must report after loading
a PyTorch optimizer's state, in docs/format.md's field names and order.

Every optimizer here gets hand-made PyTorch state (set on ``optimizer.state`` directly, no
step taken), and every expected value is written out independently of the harness: f64 values
as IEEE-754 bit strings typed in, tensor digests as sha256 of bytes packed with ``struct``.
"""
from __future__ import annotations

import hashlib
import struct

import pytest
import torch

from harness.verdicts.digest import TensorDigest
from harness.verdicts.oracle import expected_digest

# float64 bits, big-endian hex (docs/protocol.md "Value encodings")
ZERO, NEG_ZERO, ONE = "0000000000000000", "8000000000000000", "3ff0000000000000"
LR_1E_3, LR_1E_2 = "3f50624dd2f1a9fc", "3f847ae147ae147b"
B1, B2, EPS_1E_8 = "3feccccccccccccd", "3feff7ced916872b", "3e45798ee2308c3a"
HALF, TENTH = "3fe0000000000000", "3fb999999999999a"


def f32(*xs: float) -> TensorDigest:
    """Digest of a float32 vector, from bytes packed here (not from harness.verdicts.digest)."""
    data = struct.pack(f"<{len(xs)}f", *xs)
    return TensorDigest("float32", (len(xs),), hashlib.sha256(data).hexdigest())


def f64(*xs: float) -> TensorDigest:
    data = struct.pack(f"<{len(xs)}d", *xs)
    return TensorDigest("float64", (len(xs),), hashlib.sha256(data).hexdigest())


def params(n: int = 2, size: int = 3, dtype: torch.dtype = torch.float32) -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.arange(size, dtype=dtype) + i) for i in range(n)]


def test_adam_options_and_a_lazily_filled_state() -> None:
    p0, p1 = params()
    opt = torch.optim.Adam([p0, p1], lr=1e-3, weight_decay=-0.0)
    opt.state[p0] = {"step": torch.tensor(3.0), "exp_avg": torch.tensor([1.0, -0.0, 2.5]),
                     "exp_avg_sq": torch.tensor([0.25, 0.5, 0.75])}
    d = expected_digest(opt)
    assert d.class_name == "Adam"
    assert len(d.groups) == 1
    g = d.groups[0]
    assert list(g) == ["initial_lr", "lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"]
    assert g == {"initial_lr": LR_1E_3, "lr": LR_1E_3, "beta1": B1, "beta2": B2, "eps": EPS_1E_8,
                 "weight_decay": NEG_ZERO, "amsgrad": False, "maximize": False}  # -0.0 keeps its sign bit
    assert [list(s) for s in d.states] == [["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]] * 2
    # p0: PyTorch's state as is (a tensor step becomes an integer; -0.0 stays in the bytes)
    assert d.states[0] == {"step": 3, "exp_avg": f32(1.0, -0.0, 2.5), "exp_avg_sq": f32(0.25, 0.5, 0.75),
                           "max_exp_avg_sq": None}
    # p1 never had a gradient: what PyTorch's lazy initialisation would create
    assert d.states[1] == {"step": 0, "exp_avg": f32(0, 0, 0), "exp_avg_sq": f32(0, 0, 0), "max_exp_avg_sq": None}


def test_adam_amsgrad_holds_max_exp_avg_sq_also_when_lazy() -> None:
    p0, p1 = params()
    opt = torch.optim.Adam([p0, p1], lr=1e-3, amsgrad=True)
    opt.state[p0] = {"step": torch.tensor(1.0), "exp_avg": torch.tensor([1.0, 2.0, 3.0]),
                     "exp_avg_sq": torch.tensor([4.0, 5.0, 6.0]), "max_exp_avg_sq": torch.tensor([7.0, 8.0, 9.0])}
    d = expected_digest(opt)
    assert d.groups[0]["amsgrad"] is True
    assert d.states[0]["max_exp_avg_sq"] == f32(7.0, 8.0, 9.0)
    assert d.states[1]["max_exp_avg_sq"] == f32(0, 0, 0)


def test_adamw_shares_adams_fields_under_its_own_class() -> None:
    (p,) = params(1)
    d = expected_digest(torch.optim.AdamW([p], lr=1e-3))
    assert d.class_name == "AdamW"
    assert d.groups[0]["weight_decay"] == LR_1E_2  # AdamW's default 1e-2
    assert list(d.states[0]) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]


def test_initial_lr_is_the_groups_own_when_a_scheduler_set_it() -> None:
    (p,) = params(1)
    opt = torch.optim.SGD([p], lr=0.1)
    opt.param_groups[0]["initial_lr"] = 0.1
    opt.param_groups[0]["lr"] = 0.05
    g = expected_digest(opt).groups[0]
    assert (g["initial_lr"], g["lr"]) == (TENTH, "3fa999999999999a")


def test_sgd_momentum_buffer_is_conditional_and_sgd_has_no_step() -> None:
    p0, p1 = params()
    opt = torch.optim.SGD([p0, p1], lr=0.1, momentum=0.5, nesterov=True)
    opt.state[p0] = {"momentum_buffer": torch.tensor([1.0, 2.0, 3.0])}
    d = expected_digest(opt)
    assert d.groups[0] == {"initial_lr": TENTH, "lr": TENTH, "momentum": HALF, "dampening": ZERO,
                           "weight_decay": ZERO, "nesterov": True, "maximize": False}
    assert d.states == [{"momentum_buffer": f32(1.0, 2.0, 3.0)},
                        {"momentum_buffer": None}]  # PyTorch creates it at the first step, not before


def test_rmsprop_conditional_buffers_follow_momentum_and_centered() -> None:
    plain, (q,) = params(1), params(1)
    off = expected_digest(torch.optim.RMSprop(plain, lr=1e-2))
    assert off.class_name == "RMSProp"  # TorchSharp's spelling
    assert list(off.groups[0]) == ["initial_lr", "lr", "maximize", "momentum", "alpha", "eps", "weight_decay",
                                   "centered"]
    assert off.states == [{"step": 0, "square_avg": f32(0, 0, 0), "momentum_buffer": None, "grad_avg": None}]
    on = expected_digest(torch.optim.RMSprop([q], lr=1e-2, momentum=0.5, centered=True))
    assert on.states == [{"step": 0, "square_avg": f32(0, 0, 0), "momentum_buffer": f32(0, 0, 0),
                          "grad_avg": f32(0, 0, 0)}]


def test_rprop_splits_tuple_options_and_fills_step_size_with_lr() -> None:
    (p,) = params(1, size=2, dtype=torch.float64)
    d = expected_digest(torch.optim.Rprop([p], lr=1e-2))
    assert d.groups[0] == {"initial_lr": LR_1E_2, "lr": LR_1E_2, "maximize": False,
                           "etaminus": HALF, "etaplus": "3ff3333333333333",
                           "min_step": "3eb0c6f7a0b5ed8d", "max_step": "4049000000000000"}
    assert d.states == [{"step": 0, "prev": f64(0, 0), "step_size": f64(0.01, 0.01)}]  # the parameter's dtype


def test_asgd_scalars_are_f64_bits_lazy_and_loaded() -> None:
    p0, p1 = params()
    opt = torch.optim.ASGD([p0, p1], lr=1e-2)
    # PyTorch 1.13 keeps eta and mu as float32 0-dim tensors: their value widens exactly
    opt.state[p0] = {"step": torch.tensor(2.0), "eta": torch.tensor(0.01), "mu": torch.tensor(1.0),
                     "ax": torch.tensor([0.5, 0.25, 0.0])}
    d = expected_digest(opt)
    assert list(d.groups[0]) == ["initial_lr", "lr", "maximize", "lambd", "alpha", "weight_decay", "t0"]
    assert d.groups[0]["t0"] == "412e848000000000"  # 1e6
    assert d.states[0] == {"step": 2, "eta": "3f847ae140000000", "mu": ONE, "ax": f32(0.5, 0.25, 0.0)}
    assert d.states[1] == {"step": 0, "eta": LR_1E_2, "mu": ONE, "ax": f32(0, 0, 0)}  # eta = lr, mu = 1


def test_nadam_mu_product_starts_at_one() -> None:
    (p,) = params(1)
    d = expected_digest(torch.optim.NAdam([p], lr=2e-3))
    assert list(d.groups[0]) == ["initial_lr", "lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay"]
    assert d.groups[0]["momentum_decay"] == "3f70624dd2f1a9fc"  # 4e-3
    assert d.states == [{"step": 0, "mu_product": ONE, "exp_avg": f32(0, 0, 0), "exp_avg_sq": f32(0, 0, 0)}]


def test_adagrad_sum_starts_at_initial_accumulator_value() -> None:
    (p,) = params(1, size=2, dtype=torch.float64)
    d = expected_digest(torch.optim.Adagrad([p], lr=1e-2, initial_accumulator_value=0.25))
    assert d.groups[0]["initial_accumulator_value"] == "3fd0000000000000"
    assert d.states == [{"step": 0, "sum": f64(0.25, 0.25)}]


def test_states_run_group_by_group_in_parameter_order() -> None:
    a, b, c = params(3)
    opt = torch.optim.Adamax([{"params": [a, b]}, {"params": [c], "lr": 0.1}], lr=1e-3)
    opt.state[c] = {"step": torch.tensor(5.0), "exp_avg": torch.tensor([1.0, 1.0, 1.0]),
                    "exp_inf": torch.tensor([2.0, 2.0, 2.0])}
    d = expected_digest(opt)
    assert [g["lr"] for g in d.groups] == [LR_1E_3, TENTH]
    assert [s["step"] for s in d.states] == [0, 0, 5]
    assert d.states[2]["exp_inf"] == f32(2.0, 2.0, 2.0)


def test_an_optimizer_without_a_file_form_has_no_oracle() -> None:
    with pytest.raises(KeyError, match="LBFGS"):
        expected_digest(torch.optim.LBFGS(params(1)))
