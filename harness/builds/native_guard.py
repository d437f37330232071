"""Will a TorchSharp build from source run against a released native library?

A managed-only build (``harness/builds/torchsharp_source.py``) runs against the released
``libLibTorchSharp.so`` of the same version. Before any cell runs, this module compares:

* the P/Invoke entry points the built ``TorchSharp.dll`` declares (read from its metadata
  by ``dotnet/PInvokeNames``, a tiny tool using System.Reflection.Metadata; nothing is
  loaded or run) with the dynamic symbols the native library exports (read from its ELF
  ``.dynsym`` here, the same set ``nm -D --defined-only`` prints). Names the released
  assembly *also* declares without an export are known and reported, not fatal (0.107.0
  has five); any other missing name makes the column unavailable (:class:`NativeIncompatible`);
* the source's ``src/Native`` with the release's (sha256 per file, stored as data in
  ``third_party/torchsharp/native-sources-<version>.sha256``): a difference cannot be
  tested by a managed-only build, so it is flagged in the provenance.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.builds.dotnet_build import locked
from harness.drivers.protocol import ProcessFailed
from harness.drivers.torchsharp import WorkerUnavailable
from harness.paths import DOTNET_DIR, ROOT

TOOL_PROJECT = DOTNET_DIR / "PInvokeNames"
NATIVE_REFERENCE_DIR = ROOT / "third_party" / "torchsharp"
NATIVE_MODULE = "LibTorchSharp"


class NativeGuardError(WorkerUnavailable):
    """The comparison itself could not be made (tool failed, unreadable library)."""


class NativeIncompatible(WorkerUnavailable):
    """The built assembly needs entry points the native library does not export."""

    def __init__(self, label: str, missing: list[str], known: list[str], library: Path, note: str = ""):
        self.missing, self.known, self.library = missing, known, library
        super().__init__(
            f"TorchSharp {label}: the build declares {len(missing)} native entry point(s) that "
            f"{library.name} does not export: {', '.join(missing)}"
            + (f" (besides {len(known)} the release also lacks: {', '.join(known)})" if known else "")
            + (f"; {note}" if note else ""))


# --- ELF dynamic symbols ------------------------------------------------------------------
_SHT_DYNSYM = 11


def elf_exports(path: Path) -> frozenset[str]:
    """Names of the defined global/weak dynamic symbols of a 64-bit little-endian ELF file
    (``nm -D --defined-only``). Raises :class:`NativeGuardError` for anything else."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NativeGuardError(f"cannot read {path}: {exc}") from exc
    if data[:4] != b"\x7fELF":
        raise NativeGuardError(f"{path}: not an ELF file (magic {data[:4]!r})")
    if data[4] != 2 or data[5] != 1:
        raise NativeGuardError(f"{path}: only 64-bit little-endian ELF is read (class {data[4]}, data {data[5]})")
    try:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        names: set[str] = set()
        for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
            if sh_type != _SHT_DYNSYM:
                continue
            str_off, str_size = sections[link][4], sections[link][5]
            strtab = data[str_off:str_off + str_size]
            for pos in range(offset + (entsize or 24), offset + size, entsize or 24):  # entry 0 is null
                st_name, st_info, _other, st_shndx = struct.unpack_from("<IBBH", data, pos)
                if st_shndx == 0 or (st_info >> 4) not in (1, 2):  # undefined, or local binding
                    continue
                end = strtab.index(b"\0", st_name)
                names.add(strtab[st_name:end].decode("utf-8", "replace"))
    except (struct.error, IndexError, ValueError) as exc:
        raise NativeGuardError(f"{path}: malformed ELF section or symbol table: {exc}") from exc
    return frozenset(names)


# --- declared P/Invoke names --------------------------------------------------------------
def _tool_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(TOOL_PROJECT.glob("*")):
        if p.is_file():
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def build_tool(build_root: Path) -> Path:
    """Build dotnet/PInvokeNames once into ``build_root/tools/pinvoke-names`` (rebuilt when
    its source changes); return its dll."""
    out = build_root / "tools" / "pinvoke-names"
    dll, stamp = out / "PInvokeNames.dll", out / ".source-hash"
    digest = _tool_hash()
    if dll.exists() and stamp.exists() and stamp.read_text() == digest:
        return dll
    with locked(build_root / "tools" / ".pinvoke-names.lock"):  # test workers: one builds
        if dll.exists() and stamp.exists() and stamp.read_text() == digest:
            return dll
        return _build_tool(out, dll, stamp, digest)


