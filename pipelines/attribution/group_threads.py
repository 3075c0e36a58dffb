"""Device groups swept two at a time, each on its own share of the cores.

Within one group the compiled passes run in parallel over devices, but each group also has serial passes (the
power segments, the requests' pieces, the output arrays) and every parallel pass ends waiting for its slowest
device: with one group at a time, two cores were busy about 1.4 of the sweep's time. Two groups at once, each
with half the numba threads (numba.set_num_threads is per thread), keep both busy. Only where numba's threading
layer takes parallel launches from several threads at once (omp, tbb) and the compiled passes release the GIL;
else the groups go one at a time, as before, and under workqueue (which aborts the process on a second concurrent
launch) whole calls take turns (launch_lock). Pure Python; imports no Dagster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

IN_FLIGHT = 2
"""groups swept at once (each holds its gathered inputs and its working arrays while it runs)"""


_ONE_CALL_AT_A_TIME = threading.RLock()


def _layer() -> tuple[str | None, int]:
    """numba's threading layer (None without numba) and this thread's numba threads."""
    try:
        import numba

        threads = numba.get_num_threads()  # starts numba's threading layer if no parallel pass has yet
        return numba.threading_layer(), threads
    except (ImportError, ValueError):
        return None, 1


def _threads_per_group() -> int | None:
    """numba threads for each of IN_FLIGHT groups, or None when groups must go one at a time."""
    layer, threads = _layer()
    if layer not in ("omp", "tbb") or threads < IN_FLIGHT:  # one core: nothing to overlap
        return None
    return threads // IN_FLIGHT


def launch_lock(compiled: bool = True) -> AbstractContextManager:
    """Held around a call's compiled passes where numba's threading layer cannot take parallel launches from several
    threads at once (workqueue: "Concurrent access has been detected" aborts the process): the caller's threads
    and the kernel's warm-up thread then take turns. No lock under omp or tbb, or for the numpy engine."""
    if not compiled:
        return nullcontext()
    layer, _ = _layer()
    return nullcontext() if layer in ("omp", "tbb", None) else _ONE_CALL_AT_A_TIME


def map_groups(work: Callable[[T], R], groups: Sequence[T], compiled: bool) -> list[R]:
    """``work`` of each group, in order: IN_FLIGHT at a time for the compiled engine where that is safe."""
    threads = _threads_per_group() if compiled and len(groups) > 1 else None
    if threads is None:
        return [work(g) for g in groups]
    import numba

    def one(group: T) -> R:
        numba.set_num_threads(threads)  # this worker thread's parallel passes only
        return work(group)

    with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="infercost-group") as pool:
        return list(pool.map(one, groups))
