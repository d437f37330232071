"""Drop-in for TorchSharp's ``exportsd.py``: the same names and signatures, without its defects.

``save_state_dict(model.to("cpu").state_dict(), f)``; ``save_adam(optimizer, f)`` (and the
other ten); ``write_tensor(t, file_name)``. ``f`` is an open binary file (a path works too).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import IO, BinaryIO

import torch

from harness.codec import optim_torch as _optim
from harness.codec import state_dict as _sd
from harness.codec import tensor as _tensor
from harness.codec._io import Dest
from harness.codec.errors import OptimizerFormatError


def save_state_dict(state_dict: dict[str, torch.Tensor], f: BinaryIO | IO[bytes] | Dest) -> None:
    """Write a module state dict (upstream's name for :func:`harness.codec.write_state_dict`)."""
    _sd.write_state_dict(f, state_dict)


def write_tensor(t: torch.Tensor, file_name: Dest) -> None:
    """Write one bare tensor record, like ``Tensor.Save`` (upstream's argument order)."""
    _tensor.write_tensor(file_name, t)


def _saver(torch_name: str) -> Callable[[torch.optim.Optimizer, Dest], None]:
    def save(optim: torch.optim.Optimizer, f: Dest) -> None:
        actual = _optim._torch_name(optim)
        if actual != torch_name:
            raise OptimizerFormatError("optimizer", None, f"save_{torch_name.lower()} was given a "
                                       f"{type(optim).__name__} optimizer")
        _optim.save_optimizer(optim, f)
    save.__name__ = f"save_{torch_name.lower()}"
    save.__doc__ = f"Write a live torch.optim.{torch_name}'s state in TorchSharp's form."
    return save


save_sgd = _saver("SGD")
save_asgd = _saver("ASGD")
save_rprop = _saver("Rprop")
save_rmsprop = _saver("RMSprop")
save_adam = _saver("Adam")
save_adamw = _saver("AdamW")
save_nadam = _saver("NAdam")
save_radam = _saver("RAdam")
save_adamax = _saver("Adamax")
save_adadelta = _saver("Adadelta")
save_adagrad = _saver("Adagrad")
