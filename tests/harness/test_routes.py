"""The route axis (harness/routes/): what each route carries and why a cell is skipped, the
plan's route axis, the Python halves' inverse pairs, the harness's own safetensors writer
against the format, checkpoint folders, and the binding of drivers to a cell's route.
PyTorch only: no TorchSharp here (the routes' TorchSharp halves are tests/conformance/)."""
from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from harness.cases import load_catalogue
from harness.checks import REGISTRY
from harness.codecs import CodecFailure, load_codec
from harness.verdicts.digest import TensorDigest
from harness.drivers.pytorch import PyTorchDriver
from harness.running.plan import make_cells
from harness.routes import DAT, PTH, ROUTES, SAFETENSORS
from harness.routes.binding import bound_route, bound_variant
from harness.routes.checkpoint import split_shards, write_checkpoint
from harness.routes.pth import VARIANTS, TorchSaveForm
from harness.routes.safetensors import TRAILING, decode, encode

EDGE = {"w": torch.tensor([[-0.0, float("nan"), float("inf")], [1e-45, -1.5, 3.0]]),
        "h": torch.tensor([65504.0, -0.0], dtype=torch.float16),
        "b": torch.tensor(2.5, dtype=torch.bfloat16),          # 0-dim
        "e": torch.zeros(0, 3, dtype=torch.int64),             # empty
        "m": torch.tensor([True, False]), "u": torch.tensor([255], dtype=torch.uint8)}


def _digests(state: dict[str, torch.Tensor]) -> dict[str, TensorDigest]:
    return {k: TensorDigest.of(v) for k, v in state.items()}


def test_the_registry_has_the_three_routes_in_report_order() -> None:
    assert list(ROUTES) == ["dat", "pth", "safetensors"]
    assert [r.suffix for r in ROUTES.values()] == [".dat", ".pth", ".safetensors"]


@pytest.mark.parametrize("route, needs, reason", [
    (SAFETENSORS, {"module", "optimizer"}, "route safetensors carries no optimizer state (it holds tensors only)"),
    (PTH, {"module", "codec"}, "route pth carries no codec under test"),
    (DAT, {"module", "checkpoint"}, "route dat carries no checkpoint folders"),
    (DAT, {"module", "pickle_forms"}, "route dat carries no torch.save's other file forms"),
])
def test_a_need_the_route_lacks_is_a_skip_naming_it(route, needs, reason) -> None:
    got = route.obstacle(frozenset(needs), frozenset({"pth", "safetensors"}), "PyTorch 2.6.0",
                         frozenset({"pth", "safetensors", "checkpoint"}), "TorchSharp 0.107.0")
    assert got is not None and got.startswith(reason)


def test_a_side_without_the_route_is_unavailable_naming_the_side() -> None:
    host = SAFETENSORS.obstacle(frozenset({"module"}), frozenset({"pth"}), "PyTorch 1.13.0a0",
                                frozenset({"pth", "safetensors"}), "TorchSharp 0.107.0")
    assert host == ("unavailable: route safetensors: PyTorch 1.13.0a0: no safetensors for Debian 12's Python "
                    "(Debian packages safetensors for Python 3.13 only)")
    ts = PTH.obstacle(frozenset({"module"}), frozenset({"pth"}), "PyTorch 1.13.0a0", frozenset(), "TorchSharp 0.106.0")
    assert ts == "unavailable: route pth: TorchSharp 0.106.0 driver has no 'pth' form (TorchSharp.PyBridge)"
    assert DAT.obstacle(frozenset({"module", "optimizer", "codec"}), frozenset(), "", frozenset(), "") is None
    both = frozenset({"pth", "safetensors", "checkpoint"})
    assert PTH.obstacle(frozenset({"module", "checkpoint"}), both, "", both, "") is None


def test_check_needs_follow_the_case_kind() -> None:
    cat = load_catalogue()
    model, opt, tensor = (next(c for c in cat.all() if c.kind == k) for k in ("model", "optimizer", "tensor"))
    assert REGISTRY["py2ts"].needs_of_route(model) == {"module"}
    assert REGISTRY["py2ts"].needs_of_route(opt) == {"module", "optimizer"}
    assert REGISTRY["tensor_py2ts"].needs_of_route(tensor) == {"tensor"}
    assert REGISTRY["contract_usable"].needs_of_route(model) == {"module", "codec"}
    assert REGISTRY["checkpoint"].needs_of_route(model) == {"module", "checkpoint"}


