"""Every typed error: its type, the field it names and the absolute byte offset where that
field starts. Files are built by hand from docs/format.md (tests/codec/_util.py)."""
from __future__ import annotations

import io

import pytest
import torch

from harness import codec
from harness.codec import errors as E
from tests.codec._util import NonSeekable, boolb, dotnet_str, f64, i64, record, to_bytes, uleb


def _sd_file(*entries: tuple[str, bytes]) -> bytes:
    return uleb(len(entries)) + b"".join(dotnet_str(k) + rec for k, rec in entries)


VALID_SD = _sd_file(("conv-1.weight", record(6, (2,), b"\x00\x00\x80\x3f" * 2)),
                    ("wé", record(15, (), b"\x80\x3f")))


def _adam_file(amsgrad_byte: bytes = b"\x00") -> bytes:
    return (dotnet_str("Adam") + uleb(1) + uleb(1) + f64(0.1) + f64(0.1) + f64(0.9) + f64(0.999) + f64(1e-8)
            + f64(0.0) + amsgrad_byte + boolb(False) + i64(3) + record(6, (1,), b"\x00" * 4)
            + record(6, (1,), b"\x00" * 4) + boolb(False))


ADAM_AMSGRAD_AT = len(dotnet_str("Adam")) + 2 + 6 * 8


def _raises(exc: type[E.CodecError], fn, *args, field: str | None = None, offset: int | None | str = "any"):
    with pytest.raises(exc) as info:
        fn(*args)
    err = info.value
    assert isinstance(err, E.CodecError)
    if field is not None:
        assert err.field == field, str(err)
    if offset != "any":
        assert err.offset == offset, str(err)
    if err.offset is not None:
        assert f"at byte {err.offset}" in str(err)
    return err


# --- truncation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", range(len(VALID_SD)))
def test_state_dict_truncated_anywhere(cut: int) -> None:
    data = VALID_SD[:cut]
    for src in (io.BytesIO(data), NonSeekable(data)):
        err = _raises(E.TruncatedError, codec.read_state_dict, src)
        assert err.offset is not None and 0 <= err.offset <= cut


@pytest.mark.parametrize("cut", range(len(_adam_file())))
def test_optimizer_truncated_anywhere(cut: int) -> None:
    data = _adam_file()[:cut]
    for src in (io.BytesIO(data), NonSeekable(data)):
        err = _raises(E.TruncatedError, codec.read_optimizer, src)
        assert err.offset is not None and 0 <= err.offset <= cut


@pytest.mark.parametrize("cut", range(len(record(7, (2, 1), b"\x01" * 16))))
def test_single_tensor_truncated_anywhere(cut: int) -> None:
    data = record(7, (2, 1), b"\x01" * 16)[:cut]
    for src in (io.BytesIO(data), NonSeekable(data)):
        _raises(E.TruncatedError, codec.read_tensor, src)


def test_truncation_names_field_and_offset() -> None:
    _raises(E.TruncatedError, codec.read_state_dict, io.BytesIO(b""), field="entry count", offset=0)
    # inside the first tensor's data (seekable: refused before reading, as the length exceeds the file)
    data_at = 1 + len(dotnet_str("conv-1.weight")) + 3
    err = _raises(E.TruncatedError, codec.read_state_dict, io.BytesIO(VALID_SD[:data_at + 5]),
                  field="tensor 'conv-1.weight' data", offset=data_at)
    assert isinstance(err, E.LengthExceedsFileError)
    _raises(E.TruncatedError, codec.read_state_dict, NonSeekable(VALID_SD[:data_at + 5]),
            field="tensor 'conv-1.weight' data", offset=data_at)
    # inside an f64 of the optimizer: a pipe reads up to it; a seekable file is refused at the group count
    cut = _adam_file()[:ADAM_AMSGRAD_AT - 3]
    _raises(E.TruncatedError, codec.read_optimizer, NonSeekable(cut), field="group[0].weight_decay",
            offset=ADAM_AMSGRAD_AT - 8)
    _raises(E.LengthExceedsFileError, codec.read_optimizer, io.BytesIO(cut), field="param group count",
            offset=len(dotnet_str("Adam")))


def test_file_object_offsets_are_absolute() -> None:
    buf = io.BytesIO(b"JUNK" + _sd_file(("k", record(4711, (), b""))))
    buf.seek(4)
    _raises(E.UnknownDtypeError, codec.read_state_dict, buf, field="tensor 'k' dtype code", offset=4 + 1 + 2)


