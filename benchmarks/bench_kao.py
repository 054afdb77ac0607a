"""Wall time of the Kao chapters (notebooks 02–04) from a fresh IAA_HOME, per threads × workers.

    python benchmarks/bench_kao.py [--profile demo] [--cases 1x2 1x1 2x1] [--report FILE]

A case ``TxW`` runs with ``kao_num_threads = T`` torch threads per run and ``kao_workers = W`` runs
at a time. For each case: an empty temporary ``IAA_HOME`` and a copy of the profiles with those two
``common`` values set, then ``iaa book --only 01 02 03 04 --no-html`` (notebook 01 writes
the manifests the Kao chapters read; SynthAVA generation and every training run are included).
Records the per-notebook wall times (``book-run.json``), the wall time of every training run
(``run.json`` started → finished) and the load average before and after, since the machine is
usually shared. Budget for the demo profile: notebooks 02–04 together about 240 s on two cores.
Writes ``benchmarks/results/kao_<profile>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, record_seconds, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
KAO_NOTEBOOKS = ("02_kao_mtcnn", "03_kao_mtrl", "04_kao_transfer")
BUDGET_S = {"demo": 240.0, "smoke": 40.0}


def run_seconds(runs_dir: Path) -> dict[str, float]:
    """Wall time of every finished training run under ``runs_dir`` (run.json timestamps)."""
    out = {}
    for rec_file in sorted(runs_dir.glob("*/run.json")):
        seconds = record_seconds(json.loads(rec_file.read_text()))
        if seconds is not None:
            out[rec_file.parent.name] = round(seconds, 1)
    return out


def one(profile: str, threads: int, workers: int, tmp: Path) -> dict:
    home, out = tmp / "home", tmp / "build"
    env = {**os.environ, "IAA_HOME": str(home), "MPLBACKEND": "Agg"}
    overrides = {"kao_num_threads": threads, "kao_workers": workers}
    code = ("from iaalib.book.pipeline import run_book; "
            f"run_book({profile!r}, only=['01', *{list(KAO_NOTEBOOKS)!r}], out={str(out)!r}, "
            f"html=False, overrides={overrides!r})")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    record = json.loads((out / "book-run.json").read_text()) if (out / "book-run.json").is_file() else {}
    seconds = {e["name"]: e.get("seconds") for e in record.get("notebooks", [])}
    kao_total = sum(seconds.get(n) or 0.0 for n in KAO_NOTEBOOKS)
    budget = BUDGET_S.get(profile)
    return {"threads": threads, "workers": workers, "exit_code": r.returncode, "wall_seconds": round(wall, 1),
            "data_seconds": record.get("data_seconds"), "notebooks": seconds,
            "kao_notebooks_seconds": round(kao_total, 1), "budget_seconds": budget,
            "meets_budget": None if budget is None else bool(r.returncode == 0 and kao_total <= budget),
            "runs": run_seconds(home / "runs"),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--cases", nargs="+", default=["1x2", "1x1"],
                   help="threads x workers, e.g. 1x2 (default: 1x2 1x1)")
    p.add_argument("--report", help="JSON report (default: benchmarks/results/kao_<profile>.json)")
    args = p.parse_args(argv)
    cases = []
    for spec in args.cases:
        t, w = (int(x) for x in spec.lower().split("x"))
        with tempfile.TemporaryDirectory(prefix="iaa-bench-kao-") as tmp:
            case = one(args.profile, t, w, Path(tmp))
        cases.append(case)
        print(f"threads={t} workers={w}: notebooks 02-04 {case['kao_notebooks_seconds']:.1f} s "
              f"({', '.join(f'{k} {v}' for k, v in case['notebooks'].items())}); "
              f"load {case['loadavg_before'][0]} -> {case['loadavg_after'][0]}", flush=True)
    report = {"benchmark": "kao_notebooks", "profile": args.profile, "cases": cases,
              "machine": machine_info(), "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_report(Path(args.report) if args.report else RESULTS / f"kao_{args.profile}.json", report)
    return 0 if all(c["exit_code"] == 0 for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
