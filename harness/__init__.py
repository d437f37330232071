"""Cross-language conformance harness: PyTorch state <-> real TorchSharp, bit for bit.

Layout (one concern a module):
  codec/           the .dat codec (stands alone; the only place that knows byte offsets)
  cases.py         loads the language-neutral case catalogue under cases/
  torch_build.py   builds PyTorch modules/optimizers from case specs, trains, makes inputs
  codecs.py        the codec-under-test adapter (ours, a release, or upstream's scripts)
  codec_contract.py  what a codec's loads must give besides equal bytes
  drivers/         one driver class per implementation (TorchSharp worker, PyTorch in process
                   or in a worker process, the server it runs) and the worker protocol
  digest.py        byte digests both sides agree on; oracle.py: what TorchSharp must hold
                   after loading a PyTorch optimizer
  reference.py     the float64 reference; bounds.py: dtype-aware bounds; ulp.py: distances
  semantics.py     comparisons after continued training
  machine.py       the CPU and oneDNN ISA each process runs on
  checks/          the check registry, one module per family of checks
  plan.py          the cells; runner.py runs them; evidence.py keeps what failing cells leave
  expectations.py  expected failures as data; outcomes.py: cell outcomes as plain data
  session.py       starts the implementations; matrix_run.py: the `run` command
  console.py       what a run prints; report/: renderers over plain outcome data
  radar/           the upgrade radar: TorchSharp's pull requests built onto the release and run beside it
  cli.py           `python3 -m harness ...` (light: --help needs nothing installed)
  pytest_plugin.py the same cells as pytest tests
"""
__version__ = "0.1.0"
