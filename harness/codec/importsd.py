"""Drop-in for TorchSharp's ``importsd.py``: ``load_state_dict(f)``, strict and typed."""
from __future__ import annotations

import torch

from harness.codec._io import Source
from harness.codec.state_dict import read_state_dict


def load_state_dict(f: Source) -> dict[str, torch.Tensor]:
    """Read a module state file (upstream's name for :func:`harness.codec.read_state_dict`);
    tensors are writable and own their memory."""
    return read_state_dict(f)