def test_route_independent_checks_are_planned_once_on_the_first_route() -> None:
    lenet = [c for c in load_catalogue().all() if c.name == "lenet1"]
    cells = make_cells(lenet, "1.13", ["0.107.0"], "ours", None, ["cpu"], ["dat", "pth", "safetensors"])
    routes_of = {ch: sorted(c.route for c in cells if c.check == ch) for ch in {c.check for c in cells}}
    for ch in ("fresh_init", "jit_py2ts", "jit_ts2py"):
        assert routes_of[ch] == ["dat"], ch
    assert routes_of["py2ts"] == ["dat", "pth", "safetensors"]
    assert routes_of["functional"] == ["dat", "pth", "safetensors"]
    assert {c.id.rsplit("::", 1)[1] for c in cells} == {"dat", "pth", "safetensors"}
    only_pth = make_cells(lenet, "1.13", ["0.107.0"], "ours", ["jit_py2ts"], ["cpu"], ["pth"])
    assert [c.route for c in only_pth] == ["pth"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_torch_save_forms_are_inverse_pairs_and_differ_as_named(variant: str, tmp_path: Path) -> None:
    form = TorchSaveForm(variant)
    buf = io.BytesIO()
    form.save_state_dict(EDGE, buf)
    data = buf.getvalue()
    zipped, protocol = VARIANTS[variant]
    if zipped:  # a zip whose pickle (data.pkl) starts with the PROTO opcode of its protocol
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            pickle_bytes = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    else:  # the legacy form: a stream of pickles, the first one the magic number
        pickle_bytes = data
    assert pickle_bytes[:2] == bytes([0x80, protocol]) and (data[:2] == b"PK") == zipped
    assert _digests(form.load_state_dict(io.BytesIO(data))) == _digests(EDGE)
    form.write_tensor(EDGE["w"], tmp_path / "t.pth")
    assert TensorDigest.of(form.read_tensor(tmp_path / "t.pth")) == TensorDigest.of(EDGE["w"])


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="no file form 'p9'"):
        TorchSaveForm("p9")


def test_a_single_tensor_file_must_hold_one_tensor(tmp_path: Path) -> None:
    torch.save({"tensor": torch.ones(1), "other": torch.ones(1)}, tmp_path / "two.pth")
    with pytest.raises(CodecFailure, match=r"should hold one tensor under 'tensor', holds \['tensor', 'other'\]"):
        TorchSaveForm().read_tensor(tmp_path / "two.pth")


def test_a_route_writer_that_raises_is_the_routes_failure() -> None:
    with pytest.raises(CodecFailure, match="^route pth: torch.save raised .*pickle"):
        TorchSaveForm().save_state_dict({"x": lambda: 0}, io.BytesIO())  # type: ignore[dict-item]


def test_the_harness_safetensors_writer_follows_the_format() -> None:
    data = encode({"a": torch.arange(3, dtype=torch.int16), "b": torch.tensor(-0.0)}, {"format": "pt"})
    (n,) = struct.unpack_from("<Q", data)
    assert n % 8 == 0 and data[8 + n - 1:8 + n] in (b"}", b" ")
    header = json.loads(data[8:8 + n])
    assert header == {"__metadata__": {"format": "pt"},
                      "a": {"dtype": "I16", "shape": [3], "data_offsets": [0, 6]},
                      "b": {"dtype": "F32", "shape": [], "data_offsets": [6, 10]}}
    assert data[8 + n:] == b"\x00\x00\x01\x00\x02\x00" + b"\x00\x00\x00\x80"  # little-endian, -0.0 kept


def test_the_harness_safetensors_writer_round_trips_edge_values() -> None:
    assert _digests(decode(encode(EDGE))) == _digests(EDGE)
    with pytest.raises(ValueError, match="no dtype for 'c'"):
        encode({"c": torch.zeros(1, dtype=torch.complex64)})


def _parts(data: bytes) -> tuple[int, dict, bytes]:
    """A safetensors file's header length, header and data, read as the format says."""
    (n,) = struct.unpack_from("<Q", data)
    return n, json.loads(data[8:8 + n]), data[8 + n:]


# a valid file as safetensors writes it: metadata, an empty tensor, and the smallest (8 bytes) not first
DAMAGEABLE = {"w": torch.arange(12, dtype=torch.float32).reshape(4, 3), "e": torch.zeros(0, 2),
              "n": torch.tensor(7, dtype=torch.int64), "b": torch.arange(12, 16, dtype=torch.float32)}


