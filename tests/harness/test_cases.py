"""The case catalogue loads, and a broken case file names its file and field."""
import json

import pytest

from harness.cases import CaseError, load_catalogue
from harness.cases.torch_build import build_model, build_optimizer


def test_catalogue_builds_in_pytorch():
    cat = load_catalogue()
    assert {"lenet1", "linear_conv1d_bn1d", "adam_two_groups"} <= {c.name for c in cat.all()}
    for case in cat.optimizers.values():
        mc = case.model_case
        model = build_model(mc.model, mc.dtype, mc.seed)
        opt = build_optimizer(model, case.optimizer)
        assert len(opt.param_groups) == len(case.optimizer["groups"])
    lenet = cat.models["lenet1"]
    keys = list(build_model(lenet.model, lenet.dtype, lenet.seed).state_dict())
    assert keys[:2] == ["conv-1.weight", "conv-1.bias"]


def test_broken_case_names_file_and_field(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "optimizers").mkdir()
    (tmp_path / "models" / "m.json").write_text(json.dumps({"name": "m", "model": {"type": "Linear"}}))
    with pytest.raises(CaseError, match=r"m\.json.*'input_shape'"):
        load_catalogue(tmp_path)
    (tmp_path / "models" / "m.json").write_text("{not json")
    with pytest.raises(CaseError, match="invalid JSON at line 1"):
        load_catalogue(tmp_path)


def test_tensor_shapes_may_restrict_dtypes_and_add_features():
    from harness.cases import parse_tensor_cases
    data = {"dtypes": ["uint8", "float32"], "shapes": {
        "v": {"shape": [3]}, "big": {"shape": [5], "dtypes": ["uint8"], "features": ["large"]}}}
    cases = {c.name: c for c in parse_tensor_cases(data, "t.json")}
    assert sorted(cases) == ["tensor_float32_v", "tensor_uint8_big", "tensor_uint8_v"]
    assert "large" in cases["tensor_uint8_big"].features and "large" not in cases["tensor_uint8_v"].features
    data["shapes"]["big"]["dtypes"] = ["int4"]
    with pytest.raises(CaseError, match=r"shapes\.big\.dtypes"):
        parse_tensor_cases(data, "t.json")
