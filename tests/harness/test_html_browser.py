"""matrix.html in a real browser: Debian's chromium, headless, straight from a file:// URL.

Checks that the page renders (a screenshot of the asked size, not blank, with the outcome
colours painted), that its tables are in the DOM, and that its inline script ran. Skips
when /usr/bin/chromium is not installed (set-up installs Debian's ``chromium``).
"""
from __future__ import annotations

import os
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from harness.verdicts.outcomes import CellResult
from harness.report import Run
from harness.report import html as html_report

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1400, 900
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]
PASS_RGB = (0xDA, 0xFB, 0xE1)  # .pass background in harness/report/html.py
FAIL_RGB = (0xFF, 0xD7, 0xD5)  # .fail background

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (Debian package chromium)")


def _run() -> Run:
    cells = []
    for i, case in enumerate(["lenet", "lstm", "adam", "gpu_only"]):
        outcomes = (["pass", "fail", "xfail", "skip"][i], "pass", "error" if i == 1 else "pass")
        for check, outcome in zip(("py2ts", "py2ts2py", "ts2py"), outcomes, strict=True):
            cells.append(CellResult(
                id=f"{case}::{check}::pt1.13.1::ts0.107.0::cpu::ours", case=case, check=check, pytorch="1.13.1",
                torchsharp="0.107.0", device="cpu", codec="ours", outcome=outcome,
                reason="" if outcome == "pass" else f"{outcome} because <script>alert(1)</script>",
                features=[["conv", "linear"], ["rnn"], ["optimizer"], []][i], details={"k": [1, 2]},
                evidence=None if outcome == "pass" else f"/r/reports/r1/cells/{case}_{check}"))
    return Run(run_id="r1", started="2026-01-01T00:00:00+00:00", provenance={"torch": "1.13.1"}, cells=cells)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path)}  # nothing lands in the real home
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def _read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and raw pixel rows of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html") / "matrix.html"
    path.write_text(html_report.render(_run()), encoding="utf-8")
    return path


def test_screenshot_is_a_rendered_page(page: Path, tmp_path: Path):
    png = tmp_path / "shot.png"
    proc = _chromium(tmp_path, f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri())
    assert png.is_file(), f"no screenshot (rc {proc.returncode}): {proc.stderr[-2000:]}"
    width, height, rows = _read_png(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {row[x:x + 3] for row in rows[::4] for x in range(0, len(row), 12)}
    assert len(colours) > 20, "the screenshot is blank"
    pixels = {row[x:x + 3] for row in rows for x in range(0, len(row), 3)}
    assert bytes(PASS_RGB) in pixels and bytes(FAIL_RGB) in pixels, "outcome colours not painted"


def test_dom_has_the_tables_and_the_script_ran(page: Path, tmp_path: Path):
    proc = _chromium(tmp_path, "--dump-dom", page.as_uri())
    dom = proc.stdout
    assert '<table id="matrix">' in dom, proc.stderr[-2000:]
    assert '<table id="by-feature">' in dom
    assert dom.count('<td class="o ') == 12
    for case in ("lenet", "lstm", "adam", "gpu_only"):
        assert f'<td class="case">{case}</td>' in dom
    assert 'id="cell-lstm_ts2py_pt1.13.1_ts0.107.0_cpu_ours"' in dom
    assert "<script>alert(1)</script>" not in dom  # escaped reasons stay text
    assert '<div id="filter">' in dom  # the filter script ran and showed its control
