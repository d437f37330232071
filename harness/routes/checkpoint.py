"""Checkpoint folders in the form Hugging Face's ``save_pretrained`` writes them, made from a
state dict with a route's Python half: one file (``model.safetensors`` / ``pytorch_model.bin``)
or shards with their index (``model.safetensors.index.json``: ``{"metadata": {"total_size":
bytes}, "weight_map": {name: shard file}}``). TorchSharp.PyBridge's ``load_checkpoint`` reads
either. Nothing is downloaded: the folder is made from the cell's own state."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from harness.routes.base import FileForm


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def split_shards(state: dict[str, torch.Tensor], shards: int) -> list[dict[str, torch.Tensor]]:
    """``state`` in order, cut into ``shards`` parts of about equal bytes (none empty while
    there are enough entries), as save_pretrained's max_shard_size does."""
    total = sum(_nbytes(t) for t in state.values()) or 1
    parts: list[dict[str, torch.Tensor]] = [{} for _ in range(max(1, min(shards, len(state))))]
    seen = 0
    for i, (name, t) in enumerate(state.items()):
        left = len(state) - i
        k = min(len(parts) - 1, seen * len(parts) // total)
        k = max(k, len(parts) - left)  # leave at least one entry for each later shard
        parts[k][name] = t
        seen += _nbytes(t)
    return [p for p in parts if p]


def write_checkpoint(form: FileForm, names: tuple[str, str, str], state: dict[str, torch.Tensor],
                     folder: Path, shards: int = 1) -> list[str]:
    """Write ``state`` into ``folder`` as one file (``shards`` 1) or shards and their index;
    return the files written (the index last)."""
    folder.mkdir(parents=True, exist_ok=True)
    single, index, pattern = names
    if shards <= 1:
        with open(folder / single, "wb") as f:
            form.save_state_dict(state, f)
        return [single]
    parts = split_shards(state, shards)
    files = [pattern.format(i=i + 1, n=len(parts)) for i in range(len(parts))]
    weight_map = {}
    for part, name in zip(parts, files):
        with open(folder / name, "wb") as f:
            form.save_state_dict(part, f)
        weight_map.update({k: name for k in part})
    (folder / index).write_text(json.dumps({"metadata": {"total_size": sum(_nbytes(t) for t in state.values())},
                                            "weight_map": weight_map}, indent=2) + "\n", encoding="utf-8")
    return [*files, index]
