"""Every finding's standalone repro (docs/findings/, harness/findings/repros.py) against the real
TorchSharp build (``--torchsharp VERSION``, default 0.107.0) and the real PyTorch(es).

On the release the findings were made on (TorchSharp 0.107.0) every TorchSharp repro must
say REPRODUCED; on another version a FIXED verdict is reported as a skip saying "FIXED",
never as a failure and never as a pass. bf16-avx512-conv can only show on a CPU with
AVX-512: this test reads /proc/cpuinfo itself and requires NOT-APPLICABLE (reported as a skip
that names the CPU flags) exactly where the CPU lacks it; so does f32-avx512-conv (whose oneDNN
AVX2 path was seen wrong too, with the cap: a CPU without AVX-512 that reproduces it fails here,
and the report's scope must then widen). onednn-conv-backward-sigfpe can only
show on an AMD CPU whose CPUID cache leaf 0x8000001D is all zero, with AVX2: likewise, read
here by harness/running/machine.py's CPUID.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from harness.findings import repros as F
from harness.drivers.protocol import ProcessFailed
from harness.drivers.torchsharp import DEFAULT_VERSION
from harness.running.machine import amd_cache_leaf_zero

FOUND_ON = "0.107.0"  # the TorchSharp release every finding was confirmed on
HOST_IS_113 = torch.__version__.startswith("1.13")


def _versions(config: pytest.Config) -> list[str]:
    return list(config.getoption("torchsharp") or [DEFAULT_VERSION])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "finding_part" not in metafunc.fixturenames:
        return
    items = []
    for version in _versions(metafunc.config):
        for f in F.FINDINGS:
            for part in F.parts(f, version):
                if part.startswith("PyTorch") and any(p[1] == part for p in items if p[0] == f.slug):
                    continue  # PyTorch parts do not depend on the TorchSharp version
                items.append((f.slug, part))
    metafunc.parametrize("finding_part", items, ids=[f"{s}[{p}]" for s, p in items])


# oneDNN findings whose host part is the control: PyTorch 1.13's oneDNN (v2.6) is right there
HOST_113_CONTROLS = ("bf16-avx512-conv", "f32-avx512-conv", "onednn-conv-backward-sigfpe")


def _expected(f: F.Finding, part: str) -> str:
    """The verdict this machine must give for ``part`` of ``f``."""
    avx512 = F.has_avx512_core(F.cpu_flags())
    if f.needs_avx512 and not avx512:
        return F.NOT_APPLICABLE
    if f.needs_amd_cache_leaf_zero and not (amd_cache_leaf_zero() and "avx2" in F.cpu_flags()):
        return F.NOT_APPLICABLE
    if f.slug in HOST_113_CONTROLS and part == "PyTorch host":
        return F.FIXED if HOST_IS_113 else F.REPRODUCED   # control: PyTorch 1.13's oneDNN is right
    if f.slug == "nadam-pytorch113-mu-product" and part == "PyTorch 2.6":
        return F.FIXED                                      # fixed upstream by pytorch/pytorch#92699
    return F.REPRODUCED


def test_finding_repro(finding_part: tuple[str, str]) -> None:
    slug, part = finding_part
    f = F.finding(slug)
    if part == "PyTorch host" and slug == "nadam-pytorch113-mu-product" and not HOST_IS_113:
        pytest.skip(f"the host's PyTorch is {torch.__version__}, not 1.13: this PyTorch finding is about 1.13")
    try:
        result = F.run_part(f, part)
    except F.FindingsUnavailable as exc:
        if part == f"TorchSharp {FOUND_ON}":
            pytest.fail(f"{slug}: TorchSharp {FOUND_ON} must be buildable here: {exc}", pytrace=False)
        pytest.skip(f"{part} unavailable: {exc}")
    except ProcessFailed as exc:
        pytest.fail(f"{slug} [{part}]: the repro itself failed: {exc}", pytrace=False)
    expected = _expected(f, part)
    flags = " ".join(sorted(x for x in F.cpu_flags() if x.startswith("avx512"))) or "no avx512*"
    if result.outcome == expected == F.NOT_APPLICABLE:
        pytest.skip(f"NOT-APPLICABLE: {slug} cannot show on this CPU (flags seen: {flags}): {result.summary}")
    if result.outcome == expected:
        return
    if (result.outcome == F.FIXED and expected == F.REPRODUCED and part.startswith("TorchSharp")
            and part != f"TorchSharp {FOUND_ON}"):
        pytest.skip(f"FIXED in {part}: {result.summary} (update docs/findings/{slug}.md)")
    pytest.fail(f"{slug} [{part}]: expected {expected}, the repro says {result.outcome}: {result.summary}\n"
                f"CPU avx512 flags: {flags}\n{result.output}", pytrace=False)


# --- the reports ----------------------------------------------------------------------------
def _sections(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^## (.+)$", text, re.M)]


@pytest.mark.parametrize("slug", list(F.BY_SLUG))
def test_report_has_every_section(slug: str) -> None:
    path = F.DOCS / f"{slug}.md"
    assert path.exists(), f"{path} is missing"
    text = path.read_text(encoding="utf-8")
    found = _sections(text)
    missing = [s for s in F.REQUIRED_SECTIONS if not any(h.startswith(s) for h in found)]
    assert not missing, f"{path}: missing sections {missing} (has {found})"
    assert f"python3 -m harness finding {slug}" in text, f"{path}: the Repro section must give the one command"
    status = text.split("## Upstream status", 1)[1]
    assert re.search(r"https://github\.com/\S+/(issues|pull)/\d+", status) or "### Ready-to-file issue" in status, \
        f"{path}: Upstream status needs an existing issue/PR link or a '### Ready-to-file issue' text"


def test_index_lists_every_finding() -> None:
    text = (Path(F.ROOT) / "docs" / "findings" / "README.md").read_text(encoding="utf-8")
    for f in F.FINDINGS:
        assert f"[{f.slug}]({f.slug}.md)" in text, f"docs/findings/README.md does not list {f.slug}"


def test_every_finding_explains_some_expected_failure() -> None:
    """The link runs from cases/expected_failures/ (the one place cell patterns live) to the
    findings: each finding is linked by at least one entry, except one that says why no cell
    shows it (``Finding.no_cell``), which no entry may link then."""
    from harness.verdicts.expectations import ExpectedFailures
    linked = {e.finding for e in ExpectedFailures.load(Path(F.ROOT) / "cases" / "expected_failures").entries}
    assert not [f.slug for f in F.FINDINGS if f.slug not in linked and not f.no_cell]
    assert not [f.slug for f in F.FINDINGS if f.slug in linked and f.no_cell], "drop no_cell: a cell shows it"


def test_every_expected_failure_links_a_finding_report() -> None:
    from harness.verdicts.expectations import ExpectedFailures
    entries = ExpectedFailures.load(Path(F.ROOT) / "cases" / "expected_failures").entries
    missing = sorted({f"{e.source}: {e.finding}" for e in entries
                      if not e.finding or not (Path(F.ROOT) / "docs" / "findings" / f"{e.finding}.md").exists()})
    assert not missing, missing
    for slug in {e.finding for e in entries}:
        text = (Path(F.ROOT) / "docs" / "findings" / f"{slug}.md").read_text(encoding="utf-8")
        for section in F.REQUIRED_SECTIONS:
            assert f"## {section}" in text, f"{slug}.md lacks '## {section}'"
