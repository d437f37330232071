"""pybridge-safetensors-offsets-unchecked, PyTorch 2.6 part: the safetensors package (the
root's python3-safetensors) refuses the two files that TorchSharp.PyBridge 1.4.4's
load_safetensors accepts, byte for byte the ones the TorchSharp part writes: a header whose
"bias" entry overlaps "weight" (data_offsets [0, 16) inside [0, 48)), and the valid file with
4 bytes after its last entry. The valid file itself loads (control).

    python3 scripts/findings/pybridge_safetensors_offsets.py      (in the PyTorch 2.6 root)

Exit status: 0 REPRODUCED (the library refuses both and loads the control: PyBridge is the
side that differs), 3 FIXED (the library accepts them too: then PyBridge is not wrong), 2 error.
"""
from __future__ import annotations

import json
import struct
import sys

try:
    import safetensors
    from safetensors import SafetensorError
    from safetensors.torch import load
except ImportError as exc:  # the host's Python has no safetensors package
    print(f"ERROR: no safetensors package here ({exc}); this part runs in the PyTorch 2.6 root", file=sys.stderr)
    raise SystemExit(2)

DATA = struct.pack("<16f", *range(16))  # weight 0..11, bias 12..15


def file(bias_offsets: list[int], tail: bytes = b"") -> bytes:
    header = json.dumps({"weight": {"dtype": "F32", "shape": [4, 3], "data_offsets": [0, 48]},
                         "bias": {"dtype": "F32", "shape": [4], "data_offsets": bias_offsets}},
                        separators=(",", ":")).encode()  # the TorchSharp part's header, byte for byte
    return struct.pack("<Q", len(header)) + header + DATA + tail


def attempt(raw: bytes) -> str:
    try:
        state = load(raw)
        return f"ok, bias = {state['bias'].tolist()}"
    except SafetensorError as exc:
        return f"SafetensorError: {exc}"


def main() -> int:
    control = attempt(file([48, 64]))
    overlap = attempt(file([0, 16]))
    trailing = attempt(file([48, 64], b"\xde\xad\xbe\xef"))
    if not control.startswith("ok"):
        print(f"ERROR: the valid control file does not load: {control}", file=sys.stderr)
        return 2
    refused = not overlap.startswith("ok") and not trailing.startswith("ok")
    print(("REPRODUCED: the safetensors library refuses both files that PyBridge's load_safetensors accepts"
           if refused else "FIXED: the safetensors library accepts them too"))
    print(f"  safetensors {safetensors.__version__}")
    print(f"  control (bias at [48, 64)): {control}")
    print(f"  bias at [0, 16) overlapping weight: {overlap}")
    print(f"  4 bytes after the last entry: {trailing}")
    return 0 if refused else 3


if __name__ == "__main__":
    raise SystemExit(main())
