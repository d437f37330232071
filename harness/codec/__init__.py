"""TorchSharp ``.dat`` codec: module state, optimizer state and single tensors, both ways.

Self-contained (imports nothing else of the harness: stdlib, numpy, torch only). Byte
layouts: docs/format.md; policies: README.md beside this file. ``source``/``dest`` are a path
(written atomically) or a binary file object (read/written as given).

Ours:      read_tensor(source, *, mmap=False) / write_tensor(dest, tensor)
           read_state_dict(source, *, mmap=False) / write_state_dict(dest, state_dict)
           (mmap=True, paths only: tensors view the copy-on-write mapped file; README.md)
           hugepage_loads() -> str: which memory large records are read into, and why
           read_optimizer(source) / write_optimizer(dest, record)
           optimizer_record_from_torch(optimizer)
           optimizer_record_from_state_dict(class_name, state_dict, param_shapes=None)
           optimizer_record_to_state_dict(record, optimizer=None)
           save_optimizer(optimizer, dest); OPTIMIZERS (TorchSharp name -> table row)
Upstream's names (drop-in for TorchSharp's exportsd.py / importsd.py):
           save_state_dict(state_dict, f), load_state_dict(f), save_sgd ... save_adagrad(optim, f)
           (upstream's ``write_tensor(t, file_name)`` lives in ``harness.codec.exportsd``)
"""
from harness.codec._hugepages import describe as hugepage_loads
from harness.codec.errors import (
    CodecError,
    DuplicateKeyError,
    InvalidBoolError,
    InvalidLengthError,
    InvalidUtf8Error,
    InvalidValueError,
    LengthExceedsFileError,
    LossyTensorError,
    OptimizerFormatError,
    OverlongUlebError,
    TrailingBytesError,
    TruncatedError,
    UnknownDtypeError,
    UnrepresentableOptionError,
    UnsupportedDtypeError,
    UnsupportedOptimizerError,
    UnsupportedTensorError,
)
from harness.codec.exportsd import (
    save_adadelta,
    save_adagrad,
    save_adam,
    save_adamax,
    save_adamw,
    save_asgd,
    save_nadam,
    save_radam,
    save_rmsprop,
    save_rprop,
    save_sgd,
    save_state_dict,
)
from harness.codec.importsd import load_state_dict
from harness.codec.optim import read_optimizer, write_optimizer
from harness.codec.optim_layouts import LAYOUTS as _LAYOUTS
from harness.codec.optim_layouts import OptimizerRecord
from harness.codec.optim_torch import (
    optimizer_record_from_state_dict,
    optimizer_record_from_torch,
    optimizer_record_to_state_dict,
    save_optimizer,
)
from harness.codec.state_dict import read_state_dict, write_state_dict
from harness.codec.tensor import read_tensor, write_tensor

__version__ = "0.2.0"
#: TorchSharp class name -> its table row (PyTorch name, options, state fields, policies).
OPTIMIZERS = {layout.ts_name: layout for layout in _LAYOUTS}

__all__ = [
    # ours
    "OPTIMIZERS", "OptimizerRecord", "hugepage_loads", "optimizer_record_from_state_dict",
    "optimizer_record_from_torch",
    "optimizer_record_to_state_dict", "read_optimizer", "read_state_dict", "read_tensor", "save_optimizer",
    "write_optimizer", "write_state_dict", "write_tensor",
    # upstream's names
    "load_state_dict", "save_adadelta", "save_adagrad", "save_adam", "save_adamax", "save_adamw", "save_asgd",
    "save_nadam", "save_radam", "save_rmsprop", "save_rprop", "save_sgd", "save_state_dict",
    # errors
    "CodecError", "DuplicateKeyError", "InvalidBoolError", "InvalidLengthError", "InvalidUtf8Error",
    "InvalidValueError", "LengthExceedsFileError", "LossyTensorError", "OptimizerFormatError", "OverlongUlebError",
    "TrailingBytesError", "TruncatedError", "UnknownDtypeError", "UnrepresentableOptionError",
    "UnsupportedDtypeError", "UnsupportedOptimizerError", "UnsupportedTensorError",
]
