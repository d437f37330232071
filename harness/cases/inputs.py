"""Deterministic inputs: model inputs for the functional check and edge-value tensors.

Values are made by the host's PyTorch only; the other side receives them as files.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from harness.cases import TensorCase
from harness.cases.torch_build import DTYPES

_F32_BITS = [0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC00001, 0xFFBFFFFF,
             0x7F800001, 0x00000001, 0x807FFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBFC00000]
_F64_BITS = [0x0, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000,
             0x7FF8000000000001, 0xFFF7FFFFFFFFFFFF, 0x0000000000000001, 0x800FFFFFFFFFFFFF,
             0x7FEFFFFFFFFFFFFF, 0x3FF0000000000000, 0xBFF8000000000000]
_F16_BITS = [0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7E01, 0xFDFF, 0x0001, 0x83FF, 0x7BFF, 0x3C00, 0xBE00]
_BF16_BITS = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x7FC1, 0xFFBF, 0x0001, 0x807F, 0x7F7F, 0x3F80, 0xBFC0]


def _cycle_tensor(values: Sequence[int] | Sequence[bool], n: int, dtype: torch.dtype) -> torch.Tensor:
    """``values`` repeated to ``n`` elements, built by tensor repetition (a 2 GiB tensor
    in a second, not a Python list of 2**31 ints)."""
    block = torch.tensor(list(values), dtype=dtype)
    if n > 1 << 16:  # a block of whole periods, broadcast into the output in one pass
        block = block.repeat((1 << 16) // len(values))
    out = torch.empty(n, dtype=dtype)
    whole = n - n % len(block)
    out[:whole].view(-1, len(block)).copy_(block)
    out[whole:] = block[:n - whole]
    return out


def _bits_tensor(bits: Sequence[int], int_dtype: torch.dtype, dtype: torch.dtype, n: int) -> torch.Tensor:
    width = 8 * torch.empty((), dtype=int_dtype).element_size()
    signed = [b - (1 << width) if b >= 1 << (width - 1) else b for b in bits]
    return _cycle_tensor(signed, n, int_dtype).view(dtype)


def edge_values(dtype: torch.dtype, n: int) -> torch.Tensor:
    """``n`` values of ``dtype`` cycling through its edge cases, bit patterns exact."""
    if dtype == torch.float32:
        return _bits_tensor(_F32_BITS, torch.int32, dtype, n)
    if dtype == torch.float64:
        return _bits_tensor(_F64_BITS, torch.int64, dtype, n)
    if dtype == torch.float16:
        return _bits_tensor(_F16_BITS, torch.int16, dtype, n)
    if dtype == torch.bfloat16:
        return _bits_tensor(_BF16_BITS, torch.int16, dtype, n)
    if dtype in (torch.complex64, torch.complex128):
        real = edge_values(torch.float32 if dtype == torch.complex64 else torch.float64, 2 * n)
        return torch.view_as_complex(real.reshape(n, 2).contiguous())
    if dtype == torch.bool:
        return _cycle_tensor([True, False, False, True, True], n, torch.bool)
    if dtype in (torch.qint8, torch.quint8, torch.qint32):
        base = {torch.qint8: torch.int8, torch.quint8: torch.uint8, torch.qint32: torch.int32}[dtype]
        return torch._make_per_tensor_quantized_tensor(edge_values(base, n), 1.0, 0)
    info = torch.iinfo(dtype)
    return _cycle_tensor([0, 1, -1 if info.min < 0 else 2, info.min, info.max, info.max - 1, 42], n, dtype)


def make_tensor(case: TensorCase) -> torch.Tensor:
    dtype = DTYPES[case.dtype]
    if case.layout == "transposed":  # a non-contiguous view: the writer must emit C order
        rows, cols = case.shape
        return edge_values(dtype, rows * cols).reshape(cols, rows).t()
    n = math.prod(case.shape)
    return edge_values(dtype, n).reshape(case.shape)


def fill_with_edge_values(model: torch.nn.Module, seed: int) -> None:
    """Overwrite every state tensor with edge values of its dtype, rotated by ``seed`` so
    different tensors start at different edge cases."""
    with torch.no_grad():
        for i, t in enumerate(model.state_dict().values()):
            n = t.numel()
            values = edge_values(t.dtype, n + seed + i)[seed + i:] if n else edge_values(t.dtype, 0)
            t.copy_(values.reshape(t.shape))