def test_safetensors_overlapping_form_points_the_smallest_tensor_into_another_and_nothing_else() -> None:
    valid = encode(DAMAGEABLE, {"format": "pt"})
    forms = dict(SAFETENSORS.damaged_forms(valid))
    what = "two tensors' data_offsets overlapping ('n' moved to [0, 8), over 'w' at [0, 48))"
    assert list(forms) == [what, "8 bytes after the last tensor's data"]
    n, header, body = _parts(forms[what])
    _, before, _ = _parts(valid)
    assert n % 8 == 0 and len(forms[what]) == 8 + n + len(body)           # the length field is right
    assert header["__metadata__"] == {"format": "pt"} and list(header) == list(before)
    assert all(header[k]["dtype"] == before[k]["dtype"] and header[k]["shape"] == before[k]["shape"]
               for k in DAMAGEABLE)
    sizes = {k: e["data_offsets"][1] - e["data_offsets"][0] for k, e in header.items() if k != "__metadata__"}
    assert sizes == {"w": 48, "e": 0, "n": 8, "b": 16}                      # every entry keeps its byte length
    assert header["n"]["data_offsets"] == [0, 8] and header["w"]["data_offsets"] == [0, 48]   # the overlap
    ranges = sorted(e["data_offsets"] for k, e in header.items() if k not in ("__metadata__", "n"))
    assert ranges == [[0, 48], [48, 48], [48, 64]] and len(body) == 64    # the others still tile the data exactly
    got = decode(forms[what])
    assert _digests({k: got[k] for k in ("w", "e", "b")}) == _digests({k: DAMAGEABLE[k] for k in ("w", "e", "b")})
    assert got["n"].item() == torch.tensor([0.0, 1.0]).view(torch.int64).item()   # read from w's bytes


def test_the_tensor_moved_is_one_that_then_reads_other_bytes_than_its_own() -> None:
    # 'a' and 'b' hold the same value: either moved onto the other would read its own bytes again
    # (a loader following the offsets would look right); 'w', as small, reads a's bytes instead
    same = {"a": torch.tensor([5]), "b": torch.tensor([5]), "w": torch.tensor([1.5, 2.5])}
    (what, damaged), _ = SAFETENSORS.damaged_forms(encode(same))
    assert what == "two tensors' data_offsets overlapping ('w' moved to [0, 8), over 'a' at [0, 8))"
    assert _parts(damaged)[1] == {"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]},
                                  "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
                                  "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    # none differs: the smallest is moved all the same (the file is just as invalid)
    twins = {"a": torch.tensor([5]), "b": torch.tensor([5])}
    assert SAFETENSORS.damaged_forms(encode(twins))[0][0] == \
        "two tensors' data_offsets overlapping ('a' moved to [0, 8), over 'b' at [0, 8))"


def test_safetensors_trailing_form_is_the_valid_file_and_8_more_bytes() -> None:
    valid = encode(DAMAGEABLE)
    trailing = dict(SAFETENSORS.damaged_forms(valid))["8 bytes after the last tensor's data"]
    assert trailing[:len(valid)] == valid and trailing[len(valid):] == TRAILING and len(TRAILING) == 8
    _, header, body = _parts(trailing)
    assert max(e["data_offsets"][1] for e in header.values()) == len(body) - 8


def test_a_safetensors_file_of_one_tensor_has_no_overlapping_form() -> None:
    one = encode({"w": torch.ones(3), "e": torch.zeros(0)})
    assert [w for w, _ in SAFETENSORS.damaged_forms(one)] == ["8 bytes after the last tensor's data"]


def test_the_dat_and_pth_routes_declare_no_damaged_forms_of_their_own() -> None:
    valid = encode(DAMAGEABLE)
    assert DAT.damaged_forms_of is None and PTH.damaged_forms_of is None
    assert DAT.damaged_forms(valid) == [] and PTH.damaged_forms(valid) == []


def test_safetensors_is_unavailable_on_this_python_when_the_package_is_missing() -> None:
    from harness.routes.safetensors import available
    drv = PyTorchDriver(load_codec("ours"))
    assert ("safetensors" in drv.capabilities.features) == available()
    assert "pth" in drv.capabilities.features


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_checkpoint_folders_as_save_pretrained_writes_them(shards: int, tmp_path: Path) -> None:
    state = {f"layer{i}.weight": torch.full((i + 1, 4), float(i)) for i in range(5)}
    files = write_checkpoint(TorchSaveForm(), PTH.checkpoint_names or ("", "", ""), state, tmp_path, shards)
    if shards == 1:
        assert files == ["pytorch_model.bin"]
        assert _digests(torch.load(tmp_path / "pytorch_model.bin")) == _digests(state)
        return
    assert files[-1] == "pytorch_model.bin.index.json"
    assert files[:-1] == [f"pytorch_model-{i:05d}-of-{shards:05d}.bin" for i in range(1, shards + 1)]
    index = json.loads((tmp_path / files[-1]).read_text())
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in state.values())
    assert list(index["weight_map"]) == list(state)
    back: dict[str, torch.Tensor] = {}
    for f in files[:-1]:
        part = torch.load(tmp_path / f)
        assert part and all(index["weight_map"][k] == f for k in part)
        back.update(part)
    assert _digests(back) == _digests(state)


