"""TorchSharp's dtype codes (libtorch's c10 ScalarType numbers), docs/format.md section 2.1."""
from __future__ import annotations

import torch

CODE_TO_DTYPE: dict[int, torch.dtype] = {
    0: torch.uint8, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.int64,
    5: torch.float16, 6: torch.float32, 7: torch.float64, 9: torch.complex64,
    10: torch.complex128, 11: torch.bool, 12: torch.qint8, 13: torch.quint8,
    14: torch.qint32, 15: torch.bfloat16,
}
DTYPE_TO_CODE: dict[torch.dtype, int] = {v: k for k, v in CODE_TO_DTYPE.items()}

# Codes libtorch has but TorchSharp names no dtype for: said by name in errors.
KNOWN_UNNAMED = {8: "complex32", 16: "quint4x2", 17: "quint2x4", 18: "bits1x8", 19: "bits2x4",
                 20: "bits4x2", 21: "bits8", 22: "bits16", 23: "float8_e5m2", 24: "float8_e4m3fn",
                 25: "float8_e5m2fnuz", 26: "float8_e4m3fnuz", 27: "uint16", 28: "uint32", 29: "uint64"}

# Element storage: quantized tensors are stored as their integer representation;
# float16/bfloat16 are moved as int16 because numpy has no bfloat16.
QUANTIZED_REPR = {torch.qint8: torch.int8, torch.quint8: torch.uint8, torch.qint32: torch.int32}
BYTES_VIEW = {torch.bfloat16: torch.int16, torch.float16: torch.int16}


def itemsize(dtype: torch.dtype) -> int:
    repr_dtype = QUANTIZED_REPR.get(dtype, dtype)
    return torch.empty((), dtype=repr_dtype).element_size()


ITEMSIZE: dict[int, int] = {code: itemsize(dt) for code, dt in CODE_TO_DTYPE.items()}
