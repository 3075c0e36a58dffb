"""How the kernel takes memory from the system and gives it back. Imports no Dagster.

* ``small_pages``: numpy's huge-page hint off while the kernel allocates. numpy asks the kernel (``madvise``) for
  2 MB pages for every array of 4 MB or more; on a virtual machine whose free memory the host has taken back
  (free page reporting), each fresh 2 MB page is then filled by the host: measured here, the first 1.5 GB a
  process touches took 3.4 to 3.7 s with the hint against 0.55 to 0.65 s without it (0.28 s with it once the pages
  were the process's own). Reused memory is as fast either way, so the hint only helps long-lived arrays' TLB
  misses, which the kernel's warm calls do not show (README, "Fresh memory in small pages").
* ``release_freed_memory``: the memory freed so far handed back to the system.
"""

from __future__ import annotations

import ctypes
import threading
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

_hint = getattr(np._core.multiarray, "_set_madvise_hugepage", None)  # numpy >= 1.20; returns the previous value
_lock = threading.Lock()
_inside = 0  # blocks open in any thread: the first saves the caller's setting, the last puts it back
_caller_hint = True


@contextmanager
def small_pages():
    """numpy's huge-page hint off inside the block, and back as it was after it (the module docstring). The hint is
    the process's: calls in several threads at once keep it off until the last ends, which restores the setting
    from before the first."""
    global _inside, _caller_hint
    if _hint is None:
        yield
        return
    with _lock:
        if _inside == 0:
            _caller_hint = _hint(False)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _hint(_caller_hint)


def release_freed_memory() -> None:
    """Hand the memory freed so far back to the system: Arrow's pool (mimalloc or jemalloc) keeps freed pages for
    reuse, which numpy's allocations cannot use, and glibc's malloc keeps the holes numpy's freed arrays leave in
    its heaps (arrays under its mmap threshold, which rises to 32 MB as large arrays are freed), which Arrow
    cannot use: about 0.2 GB at 10M requests. Both would otherwise stay in the process's RSS through the sweep and
    the output tables."""
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim():
    """glibc's malloc_trim, or None (another C library)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


_MALLOC_TRIM = _malloc_trim()
