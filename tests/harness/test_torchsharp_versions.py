"""dotnet/torchsharp-versions.json: the NuGet facts the driver builds the worker with."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.drivers.torchsharp import tracked_versions
from harness.drivers.torchsharp_versions import (
    DEFAULT_VERSION,
    LIBTORCH_FOR,
    VERSIONS_FILE,
    VersionTableError,
    read_version_table,
)


def test_every_tracked_version_can_be_built() -> None:
    assert DEFAULT_VERSION in tracked_versions()
    assert [v for v in tracked_versions() if v not in LIBTORCH_FOR] == []


def test_the_shipped_table_reads() -> None:
    default, libtorch, unserved = read_version_table()
    assert libtorch[default]
    assert "NU1102" in unserved  # restore's "no such version": an 'unavailable' column, not an error


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "torchsharp-versions.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("data, message", [
    ({"libtorch": {"1.0.0": "2.0.0"}, "unserved": []}, "'default'"),
    ({"default": "1.0.0", "libtorch": {"1.0.0": 2}, "unserved": []}, "an object of strings"),
    ({"default": "1.0.0", "libtorch": {"1.0.0": "2.0.0"}, "unserved": [""]}, "non-empty strings"),
    ({"default": "9.9.9", "libtorch": {"1.0.0": "2.0.0"}, "unserved": []}, "9.9.9 has no LibTorch"),
])
def test_a_bad_table_is_a_typed_error_naming_the_file(tmp_path: Path, data: object, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(VersionTableError, match=message) as info:
        read_version_table(path)
    assert str(path) in str(info.value)


def test_a_missing_or_broken_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(VersionTableError, match="cannot read"):
        read_version_table(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(VersionTableError, match="cannot read"):
        read_version_table(broken)
    assert VERSIONS_FILE.parent.name == "dotnet"
