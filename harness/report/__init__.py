"""Renderers over plain outcome data (a Run): each output format is its own module."""
from harness.report.model import SCHEMA_VERSION, Run

__all__ = ["SCHEMA_VERSION", "Run"]
