"""Atomic path writes, file-object destinations, the public API surface and the upstream
drop-in modules."""
from __future__ import annotations

import io
import os
import stat

import pytest
import torch

import harness.codec as codec
from harness.codec import exportsd, importsd
from harness.codec import tensor as tensor_mod


def _fail_midway(monkeypatch) -> None:
    real = tensor_mod._write_data

    def broken(f, t):
        raw = memoryview(t.reshape(-1).view(torch.uint8).numpy())
        f.write(raw[: len(raw) // 2])
        raise OSError("disk on fire")

    assert real is not None
    monkeypatch.setattr(tensor_mod, "_write_data", broken)


@pytest.mark.parametrize("writer", ["state_dict", "tensor", "optimizer"])
def test_failed_path_write_leaves_original_and_no_temp(writer: str, tmp_path, monkeypatch) -> None:
    path = tmp_path / "out.dat"
    path.write_bytes(b"original content")
    p = torch.nn.Parameter(torch.ones(64))
    p.grad = torch.ones(64)
    opt = torch.optim.Adam([p])
    opt.step()
    _fail_midway(monkeypatch)
    with pytest.raises(OSError, match="disk on fire"):
        if writer == "state_dict":
            codec.write_state_dict(path, {"a": torch.ones(64), "b": torch.ones(64)})
        elif writer == "tensor":
            codec.write_tensor(path, torch.ones(64))
        else:
            codec.save_optimizer(opt, path)
    assert path.read_bytes() == b"original content"
    assert sorted(os.listdir(tmp_path)) == ["out.dat"]


def test_refused_input_never_touches_the_destination(tmp_path) -> None:
    path = tmp_path / "out.dat"
    path.write_bytes(b"original")
    with pytest.raises(codec.UnsupportedDtypeError):
        codec.write_state_dict(path, {"a": torch.ones(2),
                                      "b": torch.quantize_per_tensor(torch.ones(2), 1.0, 0, torch.quint4x2)})
    assert path.read_bytes() == b"original" and sorted(os.listdir(tmp_path)) == ["out.dat"]


def test_successful_path_write_replaces_and_keeps_mode(tmp_path) -> None:
    path = tmp_path / "out.dat"
    codec.write_tensor(path, torch.ones(2))
    mode = stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    os.chmod(path, 0o640)
    codec.write_tensor(str(path), torch.zeros(3))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert codec.read_tensor(path).shape == (3,)
    assert sorted(os.listdir(tmp_path)) == ["out.dat"]


def test_file_objects_are_written_as_given_and_left_open() -> None:
    buf = io.BytesIO()
    buf.write(b"HEAD")
    codec.write_tensor(buf, torch.ones(1))
    assert not buf.closed and buf.getvalue()[:4] == b"HEAD"
    buf.seek(4)
    assert codec.read_tensor(buf).item() == 1.0
    assert not buf.closed


def test_public_api() -> None:
    ours = {"read_tensor", "write_tensor", "read_state_dict", "write_state_dict", "read_optimizer", "write_optimizer",
            "optimizer_record_from_torch", "optimizer_record_from_state_dict", "optimizer_record_to_state_dict",
            "save_optimizer", "OPTIMIZERS", "OptimizerRecord", "hugepage_loads"}
    upstream = {"save_state_dict", "load_state_dict", *(f"save_{n}" for n in (
        "sgd", "asgd", "rprop", "rmsprop", "adam", "adamw", "nadam", "radam", "adamax", "adadelta", "adagrad"))}
    errors = {n for n in codec.__all__ if n.endswith("Error")}
    assert set(codec.__all__) == ours | upstream | errors
    assert "CodecError" in errors and len(errors) >= 14
    for name in codec.__all__:
        assert hasattr(codec, name), name
    # upstream's write_tensor(t, file_name) lives in exportsd; ours (dest, tensor) at the top
    assert codec.write_tensor is tensor_mod.write_tensor and exportsd.write_tensor is not codec.write_tensor
    assert importsd.load_state_dict is codec.load_state_dict


def test_codec_imports_nothing_else_of_the_harness() -> None:
    import ast
    from pathlib import Path
    for py in Path(codec.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for m in mods:
                root = m.split(".")[0]
                assert root in {"__future__", "torch", "numpy", "harness"} or root in _stdlib(), (py.name, m)
                if root == "harness":
                    assert m.startswith("harness.codec"), (py.name, m)


def _stdlib() -> set[str]:
    import sys
    return set(sys.stdlib_module_names)


def test_no_assert_on_input_in_codec() -> None:
    from pathlib import Path
    for py in Path(codec.__file__).parent.glob("*.py"):
        assert "\n    assert " not in py.read_text() and "\nassert " not in py.read_text(), py.name


def test_upstream_dropins_accept_open_files(tmp_path) -> None:
    sd = {"w": torch.arange(4.0)}
    with open(tmp_path / "m.dat", "wb") as f:
        exportsd.save_state_dict(sd, f)
    with open(tmp_path / "m.dat", "rb") as f:
        back = importsd.load_state_dict(f)
    assert torch.equal(back["w"], sd["w"])
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    opt = torch.optim.RMSprop([p], momentum=0.1)
    opt.step()
    with open(tmp_path / "o.dat", "wb") as f:
        exportsd.save_rmsprop(opt, f)
    assert codec.read_optimizer(tmp_path / "o.dat").class_name == "RMSProp"
