"""The checks, one module per family; importing this package registers them all, in report
order. Add a check: write it in its family's module (or a new module imported here) with
``@check(name, kinds, ...)``; nothing else needs to know its name.
"""
from harness.checks.registry import REGISTRY, Check, CheckFailed, CheckSkipped, Context, check, kinds_of

from harness.checks import (state, outputs, loading, contract, continued, tensor_file, pybridge,  # noqa: E402,I001
                            damaged, zoo, zoo_docs)  # (report order)

CHECKS: tuple[str, ...] = tuple(REGISTRY)

__all__ = ["CHECKS", "REGISTRY", "Check", "CheckFailed", "CheckSkipped", "Context", "check", "kinds_of",
           "state", "outputs", "loading", "contract", "continued", "tensor_file", "pybridge", "damaged", "zoo",
           "zoo_docs"]
