"""Do the demo's networks learn? The key runs of both papers under a profile, through the library.

    python -m benchmarks.bench_demo_models [--profile demo] [--set NAME=VALUE ...] [--seeds 0 1 2]
                                           [--report FILE] [--home DIR]

Builds the profile's data as the book does (SynthAVA; notebook 01's manifests via
``iaa book --only 01``), then trains, with every seed, the runs the issue's targets are about —
Kao's MTCNN #1 at λ = 0, 1/M and 1 (δ = 0) and λ = 1/M at δ = 1, every other Kao net trained with
λ > 0 at δ = 0 (MTCNN #2, #3, the enhanced MTCNN, the MTRLCNN and the fine-tuned backbones of Tables
II and III), SAF and NIMA — with the chapters' own config builders (``studies.kao.trunk_config``,
``table2_configs``, ``table3_configs``, ``studies.saf.profile_config``) and ``--set`` overrides of
profile settings, so a built book's runs are reused, and reports, per run family: the test metrics
(mean ± SD over seeds), whether the test metric has levelled off (the last 2 monitored epochs move
the seed mean by less than the seed SD; how many seeds' own curves rose or fell), where the seed
mean peaked (``peak``: the epoch, how far the final value ends below it and, for Kao nets, how much
the tag mAP changed after it) and seconds per run (from the run records: when it was trained,
here or in a book build); then one line per target (``checks``: tag mAP ≥ 0.50 for λ > 0 and
≥ 0.70 at λ = 1; SRCC of p(high) ≥ 0.45 and accuracy above the majority rate at δ = 0; SAF/NIMA
SRCC of the mean ≥ 0.55, goal 0.65).
Writes ``benchmarks/results/demo_models_<profile>.json``. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, record_seconds, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"tag_map_lambda_pos": 0.50, "tag_map_lambda_1": 0.70, "srcc_p_high_delta0": 0.45,
           "srcc_mean_saf_nima": 0.55, "srcc_mean_goal": 0.65}


def _summary(runs: list, metric: str) -> dict:
    values = [r.metrics.get(metric) for r in runs if r.status == "finished"]
    values = [float(v) for v in values if v is not None]
    if not values:
        return {"mean": None, "sd": None, "values": []}
    return {"mean": round(float(np.mean(values)), 4),
            "sd": round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None,
            "values": [round(v, 4) for v in values]}


def _peak(runs: dict, curves) -> dict:
    """Where the seed mean of ``curves`` (:func:`runner.learning_curves` of ``runs``) peaks: its
    epoch and value, how far the final epoch ends below it, and (Kao nets) how much the seed-mean
    tag mAP changed from that epoch to the end — whether a net that has "levelled off" has been
    drifting down from an earlier peak."""
    from iaalib.studies import runner

    mean = curves.mean(axis=1)
    if mean.empty:
        return {}
    top = mean.idxmax()
    out = {"epoch": int(top), "epochs": int(mean.index.max()), "value": round(float(mean.max()), 4),
           "final_minus_peak": round(float(mean.iloc[-1] - mean.max()), 4)}
    tags = runner.learning_curves(runs, "test_semantic_ap").mean(axis=1).dropna()
    if top in tags.index:
        out["tag_map_change_after_peak"] = round(float(tags.iloc[-1] - tags[top]), 4)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="override a profile setting (YAML value), as iaa book -p")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the profile's")
    p.add_argument("--only", nargs="+", default=["kao", "saf"], choices=["kao", "saf"])
    p.add_argument("--home", help="IAA_HOME to use (default: the current one)")
    p.add_argument("--report", help="JSON report (default: results/demo_models_<profile>.json)")
    args = p.parse_args(argv)
    if args.home:
        os.environ["IAA_HOME"] = str(Path(args.home).resolve())
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)

    from iaalib import datasets, profiles
    from iaalib.studies import kao, runner, saf

    prof = profiles.load_profile(args.profile)
    common = prof.settings("01_dataset", overrides)
    datasets.ensure_profile_data(common)
    if not (datasets.manifest_dir(args.profile, "standard") / "test.csv").is_file():
        sets = [a for k, v in overrides.items() for a in ("-p", k, yaml.safe_dump(v).strip()
                                                          .removesuffix("...").strip())]
        r = subprocess.run([sys.executable, "-m", "iaalib.cli", "book", "--profile", args.profile,
                            "--only", "01", "--no-html", *sets, "--out", str(Path(os.environ.get(
                                "IAA_HOME", ROOT / ".iaa")) / "bench-build")], cwd=ROOT)
        if r.returncode:
            return r.returncode
    seeds = args.seeds or list(prof.settings(None, overrides)["seeds"])
    report: dict = {"benchmark": "demo_models", "profile": args.profile, "overrides": overrides,
                    "seeds": seeds, "targets": TARGETS, "families": {}}
    t_all = time.perf_counter()

    def record(name: str, seeded: dict, metrics: list[str], curve: str) -> None:
        runs = runner.run_grid(seeded, echo=None)
        group = [runs[k] for k in seeded]
        entry = {m: _summary(group, m) for m in metrics}
        seconds = [record_seconds(r.record) or 0.0 for r in group]  # when trained, here or in a book
        entry["seconds_per_run"] = round(sum(seconds) / max(1, len(group)), 2)
        entry["levelling"] = runner.levelling(runs, curve).round(4).to_dict(orient="records")
        curves = runner.learning_curves(runs, curve)
        entry["curve"] = curves.round(4).to_dict(orient="list")
        entry["peak"] = _peak(runs, curves)
        report["families"][name] = entry
        print(f"{name:<24} " + "  ".join(f"{m}={entry[m]['mean']}±{entry[m]['sd']}"
                                         for m in metrics) + f"  {entry['seconds_per_run']} s/run")

    if "kao" in args.only:
        s = prof.settings("02_kao_mtcnn", overrides)
        data = kao.kao_data(args.profile, datasets.profile_dataset(s).image_dir, deltas=[0, 1])
        settings = kao.KaoSettings.from_settings(s)
        test = data.test
        import pandas as pd
        share = float(pd.read_csv(test)["label"].mean())
        report["majority_rate"] = round(max(share, 1 - share), 4)
        kao_metrics = ["acc", "srcc_p_high", "semantic_ap"]
        for lam, delta in ((0, 0), ("1/M", 0), (1, 0), ("1/M", 1)):
            cfg = kao.trunk_config(settings, data, lam=lam, delta=delta)
            record(f"kao mtcnn1 lam={lam} delta={delta}", runner.with_seeds({0: cfg}, seeds),
                   kao_metrics, "test_srcc_p_high")
        # every other Kao net of the chapters trained with λ > 0 at δ = 0 (Tables II and III)
        s3 = prof.settings("03_kao_mtrl", overrides)
        others = {**kao.table2_configs(settings, data, deltas=[0]),
                  **kao.table3_configs(kao.KaoSettings.from_settings(s3), data,
                                       backbones=s3["finetune_backbones"])}
        for (row, column), cfg in others.items():
            if (row, column) in (("delta=0", "MTCNN #1"), ("MTCNN", "MTCNN #1")):
                continue  # = "kao mtcnn1 lam=1/M delta=0"
            record(f"kao {row} | {column}", runner.with_seeds({0: cfg}, seeds), kao_metrics,
                   "test_srcc_p_high")
    if "saf" in args.only:
        s = prof.settings("05_saf_model", overrides)
        base = saf.profile_config(s, datasets.profile_dataset(s).image_dir)
        for name, cfg in (("saf full", saf.saf_config(base)),
                          ("nima", saf.nima_config(base, dropout=s["saf_nima_dropout"]))):
            record(name, runner.with_seeds({0: cfg}, seeds), ["srcc_mean", "plcc_mean", "acc"],
                   "test_srcc_mean")
    report["total_seconds"] = round(time.perf_counter() - t_all, 1)
    report["checks"] = _checks(report)
    for line in report["checks"]:
        print(line)
    report["machine"] = machine_info()
    write_report(Path(args.report) if args.report else RESULTS / f"demo_models_{args.profile}.json",
                 report)
    return 0


def _checks(report: dict) -> list[str]:
    """The issue's targets, one line each, from the families' seed means (generated)."""
    out, majority = [], report.get("majority_rate")
    for name, f in report["families"].items():
        if name.startswith("kao"):
            ap, srcc, acc = (f[m]["mean"] for m in ("semantic_ap", "srcc_p_high", "acc"))
            if "lam=0 " not in name:
                need = TARGETS["tag_map_lambda_1"] if "lam=1 " in name else \
                    TARGETS["tag_map_lambda_pos"]
                out.append(f"{name}: tag mAP {ap:.3f} >= {need}: {ap >= need}")
            if "delta=1" not in name:
                out.append(f"{name}: SRCC of p(high) {srcc:.3f} >= {TARGETS['srcc_p_high_delta0']}"
                           f": {srcc >= TARGETS['srcc_p_high_delta0']}; accuracy {acc:.3f} > "
                           f"majority {majority}: {majority is not None and acc > majority}")
        else:
            srcc = f["srcc_mean"]["mean"]
            out.append(f"{name}: SRCC of the mean {srcc:.3f} >= {TARGETS['srcc_mean_saf_nima']}: "
                       f"{srcc >= TARGETS['srcc_mean_saf_nima']} (goal {TARGETS['srcc_mean_goal']}"
                       f": {srcc >= TARGETS['srcc_mean_goal']})")
        levelled = [r.get("levelled") for r in f.get("levelling", [])]
        out.append(f"{name}: levelled off: " + (str(all(levelled)) if levelled and None not in
                                                 levelled else "not assessed"))
    return out


if __name__ == "__main__":
    sys.exit(main())
