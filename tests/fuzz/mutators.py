"""Mutations of valid .dat files, shared by the fuzz test and benchmarks/fuzz_codec.py.

Each mutator takes the valid bytes and a ``random.Random`` and returns hostile bytes:
truncations, bit flips, byte overwrites, huge or never-ending LEB128 integers, unknown
dtype codes, trailing bytes, deleted ranges.
"""
from __future__ import annotations

import io
import random
from collections.abc import Callable

import torch

from harness import codec


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        out.append(b | (0x80 if value else 0))
        if not value:
            return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def flip_bit(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    i = rng.randrange(len(b))
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def overwrite(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    i = rng.randrange(len(b))
    b[i] = rng.choice([0x00, 0xFF, 0x80, 0x7F, 0x01])
    return bytes(b)


def huge_uleb(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    value = rng.choice([2**31, 2**32 + 1, 2**40, 2**63, 2**64 - 1, 2**64, 2**70])
    return data[:i] + _uleb(value) + data[i + 1:]


def overlong_uleb(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + b"\x80" * rng.choice([10, 11, 64, 4096]) + data[i:]


def unknown_code(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + _uleb(rng.choice([8, 16, 23, 24, 25, 26, 27, 28, 29, 4711])) + data[i + 1:]


def trailing(data: bytes, rng: random.Random) -> bytes:
    return data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))


def delete_range(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randrange(1, 16))
    return data[:i] + data[j:]


MUTATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    f.__name__: f for f in (truncate, flip_bit, overwrite, huge_uleb, overlong_uleb, unknown_code,
                            trailing, delete_range)
}

READERS: dict[str, Callable[[io.BytesIO], object]] = {
    "state_dict": codec.read_state_dict, "tensor": codec.read_tensor, "optimizer": codec.read_optimizer,
}


def seed_files() -> dict[str, bytes]:
    """Valid files of every form: a mixed state dict, a tensor file, Adam and SGD state."""
    torch.manual_seed(0)
    sd = {"w": torch.randn(3, 4), "wé-ü": torch.tensor(True), "bf": torch.randn(5).bfloat16(),
          "c": torch.randn(2, dtype=torch.complex64), "e": torch.zeros(0, 3), "n": torch.tensor(7)}
    out: dict[str, bytes] = {}
    buf = io.BytesIO()
    codec.write_state_dict(buf, sd)
    out["state_dict"] = buf.getvalue()
    buf = io.BytesIO()
    codec.write_tensor(buf, torch.arange(6, dtype=torch.float64).reshape(2, 3))
    out["tensor"] = buf.getvalue()
    for name, cls, kw in (("adam", torch.optim.Adam, {"amsgrad": True}), ("sgd", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9})):
        model = torch.nn.Linear(3, 2)
        opt = cls(model.parameters(), **kw)
        model(torch.randn(4, 3)).sum().backward()
        opt.step()
        buf = io.BytesIO()
        codec.save_optimizer(opt, buf)
        out[f"optimizer_{name}"] = buf.getvalue()
    return out


def read_any(data: bytes) -> dict[str, str]:
    """Feed ``data`` to every reader. Returns reader -> 'ok' or the typed error's class name;
    anything other than a CodecError propagates (that is the bug the fuzzers look for)."""
    results = {}
    for name, reader in READERS.items():
        try:
            reader(io.BytesIO(data))
            results[name] = "ok"
        except codec.CodecError as exc:
            results[name] = f"{type(exc).__name__}:{exc.field.split(' ')[0]}"
    return results
