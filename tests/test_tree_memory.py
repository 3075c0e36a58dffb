"""The fleet-day bench's memory sampler: a process tree's summed resident sets, placed in the steps' windows."""

import subprocess
import sys
import time

from pipelines.devtools.bench.tree_memory import TreeSampler, tree_cpu_s, tree_rss_bytes

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


SPIN_1S = "import time; t = time.process_time(); exec('while time.process_time() - t < 1.0: pass')"


def test_a_grandchilds_cpu_counts_in_the_step_it_ran_in_and_not_in_one_after():
    # the grandchild spins a core for 1 s of CPU, then the shell sleeps: its CPU lands in the first window only
    shell = subprocess.Popen(["/bin/sh", "-c", f'"{sys.executable}" -c "{SPIN_1S}"; sleep 1'])
    start = time.time()
    with TreeSampler(shell.pid, interval_s=0.05) as sampler:
        while tree_cpu_s(shell.pid) < 0.9 and shell.poll() is None:
            time.sleep(0.05)
        time.sleep(0.4)  # the spinner had used 0.9 s: it ends within 0.1 s of CPU
        spun = time.time()
        shell.wait()
    end = time.time()
    cpu = sampler.step_cpu_s(
        {"spinning": (start, spun), "sleeping": (spun + 0.1, end), "never ran": (end + 1, end + 2)}
    )
    assert 0.8 <= cpu["spinning"] <= 1.5, cpu  # the interpreter's start-up adds a little
    assert cpu["sleeping"] < 0.1 and cpu["never ran"] == 0.0, cpu


PEAKS = (
    "import resource; from pipelines.devtools.bench.tree_memory import own_peak_bytes; "
    "print(own_peak_bytes(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"
)


def test_a_process_peak_is_its_own_not_the_larger_parents_it_was_started_from():
    # the bench's children are started by a parent that may hold GBs (the generated inputs): ru_maxrss carries the
    # parent's peak across exec, VmHWM (own_peak_bytes) does not; the sampler keeps the largest one process reached
    block = bytearray(400 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    child = subprocess.run([sys.executable, "-c", PEAKS], capture_output=True, text=True, check=True)
    own, inherited = map(int, child.stdout.split())
    assert inherited > 400 * 2**20  # the trap the bench fell into: a small child reported the parent's 400 MB
    assert own < 200 * 2**20, own
    del block
    holder = subprocess.Popen([sys.executable, "-c", HOLD_300MB])
    with TreeSampler(holder.pid, interval_s=0.05) as memory:
        holder.wait()
    assert 300 * 2**20 < memory.process_peak_bytes < 400 * 2**20
