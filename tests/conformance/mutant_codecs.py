"""Mutant codecs (deliberately broken FAKES of a codec release) for the red-cell tests.

Each wraps our codec and damages exactly one thing, so a test can show the matching cell
turns red against real TorchSharp. They know a little of the byte layout (docs/format.md) only
to place their one fault.
"""
from __future__ import annotations

import io
import types
from typing import Any, BinaryIO

import torch

from harness import codec as ours


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _ours(state_dict: dict[str, torch.Tensor]) -> bytearray:
    buf = io.BytesIO()
    ours.save_state_dict(state_dict, buf)
    return bytearray(buf.getvalue())


def _codec(name: str, **overrides: Any) -> types.ModuleType:
    module = types.ModuleType(f"mutant_{name}")
    module.save_state_dict = ours.save_state_dict  # type: ignore[attr-defined]
    module.load_state_dict = ours.load_state_dict  # type: ignore[attr-defined]
    module.save_adam = ours.save_adam  # type: ignore[attr-defined]
    module.save_adamw = ours.save_adamw  # type: ignore[attr-defined]
    module.save_sgd = ours.save_sgd  # type: ignore[attr-defined]
    for k, v in overrides.items():
        setattr(module, k, v)
    return module


def flipped_bit() -> types.ModuleType:
    """Flips the lowest bit of the file's last byte: the last tensor's last element."""
    def save_state_dict(state_dict: dict[str, torch.Tensor], f: BinaryIO) -> None:
        data = _ours(state_dict)
        data[-1] ^= 0x01
        f.write(data)
    return _codec("flipped_bit", save_state_dict=save_state_dict)


def renamed_key(old: str, new: str) -> types.ModuleType:
    def save_state_dict(state_dict: dict[str, torch.Tensor], f: BinaryIO) -> None:
        ours.save_state_dict({(new if k == old else k): v for k, v in state_dict.items()}, f)
    return _codec("renamed_key", save_state_dict=save_state_dict)


def wrong_dtype_code(code: int) -> types.ModuleType:
    """Writes ``code`` in place of the first tensor's dtype code (same element size)."""
    def save_state_dict(state_dict: dict[str, torch.Tensor], f: BinaryIO) -> None:
        data = _ours(state_dict)
        _, pos = _uleb(data, 0)           # entry count
        key_len, pos = _uleb(data, pos)   # first key's byte length
        data[pos + key_len] = code        # first tensor record's dtype code (one-byte uleb)
        f.write(data)
    return _codec("wrong_dtype_code", save_state_dict=save_state_dict)


def wrong_adam_beta1(delta: float = 0.01) -> types.ModuleType:
    """Writes Adam's first group with beta1 + delta."""
    def save_adam(optimizer: torch.optim.Optimizer, f: BinaryIO) -> None:
        group = optimizer.param_groups[0]
        saved = group["betas"]
        group["betas"] = (saved[0] + delta, saved[1])
        try:
            ours.save_adam(optimizer, f)
        finally:
            group["betas"] = saved
    return _codec("wrong_adam_beta1", save_adam=save_adam)


def _record_mutant(name: str, torch_name: str, mutate: Any) -> types.ModuleType:
    def save(optimizer: torch.optim.Optimizer, f: BinaryIO) -> None:
        record = ours.optimizer_record_from_torch(optimizer)
        mutate(record)
        ours.write_optimizer(f, record)
    return _codec(name, **{f"save_{torch_name.lower()}": save})


def swapped_adam_moments() -> types.ModuleType:
    """Writes exp_avg where exp_avg_sq belongs and back: same shapes, so it round-trips bitwise."""
    def mutate(record: Any) -> None:
        for s in record.states:
            s["exp_avg"], s["exp_avg_sq"] = s["exp_avg_sq"], s["exp_avg"]
    return _record_mutant("swapped_adam_moments", "Adam", mutate)


def lr_as_initial_lr() -> types.ModuleType:
    """Upstream's defect: writes lr where initial_lr belongs (initial_lr is lost)."""
    def mutate(record: Any) -> None:
        for g in record.groups:
            g["initial_lr"] = g["lr"]
    return _record_mutant("lr_as_initial_lr", "SGD", mutate)


def scaled_tensor(key: str, factor: float) -> types.ModuleType:
    """Writes one tensor multiplied by ``factor`` (a wrong value that still loads everywhere)."""
    def save_state_dict(state_dict: dict[str, torch.Tensor], f: BinaryIO) -> None:
        ours.save_state_dict({k: (v * factor).to(v.dtype) if k == key else v for k, v in state_dict.items()}, f)
    return _codec("scaled_tensor", save_state_dict=save_state_dict)


def readonly_views() -> types.ModuleType:
    """A reader in upstream's style: each tensor is ``numpy.frombuffer`` over the immutable
    bytes ``f.read(n)`` returned. Every value is right; writing into them is undefined."""
    import numpy as np

    codes = {0: np.uint8, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.int64, 5: np.float16, 6: np.float32,
             7: np.float64, 11: np.bool_}

    def uleb(f: BinaryIO) -> int:
        value = shift = 0
        while True:
            b = f.read(1)[0]
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    def load_state_dict(f: BinaryIO) -> dict[str, torch.Tensor]:
        out = {}
        for _ in range(uleb(f)):
            key = f.read(uleb(f)).decode("utf-8")
            dtype = np.dtype(codes[uleb(f)])
            shape = tuple(uleb(f) for _ in range(uleb(f)))
            count = int(np.prod(shape)) if shape else 1
            out[key] = torch.from_numpy(np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype).reshape(shape))
        return out
    return _codec("readonly_views", load_state_dict=load_state_dict)


def unclear_errors() -> types.ModuleType:
    """Reads with ours, but a damaged file surfaces as an IndexError with no position (as a
    reader that indexes past the end of what it read would)."""
    def load_state_dict(f: BinaryIO) -> dict[str, torch.Tensor]:
        try:
            return ours.load_state_dict(f)
        except Exception as exc:
            raise IndexError("index out of range") from exc
    return _codec("unclear_errors", load_state_dict=load_state_dict)
