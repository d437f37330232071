"""The codec's one exception hierarchy.

Every error the codec raises on bad input is a :class:`CodecError`. Each carries

* ``field``  -- what was being read or written, e.g. ``"tensor 'conv-1.weight' dtype code"``;
* ``offset`` -- the absolute byte offset in the file where that field starts (``None`` when
  the error is not about a place in a file, e.g. a refused PyTorch option on write);
* ``detail`` -- why, in words.

``str(err)`` reads ``"<field> at byte <offset>: <detail>"`` (or ``"<field>: <detail>"``).

Hierarchy::

    CodecError
    +-- TruncatedError                 file ended inside a field
    +-- InvalidLengthError             impossible length / count / ndim / dim / byte size
    |   +-- LengthExceedsFileError     ... more than the file has left (also a TruncatedError)
    +-- UnknownDtypeError              dtype code outside TorchSharp's table (read)
    +-- OverlongUlebError              uleb > 10 bytes, value >= 2**64, or non-canonical
    +-- InvalidUtf8Error               a string is not valid UTF-8 (read) / not encodable (write)
    +-- InvalidBoolError               a bool byte other than 0 or 1
    +-- TrailingBytesError             bytes after the last record
    +-- DuplicateKeyError              a state-dict key appears twice (read)
    +-- InvalidValueError              a Python value of the wrong type/range given to a writer
    +-- UnsupportedTensorError         a tensor the format cannot hold (layout, device 'meta', ...)
    |   +-- UnsupportedDtypeError      dtype with no TorchSharp code (write)
    |   +-- LossyTensorError           quantized tensor whose scale/zero point/axis would be lost
    +-- OptimizerFormatError           wrong class name, count mismatch, bad record
    +-- UnsupportedOptimizerError      LBFGS, unknown optimizer class
    +-- UnrepresentableOptionError     a PyTorch option/state TorchSharp cannot hold
"""
from __future__ import annotations

__all__ = [
    "CodecError",
    "DuplicateKeyError",
    "InvalidBoolError",
    "InvalidLengthError",
    "InvalidUtf8Error",
    "InvalidValueError",
    "LengthExceedsFileError",
    "LossyTensorError",
    "OptimizerFormatError",
    "OverlongUlebError",
    "TrailingBytesError",
    "TruncatedError",
    "UnknownDtypeError",
    "UnrepresentableOptionError",
    "UnsupportedDtypeError",
    "UnsupportedOptimizerError",
    "UnsupportedTensorError",
]


class CodecError(Exception):
    """Base of every codec error: ``field`` (str), ``offset`` (int | None), ``detail`` (str)."""

    def __init__(self, field: str, offset: int | None, detail: str) -> None:
        self.field = field
        self.offset = offset
        self.detail = detail
        where = f"{field} at byte {offset}" if offset is not None else field
        super().__init__(f"{where}: {detail}")

    def __reduce__(self) -> tuple[type[CodecError], tuple[str, int | None, str]]:
        return (type(self), (self.field, self.offset, self.detail))


class TruncatedError(CodecError):
    """The file ended inside ``field`` (which starts at ``offset``)."""


class InvalidLengthError(CodecError):
    """A length, count, ndim, dim or byte size that no valid file can hold."""


class LengthExceedsFileError(InvalidLengthError, TruncatedError):
    """A declared length/count needs more bytes than the file has left.

    Both an :class:`InvalidLengthError` (the length is impossible for this file) and a
    :class:`TruncatedError` (the file may simply have been cut): the codec checks this
    BEFORE allocating anything, so a corrupt length never allocates more than the file holds.
    """


class UnknownDtypeError(CodecError):
    """A tensor record's dtype code is not in TorchSharp's table."""


class OverlongUlebError(CodecError):
    """A uleb longer than 10 bytes, with a value >= 2**64, or not in its shortest form."""


class InvalidUtf8Error(CodecError):
    """A string field is not valid UTF-8 (read), or a key cannot be encoded as UTF-8 (write)."""


class InvalidBoolError(CodecError):
    """A bool byte other than 0 or 1 (.NET would read any non-zero byte as true; we refuse)."""


class TrailingBytesError(CodecError):
    """Bytes after the last record of the file."""


class DuplicateKeyError(CodecError):
    """A state-dict key appears twice in one file."""


class InvalidValueError(CodecError):
    """A writer was given a Python value of the wrong type or range (non-str key, ...)."""


class UnsupportedTensorError(CodecError):
    """A tensor the format cannot hold at all (sparse layout, 'meta' device, ...)."""


class UnsupportedDtypeError(UnsupportedTensorError):
    """A dtype with no TorchSharp code (complex32, quint4x2, quint2x4, ...)."""


class LossyTensorError(UnsupportedTensorError):
    """A quantized tensor whose scale / zero point / per-channel axis the file cannot carry."""


class OptimizerFormatError(CodecError):
    """An optimizer file or record that is inconsistent (class name, counts, fields)."""


class UnsupportedOptimizerError(CodecError):
    """An optimizer TorchSharp has no file form for (LBFGS) or does not know."""


class UnrepresentableOptionError(CodecError):
    """A PyTorch group option or state value whose value TorchSharp cannot hold."""
