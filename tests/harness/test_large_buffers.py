"""The harness's own handling of large buffers (issue 16.2): no copies, no fresh memory per
chunk, scratch files without fsync, and the allocator the matrix run starts under."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy
import pytest
import torch

from harness.running import allocator
from harness import codec as trusted_codec
from harness.verdicts.compare import _CHUNK, same_bytes
from harness.verdicts.digest import TensorDigest, tensor_buffer, tensor_bytes
from harness.drivers.scratch import write_scratch_tensor


def test_the_digest_hashes_pytorchs_own_memory_without_a_copy():
    t = torch.arange(1 << 20, dtype=torch.float32)
    view = tensor_buffer(t)
    assert numpy.shares_memory(numpy.asarray(view), t.numpy())
    assert TensorDigest.of(t).sha256 == hashlib.sha256(t.numpy().tobytes()).hexdigest()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.complex64, torch.bool, torch.int8])
@pytest.mark.parametrize("shape", [(), (0, 3), (4, 6)])
def test_the_buffer_is_the_c_order_bytes_for_every_shape(dtype, shape):
    t = torch.ones(shape).to(dtype)
    assert tensor_bytes(t) == bytes(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    transposed = torch.arange(24).reshape(4, 6).t().to(dtype)  # a view: digested as C order
    assert tensor_bytes(transposed) == tensor_bytes(transposed.contiguous())


@pytest.mark.parametrize("size", [0, 1, _CHUNK - 1, _CHUNK, _CHUNK + 1, 2 * _CHUNK + 3])
def test_same_bytes_finds_a_change_in_the_first_and_the_last_byte(tmp_path, size):
    data = os.urandom(size)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data)
    assert same_bytes(tmp_path / "a", tmp_path / "b")
    for at in {0, size // 2, size - 1} if size else set():
        changed = bytearray(data)
        changed[at] ^= 0x01
        (tmp_path / "b").write_bytes(changed)
        assert not same_bytes(tmp_path / "a", tmp_path / "b"), at
    (tmp_path / "b").write_bytes(data + b"\0")
    assert not same_bytes(tmp_path / "a", tmp_path / "b")


def test_a_scratch_file_is_the_codecs_bytes_written_in_place(tmp_path):
    t = torch.tensor([1.0, -0.0, float("nan")])
    write_scratch_tensor(tmp_path / "s.dat", t)
    trusted_codec.write_tensor(tmp_path / "c.dat", t)
    assert (tmp_path / "s.dat").read_bytes() == (tmp_path / "c.dat").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.dat", "s.dat"]  # no temporary file beside them


def test_the_retaining_environment_preloads_jemalloc_first_and_keeps_other_preloads():
    env = allocator.retaining_env({"LD_PRELOAD": "/x/libother.so", "PATH": "/bin"})
    assert env["LD_PRELOAD"].split(":") == [str(allocator.JEMALLOC), "/x/libother.so"]
    assert env["MALLOC_CONF"] == allocator.RETAIN_CONF and env["PATH"] == "/bin"
    assert allocator.in_force(env) and not allocator.in_force({"PATH": "/bin"})
    assert allocator.retaining_env(env)["LD_PRELOAD"] == env["LD_PRELOAD"]  # idempotent
    assert not allocator.wanted({"HARNESS_ALLOCATOR": "system"})
    assert allocator.describe(env).startswith("jemalloc") and allocator.describe({}).startswith("system")


def test_a_run_starts_again_under_jemalloc_once(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator.os, "execve", lambda exe, argv, env: calls.append((exe, argv, env)))
    monkeypatch.setattr(allocator, "JEMALLOC", allocator.Path(sys.executable))  # a file that exists
    for k in ("LD_PRELOAD", "MALLOC_CONF", "HARNESS_ALLOCATOR"):
        monkeypatch.delenv(k, raising=False)
    allocator.reexec_with_jemalloc(["run", "--quick"])
    (exe, argv, env), = calls
    assert argv == [sys.executable, "-m", "harness", "run", "--quick"] and allocator.in_force(env)
    monkeypatch.setattr(allocator.os, "environ", env)
    allocator.reexec_with_jemalloc(["run", "--quick"])  # already in force: nothing to do
    monkeypatch.setattr(allocator.os, "environ", {"HARNESS_ALLOCATOR": "system"})
    allocator.reexec_with_jemalloc(["run"])  # switched off
    assert len(calls) == 1


@pytest.mark.skipif(not allocator.JEMALLOC.exists(), reason="libjemalloc2 not installed (scripts/setup.sh installs it)")
def test_a_child_process_loads_jemalloc_cleanly():
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF", "HARNESS_ALLOCATOR")}
    child = subprocess.run([sys.executable, "-c", "import torch; print(torch.ones(1 << 20).sum().item())"],
                           capture_output=True, text=True, env=allocator.retaining_env(env), check=True)
    assert child.stdout.strip() == "1048576.0" and "preload" not in child.stderr
    maps = subprocess.run(["sh", "-c", "cat /proc/self/maps"], capture_output=True, text=True,
                          env=allocator.retaining_env(env), check=True).stdout
    assert allocator.JEMALLOC.name in maps
