"""A plain clone is complete: no tracked file points at the reference folder beside the
checkout on the project's machines (``shared`` one level up, or under /work), the corpus its
manifest lists is here, and every case that loads state from the corpus names a file that exists."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from harness.cases import CORPUS_DIR, CaseError, load_catalogue, parse_optimizer_case

ROOT = Path(__file__).resolve().parents[1]
# The folder as a path, one level up, under /work, or by its sub-folders (a word such as
# "shared buffer" is fine). No tracked file may name it.
OUTSIDE = re.compile(rb"(\.\./|/work/)shared\b|\bshared/(corpus|torchsharp-src|hooks)\b")
# The two reference sheets that lived there, by name: ours are docs/format.md and docs/setup.md.
SHEETS = re.compile(rb"\b(FORMAT|MACHINE)\.md\b")
# Files this branch may not edit that still name a sheet; each entry must be removed once its
# file is fixed (the test fails while an entry is stale).
SHEETS_PENDING: set[str] = set()


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if out.returncode != 0:
        pytest.fail(f"git ls-files -z in {ROOT} failed ({out.returncode}): "
                    f"stdout={out.stdout!r} stderr={out.stderr.decode(errors='replace')!r}")
    return [ROOT / n.decode() for n in out.stdout.split(b"\0") if n]


def _hits(pattern: re.Pattern[bytes]) -> dict[str, list[str]]:
    files = _tracked_files()
    assert len(files) > 50  # the listing worked
    hits: dict[str, list[str]] = {}
    for path in files:
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        for lineno, line in enumerate(path.read_bytes().splitlines(), 1):
            if pattern.search(line):
                rel = path.relative_to(ROOT).as_posix()
                hits.setdefault(rel, []).append(f"{rel}:{lineno}: {line.decode(errors='replace').strip()[:160]}")
    return hits


def test_no_tracked_file_refers_outside_the_repository() -> None:
    hits = _hits(OUTSIDE)
    assert not hits, "tracked files refer to a folder outside the repository:\n" + "\n".join(
        line for lines in hits.values() for line in lines)


def test_no_tracked_file_names_the_outside_reference_sheets() -> None:
    hits = _hits(SHEETS)
    bad = {f: lines for f, lines in hits.items() if f not in SHEETS_PENDING}
    assert not bad, "name docs/format.md or docs/setup.md instead:\n" + "\n".join(
        line for lines in bad.values() for line in lines)
    stale = sorted(SHEETS_PENDING - set(hits))
    assert not stale, f"fixed: remove {stale} from SHEETS_PENDING"


def test_the_outside_pattern_catches_what_it_should() -> None:
    up, work = b"../" + b"shared", b"/work/" + b"shared"  # split: this file is scanned too
    for bad in [b"see " + up + b"/FORMAT" + b".md", work + b"/corpus", b"`" + up + b"`", work]:
        assert OUTSIDE.search(bad), bad
    assert OUTSIDE.search(b"shared/" + b"corpus/torch-2.13")
    for bad in [b"FORMAT" + b".md's table", b"see `MACHINE" + b".md`"]:
        assert SHEETS.search(bad), bad
    for fine in [b"a shared buffer", b"docs/format.md", b"docs/setup.md", b"cases/corpus/torch-2.13"]:
        assert not OUTSIDE.search(fine) and not SHEETS.search(fine), fine


def test_corpus_manifest_files_all_exist() -> None:
    manifest = CORPUS_DIR / "torch-2.13" / "manifest.json"
    assert manifest.is_file(), f"{manifest} is missing: the corpus is part of the repository"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    names = sorted(data["files"])
    assert len(names) == 18 and data["torch"].startswith("2.13")
    missing = [n for n in names if not (manifest.parent / n).is_file()]
    assert not missing, f"listed in {manifest} but absent: {missing}"
    unlisted = sorted(p.name for p in manifest.parent.iterdir() if p.name != "manifest.json" and p.name not in names)
    assert not unlisted, f"in {manifest.parent} but not in its manifest: {unlisted}"


def test_corpus_is_inside_the_repository() -> None:
    assert CORPUS_DIR.resolve().is_relative_to(ROOT)
    assert (CORPUS_DIR / "README.md").is_file()


def test_every_corpus_case_names_a_file_that_exists() -> None:
    uses = [c for c in load_catalogue().optimizers.values() if c.state_from]
    assert len(uses) >= 15  # the corpus213_* cases
    for case in uses:
        assert (CORPUS_DIR / case.state_from).is_file(), case.name  # type: ignore[operator]


@pytest.mark.parametrize("state_from, message", [
    ("torch-2.13/no_such_file.pt", "does not exist"),
    ("../outside.pt", "must be a path relative to"),
    ("/abs/file.pt", "must be a path relative to"),
    (3, "must be a path relative to"),
])
def test_a_case_naming_a_missing_corpus_file_fails_to_load(state_from: object, message: str) -> None:
    data = {"name": "c", "model": {"name": "m", "model": {"type": "Linear", "in_features": 2, "out_features": 2},
                                   "input_shape": [1, 2]},
            "optimizer": {"type": "Adam", "groups": [{"params": ["weight"]}]}, "state_from": state_from}
    with pytest.raises(CaseError, match=rf"x\.json: field 'state_from' .*{message}"):
        parse_optimizer_case(data, {}, "x.json")
