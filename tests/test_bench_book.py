"""benchmarks/bench_book.py's CPU accounting: each process of a build gets its role from its own
command line and its ancestors', and the sampler adds up what a real process tree used."""
from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.bench_book import CpuSampler, role_of

KERNEL = "/venv/bin/python -m ipykernel_launcher -f /tmp/kernel-1.json"
FORKSERVER = "/venv/bin/python -B -c from multiprocessing.forkserver import main; main(69, 70)"
PIPELINE = "/venv/bin/python -m iaalib.cli book --profile demo"


def test_roles_follow_the_kernel_that_started_a_process():
    assert role_of(KERNEL, [PIPELINE]) == "notebook kernels"
    assert role_of(FORKSERVER, [KERNEL, PIPELINE]) == "training workers"
    assert role_of(FORKSERVER, [FORKSERVER, KERNEL, PIPELINE]) == "training workers"
    assert role_of(PIPELINE, []) == "pipeline"
    assert role_of("/venv/bin/python -B -c from multiprocessing.spawn import spawn_main",
                   [PIPELINE]) == "pipeline"


def test_the_sampler_adds_up_a_process_tree():
    """A parent that starts a child burning about a second of CPU: the child's time is counted
    (to within the sampling interval and the process's own start-up)."""
    pytest.importorskip("psutil")
    code = ("import subprocess, sys, time; subprocess.run([sys.executable, '-c', "
            "'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 1.2: pass\\n"
            "time.sleep(0.5)'])")
    proc = subprocess.Popen([sys.executable, "-c", code])
    sampler = CpuSampler(proc.pid, every=0.1)
    sampler.start()
    proc.wait()
    sampler.done.set()
    sampler.join()
    totals = sampler.totals()
    assert set(totals) == {"pipeline"} and 1.1 <= totals["pipeline"] <= 3.0
