r"""The worker protocol, harness side (spec: docs/protocol.md, version 1).

```
 harness (Python)                                   worker (C#, one TorchSharp version)
 ----------------                                   -----------------------------------
  spawn  dotnet Worker.dll  ───────────────────────▶ starts, prints nothing until asked
  {"id":1,"op":"hello"}\n            ── stdin ──▶
                                     ◀─ stdout ──  {"id":1,"status":"ok","result":{...}}\n
  {"id":2,"op":"build",...}\n        ── stdin ──▶
                                     ◀─ stdout ──  {"id":2,"status":"runtime_error","error":{...}}\n
  ...                                               (stderr: free-form log, never parsed)
  {"id":N,"op":"shutdown"}\n         ── stdin ──▶   exits 0
  no reply within the deadline  ⇒  harness kills the process: outcome "timeout", restart
  EOF / dead pipe              ⇒  outcome "crash" (exit code + stderr tail), restart
```

Responses are told apart as the protobuf conformance runner does: ``ok``; the worker could
not parse the request (:class:`WorkerParseError`, a harness bug); the operation ran and
threw (:class:`WorkerRuntimeError`, usually a finding); the worker declines by design
(:class:`WorkerSkipped`); no answer in time (:class:`WorkerTimeout`); the process died
(:class:`WorkerCrash`).

The transport sits behind :class:`Transport`, so an in-process transport (pythonnet,
where it exists) can replace :class:`SubprocessTransport` without touching the drivers.
"""
from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from harness.verdicts.outcomes import Verdict

PROTOCOL_VERSION = 1


class WorkerError(Exception):
    """Base of everything a worker exchange can end in, other than ``ok``."""

    kind = "error"

    def as_verdict(self) -> Verdict:
        """A dead, stuck or garbled worker: an error cell, and the worker restarts."""
        return Verdict("error", f"{self.kind}: {str(self)[:1500]}", {"worker": self.kind}, restart=True)


class WorkerParseError(WorkerError):
    kind = "parse_error"


class WorkerRuntimeError(WorkerError):
    kind = "runtime_error"

    def __init__(self, op: str, error: dict[str, Any]):
        self.op = op
        self.error_type = str(error.get("type", "?"))
        self.error_message = str(error.get("message", ""))
        self.stack = str(error.get("stack", ""))
        super().__init__(f"{op}: {self.error_type}: {self.error_message}")

    def as_verdict(self) -> Verdict:
        """The implementation threw: the cell fails with its exception and stack."""
        return Verdict("fail", f"TorchSharp threw in {self}", {"stack": self.stack[-2000:]})


class WorkerSkipped(WorkerError):
    kind = "skipped"

    def as_verdict(self) -> Verdict:
        return Verdict("skip", f"TorchSharp declined: {self}")


class WorkerTimeout(WorkerError):
    kind = "timeout"


class WorkerCrash(WorkerError):
    kind = "crash"


class ProcessFailed(RuntimeError):
    """A subprocess failed; the message carries its command line and both streams."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.argv, self.returncode, self.stdout, self.stderr = list(argv), returncode, stdout, stderr
        super().__init__(
            f"command failed (exit {returncode}): {' '.join(argv)}\n"
            f"--- stdout ---\n{stdout[-4000:]}\n--- stderr ---\n{stderr[-4000:]}"
        )


class Transport(ABC):
    """Carries one request and brings back its response (a dict) or raises WorkerError."""

    @abstractmethod
    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]: ...

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def alive(self) -> bool: ...


class SubprocessTransport(Transport):
    """JSON lines over a child's stdin/stdout; stderr is drained into a bounded tail."""

    def __init__(self, argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None):
        self.argv = list(argv)
        self._proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})}, cwd=cwd, text=True, encoding="utf-8", bufsize=1,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        assert self._proc.stdout is not None  # set by Popen(stdout=PIPE)
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self._proc.stderr is not None  # set by Popen(stderr=PIPE)
        for line in self._proc.stderr:
            self._stderr.append(line)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def stderr_tail(self) -> str:
        return "".join(self._stderr)[-4000:]

    def _crash(self, what: str) -> WorkerCrash:
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return WorkerCrash(
            f"worker {what} (exit code {code}); command: {' '.join(self.argv)}\n"
            f"--- stderr tail ---\n{self.stderr_tail()}"
        )

    def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        if not self.alive:
            raise self._crash("is not running")
        assert self._proc.stdin is not None  # set by Popen(stdin=PIPE)
        try:
            self._proc.stdin.write(json.dumps(message) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._crash(f"closed its stdin ({exc})") from exc
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise WorkerTimeout(
                    f"no response to {message.get('op')!r} within {timeout:.0f} s; worker killed\n"
                    f"--- stderr tail ---\n{self.stderr_tail()}"
                )
            try:
                line = self._lines.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            if line is None:
                raise self._crash(f"died during {message.get('op')!r}")
            line = line.strip()
            if not line:
                continue
            try:
                response = json.loads(line)
            except json.JSONDecodeError:
                # Something other than the protocol reached stdout (a native library's
                # print, say): keep it as evidence and keep waiting for the real answer.
                self._stderr.append("[stdout, not protocol] " + line + "\n")
                continue
            if response.get("id") != message.get("id"):
                raise WorkerCrash(f"protocol desynchronised: sent id {message.get('id')}, got {line[:200]}")
            return dict(response)

    def kill(self) -> None:
        if self.alive:
            self._proc.kill()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - kill -9 does not hang
            pass

    def close(self) -> None:
        if self.alive:
            try:
                assert self._proc.stdin is not None  # set by Popen(stdin=PIPE)
                self._proc.stdin.write(json.dumps({"id": 0, "op": "shutdown"}) + "\n")
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.kill()


class WorkerClient:
    """Numbers requests and turns non-ok responses into the typed WorkerError family."""

    def __init__(self, transport: Transport, timeout: float = 120.0):
        self.transport = transport
        self.timeout = timeout
        self._next_id = 1

    def call(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        message = {"id": self._next_id, "op": op, **fields}
        self._next_id += 1
        response = self.transport.request(message, timeout or self.timeout)
        status = response.get("status")
        if status == "ok":
            return dict(response.get("result") or {})
        if status == "skipped":
            raise WorkerSkipped(str(response.get("reason", "skipped by the worker")))
        if status == "runtime_error":
            raise WorkerRuntimeError(op, dict(response.get("error") or {}))
        if status == "parse_error":
            err = response.get("error") or {}
            raise WorkerParseError(f"{op}: worker could not parse the request: {err.get('message', err)}")
        raise WorkerCrash(f"{op}: unknown response status {status!r}: {str(response)[:300]}")
