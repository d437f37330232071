"""Cross-language conformance harness: PyTorch state <-> real TorchSharp, bit for bit.

Layout, a folder per stage (one concern a module inside each):
  cases/       the language-neutral catalogue under cases/ (``harness.cases``) and what builds
               cases: torch_build.py (PyTorch modules and optimizers from specs), inputs.py,
               generate.py (hypothesis-generated cases), zoo.py and zoo_cases.py (torchvision)
  codec/       the .dat codec (stands alone; the only place that knows byte offsets);
               codecs.py: the codec-under-test adapter (ours, a release, or upstream's scripts)
  routes/      the roads state takes (dat, pth, safetensors): one module each, one registry
  drivers/     one driver class per implementation (TorchSharp's C# worker, the pythonnet
               host, PyTorch in process or in a worker process: pyworker.py) and the protocol
  checks/      the check registry, one module per family of checks
  running/     planning and running: plan.py (the cells), runner.py, session.py (starts the
               implementations), matrix_run.py (the ``run`` command), memory.py and merge.py
               (--jobs, shards), machine.py (CPU and oneDNN ISA), console.py, evidence.py,
               pytest_plugin.py (the same cells as pytest tests)
  verdicts/    deciding verdicts: reference.py (float64), bounds.py, ulp.py, compare.py,
               digest.py, oracle.py, semantics.py, codec_contract.py, agreement.py (the two
               drivers), expectations.py (expected failures as data), outcomes.py, diff.py
  report/      renderers over plain outcome data (JSON, Markdown, HTML, JUnit, history)
  findings/    each finding's standalone repro (repros.py) and the README index (index.py)
  builds/      building the .NET programs, TorchSharp from source, the native guard
  radar/       the upgrade radar: TorchSharp's pull requests built onto the release
  cli.py       ``python3 -m harness ...`` (light: --help needs nothing installed)
"""
__version__ = "0.1.0"
