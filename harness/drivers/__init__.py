"""One driver class per implementation, all with the same small interface (base.Driver)."""
from harness.drivers.base import Capabilities, Digest, Driver, OptimizerDigest

__all__ = ["Capabilities", "Digest", "Driver", "OptimizerDigest"]
