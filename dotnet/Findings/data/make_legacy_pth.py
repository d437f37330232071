"""Make legacy_state_dict.pth, the input of the pybridge-legacy-format-refused repro: a state
dict saved by torch.save in the legacy (pre-1.6, non-zip) format that torch.load still reads.
Run with /usr/bin/python3 (torch 1.13):

    /usr/bin/python3 dotnet/Findings/data/make_legacy_pth.py [OUT]
"""
import sys
from pathlib import Path

import torch

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("legacy_state_dict.pth")
state = {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "bias": torch.tensor([0.5, -0.0])}
torch.save(state, out, _use_new_zipfile_serialization=False)
back = torch.load(out)
assert all(torch.equal(back[k], v) for k, v in state.items()), "torch.load does not read its own legacy file"
print(f"wrote {out} ({out.stat().st_size} bytes); torch.load reads it back")
