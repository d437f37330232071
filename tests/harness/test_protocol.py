"""The transport and client classify every way a worker exchange can end (FAKE worker)."""
import sys
from pathlib import Path

import pytest

from harness.drivers.protocol import (
    SubprocessTransport,
    WorkerClient,
    WorkerCrash,
    WorkerParseError,
    WorkerRuntimeError,
    WorkerSkipped,
    WorkerTimeout,
)

FAKE = Path(__file__).with_name("fake_worker.py")


@pytest.fixture
def client():
    transport = SubprocessTransport([sys.executable, str(FAKE)])
    yield WorkerClient(transport, timeout=10)
    transport.close()


def test_ok_skips_non_protocol_stdout(client):
    assert client.call("echo", value=[1, 2]) == {"echo": [1, 2]}
    assert client.call("echo", value="again") == {"echo": "again"}


def test_runtime_error_carries_type_message_stack(client):
    with pytest.raises(WorkerRuntimeError) as info:
        client.call("boom")
    assert info.value.error_type == "ArgumentException"
    assert "bad thing" in str(info.value)
    assert info.value.stack == "at X"
    assert client.call("echo", value=1) == {"echo": 1}  # the worker is still usable


def test_skipped_and_parse_error(client):
    with pytest.raises(WorkerSkipped, match="not here"):
        client.call("nope")
    with pytest.raises(WorkerParseError, match="unknown op"):
        client.call("what")


def test_timeout_kills_the_worker(client):
    with pytest.raises(WorkerTimeout, match="'sleep'"):
        client.call("sleep", timeout=1)
    assert not client.transport.alive


def test_crash_reports_exit_code_and_stderr(client):
    with pytest.raises(WorkerCrash) as info:
        client.call("die")
    assert "exit code 3" in str(info.value)
    assert "dying" in str(info.value)
    with pytest.raises(WorkerCrash, match="not running"):
        client.call("echo")
