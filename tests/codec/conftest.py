"""Codec test configuration: hypothesis profiles (``HYPOTHESIS_PROFILE``, default ``ci``:
seeded and bounded) and the ../shared corpus fixture."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.codec._util import CORPUS

settings.register_profile("ci", max_examples=100, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    d = CORPUS / "torch-2.13"
    if not (d / "manifest.json").exists():
        pytest.skip(f"corpus not found at {d} (set HARNESS_CORPUS to the folder holding torch-2.13/)")
    return d
