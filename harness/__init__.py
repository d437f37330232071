"""Cross-language conformance harness: PyTorch state <-> real TorchSharp, bit for bit.

Layout (one concern a module):
  codec/        the .dat codec (stands alone; the only place that knows byte offsets)
  cases.py      loads the language-neutral case catalogue under cases/
  torch_build.py builds PyTorch modules/optimizers from case specs
  codecs.py     the codec-under-test adapter (ours, a release, or upstream's scripts)
  drivers/      one driver class per implementation (TorchSharp worker, PyTorch)
  digest.py     byte digests both sides agree on
  oracle.py     what TorchSharp must hold after loading a PyTorch optimizer
  cells.py      the cell matrix and the checks each cell runs
  outcomes.py   outcome data + expected failures
  report/       renderers (JSON, Markdown, ...) over plain outcome data
  cli.py        `python3 -m harness ...`
  pytest_plugin.py  the same cells as pytest tests
"""
__version__ = "0.1.0"