def _build_tool(out: Path, dll: Path, stamp: Path, digest: str) -> Path:
    if shutil.which("dotnet") is None:
        raise NativeGuardError("the .NET SDK (dotnet) is not on PATH")
    argv = ["dotnet", "build", str(TOOL_PROJECT / "PInvokeNames.csproj"), "-c", "Release", "-nologo", "-o", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise NativeGuardError(str(ProcessFailed(argv, proc.returncode, proc.stdout, proc.stderr)))
    stamp.write_text(digest)
    return dll


def declared_imports(assembly: Path, build_root: Path, module: str = NATIVE_MODULE) -> frozenset[str]:
    """Entry-point names ``assembly`` imports from ``module`` (case-insensitive, as the
    runtime probes it), cached beside the build tool by the assembly's sha256."""
    digest = hashlib.sha256(assembly.read_bytes()).hexdigest()
    cache = build_root / "tools" / "pinvoke-cache" / f"{digest}.txt"
    if not cache.exists():
        argv = ["dotnet", str(build_tool(build_root)), str(assembly)]
        proc = subprocess.run(argv, capture_output=True, text=True,
                              env={**os.environ, "DOTNET_CLI_TELEMETRY_OPTOUT": "1"})
        if proc.returncode != 0:
            raise NativeGuardError(str(ProcessFailed(argv, proc.returncode, proc.stdout, proc.stderr)))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(proc.stdout, encoding="utf-8")
        tmp.replace(cache)
    names = set()
    for line in cache.read_text(encoding="utf-8").splitlines():
        mod, _, name = line.partition("\t")
        if mod.lower() == module.lower() and name:
            names.add(name)
    return frozenset(names)


@dataclass(frozen=True)
class NativeCheck:
    declared: int  # entry points the build declares
    exported: int  # names the native library exports
    known_missing: tuple[str, ...]  # declared and not exported, by the release as well
    library: Path

    def describe(self) -> str:
        text = f"{self.declared} native entry points declared, all exported by {self.library.name}"
        if self.known_missing:
            text += (f" except {len(self.known_missing)} the release also lacks "
                     f"({', '.join(self.known_missing)})")
        return text


def compare_names(label: str, declared: frozenset[str], release_declared: frozenset[str],
                  exports: frozenset[str], library: Path) -> NativeCheck:
    """Raise :class:`NativeIncompatible` when ``declared`` needs a name ``exports`` lacks
    that the release's own assembly does not also need."""
    missing = declared - exports
    known = sorted(missing & (release_declared - exports))
    new = sorted(missing - set(known))
    if new:
        raise NativeIncompatible(label, new, known, library)
    return NativeCheck(len(declared), len(exports), tuple(known), library)


def native_library(worker: Path) -> Path:
    """The ``libLibTorchSharp.so`` a worker folder carries."""
    found = sorted(worker.glob("runtimes/*/native/libLibTorchSharp.so")) or sorted(worker.glob("libLibTorchSharp.so"))
    if not found:
        raise NativeGuardError(f"no libLibTorchSharp.so under {worker}/runtimes/*/native/")
    return found[0]


def check_assembly(label: str, built: Path, release: Path, library: Path, build_root: Path) -> NativeCheck:
    """The guard: the built assembly against ``library``, with the release's assembly
    ``release`` (same version) telling which missing names are known."""
    return compare_names(label, declared_imports(built, build_root), declared_imports(release, build_root),
                         elf_exports(library), library)


# --- src/Native against the release -------------------------------------------------------
def native_source_hashes(source_root: Path) -> dict[str, str]:
    """sha256 of every file under ``src/Native``, keyed by its path from the source root."""
    native = source_root / "src" / "Native"
    out: dict[str, str] = {}
    if native.is_dir():
        for p in sorted(native.rglob("*")):
            if p.is_file() and not p.is_symlink():
                out[p.relative_to(source_root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def reference_file(version: str) -> Path:
    return NATIVE_REFERENCE_DIR / f"native-sources-{version}.sha256"


def load_reference(version: str) -> dict[str, str] | None:
    """The release's src/Native hashes (``sha256sum`` format), or None when not stored."""
    path = reference_file(version)
    if not path.exists():
        return None
    ref: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, _, name = line.partition("  ")
            ref[name.strip()] = digest.strip()
    return ref


def write_reference(version: str, source_root: Path, commit: str) -> Path:
    """Store the release's src/Native hashes (run once per release, from its source)."""
    path = reference_file(version)
    lines = [f"# sha256 of src/Native in TorchSharp {version}'s release source (commit {commit});",
             "# harness/builds/native_guard.py flags a source build whose src/Native differs.",
             *(f"{d}  {n}" for n, d in native_source_hashes(source_root).items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def compare_native_sources(version: str, source_root: Path) -> str:
    """One provenance line: same as the release, or what differs (a managed-only build
    cannot test native changes)."""
    ref = load_reference(version)
    if ref is None:
        return f"src/Native not compared: no reference hashes for TorchSharp {version} ({reference_file(version).name})"
    got = native_source_hashes(source_root)
    changed = sorted(n for n in got.keys() & ref.keys() if got[n] != ref[n])
    added, removed = sorted(got.keys() - ref.keys()), sorted(ref.keys() - got.keys())
    if not (changed or added or removed):
        return f"src/Native identical to the {version} release ({len(ref)} files)"
    parts = [f"{len(x)} {what} ({', '.join(x[:5])}{', ...' if len(x) > 5 else ''})"
             for what, x in (("changed", changed), ("added", added), ("removed", removed)) if x]
    return ("managed-only build: native changes not tested: src/Native differs from the "
            f"{version} release: " + "; ".join(parts))