# --- unknown dtype codes ---------------------------------------------------------------------------
@pytest.mark.parametrize("code", [8, 16, 23, 24, 25, 26, 27, 28, 29, 30, 4711])
def test_unknown_dtype_code(code: int) -> None:
    data = _sd_file(("conv-1.weight", record(code, (1,), b"\x00" * 8)))
    err = _raises(E.UnknownDtypeError, codec.read_state_dict, io.BytesIO(data),
                  field="tensor 'conv-1.weight' dtype code", offset=1 + 1 + len("conv-1.weight"))
    assert f"unknown dtype code {code}" in str(err)
    assert str(err).startswith(f"tensor 'conv-1.weight' dtype code at byte 15: unknown dtype code {code}")


def test_unknown_dtype_code_in_single_tensor_and_optimizer() -> None:
    _raises(E.UnknownDtypeError, codec.read_tensor, io.BytesIO(record(27, (1,), b"\0\0")),
            field="tensor dtype code", offset=0)
    bad = _adam_file().replace(record(6, (1,), b"\x00" * 4) + record(6, (1,), b"\x00" * 4),
                               record(6, (1,), b"\x00" * 4) + record(26, (1,), b"\x00"))
    _raises(E.UnknownDtypeError, codec.read_optimizer, io.BytesIO(bad), field="state[0].exp_avg_sq dtype code",
            offset=ADAM_AMSGRAD_AT + 2 + 8 + 7)


# --- impossible lengths -----------------------------------------------------------------------------
def test_impossible_entry_count() -> None:
    data = uleb(10 ** 9) + VALID_SD[1:]
    err = _raises(E.InvalidLengthError, codec.read_state_dict, io.BytesIO(data), field="entry count", offset=0)
    assert isinstance(err, E.LengthExceedsFileError)


def test_impossible_string_length() -> None:
    data = uleb(1) + uleb(2 ** 40) + b"abc"
    _raises(E.InvalidLengthError, codec.read_state_dict, io.BytesIO(data), field="entry 0 key", offset=1)


def test_impossible_ndim() -> None:
    data = _sd_file(("k", uleb(6) + uleb(10 ** 6) + b"\x01\x01"))
    _raises(E.InvalidLengthError, codec.read_state_dict, io.BytesIO(data), field="tensor 'k' ndim", offset=4)
    # without a known size, a rank beyond any libtorch tensor is refused too
    _raises(E.InvalidLengthError, codec.read_state_dict, NonSeekable(data), field="tensor 'k' ndim", offset=4)


def test_impossible_dim() -> None:
    data = _sd_file(("k", uleb(6) + uleb(2) + uleb(1) + uleb(2 ** 63)))
    _raises(E.InvalidLengthError, codec.read_state_dict, io.BytesIO(data), field="tensor 'k' dim[1]", offset=6)


def test_impossible_dim_product() -> None:
    # 2**40 x 2**40 float32: 2**82 bytes, more than any file or tensor
    data = _sd_file(("k", uleb(6) + uleb(2) + uleb(2 ** 40) + uleb(2 ** 40)))
    err = _raises(E.InvalidLengthError, codec.read_state_dict, io.BytesIO(data), field="tensor 'k' shape",
                  offset=4)
    assert not isinstance(err, E.TruncatedError)
    _raises(E.InvalidLengthError, codec.read_state_dict, NonSeekable(data), field="tensor 'k' shape", offset=4)


def test_dim_product_larger_than_the_file_is_refused_before_allocating() -> None:
    # 2**20 x 2**20 float32 = 4 TiB declared in a 20-byte file: refused, nothing allocated
    data = _sd_file(("k", uleb(6) + uleb(2) + uleb(2 ** 20) + uleb(2 ** 20) + b"\x00" * 8))
    err = _raises(E.InvalidLengthError, codec.read_state_dict, io.BytesIO(data), field="tensor 'k' data",
                  offset=4 + 1 + 3 + 3)
    assert isinstance(err, E.LengthExceedsFileError) and "4398046511104 bytes" in str(err)


def test_impossible_optimizer_counts() -> None:
    name = dotnet_str("Adam")
    data = name + uleb(10 ** 6) + uleb(1) + b"\0" * 64
    _raises(E.InvalidLengthError, codec.read_optimizer, io.BytesIO(data), field="param group count",
            offset=len(name))
    data = name + uleb(1) + uleb(10 ** 6) + b"\0" * 64
    _raises(E.InvalidLengthError, codec.read_optimizer, io.BytesIO(data), field="parameter state count",
            offset=len(name) + 1)


