"""The pythonnet server's pure-Python parts (request fields, optimizer kwargs, f64 bits,
the protocol loop's error statuses), without .NET: the server's TorchSharp side is covered
by tests/conformance/test_pythonnet.py against the real host."""
from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from harness.drivers.pythonnet_host import pn_common as srv
from harness.drivers.pythonnet_host import pn_loop, pn_optimizers


def test_f64_bits_are_the_protocol_encoding() -> None:
    assert srv.f64_bits(1e-3) == struct.pack(">d", 1e-3).hex() == "3f50624dd2f1a9fc"
    assert srv.f64_bits(-0.0) == "8000000000000000"


def test_request_fields_name_what_is_wrong() -> None:
    req = srv.Req({"a": 1, "b": True, "c": "x", "d": [1, "2"]}, "build")
    assert req.integer("a") == 1
    with pytest.raises(srv.BadRequest, match=r"build: field 'b' must be an integer"):
        req.integer("b")  # JSON true is not an integer
    with pytest.raises(srv.BadRequest, match=r"build: missing field 'zz'"):
        req.text("zz")
    with pytest.raises(srv.BadRequest, match=r"field 'd' must be a list of integers"):
        req.ints("d")
    with pytest.raises(srv.BadRequest, match=r"unknown argument\(s\) \['c', 'd'\]"):
        req.only("a", "b")


def _fields(kind: str, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    row = pn_optimizers.OPTIMIZERS[kind]
    return list(pn_optimizers.OptimizerFactory._fields(kind, row, kwargs, "optimizer.groups[0]"))


def test_pytorch_kwargs_become_torchsharp_fields() -> None:
    assert _fields("Adam", {"lr": 0.1, "betas": [0.8, 0.9], "amsgrad": True}) == [
        ("lr", 0.1), ("beta1", 0.8), ("beta2", 0.9), ("amsgrad", True)]
    assert _fields("Rprop", {"etas": [0.4, 1.3], "step_sizes": [1e-5, 10]}) == [
        ("etaminus", 0.4), ("etaplus", 1.3), ("min_step", 1e-5), ("max_step", 10.0)]
    assert _fields("NAdam", {"maximize": False, "foreach": None}) == []  # no field, but harmless


def test_a_kwarg_torchsharp_has_no_field_for_is_declined_when_set() -> None:
    with pytest.raises(srv.Declined, match="TorchSharp's NAdam has no option 'maximize'"):
        _fields("NAdam", {"maximize": True})


def test_mistyped_option_is_a_parse_error() -> None:
    with pytest.raises(srv.BadRequest, match="'betas' must be a list of two numbers"):
        _fields("Adam", {"betas": [0.9]})
    with pytest.raises(srv.BadRequest, match="option 'amsgrad' must be true or false"):
        _fields("Adam", {"amsgrad": 1})


class FakeSession:
    """A FAKE session (no .NET): ops that answer, decline and throw."""

    def __init__(self) -> None:
        self.ops = {"ok": lambda r: {"x": 1}, "no": self.no, "boom": self.boom, "shutdown": lambda r: {}}

    @staticmethod
    def no(req: srv.Req) -> dict[str, Any]:
        raise srv.lacks("module type 'LSTM'")

    @staticmethod
    def boom(req: srv.Req) -> dict[str, Any]:
        raise ValueError("bad")


@pytest.mark.parametrize(("line", "status", "done"), [
    ('{"id": 1, "op": "ok"}', "ok", False),
    ('{"id": 2, "op": "no"}', "skipped", False),
    ('{"id": 3, "op": "boom"}', "runtime_error", False),
    ('{"id": 4, "op": "what"}', "parse_error", False),
    ('{"id": 5', "parse_error", False),
    ('{"id": 6, "op": "shutdown"}', "ok", True),
])
def test_every_request_gets_one_typed_answer(line: str, status: str, done: bool) -> None:
    response, finished = pn_loop.handle(FakeSession().ops, line)
    assert response["status"] == status
    assert finished is done
    json.dumps(response)  # always serialisable
    if status == "skipped":
        assert response["reason"] == "pythonnet driver lacks module type 'LSTM'"
    if status == "runtime_error":
        assert response["error"]["type"] == "ValueError" and response["error"]["message"] == "bad"
