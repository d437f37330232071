"""A rebuilt torchvision model (harness/cases/zoo.py ``_LAST``) is the fresh build, bit for bit,
and leaves torch's random state where a fresh build leaves it."""
from __future__ import annotations

import pytest
import torch

from harness.cases import zoo


def _fresh(spec: dict, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    model = zoo.build_torchvision(spec)
    return model.state_dict(), torch.get_rng_state(), torch.rand(3)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(x.dtype == y.dtype and x.shape == y.shape
                                      and x.numpy().tobytes() == y.numpy().tobytes()
                                      for x, y in zip(a.values(), b.values()))


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "googlenet", "inception_v3"])
def test_a_rebuild_is_the_fresh_build(arch: str) -> None:
    spec = {"type": "TorchVision", "arch": arch, "num_classes": 10}
    zoo._LAST.clear()
    state, rng, drawn = _fresh(spec, 7)
    assert zoo._LAST, "the fresh build is kept"
    first = {k: v.clone() for k, v in state.items()}
    state[next(iter(state))].add_(1.0)  # what a cell does to its model must not reach the kept copy
    again, rng2, drawn2 = _fresh(spec, 7)  # from the kept copy
    assert _same(first, again) and torch.equal(rng, rng2) and torch.equal(drawn, drawn2)
    zoo._LAST.clear()
    fresh, rng3, _ = _fresh(spec, 7)  # from scratch again
    assert _same(first, fresh) and torch.equal(rng, rng3)


def test_another_seed_or_spec_builds_afresh() -> None:
    spec = {"type": "TorchVision", "arch": "resnet18", "num_classes": 10}
    zoo._LAST.clear()
    a, _, _ = _fresh(spec, 1)
    b, _, _ = _fresh(spec, 2)
    assert not _same(a, b)
    c, _, _ = _fresh({**spec, "num_classes": 11}, 2)
    assert c["fc.weight"].shape[0] == 11
    zoo._LAST.clear()
    d, _, _ = _fresh(spec, 2)
    assert _same(b, d)