# --- uleb, utf-8, bool, trailing bytes, duplicates -----------------------------------------------------
@pytest.mark.parametrize("raw", [b"\x80" * 10 + b"\x01",                 # 11 bytes
                                 b"\xff" * 9 + b"\x02",                   # 10 bytes, value >= 2**64
                                 b"\x80\x00",                             # non-canonical zero
                                 b"\x81\x80\x00"])                        # non-canonical 1
def test_overlong_uleb(raw: bytes) -> None:
    _raises(E.OverlongUlebError, codec.read_state_dict, io.BytesIO(raw + b"\0" * 40), field="entry count",
            offset=0)
    data = _sd_file(("k", raw + b"\0" * 40))
    _raises(E.OverlongUlebError, codec.read_state_dict, io.BytesIO(data), field="tensor 'k' dtype code", offset=3)


def test_non_canonical_dim_is_refused_on_every_read_path(tmp_path) -> None:
    # 2 written as b"\x82\x00": a buffered file's one-look parse of the common entry must refuse
    # it exactly as the general path does (a path, an open file, a BytesIO)
    data = uleb(1) + dotnet_str("k") + uleb(6) + uleb(1) + b"\x82\x00" + b"\x00" * 8
    path = tmp_path / "sd.dat"
    path.write_bytes(data)
    with open(path, "rb") as f:
        for source in (path, f, io.BytesIO(data)):
            _raises(E.OverlongUlebError, codec.read_state_dict, source, field="tensor 'k' dim[0]", offset=5)
    canonical = data.replace(b"\x82\x00", b"\x02")
    path.write_bytes(canonical)
    assert codec.read_state_dict(path)["k"].shape == (2,)


def test_largest_uleb_is_accepted() -> None:
    # 2**64-1 as a dim of an empty tensor: a canonical 10-byte uleb is fine (then too big for a dim)
    data = record(6, (0, 2 ** 64 - 1), b"")
    _raises(E.InvalidLengthError, codec.read_tensor, io.BytesIO(data), field="tensor dim[1]", offset=3)


def test_invalid_utf8_key() -> None:
    data = uleb(1) + uleb(2) + b"\xff\xfe" + record(6, (), b"\0" * 4)
    _raises(E.InvalidUtf8Error, codec.read_state_dict, io.BytesIO(data), field="entry 0 key", offset=1)
    _raises(E.InvalidUtf8Error, codec.read_optimizer, io.BytesIO(uleb(2) + b"\xc3\x28" + b"\0" * 30),
            field="optimizer class name", offset=0)


def test_unencodable_key_on_write() -> None:
    _raises(E.InvalidUtf8Error, codec.write_state_dict, io.BytesIO(), {"bad\ud800": torch.zeros(1)},
            field="key 'bad\\ud800'", offset=None)


def test_trailing_bytes() -> None:
    _raises(E.TrailingBytesError, codec.read_state_dict, io.BytesIO(VALID_SD + b"\x00"),
            field="end of state dict", offset=len(VALID_SD))
    one = record(6, (), b"\0" * 4)
    _raises(E.TrailingBytesError, codec.read_tensor, io.BytesIO(one + one), field="end of tensor file",
            offset=len(one))
    _raises(E.TrailingBytesError, codec.read_optimizer, NonSeekable(_adam_file() + b"xyz"),
            field="end of optimizer state", offset=len(_adam_file()))


@pytest.mark.parametrize("byte", [b"\x02", b"\xff"])
def test_bad_bool(byte: bytes) -> None:
    _raises(E.InvalidBoolError, codec.read_optimizer, io.BytesIO(_adam_file(byte)), field="group[0].amsgrad",
            offset=ADAM_AMSGRAD_AT)


def test_bad_cond_present_byte() -> None:
    data = _adam_file()[:-1] + b"\x07"
    _raises(E.InvalidBoolError, codec.read_optimizer, io.BytesIO(data),
            field="state[0].max_exp_avg_sq present", offset=len(data) - 1)


def test_duplicate_key() -> None:
    data = _sd_file(("a", record(0, (), b"\x01")), ("a", record(0, (), b"\x02")))
    _raises(E.DuplicateKeyError, codec.read_state_dict, io.BytesIO(data), field="entry 1 key", offset=1 + 2 + 3)


# --- optimizer class names and options -------------------------------------------------------------------
def test_lbfgs_is_unsupported() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    err = _raises(E.UnsupportedOptimizerError, codec.optimizer_record_from_torch, torch.optim.LBFGS([p]),
                  field="optimizer", offset=None)
    assert "TorchSharp has no file form for LBFGS" in str(err)
    _raises(E.UnsupportedOptimizerError, codec.save_optimizer, torch.optim.LBFGS([p]), io.BytesIO())
    _raises(E.UnsupportedOptimizerError, codec.read_optimizer, io.BytesIO(dotnet_str("LBFGS") + b"\0\0"),
            field="optimizer class name", offset=0)


