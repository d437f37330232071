"""Make jit_nonascii_submodule.pt, the input of the jit-load-aborts-on-errorreport repro.

A module with one submodule named 'blöck-1', traced and saved by PyTorch's TorchScript.
PyTorch writes the non-ASCII name into the archive's code as an escape its own parser
rejects: PyTorch's torch.jit.load raises RuntimeError on the file (checked below), while
TorchSharp's torch.jit.load aborts the process. Run with /usr/bin/python3 (torch 1.13):

    /usr/bin/python3 dotnet/Findings/data/make_jit_nonascii.py [OUT]
"""
import sys
from pathlib import Path

import torch


class Holder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.add_module("blöck-1", torch.nn.Linear(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, "blöck-1")(x)


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("jit_nonascii_submodule.pt")
    torch.manual_seed(0)
    traced = torch.jit.trace(Holder().eval(), torch.ones(1, 2))
    torch.jit.save(traced, str(out))
    try:
        torch.jit.load(str(out))
    except RuntimeError as exc:
        print(f"wrote {out}; PyTorch {torch.__version__}'s own torch.jit.load raises RuntimeError: "
              f"{next(ln.strip() for ln in str(exc).splitlines() if ln.strip())}")
        return 0
    print(f"wrote {out}, but PyTorch {torch.__version__} loads it: the file does not trigger the defect", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
