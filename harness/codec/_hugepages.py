"""Fresh memory for large records that the kernel may back with transparent huge pages.

A large load is bound by page faults, not by copying: every 4 KiB page of a new tensor is
faulted in (and zeroed) once. A private anonymous mapping advised ``MADV_HUGEPAGE`` is
faulted in 2 MiB at a time where transparent huge pages (THP) are in ``always`` or
``madvise`` mode, which makes filling it several times cheaper.

:func:`new_buffer` hands out such a mapping as a writable memoryview for records of at
least :data:`MIN_BYTES` bytes; the tensor made over it with ``torch.frombuffer`` references
the memoryview, which holds a buffer export of the mapping (the mechanism the ``mmap=True``
mode uses for files): the mapping lives exactly as long as the last tensor or view of it
and is unmapped by reference counting. Where the path cannot work (no ``madvise`` or
``MADV_HUGEPAGE`` in this Python, no THP, THP ``never``) or is switched off, it returns
None and the caller allocates with ``torch.empty`` as before. :func:`describe` says which.

``HARNESS_CODEC_HUGEPAGES`` (read at import): unset or ``auto``: on where THP allows it,
for records of at least :data:`DEFAULT_MIN_BYTES` (one huge page); ``off``: never; a byte
count: on where THP allows it, for records of at least that many bytes. Tests set
:data:`MIN_BYTES` directly (``1``: every non-empty record; ``None``: off).
"""
from __future__ import annotations

import mmap
import os

THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"
THP_PMD_SIZE = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"
ENV = "HARNESS_CODEC_HUGEPAGES"
_MADV_HUGEPAGE: int | None = getattr(mmap, "MADV_HUGEPAGE", None)
_MADV_NOHUGEPAGE: int | None = getattr(mmap, "MADV_NOHUGEPAGE", None)


def _pmd_size() -> int:
    """The size of one transparent huge page (2 MiB on x86-64)."""
    try:
        with open(THP_PMD_SIZE) as f:
            size = int(f.read())
    except (OSError, ValueError):
        return 2 << 20
    return size if size > 0 and size & (size - 1) == 0 else 2 << 20


#: One transparent huge page, in bytes.
HPAGE = _pmd_size()
# A record smaller than one huge page cannot hold one, and a fresh mapping per record then
# only costs (measured: benchmarks/README.md, "Huge-page loads"); from one huge page on,
# the advised mapping is filled many times faster than torch.empty's memory.
DEFAULT_MIN_BYTES = HPAGE


def thp_mode(path: str = THP_ENABLED) -> str | None:
    """The kernel's THP mode (``always``, ``madvise``, ``never``: the bracketed word of
    ``path``), or None where the file is missing or unreadable (not Linux, no THP)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


def _configure(setting: str | None = None, thp_path: str = THP_ENABLED) -> tuple[int | None, str]:
    """(:data:`MIN_BYTES`, why) from ``setting`` (default: ``HARNESS_CODEC_HUGEPAGES``), this
    Python's mmap and the THP mode in ``thp_path``."""
    if setting is None:
        setting = os.environ.get(ENV, "auto")
    setting = setting.strip().lower()
    if setting == "off":
        return None, f"{ENV}=off"
    if setting == "auto":
        min_bytes = DEFAULT_MIN_BYTES
    elif setting.isdigit() and int(setting) > 0:
        min_bytes = int(setting)
    else:
        return None, f"{ENV}={setting!r} is not auto, off or a positive byte count"
    if _MADV_HUGEPAGE is None or not hasattr(mmap.mmap, "madvise"):
        return None, "this Python's mmap has no madvise(MADV_HUGEPAGE)"
    mode = thp_mode(thp_path)
    if mode is None:
        return None, f"no transparent huge pages ({thp_path} unreadable)"
    if mode not in ("always", "madvise"):
        return None, f"transparent huge pages are [{mode}]"
    return min_bytes, f"THP [{mode}]"


#: Records of at least this many bytes are read into an advised anonymous mapping; None: never.
MIN_BYTES: int | None
MIN_BYTES, _WHY = _configure()


def describe() -> str:
    """Which path large records take now, and why, in words: ``"hugepage (THP [madvise],
    records of at least 2097152 bytes)"`` or ``"plain (transparent huge pages are [never])"``."""
    configured_on = _WHY.startswith("THP")
    if MIN_BYTES is None:
        return f"plain ({'switched off' if configured_on else _WHY})"
    return f"hugepage ({_WHY if configured_on else 'forced on'}, records of at least {MIN_BYTES} bytes)"


def new_buffer(nbytes: int) -> memoryview | None:
    """A writable memoryview of ``nbytes`` (> 0) fresh, zeroed bytes in a private anonymous
    mapping advised ``MADV_HUGEPAGE``; None when the path is off, ``nbytes`` is below
    :data:`MIN_BYTES`, or the mapping cannot be made or advised (the caller then allocates
    as usual, and fails as usual if memory is short).

    Private, not shared: a shared anonymous mapping is shmem, which THP's ``shmem_enabled``
    governs (usually ``never``). Above one huge page, the mapping's length is rounded up
    to whole huge pages, because Linux aligns an anonymous mapping to a huge page boundary
    only when its length is a multiple of one (else a 3 MiB record may hold no aligned
    2 MiB range); only the whole huge pages that ``nbytes`` covers are advised
    ``MADV_HUGEPAGE``, the partial last one ``MADV_NOHUGEPAGE``, so the rounding costs
    address space, not memory (the untouched rest of the last huge page is never faulted
    in). A record below one huge page (only when :data:`MIN_BYTES` was forced down) gets a
    plain mapping of its size: the same code path, without advice."""
    min_bytes = MIN_BYTES
    if min_bytes is None or nbytes < min_bytes or _MADV_HUGEPAGE is None:
        return None
    head = nbytes - nbytes % HPAGE
    length = nbytes if head in (0, nbytes) else head + HPAGE
    try:
        mapping = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE)
    except (OSError, OverflowError, ValueError):
        return None
    try:
        if head:
            mapping.madvise(_MADV_HUGEPAGE, 0, head)
        if head and length > head and _MADV_NOHUGEPAGE is not None:
            mapping.madvise(_MADV_NOHUGEPAGE, head, length - head)
    except OSError:  # e.g. EINVAL from a kernel built without THP
        mapping.close()
        return None
    return memoryview(mapping)[:nbytes]
