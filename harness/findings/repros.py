"""The harness's findings as standalone repros (reports in docs/findings/<slug>.md).

Each finding has one or more *parts*, each a program that prints a verdict line
(``REPRODUCED: ...``, ``FIXED: ...`` or ``NOT-APPLICABLE: ...``) and its evidence, and exits
0, 3 or 4 accordingly; any other exit status is an error of the repro itself and raises
:class:`ProcessFailed` with the command line and both output streams.

- TorchSharp parts: subcommands of the C# project dotnet/Findings, built once per TorchSharp
  version into ``build/findings/<version>/`` (a stamp records the source hash, as for the
  worker; same ``-p:TorchSharpVersion`` / ``-p:LibTorchVersion`` parameters).
- PyTorch parts: scripts under scripts/findings/, run by the host's ``/usr/bin/python3``
  (PyTorch 1.13) or inside the PyTorch 2.6 root made by scripts/setup-pytorch26.sh (entered
  as harness/drivers/pytorch_worker.py does: ``unshare`` + ``chroot``, the checkout at /mnt/x).

``python3 -m harness finding SLUG [--torchsharp VERSION]`` runs every part of one finding
(``all`` for every finding, ``--list`` for the slugs); its exit status is the primary part's.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.drivers.protocol import ProcessFailed
from harness.drivers.pytorch_worker import PYTORCH26_ROOT
from harness.builds.dotnet_build import DotnetUnavailable, build_project
from harness.drivers.torchsharp_versions import DEFAULT_VERSION
from harness.paths import BUILD_DIR, DOTNET_DIR, ROOT

PROJECT = DOTNET_DIR / "Findings"
SCRIPTS = ROOT / "scripts" / "findings"
DOCS = ROOT / "docs" / "findings"
BUILD_ROOT = BUILD_DIR / "findings"
HOST_PYTHON = "/usr/bin/python3"

REPRODUCED, FIXED, NOT_APPLICABLE = "REPRODUCED", "FIXED", "NOT-APPLICABLE"
OUTCOME_OF_EXIT = {0: REPRODUCED, 3: FIXED, 4: NOT_APPLICABLE}
EXIT_OF_OUTCOME = {v: k for k, v in OUTCOME_OF_EXIT.items()}
# the sections every docs/findings/<slug>.md has (tests/conformance/test_findings.py)
REQUIRED_SECTIONS = ("What a user sees", "Affected versions", "Repro", "Expected vs actual",
                     "Root cause", "Which side is wrong", "Upstream status")


@dataclass(frozen=True)
class Finding:
    slug: str
    title: str
    # a C# repro: the subcommand named slug in dotnet/Findings
    dotnet: bool = True
    # script under scripts/findings/ and the PyTorch environments it runs in ("host", "2.6")
    script: str | None = None
    pytorch: tuple[str, ...] = ()
    # True when the defect shows on an AVX-512 CPU only (NOT-APPLICABLE elsewhere)
    needs_avx512: bool = False
    # Why no matrix cell shows it ("" for a finding that explains expected failures: every other
    # finding is linked by an entry of cases/expected_failures/, tests/conformance/test_findings.py)
    no_cell: str = ""
    # True when the defect shows only on an AMD CPU whose CPUID cache leaf 0x8000001D is all
    # zero, with AVX2 (harness/running/machine.py amd_cache_leaf_zero; NOT-APPLICABLE elsewhere)
    needs_amd_cache_leaf_zero: bool = False


FINDINGS: tuple[Finding, ...] = (
    Finding("radam-lr-applied-twice", "TorchSharp's RAdam multiplies its rectified update by lr twice"),
    Finding("adadelta-step-never-incremented", "TorchSharp's Adadelta never increments state.step"),
    Finding("groupnorm-uninitialised-affine", "TorchSharp's GroupNorm leaves weight and bias uninitialised"),
    Finding("moduledict-to-throws",
            "a TorchSharp module holding a ModuleDict cannot .to(dtype) (nor .to(device) on a move)"),
    Finding("sequential-own-buffer-dropped", "TorchSharp's nn.Sequential leaves its own buffer out of state_dict"),
    Finding("sequential-tied-weight-listed-once",
            "TorchSharp's nn.Sequential lists a tied Parameter once in state_dict"),
    Finding("jit-load-aborts-on-errorreport",
            "TorchSharp's torch.jit.load aborts the process on a TorchScript ErrorReport"),
    Finding("tensor-load-int-max-elements", "TorchSharp's static Tensor.Load refuses more than int.MaxValue elements"),
    Finding("module-save-load-non-contiguous", "TorchSharp's Module.save/load throw on a non-contiguous state tensor"),
    Finding("torchvision-resnext101-depth", "TorchVision's resnext101_32x8d and _64x4d have ResNet50's depth"),
    Finding("torchvision-mobilenet-classifier-first",
            "TorchVision's mobilenets list the classifier's parameters before the features'"),
    Finding("torchvision-inception-aux-never-run",
            "TorchVision's inception_v3 builds AuxLogits but its forward never runs it"),
    Finding("bf16-avx512-conv",
            "bfloat16 convolution gives wrong sums on an AMD EPYC with avx512_bf16 (LibTorch 2.10, PyTorch 2.6)",
            script="bf16_conv.py", pytorch=("2.6", "host"), needs_avx512=True),
    Finding("f32-avx512-conv",
            "float32 3x3 convolution gives wrong sums on this AVX-512 VM for batch >= 2 and 17-31, 33-47, ... channels "
            "(LibTorch 2.10, PyTorch 2.6)", script="f32_conv.py", pytorch=("2.6", "host"), needs_avx512=True),
    Finding("nadam-pytorch113-mu-product", "PyTorch 1.13's default NAdam multiplies mu into mu_product twice",
            dotnet=False, script="nadam_mu_product.py", pytorch=("host", "2.6")),
    Finding("pytorch-float32-optimizer-scalars",
            "PyTorch casts ASGD's eta/mu and NAdam's mu_product to the parameter's dtype on load",
            dotnet=False, script="float32_optimizer_scalars.py", pytorch=("host", "2.6")),
    Finding("pybridge-save-keeps-old-tail",
            "TorchSharp.PyBridge's PickleStateDict and Safetensors.SaveStateDict keep an older file's tail"),
    Finding("pybridge-legacy-format-refused", "TorchSharp.PyBridge refuses torch.save's legacy (non-zip) format"),
    Finding("pybridge-load-py-ignores-layout",
            "TorchSharp.PyBridge's load_py writes a view's storage start into it and accepts tensors of another shape"),
    Finding("pybridge-save-py-view-offset",
            "TorchSharp.PyBridge's save_py writes a view with a storage offset that torch.load cannot rebuild",
            script="pybridge_saved_view.py", pytorch=("host", "2.6")),
    Finding("pybridge-safetensors-offsets-unchecked",
            "TorchSharp.PyBridge's safetensors reader accepts overlapping data_offsets and bytes after the data",
            script="pybridge_safetensors_offsets.py", pytorch=("2.6",)),
    Finding("pybridge-checkpoint-mutates-skip",
            "TorchSharp.PyBridge's load_checkpoint adds keys to the caller's skip list "
            "(NotSupportedException on an array)",
            no_cell="both TorchSharp drivers hand load_checkpoint a fresh List<string> on every load (nothing sees "
                    "it grow, nothing passes an array), and the checkpoint checks load strictly, with no key the "
                    "module lacks"),
    # onednn-conv-backward-sigfpe: a crash, machine-dependent (own block: merges stay clean)
    Finding("onednn-conv-backward-sigfpe",
            "a strided 1x1 convolution's backward dies of SIGFPE on an AMD CPU with an all-zero CPUID cache leaf "
            "(oneDNN 3.7 in LibTorch 2.10 and PyTorch 2.6)",
            script="conv_backward_sigfpe.py", pytorch=("2.6", "host"), needs_amd_cache_leaf_zero=True),
)
BY_SLUG = {f.slug: f for f in FINDINGS}


class FindingsUnavailable(RuntimeError):
    """A part cannot run here: no .NET SDK, an unserved TorchSharp version, no PyTorch 2.6 root."""


@dataclass(frozen=True)
class PartResult:
    slug: str
    part: str          # "TorchSharp 0.107.0", "PyTorch host", "PyTorch 2.6"
    outcome: str       # REPRODUCED | FIXED | NOT-APPLICABLE
    summary: str       # the verdict line's text
    output: str        # everything the repro printed
    argv: tuple[str, ...]


def finding(slug: str) -> Finding:
    try:
        return BY_SLUG[slug]
    except KeyError:
        raise KeyError(f"unknown finding {slug!r} (known: {', '.join(BY_SLUG)})") from None


# --- the C# project -----------------------------------------------------------------------
def build_findings(version: str = DEFAULT_VERSION, force: bool = False) -> Path:
    """Build dotnet/Findings for ``version`` into build/findings/<version>/ unless an
    up-to-date build is there; return Findings.dll."""
    try:
        return build_project(PROJECT / "Findings.csproj", version, BUILD_ROOT / version, "Findings.dll", force)
    except DotnetUnavailable as exc:
        raise FindingsUnavailable(str(exc)) from exc


def _run(slug: str, part: str, argv: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> PartResult:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        def text(b: str | bytes | None) -> str:
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        raise ProcessFailed(argv, None, text(exc.stdout),
                            text(exc.stderr) + f"\n(timed out after {timeout} s)") from exc
    outcome = OUTCOME_OF_EXIT.get(proc.returncode)
    verdict = next((ln for ln in proc.stdout.splitlines() if ln.startswith(f"{outcome}:")), None) if outcome else None
    if outcome is None or verdict is None:
        raise ProcessFailed(argv, proc.returncode, proc.stdout, proc.stderr)
    return PartResult(slug, part, outcome, verdict.split(":", 1)[1].strip(), proc.stdout + proc.stderr, tuple(argv))


def run_dotnet(slug: str, version: str = DEFAULT_VERSION, timeout: float = 600) -> PartResult:
    dll = build_findings(version)
    return _run(slug, f"TorchSharp {version}", ["dotnet", str(dll), slug], timeout,
                env={"DOTNET_CLI_TELEMETRY_OPTOUT": "1"})


def chroot_argv(argv_inside: Sequence[str], rootfs: Path = PYTORCH26_ROOT) -> list[str]:
    """``argv_inside`` run by PyTorch 2.6's root, the checkout mounted at /mnt/x (cwd)."""
    if not (rootfs / ".harness-ready").exists():
        raise FindingsUnavailable(f"no PyTorch 2.6 root at {rootfs} (scripts/setup-pytorch26.sh makes it)")
    r, q = str(rootfs), shlex.quote
    inner = "cd /mnt/x && exec " + " ".join(q(a) for a in argv_inside)
    script = (f"mount -t proc proc {q(r)}/proc && mount --bind {q(str(ROOT))} {q(r)}/mnt/x && "
              f"exec chroot {q(r)} sh -c {q(inner)}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


def run_python(slug: str, where: str, timeout: float = 600) -> PartResult:
    f = finding(slug)
    if f.script is None:
        raise KeyError(f"finding {slug} has no Python part")
    rel = (SCRIPTS / f.script).relative_to(ROOT)
    if where == "host":
        argv = [HOST_PYTHON, str(ROOT / rel)]
    elif where == "2.6":
        argv = chroot_argv(["python3", str(rel)])
    else:
        raise ValueError(f"unknown PyTorch {where!r} (known: host, 2.6)")
    return _run(slug, f"PyTorch {where}", argv, timeout)


def parts(f: Finding, version: str) -> list[str]:
    """The parts of ``f`` in order; the first is the primary one (its outcome is the finding's)."""
    return ([f"TorchSharp {version}"] if f.dotnet else []) + [f"PyTorch {p}" for p in f.pytorch]


def run_part(f: Finding, part: str) -> PartResult:
    kind, _, which = part.partition(" ")
    return run_dotnet(f.slug, which) if kind == "TorchSharp" else run_python(f.slug, which)


# --- /proc/cpuinfo: decides where bf16-avx512-conv can reproduce ---------------------------
AVX512_CORE = ("avx512f", "avx512bw", "avx512vl", "avx512dq")


def cpu_flags(path: Path = Path("/proc/cpuinfo")) -> list[str]:
    try:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def has_avx512_core(flags: Sequence[str]) -> bool:
    return all(f in flags for f in AVX512_CORE)


# --- command line ---------------------------------------------------------------------------
def main_finding(args: argparse.Namespace) -> int:
    if args.list or not args.slug:
        for f in FINDINGS:
            print(f"{f.slug:38} {f.title}")
        return 0 if args.list else 2
    if args.torchsharp in (None, "default"):
        args.torchsharp = DEFAULT_VERSION
    slugs = list(BY_SLUG) if args.slug == "all" else [args.slug]
    if args.slug != "all" and args.slug not in BY_SLUG:
        print(f"unknown finding {args.slug!r}; python3 -m harness finding --list", file=sys.stderr)
        return 2
    status = 0
    for slug in slugs:
        f = BY_SLUG[slug]
        primary: int | None = None
        for part in parts(f, args.torchsharp):
            print(f"== {slug}: {part}", flush=True)
            try:
                r = run_part(f, part)
            except FindingsUnavailable as exc:
                print(f"UNAVAILABLE: {exc}")
                code = 2
            except ProcessFailed as exc:
                print(f"ERROR: {exc}")
                code = 2
            else:
                print(r.output.rstrip())
                code = EXIT_OF_OUTCOME[r.outcome]
            if primary is None:
                primary = code
        assert primary is not None
        status = primary if len(slugs) == 1 else max(status, 0 if primary in (0, 4) else 1)
    return status
