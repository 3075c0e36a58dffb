"""Device groups swept two at a time (pipelines/attribution/group_threads.py): the same pieces and totals as one at a
time, groups in order, errors raised, and one at a time where numba's threading layer cannot take launches from
several threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pipelines.attribution import group_threads
from pipelines.attribution.kernel import attribute_energy
from tests.test_kernel_inputs import _as_logged, _case


def _tables(result):
    return [result.per_request_bucket, result.per_device_bucket, result.per_request]


def test_two_groups_at_once_give_exactly_what_one_at_a_time_gives(monkeypatch):
    requests, telemetry = _as_logged(*_case(31))
    threads = []
    sweep = group_threads.map_groups

    def recorded(work, groups, compiled):
        def named(group):
            threads.append(threading.current_thread().name)
            return work(group)

        return sweep(named, groups, compiled)

    monkeypatch.setattr("pipelines.attribution.kernel.map_groups", recorded)
    together = attribute_energy(requests, telemetry, bucket_s=60, max_events_per_chunk=200, engine="compiled")
    assert len(threads) > 4 and any(t.startswith("infercost-group") for t in threads)  # several groups, in workers
    threads.clear()
    monkeypatch.setattr(group_threads, "_threads_per_group", lambda: None)
    alone = attribute_energy(requests, telemetry, bucket_s=60, max_events_per_chunk=200, engine="compiled")
    assert threads and not any(t.startswith("infercost-group") for t in threads)
    for a, b in zip(_tables(together), _tables(alone), strict=True):
        assert a.equals(b)  # the same arithmetic, group by group: equal to the bit, in the same order
    assert together.dropped_samples == alone.dropped_samples


def test_groups_come_back_in_order_and_an_error_is_raised():
    import numba

    cores = numba.get_num_threads()  # this machine's layer (omp) takes launches from several threads
    assert group_threads._threads_per_group() == (cores // 2 if cores >= 2 else None)
    assert group_threads.map_groups(lambda g: g * g, list(range(20)), compiled=True) == [g * g for g in range(20)]

    def fails(g):
        if g == 7:
            raise ValueError("group 7")
        return g

    with pytest.raises(ValueError, match="group 7"):
        group_threads.map_groups(fails, list(range(10)), compiled=True)


@pytest.mark.parametrize("layer", ["workqueue", None])
def test_one_at_a_time_where_the_threading_layer_cannot_take_concurrent_launches(monkeypatch, layer):
    import numba

    def threading_layer():
        if layer is None:
            raise ValueError("Threading layer is not initialized.")
        return layer

    monkeypatch.setattr(numba, "threading_layer", threading_layer)
    names = group_threads.map_groups(lambda g: threading.current_thread().name, [1, 2, 3], compiled=True)
    assert names == [threading.current_thread().name] * 3
    assert group_threads.map_groups(lambda g: g, [1, 2], compiled=False) == [1, 2]


def test_the_numpy_engine_goes_one_group_at_a_time():
    names = group_threads.map_groups(lambda g: threading.current_thread().name, [1, 2, 3], compiled=False)
    assert set(names) == {threading.current_thread().name}
    assert np.array_equal(group_threads.map_groups(np.square, [np.arange(3)] * 2, compiled=False)[1], [0, 1, 4])


_WORKQUEUE_CALLS = """
import threading
from concurrent.futures import ThreadPoolExecutor
import numba
from pipelines.attribution.kernel import attribute_energy
from tests.test_kernel_inputs import _as_logged, _case

inputs = [_as_logged(*_case(seed)) for seed in (41, 42)]
first = [attribute_energy(r, t, bucket_s=60, max_events_per_chunk=200) for r, t in inputs]  # the warm-up beside it
assert numba.threading_layer() == "workqueue", numba.threading_layer()
with ThreadPoolExecutor(4) as pool:
    again = list(pool.map(lambda k: attribute_energy(*inputs[k % 2], bucket_s=60, max_events_per_chunk=200), range(8)))
    totals = list(pool.map(lambda k: again[k].per_request, range(8)))
for k, result in enumerate(again):
    assert result.per_request_bucket.equals(first[k % 2].per_request_bucket)
    assert totals[k].equals(first[k % 2].per_request)
print("calls took turns")
"""


def test_under_the_workqueue_layer_calls_take_turns_instead_of_aborting():
    """numba's workqueue layer aborts the process when two threads launch parallel passes at once: a first call
    (with the kernel's warm-up thread) and calls from several threads must take turns (launch_lock)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    done = subprocess.run(
        [sys.executable, "-c", _WORKQUEUE_CALLS],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and "calls took turns" in done.stdout, done.stderr[-2000:]
