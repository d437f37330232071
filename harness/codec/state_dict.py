"""Module state dicts (``Module.save`` / ``Module.load``): ``uleb count, count x (str key, tensor)``."""
from __future__ import annotations

from collections.abc import Mapping

import torch

from harness.codec._io import Dest, Reader, Source, open_dest, open_source, string_bytes, uleb_bytes
from harness.codec.errors import DuplicateKeyError, UnsupportedDtypeError
from harness.codec.tensor import read_tensor_record, write_tensor_record

MIN_ENTRY_BYTES = 3  # empty key (1) + dtype code (1) + ndim (1)


def read_state_dict(source: Source) -> dict[str, torch.Tensor]:
    """Read a module state file, keeping the file's entry order. Inverse of :func:`write_state_dict`."""
    with open_source(source) as f:
        r = Reader(f)
        count = r.uleb("entry count")
        r.check_fits(count * MIN_ENTRY_BYTES, "entry count", 0, f"{count} entries")
        out: dict[str, torch.Tensor] = {}
        for i in range(count):
            key_at = r.offset
            key = r.string(f"entry {i} key")
            if key in out:
                raise DuplicateKeyError(f"entry {i} key", key_at, f"key {key!r} appears twice")
            out[key] = read_tensor_record(r, f"tensor {key!r}")
        r.expect_end("end of state dict")
        return out


def write_state_dict(dest: Dest, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Write a module state file in the mapping's order. Inverse of :func:`read_state_dict`."""
    items = list(state_dict.items())
    for key, _ in items:
        if not isinstance(key, str):
            raise UnsupportedDtypeError("state dict key", None, f"keys must be str, got {key!r}")
    with open_dest(dest) as f:
        f.write(uleb_bytes(len(items)))
        for key, tensor in items:
            f.write(string_bytes(key))
            write_tensor_record(f, tensor, f"tensor {key!r}")


