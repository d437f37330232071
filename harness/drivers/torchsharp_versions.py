"""NuGet facts for building the TorchSharp worker, read from dotnet/torchsharp-versions.json
(beside the .NET project, so the TorchSharp/LibTorch pairing lives with the project it
builds): the default version, the LibTorch version each TorchSharp version depends on, and
the restore messages that mean "the feed does not serve this package"."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.paths import DOTNET_DIR

VERSIONS_FILE = DOTNET_DIR / "torchsharp-versions.json"


class VersionTableError(ValueError):
    """dotnet/torchsharp-versions.json is missing or not in the shape described in its comment."""


def read_version_table(path: Path = VERSIONS_FILE) -> tuple[str, dict[str, str], tuple[str, ...]]:
    """(default version, TorchSharp version -> LibTorch version, restore texts meaning "not served")."""
    data = _read(path)
    default, libtorch, unserved = data["default"], data["libtorch"], data["unserved"]
    if not (isinstance(default, str) and isinstance(libtorch, dict) and isinstance(unserved, list)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in libtorch.items())
            and all(isinstance(u, str) and u for u in unserved)):
        raise VersionTableError(f"{path}: 'default' must be a string, 'libtorch' an object of strings and "
                                f"'unserved' a list of non-empty strings")
    if default not in libtorch:
        raise VersionTableError(f"{path}: the default version {default} has no LibTorch version in 'libtorch'")
    return default, dict(libtorch), tuple(unserved)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError("the table must be a JSON object")
        for key in ("default", "libtorch", "unserved"):
            if key not in data:
                raise KeyError(key)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VersionTableError(f"{path}: cannot read the TorchSharp version table: {exc!r}") from exc
    return data


def read_companions(path: Path = VERSIONS_FILE) -> dict[str, dict[str, str]]:
    """TorchSharp version -> {NuGet package id -> version} of the packages built beside it
    (TorchSharp.PyBridge, TorchVision); a version without an entry gets none."""
    table = _read(path).get("companions", {})
    if not (isinstance(table, dict) and all(
            isinstance(v, dict) and all(isinstance(p, str) and isinstance(x, str) for p, x in v.items())
            for v in table.values())):
        raise VersionTableError(f"{path}: 'companions' must map a TorchSharp version to an object of "
                                "package id -> version strings")
    return {str(k): dict(v) for k, v in table.items()}


# The MSBuild property each companion package's version is passed in (Worker.csproj, PyHost.csproj).
COMPANION_PROPERTIES = {"TorchSharp.PyBridge": "PyBridgeVersion", "TorchVision": "TorchVisionVersion"}


def companion_props(version: str) -> list[str]:
    """The ``-p:`` arguments that pin ``version``'s companion packages in a build."""
    pins = COMPANIONS.get(version, {})
    return [f"-p:{prop}={pins[pkg]}" for pkg, prop in COMPANION_PROPERTIES.items() if pkg in pins]


# LIBTORCH_FOR: the LibTorch each TorchSharp release is built against (its NuGet dependency).
DEFAULT_VERSION, LIBTORCH_FOR, NOT_SERVED = read_version_table()
COMPANIONS = read_companions()
