"""NuGet facts for building the TorchSharp worker, read from dotnet/torchsharp-versions.json
(beside the .NET project, so the TorchSharp/LibTorch pairing lives with the project it
builds): the default version, the LibTorch version each TorchSharp version depends on, and
the restore messages that mean "the feed does not serve this package"."""
from __future__ import annotations

import json
from pathlib import Path

from harness.paths import DOTNET_DIR

VERSIONS_FILE = DOTNET_DIR / "torchsharp-versions.json"


class VersionTableError(ValueError):
    """dotnet/torchsharp-versions.json is missing or not in the shape described in its comment."""


def read_version_table(path: Path = VERSIONS_FILE) -> tuple[str, dict[str, str], tuple[str, ...]]:
    """(default version, TorchSharp version -> LibTorch version, restore texts meaning "not served")."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        default, libtorch, unserved = data["default"], data["libtorch"], data["unserved"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VersionTableError(f"{path}: cannot read the TorchSharp version table: {exc!r}") from exc
    if not (isinstance(default, str) and isinstance(libtorch, dict) and isinstance(unserved, list)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in libtorch.items())
            and all(isinstance(u, str) and u for u in unserved)):
        raise VersionTableError(f"{path}: 'default' must be a string, 'libtorch' an object of strings and "
                                f"'unserved' a list of non-empty strings")
    if default not in libtorch:
        raise VersionTableError(f"{path}: the default version {default} has no LibTorch version in 'libtorch'")
    return default, dict(libtorch), tuple(unserved)


# LIBTORCH_FOR: the LibTorch each TorchSharp release is built against (its NuGet dependency).
DEFAULT_VERSION, LIBTORCH_FOR, NOT_SERVED = read_version_table()
