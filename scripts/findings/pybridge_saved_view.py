"""pybridge-save-py-view-offset, PyTorch part: torch.load of a file TorchSharp.PyBridge 1.4.4's
save_py wrote for a Linear(3, 4) whose buffer v = weight.narrow(0, 1, 2) (storage offset 3).

The file, dotnet/Findings/data/pybridge_saved_view.pth, was written by the TorchSharp part
(`dotnet build/findings/0.107.0/Findings.dll pybridge-save-py-view-offset --write PATH`).
PyBridge stores v's 6 elements as its storage but records storage offset 3, so
torch._utils._rebuild_tensor_v2 cannot view it. Loaded as a PyTorch 2.6 user does (default
weights_only=True; PyTorch 1.13: the default weights_only=False).

    /usr/bin/python3 scripts/findings/pybridge_saved_view.py

Exit status: 0 REPRODUCED (torch.load refuses the file), 3 FIXED (it loads and v equals the
weight's rows 1-2), 2 error.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

FILE = Path(__file__).resolve().parents[2] / "dotnet" / "Findings" / "data" / "pybridge_saved_view.pth"


def main() -> int:
    try:
        state = torch.load(FILE)
    except RuntimeError as exc:
        print(f"REPRODUCED: PyTorch {torch.__version__} torch.load refuses PyBridge's save_py file: "
              f"RuntimeError: {str(exc).splitlines()[0]}")
        print(f"  file: {FILE.name} (Linear(3, 4) + buffer v = weight.narrow(0, 1, 2), written by save_py)")
        return 0
    if torch.equal(state["v"], state["weight"][1:3]):
        print(f"FIXED: PyTorch {torch.__version__} loads the file and v equals the weight's rows 1-2")
        return 3
    print(f"ERROR: the file loads but v = {state['v'].tolist()} differs from weight rows 1-2 "
          f"{state['weight'][1:3].tolist()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
