"""Wall time of the SAF chapters (notebooks 05-09) of a profile, from a fresh IAA_HOME.

    python benchmarks/bench_saf_book.py [--profile demo] [--set saf_workers=1 ...] [--report FILE]
                                        [--keep DIR]

Runs ``iaa book --profile P --only 01 05 06 07 08 09 --no-html`` exactly as ``make book`` would run
those chapters (notebook 01 writes the manifests they read) in an empty temporary ``IAA_HOME``, so
SynthAVA/SynthTID generation and every SAF/NIMA training run are included. Records the per-notebook
wall times from ``book-run.json``, the SAF total against its budget (demo: 260 s of the book's 600 s
on two cores), the load average before and after (the machine may be shared: timings under load are
pessimistic), and the result tables the chapters saved. ``--set key=value`` overrides a ``common:``
value of the profile for this measurement (a YAML value, e.g. ``--set saf_workers=1``; the profile is
copied, not edited). Writes ``benchmarks/results/book_<profile>_saf.json`` (or ``--report``).
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PARAMS = ROOT / "notebooks" / "params"
SAF_NOTEBOOKS = ("05_saf_model", "06_saf_ablations", "07_saf_tsne", "08_saf_gradcam",
                 "09_saf_cross_dataset")
BUDGET_S = {"demo": 260.0, "smoke": 50.0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a common: value of the profile (YAML value)")
    p.add_argument("--report", help="JSON report (default: benchmarks/results/book_<profile>_saf.json)")
    p.add_argument("--keep", help="use this folder (kept) for IAA_HOME and the build instead of a "
                   "temporary one")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="iaa-bench-saf-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        out, home = work / "build", work / "home"
        env = {**os.environ, "MPLBACKEND": "Agg", "IAA_HOME": str(home)}
        overrides = {}
        for item in args.set:
            key, _, value = item.partition("=")
            overrides[key] = yaml.safe_load(value)
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        code = ("import sys, json; from iaalib.book.pipeline import run_book; "
                "run_book(sys.argv[1], only=sys.argv[4:], out=sys.argv[2], html=False, "
                "overrides=json.loads(sys.argv[3]))")
        r = subprocess.run([sys.executable, "-c", code, args.profile, str(out), json.dumps(overrides),
                            "01", *SAF_NOTEBOOKS], cwd=ROOT, env=env)
        wall = time.perf_counter() - t0
        load_after = os.getloadavg()
        run_json = out / "book-run.json"
        record = json.loads(run_json.read_text()) if run_json.is_file() else {}
        import pandas as pd

        tables = {csv.stem: json.loads(pd.read_csv(csv, index_col=0).round(4).to_json(orient="index"))
                  for csv in sorted((home / "results" / args.profile).glob("saf_*.csv"))}

    seconds = {e["name"]: e.get("seconds") for e in record.get("notebooks", [])}
    saf_total = round(sum(seconds.get(n) or 0.0 for n in SAF_NOTEBOOKS), 1)
    budget = BUDGET_S.get(args.profile)
    report = {
        "benchmark": "book_saf", "profile": args.profile, "fresh_iaa_home": True,
        "overrides": overrides,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "exit_code": r.returncode,
        "notebook_seconds": seconds, "saf_notebooks_seconds": saf_total,
        "budget_seconds": budget, "meets_budget": None if budget is None else saf_total <= budget,
        "data_seconds": record.get("data_seconds"), "wall_seconds": round(wall, 1),
        "loadavg_before": load_before, "loadavg_after": load_after,
        "machine": machine_info(), "git_revision": record.get("revision"), "result_tables": tables,
    }
    print(json.dumps({k: report[k] for k in ("notebook_seconds", "saf_notebooks_seconds",
                                             "budget_seconds", "loadavg_before", "loadavg_after")},
                     indent=2))
    write_report(Path(args.report) if args.report else RESULTS / f"book_{args.profile}_saf.json", report)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
