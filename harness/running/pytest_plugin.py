"""pytest plugin: the conformance cells as pytest tests (one test per cell id).

Enable with ``-p harness.running.pytest_plugin`` (pyproject's addopts does). Options:
``--torchsharp VERSION`` (repeatable), ``--codec SPEC``, ``--cell-device DEVICE``, ``--cell-route ROUTE``. A test
that requests the ``cell`` fixture is parametrised over the catalogue's cells; the
``cell_runner`` fixture starts each TorchSharp worker once per session. Outcomes map to
pytest's: pass, fail (fail/xpass/error), xfail, skip (with the reason).
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cases import load_catalogue
from harness.checks import CHECKS
from harness.running.plan import DEVICES, make_cells
from harness.running.runner import CellRunner
from harness.verdicts.expectations import ExpectedFailures
from harness.verdicts.outcomes import CellResult


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("harness", "TorchSharp conformance cells")
    g.addoption("--torchsharp", action="append", default=None, help="TorchSharp version(s) to run against")
    g.addoption("--codec", default="ours", help="codec under test (ours | module | file.py | folder)")
    g.addoption("--cell-device", action="append", default=None, choices=DEVICES, help="device axis values")
    g.addoption("--cell-route", action="append", default=None, help="route axis values (harness/routes/; default all)")


def _routes(config: pytest.Config) -> list[str]:
    from harness.routes import ROUTES
    return list(config.getoption("cell_route") or ROUTES)


def _versions(config: pytest.Config) -> list[str]:
    from harness.drivers.torchsharp import DEFAULT_VERSION
    return list(config.getoption("torchsharp") or [DEFAULT_VERSION])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    import torch

    from harness.codecs import load_codec
    config = metafunc.config
    codec = load_codec(config.getoption("codec"))
    # the model zoo's cells are tests/conformance/test_zoo.py's (a few models, not every one)
    cases = [c for c in load_catalogue().all() if "zoo" not in c.features]
    cells = make_cells(cases, torch.__version__.split("+")[0], _versions(config), codec.name,
                       CHECKS, config.getoption("cell_device") or DEVICES, _routes(config))
    # pytest-xdist (tox.ini runs the suite with it): the large-tensor cells all go to one worker
    # (--dist loadgroup), so two of them never hold several GiB each at once
    params = [pytest.param(c, marks=[pytest.mark.xdist_group("large")] if "large" in c.case.features else [])
              for c in cells]
    metafunc.parametrize("cell", params, ids=[c.id for c in cells])


@pytest.fixture(scope="session")
def cell_runner(request: pytest.FixtureRequest) -> Iterator[CellRunner]:
    from harness.paths import CASES_DIR
    from harness.running.session import close_all, start_torchsharp
    from harness.codecs import load_codec
    from harness.drivers.pytorch import PyTorchDriver

    config = request.config
    with tempfile.TemporaryDirectory(prefix="harness-cells-") as tmp:
        ts = start_torchsharp(_versions(config), Path(tmp) / "work")
        runner = CellRunner(PyTorchDriver(load_codec(config.getoption("codec"))), ts, Path(tmp) / "cells",
                            ExpectedFailures.load(CASES_DIR / "expected_failures"))
        try:
            yield runner
        finally:
            close_all(ts.values())


def assert_outcome(result: CellResult) -> None:
    """Map a cell's outcome onto pytest's; never report a skip or an xfail as a pass."""
    if result.outcome == "pass":
        return
    if result.outcome == "xfail":
        pytest.xfail(result.reason)
    if result.outcome == "skip":
        pytest.skip(result.reason)
    pytest.fail(f"{result.outcome}: {result.reason}\nevidence: {result.evidence}", pytrace=False)
