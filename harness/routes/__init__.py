"""The routes: the roads state takes between PyTorch and TorchSharp, one module each, and
their registry. Add a route: a module defining a :class:`~harness.routes.base.Route` and one
line in ``ROUTES`` below; the checks, the plan and the reports need nothing else."""
from harness.routes.base import Route, RouteUnavailable
from harness.routes.dat import DAT
from harness.routes.pth import PTH
from harness.routes.safetensors import SAFETENSORS

ROUTES: dict[str, Route] = {r.name: r for r in (DAT, PTH, SAFETENSORS)}
DEFAULT_ROUTE = DAT.name

__all__ = ["DAT", "DEFAULT_ROUTE", "PTH", "ROUTES", "Route", "RouteUnavailable", "SAFETENSORS"]
