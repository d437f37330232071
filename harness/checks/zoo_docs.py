"""The model zoo's documented path (TorchSharp's TorchVision docs, e.g. InceptionV3.cs and
ResNet.cs: save the torchvision model's state with exportsd.save_state_dict, then pass the
file to the TorchVision constructor's ``weights_file``; ``skipfc`` defaults to true).

``zoo_weights_file``  PyTorch's trained state saved as a .dat file (the constructor reads no
                      other form, whatever the cell's route), then built by TorchVision four
                      ways: skipfc at its default and false, with the same num_classes and with
                      another. The details record what each gives a user (entries loaded, not
                      loaded, or the refusal); the check fails when skipfc=false does not give
                      every entry, or skipfc's default leaves out more than the final layer(s)
                      its constructor documents, or a changed num_classes with skipfc's default
                      does not load everything else.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from harness.cases import ModelCase
from harness.checks.common import make_python_state
from harness.routes.binding import bound_variant
from harness.checks.registry import Context, check, fail_if
from harness.drivers.protocol import WorkerRuntimeError

# What skipfc=true leaves out, per TorchVision's constructors (AlexNet.cs:108, VGG.cs:426,
# ResNet.cs:828, GoogleNet.cs / InceptionV3.cs:173): the last Linear, and the aux head's.
SKIPPED_BY_SKIPFC = ("fc.weight", "fc.bias", "AuxLogits.fc.weight", "AuxLogits.fc.bias",
                     "classifier.6.weight", "classifier.6.bias")


def _variant(case: ModelCase, path: str, skipfc: bool | None, classes: int) -> ModelCase:
    spec = {**case.model, "weights_file": path, "num_classes": classes}
    if skipfc is not None:
        spec["skipfc"] = skipfc
    return dataclasses.replace(case, model=spec)


@check("zoo_weights_file", {"zoo"}, route_independent=True,
       declines={f"zoo-{arch}": f"TorchVision's {arch} constructor takes no weights_file"
                 for arch in ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large")})
def zoo_weights_file(ctx: Context) -> None:
    """TorchVision's constructors with weights_file (skipfc default / false, same and other num_classes)."""
    case = ctx.cell.case
    assert isinstance(case, ModelCase)
    make_python_state(ctx)
    path = ctx.d / "weights_file.dat"  # the form the constructors read (Module.load), whatever the route
    with bound_variant(ctx.py, "dat"):
        ctx.py.save_module(path)
    expected = ctx.py.digest().module
    classes = int(case.model.get("num_classes", 1000))
    seen: dict[str, Any] = {}
    loaded_by: dict[str, list[str]] = {}
    for label, skipfc, n in (("skipfc default", None, classes), ("skipfc false", False, classes),
                             ("num_classes changed, skipfc default", None, classes + 1),
                             ("num_classes changed, skipfc false", False, classes + 1)):
        try:
            ctx.ts.build(_variant(case, str(path), skipfc, n), ctx.cell.device)
        except WorkerRuntimeError as exc:  # the constructor's load refused the file
            seen[label] = f"refused: {str(exc).splitlines()[0][:300]}"
            continue
        got = ctx.ts.digest().module
        loaded_by[label] = [k for k, v in expected.items() if got.get(k) == v]
        seen[label] = {"loaded": len(loaded_by[label]),
                       "not_loaded": [k for k in expected if k not in loaded_by[label]]}
    ctx.details["documented_path"] = seen
    problems = []
    every, head = list(expected), [k for k in expected if k in SKIPPED_BY_SKIPFC]
    rest = [k for k in every if k not in head]
    if loaded_by.get("skipfc false") != every:
        problems.append(f"skipfc=false, same num_classes: {seen['skipfc false']} (expected all {len(every)} entries)")
    if sorted(loaded_by.get("skipfc default", [])) != sorted(rest):
        problems.append(f"skipfc default: {seen['skipfc default']} (expected all but {head})")
    changed = "num_classes changed, skipfc default"
    if sorted(loaded_by.get(changed, [])) != sorted(rest):
        problems.append(f"{changed}: {seen[changed]} (expected all but {head})")
    fail_if(problems, "TorchVision's weights_file path gives a user other state than documented", ctx.details)
