"""Which reconstruction weight α lets the demo-size SAF learn? (A benchmark, not a test.)

Trains the full SAF model of the demo profile (``iaalib.studies.saf.book_config`` with the values of
``notebooks/params/demo.yaml``) for each ``--alphas`` value and ``--seeds`` seed, plus NIMA as the
reference, through the book's own engine (checkpoint-or-train, so re-runs are cheap), and reports on
the standard split's test set: SRCC/PLCC of the mean score, the SD of the predicted means (how far a
model has moved from predicting one average distribution) and the last epoch's training EMD.

    python benchmarks/bench_saf_alpha.py [--alphas 0.1 0.01] [--seeds 0 1] [--workers 2]
                                         [--out benchmarks/results/saf_alpha.json]

Needs the demo profile's SynthAVA and standard-split manifests under ``IAA_HOME`` (run
``iaa book --profile demo --only 01`` first). Timings depend on the machine's load.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from iaalib import datasets, profiles  # noqa: E402
from iaalib.studies import runner, saf  # noqa: E402
from benchmarks._report import machine_info, write_report  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alphas", type=float, nargs="+", default=[0.1, 0.01])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "saf_alpha.json"))
    args = p.parse_args(argv)

    c = profiles.chapter_settings("demo", "05_saf_model")
    dataset = datasets.profile_dataset(c)
    base = saf.profile_config(c, dataset.image_dir)
    configs = {}
    for alpha in args.alphas:
        for s in args.seeds:
            configs[f"SAF alpha={alpha:g} seed={s}"] = saf.saf_config(
                base.with_overrides({"loss.alpha": alpha}), seed=s)
    for s in args.seeds:
        configs[f"NIMA seed={s}"] = saf.nima_config(base, dropout=c["saf_nima_dropout"], seed=s)
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    runs = runner.run_grid(configs, workers=args.workers)
    rows = {}
    for label, run in runs.items():
        pred = run.predictions
        rows[label] = {"srcc_mean": run.metrics["srcc_mean"], "plcc_mean": run.metrics["plcc_mean"],
                       "emd": run.metrics["emd"], "sd_of_predicted_means": float(pred["mean"].std()),
                       "sd_of_true_means": float(pred["gt_mean"].std()),
                       "final_train_emd": run.history[-1]["train_emd"], "run": str(run.dir)}
        r = rows[label]
        print(f"{label:28s} SRCC {r['srcc_mean']:+.3f}  PLCC {r['plcc_mean']:+.3f}  "
              f"SD(pred mean) {r['sd_of_predicted_means']:.3f}  train EMD {r['final_train_emd']:.4f}")
    report = {"benchmark": "saf_alpha", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "settings": {k: v for k, v in c.items() if k.startswith("saf_")},
              "alphas": args.alphas, "seeds": args.seeds, "results": rows,
              "wall_seconds": round(time.perf_counter() - t0, 1),
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "machine": machine_info()}
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
