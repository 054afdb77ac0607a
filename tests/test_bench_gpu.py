"""benchmarks/bench_gpu.py: on a machine without CUDA it says so and exits 0; with --allow-cpu its
measurement runs end to end (one family, one step) and reports what a GPU run would."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the benchmark would run")
def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0 and "needs a CUDA GPU" in r.stdout and not out.exists()


def test_the_measurement_runs_on_the_cpu_when_allowed(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(SCRIPT), "--allow-cpu", "--families", "mtcnn1",
                        "--steps", "1", "--batch", "2", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(out.read_text())
    m = report["families"]["mtcnn1"]
    assert report["device"] == "cpu" and m["input"] == [3, 227, 227] and m["batch"] == 2
    assert m["train_images_per_s"] > 0 and m["score_images_per_s"] > 0
    # the engine's own reader (iaalib.engine.device.peak_memory): on a CPU the process's max RSS
    assert m["peak_memory_kind"] == "process max RSS" and m["peak_memory_mib"] > 100
