"""The codec's one exception hierarchy.

Every error raised for bad input is a :class:`CodecError` naming the field it was reading
and the absolute byte offset where that field starts, e.g.::

    UnknownDtypeError: tensor 'conv-1.weight' dtype code at byte 17: unknown dtype code 4711
"""
from __future__ import annotations


class CodecError(Exception):
    """Base of everything the codec raises for input it cannot accept."""

    def __init__(self, field: str, offset: int | None, message: str):
        self.field = field
        self.offset = offset
        self.detail = message
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{field}{where}: {message}")


# --- reading -----------------------------------------------------------------------------
class TruncatedError(CodecError):
    """The file ended inside a field."""


class UnknownDtypeError(CodecError):
    """A dtype code outside FORMAT.md's table (e.g. 27 uint16, 23-26 float8, 4711)."""


class InvalidLengthError(CodecError):
    """A count, length, rank or size that the rest of the file cannot hold."""


class OverlongUlebError(CodecError):
    """A LEB128 integer longer than 10 bytes, above 2**64-1, or with redundant bytes."""


class InvalidUtf8Error(CodecError):
    """A key or name that is not valid UTF-8."""


class InvalidBoolError(CodecError):
    """A bool byte other than 0 or 1 (.NET would read it as true; we refuse)."""


class TrailingBytesError(CodecError):
    """Bytes after the last record."""


class DuplicateKeyError(CodecError):
    """The same key twice in one state dict file."""


class OptimizerFormatError(CodecError):
    """An optimizer file or record that does not fit its class's layout."""


# --- writing / converting --------------------------------------------------------------------
class UnsupportedDtypeError(CodecError):
    """A tensor dtype TorchSharp has no code for: never written with a made-up code."""


class LossyTensorError(CodecError):
    """A tensor the format cannot carry without losing information (quantization params)."""


class UnsupportedOptimizerError(CodecError):
    """An optimizer with no TorchSharp file form (LBFGS) or unknown to the codec."""


class UnrepresentableOptionError(CodecError):
    """A PyTorch param-group option whose value TorchSharp cannot hold or reproduce."""
