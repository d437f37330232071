"""The upgrade radar: TorchSharp's pending changes (pull requests, branches), each built
from source and run as a column beside the release, so a user sees what the next release
changes before it ships (``python3 -m harness radar``).

  refs.py      reading the clone: refs by pattern (newest first), merge base, the change as a
               patch, the base release as a tarball (git only reads the clone)
  classify.py  what a change touches: managed-only (built and run), src/Native (needs a
               native build), neither, or nothing
  select.py    the plan the radar runs: the --quick cases plus every finding's cells
  execute.py   building each ref (harness/builds/torchsharp_source.py, native guard) and running
               its column beside the release; the diff of the two (harness/verdicts/diff.py)
  history.py   what earlier radar runs saw, so a run shows what is new
  report.py    radar.md / radar.html / radar.json, summary first
  main.py      the command
"""
