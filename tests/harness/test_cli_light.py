"""The command line's promises that need no TorchSharp: help without PyTorch, one list of
checks and devices, the console's shape."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from harness import cli
from harness.checks import CHECKS
from harness.running.console import Console
from harness.verdicts.outcomes import CellResult
from harness.running.plan import DEVICES

ROOT = Path(__file__).resolve().parents[2]


def test_help_needs_no_pytorch():
    code = ("import sys; sys.modules['torch'] = None\n"  # any import of torch now raises
            "from harness.cli import main\n"
            "for cmd in ('run', 'diff', 'cases', 'checks', 'finding', 'build-worker'):\n"
            "    try:\n        main([cmd, '--help'])\n    except SystemExit as e:\n        assert e.code == 0, cmd\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--torchsharp-env" in proc.stdout


def test_the_light_lists_equal_the_real_ones():
    from harness.report.summary import ROUTE_ORDER
    from harness.routes import ROUTES
    assert cli.DEVICES == DEVICES
    assert cli.ROUTE_NAMES == ROUTE_ORDER == tuple(ROUTES)


def test_a_codec_naming_nothing_is_one_line_and_exit_2(capsys, tmp_path):
    missing = tmp_path / "no" / "such_codec.py"
    assert cli.main(["run", "--codec", str(missing), "--torchsharp", "0.0-none", "--pytorch", "host"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"--codec {missing}: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_an_unknown_check_is_refused_with_the_list(capsys):
    assert cli.main(["run", "--check", "no_such_check", "--torchsharp", "0.0-none", "--pytorch", "host"]) == 2
    err = capsys.readouterr().err
    assert "unknown check(s) ['no_such_check']" in err and CHECKS[0] in err


def _result(outcome: str, reason: str = "", large: bool = False) -> CellResult:
    return CellResult(id=f"c::{outcome}::{reason}", case="c", check="py2ts", pytorch="1", torchsharp="2",
                      device="cpu", codec="ours", outcome=outcome, reason=reason, duration_s=2.0 if large else 0.01,
                      features=["large"] if large else [])


def test_console_shows_what_matters_and_summarises_skips():
    out = io.StringIO()
    console = Console(1000, stream=out)
    for i in range(900):
        console.cell(_result("pass"))
    for i in range(95):
        console.cell(_result("skip", "device 'cuda' not available" if i % 2 else "TorchSharp 0.106.0 unavailable"))
    console.cell(_result("fail", "TorchSharp is wrong"))
    xfail = _result("xfail", "expected")
    xfail.details["expected_failure"] = {"finding": "radam-lr-applied-twice"}
    console.cell(xfail)
    console.cell(_result("pass", large=True))
    console.cell(_result("error", "crash"))
    console.cell(_result("skip", "device 'cuda' not available"))
    console.finish(10.0, "reports/x/matrix.md")
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) < 40, text
    assert any(ln.startswith("fail  c::fail") and "TorchSharp is wrong" in ln for ln in lines)
    assert any(ln.startswith("error c::error") for ln in lines)
    assert not any(ln.startswith("pass ") for ln in lines)
    assert "    48  device 'cuda' not available" in text
    assert "reports: reports/x/matrix.md" in text
    assert "without the 1 large-tensor cells" in text
    assert "1 expected failures, by finding (docs/findings/): radam-lr-applied-twice 1" in text
    assert not any(ln.startswith("xfail") for ln in lines)


def test_a_run_without_large_cells_says_nothing_of_them():
    out = io.StringIO()
    console = Console(2, stream=out)
    for r in (_result("pass"), _result("pass")):
        console.cell(r)
    console.finish(4.0, "reports/x/matrix.md")
    assert "0.5 cells/s" in out.getvalue() and "large-tensor" not in out.getvalue()


def test_verbose_console_prints_every_cell():
    out = io.StringIO()
    console = Console(3, verbose=True, stream=out)
    for r in (_result("pass"), _result("skip", "why"), _result("fail", "bad")):
        console.cell(r)
    assert [ln.split()[0] for ln in out.getvalue().splitlines() if not ln.startswith("[")] == ["pass", "skip", "fail"]
