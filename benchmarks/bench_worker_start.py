"""What starting a grid's worker processes costs: spawned workers against a fork server.

    python benchmarks/bench_worker_start.py [--rounds 3] [--train CONFIG ...] [--out FILE]

A chapter's grid trains in a pool of two worker processes (``iaalib.studies.runner``). Measured
here, on an otherwise idle machine, for each start method: the wall time of ``--rounds`` pools of
two workers that each import what a run needs (``iaalib.engine.trainer``, the runner) and return,
and the CPU time of the workers (``RUSAGE_CHILDREN``: a fork server's forked workers have nothing
left to import, and the fork server's own import is measured alone as ``import_cpu_seconds``).
With ``--train``: do runs train as fast in a fork server's worker as in a spawned one? Each
config is trained (into a temporary folder) in a one-worker pool of each kind, in the order
spawn, fork server, fork server, spawn, twice over (ABBA: a machine whose speed drifts during the
test favours neither); the report sums the epochs' training seconds per kind. Behind
``runner.worker_context``. Writes ``benchmarks/results/worker_start.json``.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODULES = ["iaalib.engine.trainer", "iaalib.studies.runner"]


def _import_what_a_run_needs(_: int) -> int:
    import importlib
    for m in MODULES:
        importlib.import_module(m)
    return 0


def _cpu(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def _pools_here(method: str, rounds: int) -> None:
    """``rounds`` pools of two ``method`` workers in this process; prints wall and workers' CPU."""
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(MODULES)
    t = time.perf_counter()
    for _ in range(rounds):
        with cf.ProcessPoolExecutor(2, mp_context=ctx) as pool:
            list(pool.map(_import_what_a_run_needs, range(2)))
    print(time.perf_counter() - t, _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)))


def pools(method: str, rounds: int) -> dict:
    """:func:`_pools_here` in a fresh interpreter (nothing imported before the workers start)."""
    code = ("from benchmarks.bench_worker_start import _pools_here; "
            f"_pools_here({method!r}, {rounds})")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    wall, workers_cpu = map(float, out.stdout.split())
    return {"wall_seconds": round(wall, 2), "workers_cpu_seconds": round(workers_cpu, 2)}


def _train_seconds(config: str) -> float:
    """Train ``config`` into a temporary folder: its epochs' training seconds."""
    import tempfile

    from iaalib.engine.config import ExperimentConfig
    from iaalib.engine.trainer import train
    with tempfile.TemporaryDirectory() as out:
        return sum(e["seconds"] for e in train(ExperimentConfig.load(config), out=out,
                                                quiet=True).history)


def training_ab(configs: list[str]) -> dict:
    seconds: dict[str, list[float]] = {"spawn": [], "forkserver": []}
    for method in ("spawn", "forkserver", "forkserver", "spawn") * 2:
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(MODULES)
        with cf.ProcessPoolExecutor(1, mp_context=ctx) as pool:
            seconds[method].append(round(sum(pool.submit(_train_seconds, c).result()
                                             for c in configs), 2))
        print(method, seconds[method][-1], flush=True)
    return {"configs": configs, "order": "spawn, forkserver, forkserver, spawn, twice",
            "training_seconds": seconds,
            "total": {k: round(sum(v), 2) for k, v in seconds.items()}}


def import_cpu() -> float:
    before = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    subprocess.run([sys.executable, "-c", "import " + ", ".join(MODULES)], check=True)
    return round(_cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - before, 2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train", nargs="*", default=[], help="run configs to train in each kind")
    p.add_argument("--out", default=str(RESULTS / "worker_start.json"))
    args = p.parse_args(argv)
    report: dict = {"benchmark": "worker_start", "machine": machine_info(), "rounds": args.rounds,
                    "workers_per_pool": 2, "import_cpu_seconds": import_cpu()}
    for method in ("spawn", "forkserver"):
        if method in multiprocessing.get_all_start_methods():
            report[method] = pools(method, args.rounds)
            print(method, report[method])
    print("one import of the modules:", report["import_cpu_seconds"], "CPU-s")
    if args.train and "forkserver" in multiprocessing.get_all_start_methods():
        report["training_ab"] = training_ab(args.train)
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
