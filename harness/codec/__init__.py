"""TorchSharp ``.dat`` codec: module state, optimizer state and single tensors, both ways.

Self-contained (imports nothing else of the harness). Byte layouts: FORMAT.md; policies:
README.md beside this file. Paths are written atomically; file objects as given.

Ours:      read_tensor / write_tensor, read_state_dict / write_state_dict,
           read_optimizer / write_optimizer, optimizer_record_from_torch,
           optimizer_record_from_state_dict / optimizer_record_to_state_dict, save_optimizer
Upstream's names (drop-in for TorchSharp's exportsd.py / importsd.py):
           save_state_dict(state_dict, f), load_state_dict(f), save_sgd ... save_adagrad(optim, f)
           (``exportsd.write_tensor(t, file_name)`` lives in the ``exportsd`` module)
"""
from harness.codec.errors import (
    CodecError,
    DuplicateKeyError,
    InvalidBoolError,
    InvalidLengthError,
    InvalidUtf8Error,
    LossyTensorError,
    OptimizerFormatError,
    OverlongUlebError,
    TrailingBytesError,
    TruncatedError,
    UnknownDtypeError,
    UnrepresentableOptionError,
    UnsupportedDtypeError,
    UnsupportedOptimizerError,
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
from harness.codec.optim import (
    LAYOUTS,
    OptimizerRecord,
    optimizer_record_from_state_dict,
    optimizer_record_from_torch,
    optimizer_record_to_state_dict,
    read_optimizer,
    save_optimizer,
    write_optimizer,
)
from harness.codec.state_dict import read_state_dict, write_state_dict
from harness.codec.tensor import read_tensor, write_tensor

__version__ = "0.1.0"
OPTIMIZERS = {layout.ts_name: layout for layout in LAYOUTS}

__all__ = [
    "LAYOUTS", "OPTIMIZERS", "CodecError", "DuplicateKeyError", "InvalidBoolError", "InvalidLengthError",
    "InvalidUtf8Error", "LossyTensorError", "OptimizerFormatError", "OptimizerRecord", "OverlongUlebError",
    "TrailingBytesError", "TruncatedError", "UnknownDtypeError", "UnrepresentableOptionError",
    "UnsupportedDtypeError", "UnsupportedOptimizerError", "load_state_dict", "optimizer_record_from_state_dict",
    "optimizer_record_from_torch", "optimizer_record_to_state_dict", "read_optimizer", "read_state_dict",
    "read_tensor", "save_adadelta", "save_adagrad", "save_adam", "save_adamax", "save_adamw", "save_asgd",
    "save_nadam", "save_optimizer", "save_radam", "save_rmsprop", "save_rprop", "save_sgd", "save_state_dict",
    "write_optimizer", "write_state_dict", "write_tensor",
]
