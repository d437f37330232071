"""Command line: ``python3 -m harness run | diff | build-worker | cases | finding``.

``run`` builds the worker(s) if needed, starts each once, runs every selected cell
against real TorchSharp and writes ``reports/<run>/`` (matrix.json, matrix.md,
index.html, junit.xml, cells/<failing cell>/ with a repro.sh) and ``reports/latest``.
``diff OLD NEW`` lists new failures, fixes and changed reasons. Exit status: 0 when no cell failed, errored or passed
unexpectedly; 1 otherwise; 2 for bad usage; 3 when the --torchsharp-source column could not be built or started.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.paths import CASES_DIR, REPORTS_DIR

# Kept here (not imported from the registry / plan) so that --help needs no PyTorch; a test
# checks they equal harness.running.plan.DEVICES and harness.checks.CHECKS.
DEVICES = ("cpu", "cuda")
PYTORCHS = ("host", "2.6")
# The routes (harness/routes/ ROUTES, which imports PyTorch: the CLI stays light; a test keeps them equal)
ROUTE_NAMES = ("dat", "pth", "safetensors")


def cmd_run(args: argparse.Namespace) -> int:
    from harness.running.matrix_run import cmd_run as run
    return run(args)


def cmd_build_worker(args: argparse.Namespace) -> int:
    from harness.drivers.torchsharp import WorkerUnavailable, build_worker
    for v in args.torchsharp:
        try:
            print(build_worker(v, force=args.force))
            if not args.no_pythonnet:  # the pythonnet host, next to the worker (a second TorchSharp driver)
                from harness.drivers.pythonnet import build_pyhost
                print(build_pyhost(v, force=args.force))
        except WorkerUnavailable as exc:
            print(f"TorchSharp {v}: unavailable: {exc}", file=sys.stderr)
            if not args.allow_unavailable:
                return 1
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from harness.verdicts.diff import main_diff
    if args.new is None and not args.columns:
        print("diff: NEW is needed unless --columns compares two columns of OLD (or OLD is 'last')", file=sys.stderr)
        return 2
    return main_diff(args.old if args.old == "last" else Path(args.old), Path(args.new) if args.new else None,
                     args.columns)


def cmd_cases(args: argparse.Namespace) -> int:
    from harness.cases import load_catalogue
    for case in load_catalogue(Path(args.cases)).all():
        print(f"{case.kind:9} {case.name:28} {','.join(case.features)}")
    return 0


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def cmd_pythonnet(args: argparse.Namespace) -> int:
    from harness.drivers.pythonnet import main_pythonnet  # pythonnet: a second TorchSharp driver
    from harness.drivers.torchsharp_versions import DEFAULT_VERSION
    return main_pythonnet(args.script, args.args, args.torchsharp or DEFAULT_VERSION)


def _add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    r = sub.add_parser("run", help="run the matrix and write reports/")
    r.add_argument("--codec", default="ours", help="codec under test: ours | module | file.py | folder")
    r.add_argument("--torchsharp", action="append",
                   help="TorchSharp version(s); default: every version the NuGet feed serves plus those in "
                        "cases/torchsharp-versions.txt ('default' for just the default version)")
    r.add_argument("--pytorch", action="append", choices=PYTORCHS,
                   help="PyTorch version(s): host (in process) and/or 2.6 (Debian 13's, in a chroot made by "
                        "scripts/setup-pytorch26.sh); default: host, plus 2.6 when its root is ready")
    r.add_argument("--driver", action="append", choices=("csharp", "pythonnet"),
                   help="TorchSharp driver(s): the C# worker and/or the pythonnet host (a second, independent "
                        "driver: column '<version>@pythonnet'); default: both. Their verdicts must agree")
    r.add_argument("--torchsharp-env", action="append", type=_env_pair, default=[], metavar="NAME=VALUE",
                   help="set an environment variable in the TorchSharp worker processes only, e.g. "
                        "ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN without AVX-512 kernels; PyTorch's process is left alone)")
    r.add_argument("--route", action="append", choices=ROUTE_NAMES,
                   help="route(s) the state takes (harness/routes/): dat (the codec's .dat <-> Module.load/save), "
                        "pth (torch.save/load <-> TorchSharp.PyBridge load_py/save_py), safetensors (safetensors <-> "
                        "PyBridge load_safetensors/save_safetensors); default: all of them")
    r.add_argument("--large-routes", action="append", choices=ROUTE_NAMES, metavar="ROUTE",
                   help="the routes the large-tensor cells (past 2 GiB, up to a minute each) run on; default: dat "
                        "(the other routes' large cells cost ten minutes more: give them here to run them)")
    r.add_argument("--zoo-routes", action="append", choices=ROUTE_NAMES, metavar="ROUTE",
                   help="the routes the model zoo's cells run on; default: dat (every route with --zoo full)")
    r.add_argument("--case", action="append", help="only these case names")
    r.add_argument("--feature", action="append", help="only cases tagged with one of these features")
    r.add_argument("--check", action="append", help="only these checks (python3 -m harness checks lists them)")
    r.add_argument("--device", action="append", choices=DEVICES, help="only these devices")
    r.add_argument("-k", help="only cells whose id contains this text")
    r.add_argument("--torchsharp-source", metavar="PATH",
                   help="also run TorchSharp built from this source (a checkout folder or a .tar.gz), managed part "
                        "only, against NuGet's native libraries of its version: column '<version>+<label>'")
    r.add_argument("--torchsharp-patch", action="append", metavar="FILE",
                   help="apply this patch (patch -p1) to a copy of --torchsharp-source first (repeatable)")
    r.add_argument("--torchsharp-label", help="the source column's label (default: the patch names, or 'source')")
    r.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="run the plan as N parallel jobs on this machine (own workers each; results as a serial "
                        "run's); default: one per CPU, bounded by memory, 1 for small plans; the large-tensor cells go "
                        "to as many jobs as memory carries (HARNESS_LARGE_JOBS=K sets it; harness/running/memory.py), "
                        "the zoo's big models to as many others")
    r.add_argument("--shard", metavar="I/N", help="run only shard I of N of the plan (stable as cases are added; "
                   "large-tensor cells all in shard 1); `merge` combines the shards' reports")
    r.add_argument("--cells-dir", help=argparse.SUPPRESS)  # --jobs: where a job leaves failing cells' files
    r.add_argument("--large-jobs", type=int, default=0, help=argparse.SUPPRESS)  # --jobs: jobs with large cells
    r.add_argument("--large-room", default=None, help=argparse.SUPPRESS)  # --jobs: "" or why large cells can't run
    r.add_argument("--quick", action="store_true", help="first contact (under a minute): a few core cases, one of "
                   "each kind, on every check and axis available, no large tensors "
                   "(QUICK_CASES in harness/running/matrix_run.py)")
    r.add_argument("--zoo", choices=("default", "full", "none"), default="default",
                   help="the model zoo (torchvision / TorchVision models, cases/zoo/): its representative subset "
                        "(default), every model both libraries build (full: vgg's ~530 MB each included), or none; "
                        "cases named with --case always run")
    r.add_argument("--out", default=str(REPORTS_DIR))
    r.add_argument("--cases", default=str(CASES_DIR))
    r.add_argument("--run-id")
    r.add_argument("--keep", action="store_true", help="keep the files of passing cells too")
    r.add_argument("-v", "--verbose", action="store_true", help="one console line per cell (default: only cells "
                   "that did not pass or skip, a progress line, and skips summarised by reason)")
    r.set_defaults(func=cmd_run)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m harness", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    b = sub.add_parser("build-worker", help="build the .NET worker for each TorchSharp version")
    b.add_argument("--torchsharp", action="append")
    b.add_argument("--force", action="store_true")
    b.add_argument("--allow-unavailable", action="store_true")
    b.add_argument("--no-pythonnet", action="store_true", help="build only the C# worker, not the pythonnet host")
    b.set_defaults(func=cmd_build_worker)
    d = sub.add_parser("diff", help="compare two matrix.json files; exit 1 on a regression (the upgrade gate)")
    d.add_argument("old", help="the baseline matrix.json (or its run folder), or 'last': the run before NEW "
                               "in reports/history.jsonl")
    d.add_argument("new", nargs="?", help="the candidate matrix.json (or its run folder); with --columns, "
                                          "optional (default: OLD)")
    d.add_argument("--columns", nargs=2, metavar=("BASE", "CANDIDATE"),
                   help="compare TorchSharp column BASE of OLD with column CANDIDATE of NEW by raw outcomes, e.g. "
                        "--columns ts0.107.0 ts0.107.0+radam-fix")
    d.set_defaults(func=cmd_diff)
    pn = sub.add_parser("pythonnet", help="run a Python script inside the pythonnet host, against TorchSharp")
    pn.add_argument("--torchsharp", default=None, help="TorchSharp version (default: the default version)")
    pn.add_argument("script", help="the script (it must not import torch: use TorchSharp through clr)")
    pn.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    pn.set_defaults(func=cmd_pythonnet)
    c = sub.add_parser("cases", help="list the case catalogue")
    c.add_argument("--cases", default=str(CASES_DIR))
    c.set_defaults(func=cmd_cases)
    m = sub.add_parser("merge", help="combine shard reports (run --shard I/N) into one matrix with all renderings")
    m.add_argument("reports", nargs="+", help="the shards' matrix.json files (or their run folders)")
    m.add_argument("-o", "--out", required=True, help="the folder for the merged reports")
    m.set_defaults(func=cmd_merge)
    k = sub.add_parser("checks", help="list the checks, in report order")
    k.set_defaults(func=cmd_checks)
    f = sub.add_parser("finding", help="run a finding's standalone repro (docs/findings/)")
    f.add_argument("slug", nargs="?", help="a finding's slug, or 'all'")
    f.add_argument("--torchsharp", default=None, help="TorchSharp version (default: the default version)")
    f.add_argument("--list", action="store_true", help="list the findings")
    f.set_defaults(func=cmd_finding)
    from harness.report.readme import add_parser as add_readme_parser  # light: no PyTorch
    add_readme_parser(sub)  # `readme-matrix MATRIX.json`: harness/report/readme.py
    from harness.findings.index import add_parser as add_findings_readme_parser  # light: no PyTorch
    add_findings_readme_parser(sub)  # `findings-readme [--check]`: harness/findings/index.py
    from harness.radar.main import add_parser as add_radar_parser  # light: imports no driver
    add_radar_parser(sub)  # `radar --repo PATH`: harness/radar/
    return p


def cmd_checks(args: argparse.Namespace) -> int:
    from harness.checks import REGISTRY
    for name, c in REGISTRY.items():
        doc = (c.run.__doc__ or "").strip().splitlines()
        print(f"{name:18} {'/'.join(sorted(c.kinds)):16} {doc[0] if doc else ''}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from harness.running.merge import main_merge
    return main_merge([Path(p) for p in args.reports], Path(args.out))


def cmd_finding(args: argparse.Namespace) -> int:
    from harness.findings.repros import main_finding
    return main_finding(args)


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    args.raw_argv = raw  # --jobs starts each job with the user's own command line
    if args.command == "run" and argv is None:  # the program itself (not a call from a test): an
        # allocator is chosen before a process starts, so start again under it
        from harness.running.allocator import reexec_with_jemalloc
        reexec_with_jemalloc(raw)
    if args.command in ("run", "build-worker"):
        from harness.drivers.torchsharp import DEFAULT_VERSION, default_versions
        if args.command == "build-worker":
            args.torchsharp = args.torchsharp or [DEFAULT_VERSION]
        else:
            from harness.drivers.pytorch_worker import PYTORCH26_ROOT
            args.pytorch = args.pytorch or ["host", *(["2.6"] if (PYTORCH26_ROOT / ".harness-ready").exists() else [])]
            # --quick: the versions that are here (the default one), not a search of the feed and
            # a failing restore of every tracked version
            wanted = args.torchsharp or ([DEFAULT_VERSION] if args.quick else default_versions())
            args.torchsharp = [DEFAULT_VERSION if v == "default" else v for v in wanted]
            args.device = args.device or list(DEVICES)
    return int(args.func(args))
