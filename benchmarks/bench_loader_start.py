"""What DataLoader workers cost to start inside a grid worker: spawned or forked.

    python benchmarks/bench_loader_start.py [--repeats 3] [--out benchmarks/results/loader_start.json]

A grid's runs train in spawned processes (``iaalib.studies.runner``), and a spawned process starts
its own children with spawn too, so each DataLoader worker would import torch and iaalib again, for
every train and test loader of every epoch. This trains one tiny run (``tests/engine_helpers``:
24 training and 12 test images, 2 epochs, a test pass after each, 2 loader workers) in a spawned
worker process, its loaders started each way (``iaalib.engine.loaders.worker_start_method``
patched in the worker), alternating, and records the run's wall time. Not a test: numbers.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("spawn", "fork")


def _train_once(root: str, method: str, tag: str) -> float:
    """In the pool worker: one tiny run with its loaders' workers started by ``method``."""
    from iaalib.engine import loaders
    from iaalib.engine.config import ExperimentConfig
    from iaalib.engine.trainer import train
    from tests.engine_helpers import make_tiny_dataset, tiny_config

    loaders.worker_start_method = lambda: method
    paths = make_tiny_dataset(Path(root) / "data")
    cfg = tiny_config(paths, val=False, monitor_test=True, name=f"loader-{tag}").to_dict()
    cfg["data"]["num_workers"] = 2
    cfg = ExperimentConfig.from_dict(cfg)
    t0 = time.perf_counter()
    train(cfg, out=Path(root) / "runs" / tag, quiet=True)
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "loader_start.json"))
    args = ap.parse_args(argv)
    seconds: dict[str, list[float]] = {m: [] for m in METHODS}
    with tempfile.TemporaryDirectory() as tmp, cf.ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_train_once, tmp, "fork", "warm-up").result()  # imports, dataset
        for r in range(args.repeats):
            for method in METHODS:
                seconds[method].append(pool.submit(_train_once, tmp, method, f"{method}{r}").result())
    median = {m: statistics.median(v) for m, v in seconds.items()}
    report = {"benchmark": "loader_start", "machine": machine_info(),
              "run": "tiny mtcnn1, 24 training / 12 test images, 2 epochs, test pass each epoch, "
                     "2 loader workers, in a spawned worker process",
              "seconds": seconds, "median_seconds": median,
              "spawn_over_fork": round(median["spawn"] / median["fork"], 2)}
    print(f"run wall (median of {args.repeats}): spawn {median['spawn']:.2f} s, "
          f"fork {median['fork']:.2f} s ({report['spawn_over_fork']}x)")
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
