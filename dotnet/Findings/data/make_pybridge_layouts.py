"""Makes pybridge_*.pth for the pybridge-load-py-ignores-layout repro (PyTorch 1.13 or 2.6,
``torch.save`` of state dicts; run from this folder: /usr/bin/python3 make_pybridge_layouts.py).

- pybridge_view.pth: a Linear(3, 4) whose weight is arange(12).reshape(4, 3) and a buffer ``v``
  = weight.detach().narrow(0, 1, 2) (rows 1-2, storage offset 3, sharing the weight's storage,
  as a module with a view buffer saves it).
- pybridge_small.pth: a Linear(3, 4) state dict whose weight has the wrong shape [2, 3].
"""
import torch

torch.manual_seed(0)
m = torch.nn.Linear(3, 4)
m.register_buffer("v", m.weight.detach().narrow(0, 1, 2))
with torch.no_grad():
    m.weight.copy_(torch.arange(12.0).reshape(4, 3))
    m.bias.copy_(torch.arange(4.0))
torch.save(m.state_dict(), "pybridge_view.pth")
torch.save({"weight": torch.arange(6.0).reshape(2, 3), "bias": torch.arange(4.0)}, "pybridge_small.pth")
