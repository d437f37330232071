"""The model zoo in the pythonnet driver: a ``TorchVision`` spec built by TorchSharp's own
TorchVision package (``TorchSharp.torchvision.models.<arch>``), as dotnet/Worker/Zoo.cs does;
harness/cases/zoo.py says what a zoo case is."""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

if __package__:  # imported as harness.drivers.pythonnet_host.* (the tests)
    from .pn_common import Declined, Net, Req
else:  # run as a script inside the host: its siblings are beside it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pn_common import Declined, Net, Req  # type: ignore[no-redef,import]

# weights_file / skipfc: TorchVision's documented loading path (harness/checks/zoo_docs.py)
_KNOWN = ("type", "arch", "num_classes", "dropout", "transform_input", "aux_logits", "weights_file", "skipfc")
_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
            "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2")
_VGGS = tuple(f"vgg{n}{bn}" for n in (11, 13, 16, 19) for bn in ("", "_bn"))


def zoo_maker(net: Net) -> Callable[[Req], Any]:
    """The maker of ``TorchVision`` specs (None-safe: a host without TorchVision.dll declines)."""
    def make(req: Req) -> Any:
        req.only(*_KNOWN[1:])
        try:
            importlib.import_module("clr").AddReference("TorchVision")
        except Exception as exc:  # the build pins no TorchVision for this TorchSharp version
            raise Declined(f"unavailable: this host has no TorchVision ({exc})") from exc
        models = importlib.import_module("TorchSharp").torchvision.models
        arch = req.text("arch")
        classes = int(req.integer("num_classes", 1000))
        f32 = net.System.Single
        wf, skipfc = req.text("weights_file", None), bool(req.flag("skipfc", True))
        if wf is not None and arch.startswith("mobilenet"):
            raise Declined(f"TorchVision's {arch} constructor takes no weights_file")
        if arch in _RESNETS:
            return getattr(models, arch)(classes, weights_file=wf, skipfc=skipfc)
        if arch in _VGGS or arch == "alexnet":
            return getattr(models, arch)(classes, f32(req.number("dropout", 0.5)), wf, skipfc)
        if arch == "googlenet":
            return models.googlenet(classes, bool(req.flag("transform_input", False)), wf, skipfc,
                                    f32(req.number("dropout", 0.2)))
        if arch == "inception_v3":
            return models.inception_v3(classes, f32(req.number("dropout", 0.5)),
                                       bool(req.flag("transform_input", False)), wf, skipfc)
        if arch == "mobilenet_v2":
            return models.mobilenet_v2(classes, 1.0, None, 8, None, None, float(req.number("dropout", 0.2)))
        if arch in ("mobilenet_v3_small", "mobilenet_v3_large"):
            if classes != 1000 or abs(float(req.number("dropout", 0.2)) - 0.2) > 1e-12:
                raise Declined(f"TorchVision's {arch}() takes no arguments: "
                               "it builds num_classes=1000, dropout=0.2 only")
            return getattr(models, arch)()
        raise Declined(f"TorchVision has no model {arch!r}")
    return make
