"""Codec test configuration: hypothesis profiles (``HYPOTHESIS_PROFILE``, default ``ci``:
seeded and bounded) and the corpus fixture (cases/corpus/, part of the repository)."""
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
    if not (d / "manifest.json").exists():  # part of the repository: missing is a failure
        pytest.fail(f"corpus not found at {d}: cases/corpus/ belongs to the repository (cases/corpus/README.md)")
    return d
