"""The safetensors route's own damaged forms (``Route.damaged_forms``, the last copies of
``damaged_load``) against the safetensors package itself, in the PyTorch 2.6 root (the host's
Python has no safetensors): a file written by ``safetensors.torch.save`` loads, and each of its
damaged forms is refused with the error that names the broken rule. That is what makes a
TorchSharp side that loads them wrong (docs/findings/pybridge-safetensors-offsets-unchecked.md).

Skips when scripts/setup-pytorch26.sh has not made the root.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from harness.findings.repros import FindingsUnavailable, chroot_argv

TRAILING = "8 bytes after the last tensor's data"
INSIDE = r"""
import json, torch, safetensors, safetensors.torch as st
from harness.routes import ROUTES
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
model(torch.randn(5, 3))                                   # num_batches_tracked = 1, running stats moved
state = {k: v.contiguous() for k, v in model.state_dict().items()}
valid = st.save(state)
out = {"version": safetensors.__version__, "valid": sorted(st.load(valid))}
for what, data in ROUTES["safetensors"].damaged_forms(valid):
    try:
        st.load(data)
        out[what] = "loaded"
    except safetensors.SafetensorError as exc:
        out[what] = f"SafetensorError: {exc}"
print(json.dumps(out))
"""


def test_safetensors_refuses_every_damaged_form_of_the_route() -> None:
    try:
        argv = chroot_argv(["env", "PYTHONPATH=/mnt/x", "python3", "-c", INSIDE])
    except FindingsUnavailable as exc:
        pytest.skip(str(exc))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got.pop("valid") == ["0.bias", "0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean",
                                "1.running_var", "1.weight", "2.bias", "2.weight"]
    version = got.pop("version")
    overlap = next(k for k in got if k.startswith("two tensors' data_offsets overlapping ("))
    assert set(got) == {overlap, TRAILING}
    assert got[overlap].startswith("SafetensorError: Error while deserializing: InvalidOffset("), (version, got)
    assert got[TRAILING] == "SafetensorError: Error while deserializing: MetadataIncompleteBuffer", (version, got)
