"""Module specs (docs/protocol.md "Case specs") -> TorchSharp modules, through ``clr``."""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

if __package__:  # imported as harness.drivers.pythonnet_host.* (the tests)
    from .pn_common import BadRequest, Net, Req, lacks
    from .pn_zoo import zoo_maker
else:  # run as a script inside the host: its siblings are beside it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pn_common import BadRequest, Net, Req, lacks  # type: ignore[no-redef,import]
    from pn_zoo import zoo_maker  # type: ignore[no-redef,import]


# --- modules ---------------------------------------------------------------------------------
class ModuleFactory:
    """Case module specs (PyTorch's constructor names and defaults) -> TorchSharp modules."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.stand_ins: list[Any] = []  # "Module" specs built as a Sequential
        self.makers: dict[str, Callable[[Req], Any]] = {
            "Sequential": self.sequential, "Module": self.module, "Linear": self.linear,
            "Conv1d": self.conv1d, "Conv2d": self.conv2d,
            "BatchNorm1d": self.batchnorm1d, "BatchNorm2d": self.batchnorm2d,
            "ReLU": self.relu, "Tanh": self.tanh, "MaxPool2d": self.maxpool2d, "Flatten": self.flatten,
            "Conv3d": self.conv3d, "BatchNorm3d": self.batchnorm3d, "PReLU": self.prelu, "GELU": self.gelu,
            "ConvTranspose2d": self.convtranspose2d, "LayerNorm": self.layernorm, "GroupNorm": self.groupnorm,
            "InstanceNorm2d": self.instancenorm2d,
            "TorchVision": zoo_maker(net),  # the model zoo (pn_zoo.py)
        }

    def is_stand_in(self, module: Any) -> bool:
        return any(module.Equals(m) for m in self.stand_ins)

    def build(self, spec: Any, where: str) -> Any:
        req = Req(spec, where)
        kind = req.text("type")
        maker = self.makers.get(kind)
        if maker is None:
            raise lacks(f"module type {kind!r} (it builds: {', '.join(self.makers)})")
        return maker(req)

    def module(self, req: Req) -> Any:
        """A custom module whose fields are its children, run in order. pythonnet 3.2.1 cannot
        subclass TorchSharp's Module<Tensor, Tensor> (no parameterless constructor), so this is
        a Sequential: same keys, same order, same forward, when every child maps a tensor to a
        tensor. TorchSharp's Sequential leaves buffers registered on itself out of its
        state_dict (cases/expected_failures), so state put on such a container is declined."""
        seq = self.sequential(req)
        self.stand_ins.append(seq)
        return seq

    def sequential(self, req: Req) -> Any:
        req.only("children")
        children = req.get("children", list, what="a list of [name, spec]")
        seq = self.net.torch.nn.Sequential()
        for i, entry in enumerate(children):
            if (not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str)
                    or not isinstance(entry[1], dict)):
                raise BadRequest(f"{req.where}.children[{i}]: each child must be [name, spec]")
            name, spec = entry
            seq.append(name, self.build(spec, f"{req.where}/{name}"))
        return seq

    def linear(self, req: Req) -> Any:
        req.only("in_features", "out_features", "bias")
        return self.net.torch.nn.Linear(self.net.System.Int64(req.integer("in_features")),
                                        self.net.System.Int64(req.integer("out_features")), req.flag("bias", True))

    def _single(self, req: Req, key: str, default: int | None) -> int:
        value = req.data.get(key, default)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise lacks(f"{key}={json.dumps(value)} in {req.where} (only one integer per dimension)")
        return value

    def _square(self, req: Req, key: str, default: int | None) -> int:
        value = req.data.get(key, default)
        if isinstance(value, list) and len(value) == 2 and value[0] == value[1]:
            value = value[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise lacks(f"{key}={json.dumps(value)} in {req.where} (only square sizes)")
        return value

    def _conv(self, req: Req, factory: Any, size: Callable[[Req, str, int | None], int]) -> Any:
        req.only("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
        i64 = self.net.System.Int64
        if "kernel_size" not in req.data:
            raise BadRequest(f"{req.where}: missing field 'kernel_size'")
        return factory(i64(req.integer("in_channels")), i64(req.integer("out_channels")),
                       i64(size(req, "kernel_size", None)), i64(size(req, "stride", 1)),
                       i64(size(req, "padding", 0)), i64(size(req, "dilation", 1)),
                       self.net.TorchSharp.PaddingModes.Zeros, i64(req.integer("groups", 1)), req.flag("bias", True))

    def conv1d(self, req: Req) -> Any:
        return self._conv(req, self.net.torch.nn.Conv1d, self._single)

    def _pair(self, req: Req, key: str, default: int | None) -> tuple[int, int]:
        value = req.data.get(key, default)
        if value is None:
            raise BadRequest(f"{req.where}: missing field {key!r}")
        pair = [value, value] if isinstance(value, int) else value
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
            raise BadRequest(f"{req.where}: field {key!r} must be an integer or a list of 2 integers")
        return pair[0], pair[1]

    def _tuple(self, pair: tuple[int, int], nullable: bool = True) -> Any:
        System = self.net.System
        vt = System.ValueTuple[System.Int64, System.Int64](System.Int64(pair[0]), System.Int64(pair[1]))
        return System.Nullable[System.ValueTuple[System.Int64, System.Int64]](vt) if nullable else vt

    def conv2d(self, req: Req) -> Any:
        sizes = {k: self._pair(req, k, d) for k, d in
                 (("kernel_size", None), ("stride", 1), ("padding", 0), ("dilation", 1))}
        if all(a == b for a, b in sizes.values()):
            return self._conv(req, self.net.torch.nn.Conv2d, self._square)
        # A rectangular kernel, stride, padding or dilation: the (long, long) overload.
        req.only("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias")
        i64 = self.net.System.Int64
        return self.net.torch.nn.Conv2d(
            i64(req.integer("in_channels")), i64(req.integer("out_channels")),
            self._tuple(sizes["kernel_size"], nullable=False), self._tuple(sizes["stride"]),
            self._tuple(sizes["padding"]), self._tuple(sizes["dilation"]), self.net.TorchSharp.PaddingModes.Zeros,
            i64(req.integer("groups", 1)), req.flag("bias", True), None, None)

    def convtranspose2d(self, req: Req) -> Any:
        req.only("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups",
                 "bias", "dilation")
        i64 = self.net.System.Int64
        return self.net.torch.nn.ConvTranspose2d(
            i64(req.integer("in_channels")), i64(req.integer("out_channels")),
            self._tuple(self._pair(req, "kernel_size", None), nullable=False),
            self._tuple(self._pair(req, "stride", 1)), self._tuple(self._pair(req, "padding", 0)),
            self._tuple(self._pair(req, "output_padding", 0)), self._tuple(self._pair(req, "dilation", 1)),
            self.net.TorchSharp.PaddingModes.Zeros, i64(req.integer("groups", 1)), req.flag("bias", True), None, None)

    def _cube(self, req: Req, key: str, default: int | None) -> int:
        value = req.data.get(key, default)
        if isinstance(value, list) and len(value) == 3 and value[0] == value[1] == value[2]:
            value = value[0]
        if not isinstance(value, int) or isinstance(value, bool):
            raise lacks(f"{key}={json.dumps(value)} in {req.where} (only cubic sizes)")
        return value

    def conv3d(self, req: Req) -> Any:
        return self._conv(req, self.net.torch.nn.Conv3d, self._cube)

    def batchnorm3d(self, req: Req) -> Any:
        return self._batchnorm(req, self.net.torch.nn.BatchNorm3d)

    def prelu(self, req: Req) -> Any:
        req.only("num_parameters", "init")
        return self.net.torch.nn.PReLU(self.net.System.Int64(req.integer("num_parameters", 1)),
                                       req.number("init", 0.25),
                                       None, None)

    def gelu(self, req: Req) -> Any:
        req.only("approximate")
        if req.text("approximate", "none") != "none":
            raise lacks(f"GELU approximate={req.data['approximate']!r}")
        return self.net.torch.nn.GELU(False)

    def layernorm(self, req: Req) -> Any:
        req.only("normalized_shape", "eps", "elementwise_affine", "bias")
        shape = req.data.get("normalized_shape")
        dims = [shape] if isinstance(shape, int) and not isinstance(shape, bool) else req.ints("normalized_shape")
        return self.net.torch.nn.LayerNorm(self.net.longs(dims), req.number("eps", 1e-5),
                                           req.flag("elementwise_affine", True), req.flag("bias", True), None, None)

    def groupnorm(self, req: Req) -> Any:
        req.only("num_groups", "num_channels", "eps", "affine")
        i64 = self.net.System.Int64
        return self.net.torch.nn.GroupNorm(i64(req.integer("num_groups")), i64(req.integer("num_channels")),
                                           req.number("eps", 1e-5), req.flag("affine", True), None, None)

    def instancenorm2d(self, req: Req) -> Any:
        req.only("num_features", "eps", "momentum", "affine", "track_running_stats")
        # PyTorch's InstanceNorm defaults differ from BatchNorm's: no affine, no running stats.
        return self.net.torch.nn.InstanceNorm2d(self.net.System.Int64(req.integer("num_features")),
                                                req.number("eps", 1e-5), req.number("momentum", 0.1),
                                                req.flag("affine", False), req.flag("track_running_stats", False),
                                                None, None)

    def _batchnorm(self, req: Req, factory: Any) -> Any:
        req.only("num_features", "eps", "momentum", "affine", "track_running_stats")
        return factory(self.net.System.Int64(req.integer("num_features")), req.number("eps", 1e-5),
                       req.number("momentum", 0.1), req.flag("affine", True), req.flag("track_running_stats", True))

    def batchnorm1d(self, req: Req) -> Any:
        return self._batchnorm(req, self.net.torch.nn.BatchNorm1d)

    def batchnorm2d(self, req: Req) -> Any:
        return self._batchnorm(req, self.net.torch.nn.BatchNorm2d)

    def relu(self, req: Req) -> Any:
        req.only()
        return self.net.torch.nn.ReLU(False)

    def tanh(self, req: Req) -> Any:
        req.only()
        return self.net.torch.nn.Tanh(False)

    def maxpool2d(self, req: Req) -> Any:
        req.only("kernel_size", "stride")
        kernel = self._square(req, "kernel_size", None)
        stride = self._square(req, "stride", kernel)
        nullable = self.net.System.Nullable[self.net.System.Int64]
        return self.net.torch.nn.MaxPool2d(self.net.System.Int64(kernel), nullable(self.net.System.Int64(stride)))

    def flatten(self, req: Req) -> Any:
        req.only("start_dim", "end_dim")
        return self.net.torch.nn.Flatten(self.net.System.Int64(req.integer("start_dim", 1)),
                                         self.net.System.Int64(req.integer("end_dim", -1)))
