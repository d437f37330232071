"""Reading a TorchSharp clone for the radar, with git, without writing to it.

Everything here runs read-only git commands (``for-each-ref``, ``merge-base``, ``diff``,
``archive``, ``cat-file``) against ``--git-dir``, so a shared bare mirror is never touched.
A ref's change is the diff from its merge base with the base release to its tip, as a
patch: the radar builds the base release with that patch applied (a pull request as the
next release would take it), never the tip's whole tree (which would carry every other
change made since its merge base).
"""
from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class RadarGitError(RuntimeError):
    """A git command on the clone failed (the message names the command and the clone)."""


@dataclass(frozen=True)
class RefInfo:
    ref: str  # refs/pull/1561/head
    commit: str  # full sha of its tip
    author: str
    date: str  # the tip's committer date, ISO 8601
    subject: str  # the tip's subject line

    @property
    def label(self) -> str:
        """The column label: ``pr1561`` for a pull request, else the ref's last parts."""
        m = re.fullmatch(r"refs/pull/(\d+)/(head|merge)", self.ref)
        if m:
            return f"pr{m.group(1)}" + ("" if m.group(2) == "head" else "-merge")
        name = re.sub(r"^refs/(heads|tags|remotes)/", "", self.ref)
        return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "ref"


class Git:
    """Read-only git on one clone (a work tree or a bare repository)."""

    def __init__(self, repo: Path):
        self.repo = Path(repo)
        gitdir = self.repo / ".git"
        self.git_dir = gitdir if gitdir.exists() else self.repo
        probe = self._run(["rev-parse", "--git-dir"], check=False)
        if probe.returncode != 0:
            raise RadarGitError(f"--repo {repo}: not a git clone ({probe.stderr.strip()})")

    def _run(self, args: Sequence[str], check: bool = True, binary: bool = False,
             ) -> subprocess.CompletedProcess[str]:
        argv = ["git", f"--git-dir={self.git_dir}", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              env={"GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin", "HOME": "/nonexistent",
                                   "LC_ALL": "C"})
        if check and proc.returncode != 0:
            raise RadarGitError(f"git {' '.join(args)} in {self.repo} failed ({proc.returncode}): "
                                f"{proc.stderr.strip()[-2000:]}")
        return proc

    def out(self, *args: str) -> str:
        return self._run(args).stdout

    # --- refs -------------------------------------------------------------------------------
    def refs(self, patterns: Sequence[str]) -> list[RefInfo]:
        """Every ref matching one of ``patterns`` (fnmatch over the full ref name; ``*`` also
        crosses ``/``), newest tip first (committer date, then ref name)."""
        fmt = "%(refname)%00%(objectname)%00%(*objectname)%00%(committerdate:iso-strict)%00%(authorname)%00%(subject)"
        rows = []
        for line in self.out("for-each-ref", f"--format={fmt}").splitlines():
            name, obj, peeled, date, author, subject = (line.split("\0") + [""] * 6)[:6]
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                commit = peeled or obj
                if not date:  # an annotated tag: the date of the commit it points to
                    date, author, subject = self.out("log", "-1", "--format=%cI%x00%an%x00%s", commit
                                                     ).rstrip("\n").split("\0")
                rows.append(RefInfo(name, commit, author, date, subject))
        rows.sort(key=lambda r: (r.date, r.ref), reverse=True)
        return rows

    def resolve(self, rev: str) -> str:
        proc = self._run(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], check=False)
        if proc.returncode != 0:
            raise RadarGitError(f"--base {rev}: no such commit in {self.repo}")
        return proc.stdout.strip()

    def merge_base(self, a: str, b: str) -> str | None:
        proc = self._run(["merge-base", a, b], check=False)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    # --- a change ---------------------------------------------------------------------------
    def changed_files(self, base: str, tip: str) -> list[tuple[str, str]]:
        """``(status, path)`` of each file that differs (renames as delete + add)."""
        out = self.out("diff", "--no-renames", "--name-status", "-z", base, tip)
        parts = [p for p in out.split("\0") if p]
        return [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]

    def binary_files(self, base: str, tip: str) -> list[str]:
        out = self.out("diff", "--no-renames", "--numstat", base, tip)
        return [ln.split("\t", 2)[2] for ln in out.splitlines() if ln.startswith("-\t-\t")]

    def patch(self, base: str, tip: str, paths: Sequence[str] = ()) -> bytes:
        """The change (to ``paths`` only, when given) as a unified diff ``patch -p1`` applies
        (no renames, context of 3)."""
        argv = ["git", f"--git-dir={self.git_dir}", "diff", "--no-renames", "--no-color", "--no-ext-diff",
                base, tip, *(["--", *paths] if paths else [])]
        proc = subprocess.run(argv, capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
        if proc.returncode != 0:
            raise RadarGitError(f"git diff {base} {tip} in {self.repo} failed: "
                                f"{proc.stderr.decode(errors='replace')[-2000:]}")
        return proc.stdout

    def missing_objects(self, commit: str) -> list[str]:
        """Paths of ``commit``'s tree whose blobs the clone lacks (a partial or damaged clone)."""
        listing = self._run(["ls-tree", "-r", "-z", commit], check=False)
        if listing.returncode != 0:
            return [f"(the tree of {commit[:12]}: {listing.stderr.strip()})"]
        entries = [e.split("\t", 1) for e in listing.stdout.split("\0") if e]
        blobs = {meta.split()[2]: path for meta, path in entries if meta.split()[1] == "blob"}
        if not blobs:
            return []
        proc = subprocess.run(["git", f"--git-dir={self.git_dir}", "cat-file", "--batch-check"],
                              input="\n".join(blobs) + "\n", capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
        return sorted(blobs[ln.split()[0]] for ln in proc.stdout.splitlines() if ln.endswith(" missing"))

    def has_path(self, commit: str, path: str) -> bool:
        return self._run(["cat-file", "-e", f"{commit}:{path}"], check=False).returncode == 0

    def archive(self, commit: str, dest: Path) -> Path:
        """``commit``'s tree as a .tar.gz at ``dest`` (written beside, then renamed)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
        self.out("archive", "--format=tar.gz", "--prefix=TorchSharp/", f"--output={tmp}", commit)
        tmp.replace(dest)
        return dest
