"""Start-up of the pythonnet host (dotnet/PyHost), run inside the embedded CPython.

``main(argv)`` installs the PyTorch guard, sets ``sys.argv`` and runs a script
(``SCRIPT.py args...``) or a module (``-m MODULE args...``) as ``__main__``; it returns the
exit status (a SystemExit's code, 1 after an uncaught exception, else 0).

The guard: this process holds TorchSharp's LibTorch; PyTorch brings another LibTorch
build, and two in one process crash it (TorchSharp first, then ``import torch``: abort with
std::system_error; the other order: TorchSharp stops silently). So importing ``torch`` (or
any ``torch.*``) raises ImportError here, saying why and what to use instead.
"""
from __future__ import annotations

import importlib.abc
import os
import runpy
import sys
import traceback

REFUSED = ("torch",)
REASON = (
    "PyTorch cannot be imported inside the pythonnet host: this process already uses TorchSharp's "
    "LibTorch, and a second LibTorch build (PyTorch's) in the same process crashes it. Use TorchSharp "
    "instead (import clr; clr.AddReference('TorchSharp'); from TorchSharp import torch), or run PyTorch "
    "code in a separate Python process."
)


class PyTorchRefused(ImportError):
    """``import torch`` inside the pythonnet host (see REASON)."""


class RefusePyTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201 - importlib's signature
        if fullname.split(".", 1)[0] in REFUSED:
            raise PyTorchRefused(f"refused 'import {fullname}': {REASON}", name=fullname)
        return None


def install_guard() -> None:
    if not any(isinstance(f, RefusePyTorch) for f in sys.meta_path):
        sys.meta_path.insert(0, RefusePyTorch())
    for name in [m for m in sys.modules if m.split(".", 1)[0] in REFUSED]:  # never the case: belt and braces
        del sys.modules[name]


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    install_guard()
    try:
        if argv[0] == "-m":
            if len(argv) < 2:
                print("pyhost: -m needs a module name", file=sys.stderr)
                return 2
            sys.argv = [argv[1], *argv[2:]]
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            script = os.path.abspath(argv[0])
            sys.argv = [argv[0], *argv[1:]]
            sys.path.insert(0, os.path.dirname(script))
            runpy.run_path(script, run_name="__main__")
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:  # noqa: BLE001 - reported like python's own top level does
        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return status