def test_unknown_optimizer_class() -> None:
    _raises(E.UnsupportedOptimizerError, codec.read_optimizer, io.BytesIO(dotnet_str("Lion") + b"\0\0"),
            field="optimizer class name", offset=0)
    _raises(E.UnsupportedOptimizerError, codec.optimizer_record_from_state_dict, "SparseAdam",
            {"state": {}, "param_groups": []})

    class Custom(torch.optim.Optimizer):
        pass

    _raises(E.UnsupportedOptimizerError, codec.optimizer_record_from_torch,
            Custom([torch.nn.Parameter(torch.zeros(1))], {"lr": 0.1}))


def _adam_group(**extra):
    return {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
            "maximize": False, "params": [0], **extra}


@pytest.mark.parametrize(("cls", "key", "value"), [
    ("Adam", "capturable", True), ("Adam", "differentiable", True), ("Adam", "fused", True),
    ("Adam", "decoupled_weight_decay", True), ("AdamW", "decoupled_weight_decay", False),
    ("NAdam", "decoupled_weight_decay", True), ("RAdam", "decoupled_weight_decay", True),
    ("Adam", "my_own_key", 1), ("NAdam", "maximize", True), ("RAdam", "maximize", True),
    ("Adamax", "maximize", True), ("Adagrad", "maximize", True),
])
def test_unrepresentable_option(cls: str, key: str, value: object) -> None:
    groups = {
        "Adam": _adam_group(), "AdamW": _adam_group(),
        "NAdam": {**_adam_group(), "momentum_decay": 0.004}, "RAdam": _adam_group(), "Adamax": _adam_group(),
        "Adagrad": {"lr": 0.1, "lr_decay": 0, "weight_decay": 0, "initial_accumulator_value": 0, "eps": 1e-10,
                    "params": [0]},
    }[cls]
    for k in ("amsgrad", "maximize"):
        if cls in ("NAdam", "RAdam", "Adamax"):
            groups.pop(k, None)
    groups = {**groups, key: value}
    sd = {"state": {}, "param_groups": [groups]}
    err = _raises(E.UnrepresentableOptionError, codec.optimizer_record_from_state_dict, cls, sd, [torch.zeros(1)],
                  field=f"group[0].{key}", offset=None)
    assert key in str(err)


@pytest.mark.parametrize(("key", "value"), [("foreach", True), ("foreach", None), ("fused", None),
                                            ("fused", False), ("capturable", False), ("param_names", ["w"])])
def test_neutral_options_are_accepted(key: str, value: object) -> None:
    sd = {"state": {}, "param_groups": [_adam_group(**{key: value})]}
    rec = codec.optimizer_record_from_state_dict("Adam", sd, [torch.zeros(1)])
    assert list(rec.groups[0]) == ["initial_lr", "lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"]


def test_live_optimizer_with_capturable_is_refused() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    _raises(E.UnrepresentableOptionError, codec.optimizer_record_from_torch, torch.optim.Adam([p], capturable=True),
            field="group[0].capturable", offset=None)


def test_non_integral_step_is_refused() -> None:
    sd = {"state": {0: {"step": torch.tensor(2.5), "exp_avg": torch.zeros(1), "exp_avg_sq": torch.zeros(1)}},
          "param_groups": [_adam_group()]}
    _raises(E.UnrepresentableOptionError, codec.optimizer_record_from_state_dict, "Adam", sd,
            field="state of parameter 0.step", offset=None)


def test_lazy_state_without_shapes() -> None:
    sd = {"state": {}, "param_groups": [_adam_group()]}
    _raises(E.OptimizerFormatError, codec.optimizer_record_from_state_dict, "Adam", sd,
            field="state of parameter 0", offset=None)


def test_record_to_state_dict_mismatches() -> None:
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    rec = codec.optimizer_record_from_torch(torch.optim.Adam([p]))
    _raises(E.OptimizerFormatError, codec.optimizer_record_to_state_dict, rec, torch.optim.AdamW([p]),
            field="optimizer class name")
    _raises(E.OptimizerFormatError, codec.optimizer_record_to_state_dict, rec, torch.optim.Adam([p, q]),
            field="param groups")
    two = codec.optimizer_record_from_torch(torch.optim.Adam([{"params": [p]}, {"params": [q]}]))
    two.param_counts = None
    _raises(E.OptimizerFormatError, codec.optimizer_record_to_state_dict, two, field="param_counts")


