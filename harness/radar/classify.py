"""What a change touches, from the paths it changes.

* ``native``: a file under ``src/Native`` (LibTorchSharp, the C++ layer): a managed-only
  build runs against the *released* native library, so it cannot test this change; the
  radar lists it as "needs a native build" with those files and does not run it;
* ``managed``: no native file, and at least one input of the managed ``TorchSharp.dll``
  build (``src/TorchSharp/``, ``build/``, the MSBuild files and SDK pins at the top of the
  tree or of ``src/``): built and run;
* ``other``: neither (tests, docs, CI, examples, the other libraries): listed, not built;
* ``empty``: no file differs from the merge base.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NATIVE_PREFIX = "src/Native/"
MANAGED_PREFIXES = ("src/TorchSharp/", "build/")
NOT_MANAGED_PREFIXES = ("build/ci/",)  # CI job templates: no input of the build
MANAGED_FILES = frozenset({"Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props",
                           "global.json", "NuGet.config", "nuget.config", "src/Directory.Build.props",
                           "src/Directory.Build.targets", "src/Directory.Packages.props"})

MANAGED, NATIVE, OTHER, EMPTY = "managed", "native", "other", "empty"
CLASS_TEXT = {MANAGED: "managed-only", NATIVE: "needs a native build", OTHER: "touches neither", EMPTY: "empty diff"}


def is_native(path: str) -> bool:
    return path.startswith(NATIVE_PREFIX)


def is_managed(path: str) -> bool:
    return (path.startswith(MANAGED_PREFIXES) and not path.startswith(NOT_MANAGED_PREFIXES)) or path in MANAGED_FILES


@dataclass(frozen=True)
class Classification:
    kind: str  # MANAGED / NATIVE / OTHER / EMPTY
    native: tuple[str, ...]  # files under src/Native
    managed: tuple[str, ...]  # inputs of the managed build
    other: tuple[str, ...]  # the rest

    @property
    def text(self) -> str:
        return CLASS_TEXT[self.kind]

    @property
    def runs(self) -> bool:
        return self.kind == MANAGED


def classify(paths: Sequence[str]) -> Classification:
    native = tuple(sorted(p for p in paths if is_native(p)))
    managed = tuple(sorted(p for p in paths if not is_native(p) and is_managed(p)))
    other = tuple(sorted(p for p in paths if not is_native(p) and not is_managed(p)))
    kind = NATIVE if native else MANAGED if managed else OTHER if other else EMPTY
    return Classification(kind, native, managed, other)
