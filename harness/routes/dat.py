"""The ``dat`` route: the codec under test's ``.dat`` files (``--codec``) <-> TorchSharp's own
``Module.load``/``save``, the optimizer's ``load_state_dict``/``save_state_dict`` and
``Tensor.Load``/``Save`` (docs/format.md). The road the harness was built for."""
from __future__ import annotations

from typing import Any

import torch

from harness import codec as trusted_codec
from harness.drivers.scratch import write_scratch_tensor
from harness.routes.base import Route


class DatRoute(Route):
    def write_tensor(self, path: Any, tensor: torch.Tensor) -> None:
        """The harness's own single-tensor ``.dat`` (Tensor.Save's form, docs/format.md)."""
        write_scratch_tensor(path, tensor)


def write_state_dict(path: Any, state: dict[str, torch.Tensor]) -> None:
    """The harness's own ``.dat`` writer (never the codec under test)."""
    trusted_codec.write_state_dict(path, state)


DAT = DatRoute(
    name="dat", suffix=".dat",
    title="codec's .dat <-> TorchSharp Module.load/save, optimizer state-dict files, Tensor.Load/Save",
    carries=frozenset({"module", "optimizer", "tensor", "codec"}), byte_stable=True,
    python_form=None, write_state_dict=write_state_dict)
