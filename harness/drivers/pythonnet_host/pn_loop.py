"""The request loop of the pythonnet server: one JSON request a line in, one reply a line
out (docs/protocol.md), every failure an answer (standard library only)."""
from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import IO, Any

if __package__:
    from .pn_common import BadRequest, Declined, Req
else:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pn_common import BadRequest, Declined, Req  # type: ignore[no-redef,import]


# --- the loop ----------------------------------------------------------------------------------
def protocol_stream() -> IO[str]:
    """The protocol's own copy of stdout; fd 1 then points at stderr, so whatever LibTorch,
    .NET or a stray print writes cannot corrupt the replies."""
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


def _error(exc: BaseException) -> dict[str, Any]:
    inner = getattr(exc, "InnerException", None)
    while inner is not None and type(exc).__name__ in ("TargetInvocationException", "TypeInitializationException"):
        exc, inner = inner, getattr(inner, "InnerException", None)
    name = type(exc).__name__
    net_type = getattr(exc, "GetType", None)
    if callable(net_type):
        try:
            name = str(net_type().FullName)
        except Exception:  # noqa: BLE001 - a Python exception named like .NET: keep the Python name
            pass
    message = str(getattr(exc, "Message", None) or exc)
    stack = "".join(traceback.format_exception(exc))[-6000:]
    return {"type": name, "message": message, "stack": stack}


def handle(ops: Mapping[str, Callable[[Req], dict[str, Any]]], line: str) -> tuple[dict[str, Any], bool]:
    """One request line -> (its reply, whether it was shutdown); every failure is an answer."""
    ident: Any = None
    op = "?"
    try:
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadRequest(f"a request must be a JSON object, got {type(data).__name__}")
        ident = data.get("id")
        op = Req(data, "request").text("op")
        action = ops.get(op)
        if action is None:
            raise BadRequest(f"unknown op {op!r} (known: {', '.join(ops)})")
        print(f"pythonnet worker: {op} (id {ident})", file=sys.stderr, flush=True)
        result = action(Req(data, op))
        return {"id": ident, "status": "ok", "result": result}, op == "shutdown"
    except BadRequest as exc:
        print(f"pythonnet worker: {op}: parse_error: {exc}", file=sys.stderr, flush=True)
        return {"id": ident, "status": "parse_error", "error": _error(exc)}, False
    except Declined as exc:
        print(f"pythonnet worker: {op}: skipped: {exc}", file=sys.stderr, flush=True)
        return {"id": ident, "status": "skipped", "reason": str(exc)}, False
    except Exception as exc:  # noqa: BLE001 - every failure of an op is a runtime_error answer
        print(f"pythonnet worker: {op}: runtime_error:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        return {"id": ident, "status": "runtime_error", "error": _error(exc)}, False
