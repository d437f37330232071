"""harness/findings/repros.py's plumbing against FAKE repro programs (tiny Python scripts): verdict
parsing, and a repro that errs raises with its command line and both streams."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.findings import repros as F
from harness.drivers.protocol import ProcessFailed


def _fake(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "fake_repro.py"
    script.write_text("import sys\n" + body, encoding="utf-8")
    return [sys.executable, str(script)]


@pytest.mark.parametrize(("code", "word"), [(0, "REPRODUCED"), (3, "FIXED"), (4, "NOT-APPLICABLE")])
def test_verdict_and_exit_code_agree(tmp_path: Path, code: int, word: str) -> None:
    argv = _fake(tmp_path, f"print('# header')\nprint('{word}: the summary')\nprint('  evidence')\nsys.exit({code})")
    r = F._run("some-slug", "fake", argv, timeout=60)
    assert (r.outcome, r.summary) == (word, "the summary")
    assert "evidence" in r.output


@pytest.mark.parametrize("body", [
    "print('REPRODUCED: but exit 1'); sys.exit(1)",          # unknown exit status
    "print('FIXED: says fixed'); sys.exit(0)",               # verdict and exit status disagree
    "print('no verdict'); sys.stderr.write('boom'); sys.exit(0)",
])
def test_a_broken_repro_raises_with_argv_and_streams(tmp_path: Path, body: str) -> None:
    argv = _fake(tmp_path, body)
    with pytest.raises(ProcessFailed) as info:
        F._run("some-slug", "fake", argv, timeout=60)
    assert "fake_repro.py" in str(info.value) and "--- stdout ---" in str(info.value)


def test_cpu_flags_from_a_cpuinfo_file(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512vl avx512dq\n", encoding="utf-8")
    assert F.has_avx512_core(F.cpu_flags(info))
    info.write_text("processor : 0\nflags\t\t: fpu avx2\n", encoding="utf-8")
    assert not F.has_avx512_core(F.cpu_flags(info))
    assert F.cpu_flags(tmp_path / "absent") == []


def test_chroot_part_says_when_pytorch26_is_missing(tmp_path: Path) -> None:
    with pytest.raises(F.FindingsUnavailable, match="setup-pytorch26.sh"):
        F.chroot_argv(["python3", "-V"], rootfs=tmp_path / "no-root")