def test_shards_keep_order_and_none_is_empty() -> None:
    state = {f"k{i}": torch.zeros(n) for i, n in enumerate([10, 1, 1, 1, 100, 3])}
    assert [list(p) for p in split_shards(state, 2)] == [["k0", "k1", "k2", "k3", "k4"], ["k5"]]
    assert [list(p) for p in split_shards(state, 3)] == [["k0", "k1", "k2", "k3"], ["k4"], ["k5"]]
    assert [list(p) for p in split_shards({"a": torch.zeros(5)}, 2)] == [["a"]]


def test_a_cell_binds_both_sides_and_unbinds_however_it_ends() -> None:
    py, other = PyTorchDriver(load_codec("ours")), PyTorchDriver(load_codec("ours"))
    with pytest.raises(RuntimeError, match="boom"):
        with bound_route(PTH, py, other):
            assert (py.route_form, other.route_form) == ("pth", "pth")
            with bound_variant(py, "pth:legacy"):
                assert py.route_form == "pth:legacy" and isinstance(py.form(), TorchSaveForm)
                assert py.form().variant == "legacy"  # type: ignore[attr-defined]
            assert py.route_form == "pth"
            raise RuntimeError("boom")
    assert (py.route_form, other.route_form) == ("dat", "dat")
    assert py.form() is py.codec


def test_a_codec_raising_on_a_valid_file_in_the_contract_is_the_codecs_failure() -> None:
    # upstream's importsd.py raises TypeError on bfloat16: a failed cell naming the codec, not a harness error
    from harness import codec as ours
    from harness.verdicts.codec_contract import usable_tensors
    buf = io.BytesIO()
    ours.save_state_dict({"w": torch.ones(2, dtype=torch.bfloat16)}, buf)

    def load(f: io.BytesIO) -> dict[str, torch.Tensor]:
        raise TypeError("data type 'bfloat16' not understood")
    expected = "^codec load_state_dict raised TypeError on a valid file: data type"
    with pytest.raises(CodecFailure, match=expected) as info:
        usable_tensors(load, buf.getvalue())  # type: ignore[arg-type]
    assert info.value.as_verdict().outcome == "fail"


def test_large_cells_run_on_the_large_routes_only() -> None:
    cat = load_catalogue().all()
    large = [c for c in cat if "large" in c.features]
    small = [c for c in cat if c.name == "tensor_float32_vector"]
    assert large, "the catalogue has large-tensor cases"
    cells = make_cells(large + small, "2.6", ["0.107.0"], "ours", None, ["cpu"], ["dat", "pth", "safetensors"], ["dat"])
    assert {c.route for c in cells if "large" in c.case.features} == {"dat"}
    assert {c.route for c in cells if c.case.name == "tensor_float32_vector"} == {"dat", "pth", "safetensors"}
    every = make_cells(large, "2.6", ["0.107.0"], "ours", None, ["cpu"], ["dat", "pth"])
    assert {c.route for c in every} == {"dat", "pth"}


def test_a_dtype_the_route_has_no_name_for_is_a_skip_naming_it() -> None:
    assert SAFETENSORS.refuses_dtype("complex64") == ("route safetensors carries no complex64 tensors "
                                                      "(its format has no such dtype)")
    assert SAFETENSORS.refuses_dtype("qint8") is not None
    assert SAFETENSORS.refuses_dtype("bfloat16") is None and SAFETENSORS.refuses_dtype("bool") is None
    assert PTH.refuses_dtype("qint8") is None and DAT.refuses_dtype("complex128") is None


def test_a_nondeterministic_entry_reads_a_pass_as_xfail_and_the_drivers_may_differ(tmp_path: Path) -> None:
    from harness.verdicts.agreement import cross_check
    from harness.verdicts.expectations import ExpectedFailures
    from harness.verdicts.outcomes import CellResult
    (tmp_path / "x.toml").write_text('[[xfail]]\ncells = ["c::py2ts::*"]\nexpect = "bytes differ"\n'
                                     'finding = "f"\nreason = "order decides"\nnondeterministic = true\n')
    xf = ExpectedFailures.load(tmp_path)

    def cell(ts: str, outcome: str, reason: str = "") -> CellResult:
        return CellResult(id=f"c::py2ts::pt1::ts{ts}::cpu::ours::pth", case="c", check="py2ts", pytorch="1",
                          torchsharp=ts, device="cpu", codec="ours", outcome=outcome, reason=reason, route="pth")
    passed = xf.apply(cell("0.1", "pass"))
    failed = xf.apply(cell("0.1@pythonnet", "fail", "'w': bytes differ"))
    assert (passed.outcome, failed.outcome) == ("xfail", "xfail")
    assert "passed in this process" in passed.reason and passed.details["nondeterministic"] is True
    assert cross_check([passed, failed]) == 0 and failed.outcome == "xfail"
    other = xf.apply(cell("0.1", "fail", "something else"))
    assert other.outcome == "fail" and other.reason.startswith("failed differently than listed")