def test_save_x_refuses_another_optimizer() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    _raises(E.OptimizerFormatError, codec.save_adam, torch.optim.SGD([p], lr=0.1), io.BytesIO(), field="optimizer")


# --- writer-side refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: torch.zeros(2, dtype=torch.complex32),
    lambda: torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), 1.0, 0, torch.quint4x2),
    lambda: torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), 1.0, 0, torch.quint2x4),
], ids=["complex32", "quint4x2", "quint2x4"])
def test_unsupported_dtype_on_write(make, tmp_path) -> None:
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = make()
    err = _raises(E.UnsupportedDtypeError, codec.write_state_dict, tmp_path / "x.dat", {"w": t},
                  field="tensor 'w'", offset=None)
    assert str(t.dtype) in str(err)
    assert not (tmp_path / "x.dat").exists() and list(tmp_path.iterdir()) == []
    _raises(E.UnsupportedDtypeError, codec.write_tensor, io.BytesIO(), t, field="tensor")


def test_lossy_quantized_on_write() -> None:
    q = torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), 0.5, 0, torch.qint8)
    err = _raises(E.LossyTensorError, codec.write_tensor, io.BytesIO(), q, field="tensor", offset=None)
    assert "scale 0.5" in str(err)
    q = torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), 1.0, 3, torch.quint8)
    _raises(E.LossyTensorError, codec.write_tensor, io.BytesIO(), q)
    pc = torch.quantize_per_channel(torch.randn(2, 3), torch.tensor([1.0, 1.0]), torch.tensor([0, 0]), 0,
                                    torch.qint8)
    _raises(E.LossyTensorError, codec.write_state_dict, io.BytesIO(), {"w": pc}, field="tensor 'w'")


def test_unsupported_layout_and_values_on_write() -> None:
    _raises(E.UnsupportedTensorError, codec.write_tensor, io.BytesIO(), torch.eye(2).to_sparse())
    _raises(E.UnsupportedTensorError, codec.write_tensor, io.BytesIO(), torch.empty(2, device="meta"))
    _raises(E.InvalidValueError, codec.write_state_dict, io.BytesIO(), {1: torch.zeros(1)}, field="state dict key")
    _raises(E.InvalidValueError, codec.write_state_dict, io.BytesIO(), {"a": [1.0]}, field="tensor 'a'")
    _raises(E.InvalidValueError, codec.write_tensor, io.BytesIO(), 3.0)


def test_bad_records_on_write() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    rec = codec.optimizer_record_from_torch(torch.optim.Adam([p]))
    good = to_bytes(codec.write_optimizer, rec)
    assert good
    for mutate, exc, field in [
        (lambda r: r.groups[0].pop("eps"), E.OptimizerFormatError, "group[0].eps"),
        (lambda r: r.groups[0].__setitem__("nesterov", True), E.OptimizerFormatError, "group[0].nesterov"),
        (lambda r: r.groups[0].__setitem__("amsgrad", 1), E.InvalidValueError, "group[0].amsgrad"),
        (lambda r: r.groups[0].__setitem__("lr", "0.1"), E.InvalidValueError, "group[0].lr"),
        (lambda r: r.states[0].__setitem__("step", 1.5), E.InvalidValueError, "state[0].step"),
        (lambda r: r.states[0].__setitem__("exp_avg", None), E.InvalidValueError, "state[0].exp_avg"),
        (lambda r: r.states[0].pop("exp_avg_sq"), E.OptimizerFormatError, "state[0].exp_avg_sq"),
        (lambda r: setattr(r, "param_counts", [2]), E.OptimizerFormatError, "record.param_counts"),
        (lambda r: setattr(r, "class_name", "LBFGS"), E.UnsupportedOptimizerError, "record.class_name"),
    ]:
        bad = codec.optimizer_record_from_torch(torch.optim.Adam([p]))
        mutate(bad)
        _raises(exc, codec.write_optimizer, io.BytesIO(), bad, field=field, offset=None)


def test_errors_pickle_and_share_one_base() -> None:
    import pickle
    err = E.UnknownDtypeError("tensor 'x' dtype code", 7, "unknown dtype code 4711")
    back = pickle.loads(pickle.dumps(err))
    assert (type(back), back.field, back.offset, str(back)) == (type(err), err.field, err.offset, str(err))
    for name in E.__all__:
        assert issubclass(getattr(E, name), E.CodecError)
        assert getattr(codec, name) is getattr(E, name)
