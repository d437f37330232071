"""Byte-level golden tests: the writer's output equals bytes built by hand from docs/format.md."""
from __future__ import annotations

import io
import struct

import torch

from harness import codec
from harness.codec import exportsd
from tests.codec._util import boolb, dotnet_str, f64, i64, record, to_bytes, uleb


def test_tiny_state_dict_bytes() -> None:
    sd = {"conv-1.weight": torch.tensor([[1.5, -2.0]]), "wé": torch.tensor(7, dtype=torch.int64),
          "b16": torch.tensor([1.0], dtype=torch.bfloat16), "flag": torch.tensor([True, False])}
    expected = (
        b"\x04"
        + b"\x0dconv-1.weight" + b"\x06\x02\x01\x02" + struct.pack("<2f", 1.5, -2.0)
        + b"\x03w\xc3\xa9" + b"\x04\x00" + struct.pack("<q", 7)
        + b"\x03b16" + b"\x0f\x01\x01" + b"\x80\x3f"
        + b"\x04flag" + b"\x0b\x01\x02" + b"\x01\x00"
    )
    assert to_bytes(codec.write_state_dict, sd) == expected
    buf = io.BytesIO()
    exportsd.save_state_dict(sd, buf)  # upstream's name and argument order
    assert buf.getvalue() == expected
    assert list(codec.load_state_dict(io.BytesIO(expected))) == list(sd)


def test_single_tensor_bytes_and_upstream_write_tensor(tmp_path) -> None:
    t = torch.tensor([[1, 2, 3]], dtype=torch.int16).t()  # non-contiguous: written in C order
    expected = b"\x02\x02\x03\x01" + struct.pack("<3h", 1, 2, 3)
    assert to_bytes(codec.write_tensor, t) == expected
    exportsd.write_tensor(t, tmp_path / "t.dat")
    assert (tmp_path / "t.dat").read_bytes() == expected


def test_long_dims_use_multi_byte_uleb() -> None:
    t = torch.zeros((0, 300, 2 ** 40))
    assert to_bytes(codec.write_tensor, t) == b"\x06\x03\x00" + b"\xac\x02" + uleb(2 ** 40)


def _tiny_adam() -> tuple[torch.optim.Adam, torch.nn.Parameter]:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    q = torch.nn.Parameter(torch.tensor([0.5]))  # never gets a gradient: lazy state
    opt = torch.optim.Adam([{"params": [p]}, {"params": [q], "lr": 0.25, "amsgrad": True}], lr=0.1,
                           betas=(0.8, 0.9), weight_decay=0.01)
    for _ in range(2):
        opt.zero_grad()
        (p * torch.tensor([3.0, -1.0])).sum().backward()
        opt.step()
    return opt, p


def test_tiny_adam_bytes() -> None:
    opt, p = _tiny_adam()
    st = opt.state[p]

    def f32(t: torch.Tensor) -> bytes:
        return t.contiguous().numpy().tobytes()

    expected = (
        dotnet_str("Adam") + uleb(2) + uleb(2)
        # group 0: initial_lr, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize
        + f64(0.1) + f64(0.1) + f64(0.8) + f64(0.9) + f64(1e-8) + f64(0.01) + boolb(False) + boolb(False)
        + f64(0.25) + f64(0.25) + f64(0.8) + f64(0.9) + f64(1e-8) + f64(0.01) + boolb(True) + boolb(False)
        # state 0: step, exp_avg, exp_avg_sq, cond max_exp_avg_sq (absent: amsgrad off)
        + i64(2) + record(6, (2,), f32(st["exp_avg"])) + record(6, (2,), f32(st["exp_avg_sq"])) + boolb(False)
        # state 1 (lazy: TorchSharp's initial state; amsgrad on, so max_exp_avg_sq present as zeros)
        + i64(0) + record(6, (1,), bytes(4)) + record(6, (1,), bytes(4)) + boolb(True) + record(6, (1,), bytes(4))
    )
    assert to_bytes(codec.write_optimizer, codec.optimizer_record_from_torch(opt)) == expected
    buf = io.BytesIO()
    exportsd.save_adam(opt, buf)
    assert buf.getvalue() == expected
    rec = codec.read_optimizer(io.BytesIO(expected))
    assert rec.class_name == "Adam" and rec.param_counts is None
    assert rec.states[0]["step"] == 2 and rec.states[1]["max_exp_avg_sq"] is not None


def test_initial_lr_is_kept_not_lr_twice() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    p.grad = torch.ones(1)
    opt.step()
    sched.step()
    data = to_bytes(codec.write_optimizer, codec.optimizer_record_from_torch(opt))
    head = dotnet_str("SGD") + uleb(1) + uleb(1)
    assert data[len(head):len(head) + 16] == f64(0.1) + f64(0.05)
