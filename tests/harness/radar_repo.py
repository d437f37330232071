"""A small TorchSharp clone for the radar's tests, made with git from the release tarball in
third_party/ (no network): the release as the first commit, tagged v0.107.0, and five pull
requests on it, each one commit with its own committer date (newest last):

  refs/pull/101/head  fixes RAdam (patches/torchsharp/radam-lr-applied-twice.patch)
  refs/pull/102/head  breaks Adam (its step size doubled): a passing optimizer
  refs/pull/103/head  touches src/Native (a comment in THSTensor.h)
  refs/pull/104/head  does not compile (a string assigned to an int)
  refs/pull/105/head  changes docs only (docs/radar-test.md)

``extra=True`` adds the other states a ref can be in: refs/heads/docs-copy (the commit of
105 again: a duplicate), refs/pull/106/head (the release itself: an empty diff),
refs/pull/107/head (a managed binding of a native function no release exports: the guard),
refs/pull/108/head (a commit whose blob the clone lacks: incomplete) and refs/pull/109/head
(history of its own: no merge base).
"""
from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARBALL = ROOT / "third_party" / "torchsharp" / "TorchSharp-0.107.0-c20b6a1c.tar.gz"
PATCH_DIR = ROOT / "patches" / "torchsharp"
ADAM = "src/TorchSharp/Optimizers/Adam.cs"
LINALG = "src/TorchSharp/PInvoke/LibTorchSharp.THSLinalg.cs"


def _git(repo: Path, *args: str, date: int = 0) -> str:
    stamp = f"{1_780_000_000 + date * 3600} +0000"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo.parent), "GIT_AUTHOR_NAME": "Radar Test",
           "GIT_AUTHOR_EMAIL": "radar@example.invalid", "GIT_COMMITTER_NAME": "Radar Test",
           "GIT_COMMITTER_EMAIL": "radar@example.invalid", "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _edit(repo: Path, path: str, old: str, new: str) -> None:
    f = repo / path
    text = f.read_text(encoding="utf-8")
    assert old in text, f"{path} lacks {old!r}"
    f.write_text(text.replace(old, new, 1), encoding="utf-8")


def _pr(repo: Path, base: str, number: int, message: str, date: int) -> str:
    _git(repo, "commit", "-q", "-a", "-m", message, date=date)
    commit = _git(repo, "rev-parse", "HEAD")
    _git(repo, "update-ref", f"refs/pull/{number}/head", commit)
    _git(repo, "checkout", "-q", "--detach", base)
    return commit


def make_repo(where: Path, extra: bool = False) -> dict[str, str]:
    """Make the clone at ``where``; return {ref: commit} (and "base")."""
    repo = where
    repo.mkdir(parents=True)
    with tarfile.open(TARBALL) as tar:
        tar.extractall(repo)  # our own release tarball (test_source_build.py checks it is safe)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "TorchSharp 0.107.0 release source", date=0)
    base = _git(repo, "rev-parse", "HEAD")
    _git(repo, "tag", "v0.107.0")
    _git(repo, "checkout", "-q", "--detach", base)
    refs = {"base": base}
    subprocess.run(["patch", "-s", "-p1", "-d", str(repo), "-i", str(PATCH_DIR / "radam-lr-applied-twice.patch")],
                   check=True)
    refs["refs/pull/101/head"] = _pr(repo, base, 101, "RAdam: apply lr once in the rectified branch", 1)
    _edit(repo, ADAM, "var step_size = lr / bias_correction1;", "var step_size = 2 * lr / bias_correction1;")
    refs["refs/pull/102/head"] = _pr(repo, base, 102, "Adam: a larger step", 2)
    _edit(repo, "src/Native/LibTorchSharp/THSTensor.h", "EXPORT_API(Tensor) THSLinalg_cholesky(",
          "// radar test: a native change\nEXPORT_API(Tensor) THSLinalg_cholesky(")
    refs["refs/pull/103/head"] = _pr(repo, base, 103, "Native: a comment", 3)
    _edit(repo, ADAM, "var step_size = lr / bias_correction1;",
          'int radar_broken = "not an int";\n                        var step_size = lr / bias_correction1;')
    refs["refs/pull/104/head"] = _pr(repo, base, 104, "Adam: does not compile", 4)
    (repo / "docs").mkdir(exist_ok=True)
    (repo / "docs" / "radar-test.md").write_text("# Docs only\n", encoding="utf-8")
    _git(repo, "add", "docs/radar-test.md")
    refs["refs/pull/105/head"] = _pr(repo, base, 105, "Docs: a page", 5)
    if extra:
        refs.update(_extra(repo, base, refs["refs/pull/105/head"]))
    return refs


def _extra(repo: Path, base: str, docs: str) -> dict[str, str]:
    out = {}
    _git(repo, "update-ref", "refs/heads/docs-copy", docs)
    out["refs/heads/docs-copy"] = docs
    _git(repo, "update-ref", "refs/pull/106/head", base)
    out["refs/pull/106/head"] = base
    _edit(repo, LINALG, "        internal static extern IntPtr THSLinalg_cholesky(IntPtr tensor);",
          "        internal static extern IntPtr THSLinalg_radar_probe(IntPtr tensor);\n\n"
          '        [DllImport("LibTorchSharp")]\n'
          "        internal static extern IntPtr THSLinalg_cholesky(IntPtr tensor);")
    out["refs/pull/107/head"] = _pr(repo, base, 107, "Linalg: bind a new native function", 7)
    (repo / "src" / "TorchSharp" / "RadarLost.cs").write_text("// a file the clone loses\n", encoding="utf-8")
    _git(repo, "add", "src/TorchSharp/RadarLost.cs")
    out["refs/pull/108/head"] = _pr(repo, base, 108, "A file the clone lacks", 8)
    blob = _git(repo, "rev-parse", f"{out['refs/pull/108/head']}:src/TorchSharp/RadarLost.cs")
    os.unlink(repo / ".git" / "objects" / blob[:2] / blob[2:])
    _git(repo, "checkout", "-q", "--orphan", "unrelated")
    _git(repo, "rm", "-q", "-r", "--cached", ".")
    (repo / "README.md").write_text("unrelated history\n", encoding="utf-8")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-q", "-m", "unrelated history", date=9)
    out["refs/pull/109/head"] = _git(repo, "rev-parse", "HEAD")
    _git(repo, "update-ref", "refs/pull/109/head", out["refs/pull/109/head"])
    _git(repo, "checkout", "-q", "-f", "--detach", base)
    _git(repo, "branch", "-q", "-D", "unrelated")
    return out
