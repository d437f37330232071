"""Binding both sides of a cell to its route for the length of the cell."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harness.drivers.base import Driver
from harness.routes.base import Route


@contextmanager
def bound_route(route: Route, *drivers: Driver) -> Iterator[None]:
    """Each driver's load/save/read/write operations use ``route``'s form inside the block,
    the default ("dat") again after it, however the cell ends."""
    for d in drivers:
        d.route_form = route.form
    try:
        yield
    finally:
        for d in drivers:
            d.route_form = "dat"


@contextmanager
def bound_variant(driver: Driver, form: str) -> Iterator[None]:
    """``driver`` uses the file form ``form`` ("pth:p4": a variant of the bound route) inside
    the block, the form it had again after it."""
    before = driver.route_form
    driver.route_form = form
    try:
        yield
    finally:
        driver.route_form = before
