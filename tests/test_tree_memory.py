"""The fleet-day bench's memory sampler: a process tree's summed resident sets, placed in the steps' windows."""

import subprocess
import sys
import time

from pipelines.devtools.bench.tree_memory import TreeSampler, tree_rss_bytes

HOLD_300MB = "import time; block = bytearray(300 * 2**20); block[::4096] = b'x' * len(block[::4096]); time.sleep(3)"


def test_a_grandchild_counts_in_the_tree_and_in_the_step_it_ran_in():
    # a shell whose child (the grandchild of this test) holds 300 MB: the tree's sum sees it, the shell alone does not
    shell = subprocess.Popen(["/bin/sh", "-c", f'"{sys.executable}" -c "{HOLD_300MB}"; sleep 1'])
    before = time.time()
    with TreeSampler(shell.pid, interval_s=0.05) as memory:
        shell.wait()
    after = time.time()
    assert memory.peak_bytes() > 300 * 2**20
    steps = memory.step_peaks({"holding": (before, after), "never ran": (after + 10, after + 20)})
    assert steps["holding"] == memory.peak_bytes() and steps["never ran"] == 0
    assert tree_rss_bytes(shell.pid) == 0  # gone: nothing left to count
