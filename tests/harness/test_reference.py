"""The float64 reference: its optimizer steps and forward passes against PyTorch in float64.

The reference is written from PyTorch's documented algorithms (2.x), not taken from PyTorch,
so here it must agree with the host's PyTorch run in float64 wherever that PyTorch follows the
same algorithm, and must disagree where PyTorch 1.13 is known to be wrong (NAdam).
"""
from __future__ import annotations

import math

import pytest
import torch

from harness.verdicts import reference
from harness.cases import torch_build
from harness.cases import load_catalogue
from harness.codec.optim_layouts import OptimizerRecord
from harness.codec.optim_torch import optimizer_record_from_torch

OPTIONS = {
    "SGD": {"lr": 0.1, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01, "nesterov": False},
    "SGD_nesterov": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "maximize": True},
    "ASGD": {"lr": 0.05, "lambd": 1e-3, "alpha": 0.75, "t0": 2.0, "weight_decay": 0.01},
    "Rprop": {"lr": 0.05, "etas": (0.4, 1.3), "step_sizes": (1e-4, 0.2)},
    "RMSprop": {"lr": 0.01, "alpha": 0.95, "momentum": 0.5, "centered": True, "weight_decay": 0.01},
    "Adam": {"lr": 0.01, "betas": (0.8, 0.9), "amsgrad": True, "weight_decay": 0.01},
    "AdamW": {"lr": 0.01, "betas": (0.85, 0.95), "weight_decay": 0.1},
    "RAdam": {"lr": 0.01, "betas": (0.9, 0.999)},
    "Adamax": {"lr": 0.02, "betas": (0.8, 0.9), "weight_decay": 0.01},
    "Adadelta": {"lr": 0.5, "rho": 0.8, "weight_decay": 0.01},
    "Adagrad": {"lr": 0.05, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
    "NAdam": {"lr": 0.01, "betas": (0.9, 0.999), "momentum_decay": 0.004},
}
STEPS = 8  # RAdam's rectified branch starts at step 6 for beta2 = 0.999


def _run_both(name: str) -> tuple[dict[str, torch.Tensor], reference.OptimizerState]:
    kind = name.split("_")[0]
    gen = torch.Generator().manual_seed(5)
    params = {"w": torch.randn(4, 3, generator=gen, dtype=torch.float64),
              "b": torch.randn(3, generator=gen, dtype=torch.float64)}
    live = {k: torch.nn.Parameter(v.clone()) for k, v in params.items()}
    opt = torch_build.OPTIMIZERS[kind]([{"params": [live["w"]]}, {"params": [live["b"]]}], **OPTIONS[name])
    grads = [{k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in params.items()}
             for _ in range(STEPS + 1)]
    for p in live.values():  # one step first, so every state exists (PyTorch creates it lazily)
        p.grad = grads[0][[k for k in live if live[k] is p][0]].clone()
    opt.step()
    ref = reference.start_state({k: v.detach() for k, v in live.items()}, optimizer_record_from_torch(opt),
                                [["w"], ["b"]])
    for g in grads[1:]:
        for k, p in live.items():
            p.grad = g[k].clone()
        opt.step()
    reference.optimizer_steps(kind, ref, grads[1:])
    return {k: v.detach() for k, v in live.items()}, ref


# Where PyTorch 1.13 itself rounds a float64 computation through float32 (so float32-level
# agreement is all it can give): ASGD keeps eta as a float32 tensor; Rprop's
# ``sign[sign.gt(0)] = etaplus`` goes through a float32 scalar tensor.
FLOAT32_INSIDE_PYTORCH_113 = {"ASGD", "Rprop"}


@pytest.mark.parametrize("name", [n for n in OPTIONS if n != "NAdam"])
def test_reference_steps_equal_pytorch_in_float64(name):
    torch_params, ref = _run_both(name)
    loose = name in FLOAT32_INSIDE_PYTORCH_113 and torch.__version__.startswith("1.")
    rtol, atol = (1e-6, 1e-7) if loose else (1e-12, 1e-14)
    for k, v in torch_params.items():
        assert torch.allclose(v, ref.params[k], rtol=rtol, atol=atol), (name, k, (v - ref.params[k]).abs().max())


