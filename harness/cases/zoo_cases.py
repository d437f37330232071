"""Writes the zoo's case files (cases/zoo/): ``python3 -m harness.cases.zoo_cases``.

One model case per architecture both libraries build (harness/cases/zoo.py ARCHS) and, for each, an
SGD-with-momentum and an AdamW optimizer case over all its parameters (the continue_* checks).
The optimizer cases list the parameter names torchvision gives (``named_parameters``): if
TorchVision names them otherwise, TorchSharp's build says so. Run again after changing the
table below; the files are kept in the repository (the PyTorch 2.6 worker reads them too).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.paths import CASES_DIR
from harness.cases.zoo import ARCHS, FULL_FEATURE, ZOO_FEATURE, build_torchvision

ZOO_DIR = CASES_DIR / "zoo"
DEFAULT = ("resnet18", "mobilenet_v3_small", "googlenet", "vgg11_bn")
# the default matrix's optimizer cases: one of each optimizer (cost: benchmarks/README.md)
OPTIMIZERS_BY_DEFAULT = (("resnet18", "SGD"), ("mobilenet_v3_small", "AdamW"))
# Input size: the smallest that keeps every stage non-empty in train mode (inception_v3's
# AuxLogits needs its 17x17 map, hence 299); vgg's state (~530 MB) does not shrink with it.
_SIDE = {"inception_v3": 299, "alexnet": 64}
# Train steps (SGD lr 0.01, loss mean(out^2)): mobilenet_v3's eval outputs stay near 1e-9 unless
# its BatchNorm running statistics move well off their init; vgg diverges after a few.
_STEPS = {"mobilenet_v3_small": 30, "mobilenet_v3_large": 30, "vgg11_bn": 1, "vgg13_bn": 1, "vgg16_bn": 1,
          "vgg19_bn": 1, "vgg11": 1, "vgg13": 1, "vgg16": 1, "vgg19": 1}


def model_spec(arch: str) -> dict[str, Any]:
    """Arguments matched on both sides: 10 classes, no dropout (a train-mode forward is then
    the same computation on both sides), no aux heads where TorchVision builds none. TorchVision's
    mobilenet_v3 constructors take no argument: 1000 classes and dropout 0.2 there."""
    if arch.startswith("mobilenet_v3"):
        return {"type": "TorchVision", "arch": arch}
    spec: dict[str, Any] = {"type": "TorchVision", "arch": arch, "num_classes": 10}
    if arch in ("alexnet", "googlenet", "inception_v3", "mobilenet_v2") or arch.startswith("vgg"):
        spec["dropout"] = 0.0
    if arch == "googlenet":
        spec["aux_logits"] = False  # TorchVision's GoogleNet has none (GoogleNet.cs: aux1/aux2 commented out)
    if arch == "inception_v3":
        spec["aux_logits"] = True  # TorchVision's InceptionV3 always builds AuxLogits
    return spec


def model_case(arch: str) -> dict[str, Any]:
    side = _SIDE.get(arch, 32 if arch.startswith("vgg") else 64)
    features = [ZOO_FEATURE, f"zoo-{arch}"] + ([] if arch in DEFAULT else [FULL_FEATURE])
    return {"name": f"zoo_{arch}", "description": f"torchvision's {arch} (PyTorch) and TorchVision's {arch} "
            "(TorchSharp), each built by its own library, trained a few steps", "model": model_spec(arch),
            "input_shape": [2, 3, side, side], "train_steps": _STEPS.get(arch, 3), "seed": 0, "features": features}


def optimizer_case(arch: str, kind: str) -> dict[str, Any]:
    names = [n for n, _ in build_torchvision(model_spec(arch)).named_parameters()]
    group: dict[str, Any] = {"params": names}
    if kind == "SGD":
        opt = {"type": "SGD", "defaults": {"lr": 0.01, "momentum": 0.9}, "groups": [group]}
    else:
        opt = {"type": "AdamW", "defaults": {"lr": 0.001, "weight_decay": 0.01}, "groups": [group]}
    default = (arch, kind) in OPTIMIZERS_BY_DEFAULT
    return {"name": f"zoo_{arch}_{kind.lower()}", "description": f"{kind} over every parameter of the zoo's {arch}",
            "model": f"zoo_{arch}", "optimizer": opt, "steps": 2,
            "features": [ZOO_FEATURE, f"zoo-{arch}", "zoo-optimizer"] + ([] if default else [FULL_FEATURE])}


def write(root: Path = ZOO_DIR) -> list[Path]:
    written = []
    for arch in ARCHS:
        for sub, data in (("models", model_case(arch)), ("optimizers", optimizer_case(arch, "SGD")),
                          ("optimizers", optimizer_case(arch, "AdamW"))):
            path = root / sub / f"{data['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    print(f"wrote {len(write())} case files under {ZOO_DIR}")