def test_reference_nadam_follows_the_fixed_algorithm_not_pytorch_113():
    torch_params, ref = _run_both("NAdam")
    gap = max(float((v - ref.params[k]).abs().max()) for k, v in torch_params.items())
    if torch.__version__.startswith("1."):
        assert gap > 1e-6, "PyTorch 1.13's NAdam multiplies mu into mu_product twice (pytorch/pytorch#92699)"
    else:
        assert gap < 1e-12


def test_reference_counts_steps():
    _, ref = _run_both("Adadelta")
    assert [s["step"] for s in ref.states] == [STEPS + 1, STEPS + 1]


def test_unknown_optimizer_is_a_clear_error():
    _, ref = _run_both("SGD")
    with pytest.raises(KeyError, match="no reference update for optimizer 'LBFGS'"):
        reference.optimizer_steps("LBFGS", ref, [])


@pytest.mark.parametrize("name", ["lenet1", "model_float64", "transformer_encoder_layer", "embedding_bag"])
def test_reference_forward_is_the_model_in_float64(name):
    case = next(c for c in load_catalogue().all() if c.name == name)
    model = torch_build.build_case_model(case)
    x = torch_build.make_input(case.input_shape, torch.Generator().manual_seed(1),
                               next(model.parameters()).dtype, case.input)
    out = reference.forward(case, model.state_dict(), x)
    assert out.dtype == torch.float64
    model.eval()
    with torch.no_grad():
        own = model(x).double()
    assert torch.allclose(out, own, rtol=1e-4, atol=1e-5)


def test_reference_nadam_is_the_documented_algorithm_by_hand():
    """NAdam as torch.optim.NAdam's documentation (2.x) writes it, with the products of mu taken
    whole (not the reference's running ``mu_product``), for one scalar parameter, three steps."""
    b1, b2, lr, eps, psi = 0.9, 0.999, 0.01, 1e-8, 0.004
    group = {"initial_lr": lr, "lr": lr, "beta1": b1, "beta2": b2, "eps": eps, "weight_decay": 0.0,
             "momentum_decay": psi}
    zero = torch.zeros(1, dtype=torch.float64)
    record = OptimizerRecord("NAdam", [group], [{"step": 0, "mu_product": 1.0, "exp_avg": zero, "exp_avg_sq": zero}])
    state = reference.start_state({"w": torch.tensor([1.0], dtype=torch.float64)}, record, [["w"]])
    grads = [0.5, -0.25, 0.125]
    reference.optimizer_steps("NAdam", state, [{"w": torch.tensor([g], dtype=torch.float64)} for g in grads])

    def mu(t: int) -> float:
        return b1 * (1 - 0.5 * 0.96 ** (t * psi))

    p, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate(grads, 1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        m_hat = (mu(t + 1) * m / (1 - math.prod(mu(i) for i in range(1, t + 2)))
                 + (1 - mu(t)) * g / (1 - math.prod(mu(i) for i in range(1, t + 1))))
        p -= lr * m_hat / (math.sqrt(v / (1 - b2 ** t)) + eps)
    assert abs(float(state.params["w"]) - p) < 1e-15
    assert abs(p - 0.99082600781647) < 1e-13
    assert state.states[0]["step"] == 3
    assert abs(state.states[0]["mu_product"] - math.prod(mu(i) for i in (1, 2, 3))) < 1e-16


def test_the_zoos_kept_float64_model_holds_each_calls_state():
    pytest.importorskip("torchvision")
    case = load_catalogue().models["zoo_mobilenet_v3_small"]
    model = torch_build.build_case_model(case)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    x = torch_build.make_input(case.input_shape, torch.Generator().manual_seed(1), torch.float32, case.input)
    first = reference.forward(case, state, x)
    moved = dict(state)
    moved["classifier.3.bias"] = state["classifier.3.bias"] + 1.0  # every output up by exactly 1
    second = reference.forward(case, moved, x)
    assert torch.allclose(second - first, torch.ones_like(first), atol=1e-9)
    assert torch.equal(reference.forward(case, state, x), first)  # and back: nothing of `moved` stays
