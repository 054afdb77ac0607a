"""How should the demo fine-tune its ImageNet backbone? Kao Table III's fine-tuned MTCNN #1 variants.

    python -m benchmarks.bench_finetune [--profile demo] [--home DIR] [--seeds 0 1 2]
                                        [--variant NAME=KEY:VALUE,KEY:VALUE ...] [--report FILE]

Trains the chapter's fine-tuned EfficientNet-Lite0 (its blocks above the frozen stride-16 stem,
ImageNet weights; ``studies.kao.finetune_config``, so exactly the book's runs) under each variant
(dotted config overrides, e.g. ``bs16=batch_size:16,optim.pretrained_lr_mult:0.1``; ``train_size:N``
fine-tunes on another seeded subset of N images, 0 = all) and the
trunk MTCNN #1 it is compared with, with every seed, two runs at a time as the book does. Reports
per variant: test accuracy, SRCC of p(high), semantic AP (mean ± SD over seeds), the majority
rate and the seconds per run. Needs the profile's data (``iaa book --only 01`` under the same
IAA_HOME). Writes ``benchmarks/results/demo_finetune.json``. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import (add_demo_run_options, kao_chapter3, machine_info,  # noqa: E402
                                record_seconds, seed_stats, write_report)

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_VARIANTS = {
    "profile": {},
    "lr_mult 0.1": {"optim.pretrained_lr_mult": 0.1},
    "bs16": {"batch_size": 16},
    "bs16 lr_mult 0.1": {"batch_size": 16, "optim.pretrained_lr_mult": 0.1},
    "bs16 lr_mult 0.1 lr 3e-3": {"batch_size": 16, "optim.pretrained_lr_mult": 0.1,
                                 "optim.lr": 0.003},
}


def _parse_variant(text: str) -> tuple[str, dict]:
    name, _, body = text.partition("=")
    items = [kv.split(":", 1) for kv in body.split(",") if kv]
    return name, {k: yaml.safe_load(v) for k, v in items}


def _levelling(runs: dict, name: str) -> dict:
    """``runner.levelling`` of one variant's runs (``{seed: Run}``) on the test SRCC of p(high):
    the move of the seed-mean curve over its last two epochs against the SD over seeds of the
    final value (None where one seed or one epoch leaves nothing to compare)."""
    from iaalib.studies import runner

    row = runner.levelling({(name, seed): r for seed, r in runs.items()},
                           "test_srcc_p_high").iloc[0]

    def num(x):
        return round(float(x), 4) if pd.notna(x) else None

    return {"move": num(row["move"]), "seed_sd": num(row["seed_sd"]),
            "levelled": None if pd.isna(row["levelled"]) else bool(row["levelled"]),
            "epochs": int(row["epochs"])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_demo_run_options(p, report=RESULTS / "demo_finetune.json")
    p.add_argument("--variant", action="append", default=[], help="NAME=KEY:VALUE,...")
    args = p.parse_args(argv)
    _S, data, settings = kao_chapter3(args)
    from iaalib.studies import kao, runner

    variants = dict(_parse_variant(v) for v in args.variant) if args.variant else DEFAULT_VARIANTS
    configs = {}
    for name, overrides in variants.items():
        overrides = dict(overrides)
        size = overrides.pop("train_size", None)  # fine-tune on another subset (0: all images)
        s = settings if size is None else dataclasses.replace(settings, finetune_train_size=size)
        base = kao.finetune_config(s, data, backbone="efficientnet_lite0")
        cfg = base.with_overrides(overrides) if overrides else base
        suffix = "".join(f"-{k.split('.')[-1]}{v}" for k, v in overrides.items())
        suffix += "" if size is None else f"-n{size}"
        configs[name] = cfg.with_overrides({"name": base.name.rsplit("-s", 1)[0] + suffix})
    configs["trunk MTCNN #1"] = kao.trunk_config(settings, data, lam="1/M")
    seeded = runner.with_seeds(configs, args.seeds)
    t0 = time.perf_counter()
    runs = runner.run_grid(seeded, workers=args.workers)
    wall = time.perf_counter() - t0
    test = data.test

    share_high = float(pd.read_csv(test, usecols=["label"])["label"].mean())
    report = {"benchmark": "demo_finetune", "profile": args.profile, "seeds": args.seeds,
              "majority_rate": round(max(share_high, 1 - share_high), 4),
              "wall_seconds": round(wall, 1), "variants": {}}
    for name, cfg in configs.items():
        rs = [runs[(name, s)] for s in args.seeds]
        seconds = [record_seconds(r.record) for r in rs]
        report["variants"][name] = {
            "overrides": variants.get(name, {}),
            "config": {"batch_size": cfg.batch_size, "epochs": cfg.epochs, "lr": cfg.optim.lr,
                       "pretrained_lr_mult": cfg.optim.pretrained_lr_mult,
                       "train": Path(cfg.data.train).name,
                       "train_images": int(len(pd.read_csv(cfg.data.train, usecols=["image_id"])))},
            "acc": seed_stats([r.metrics["acc"] for r in rs]),
            "srcc_p_high": seed_stats([r.metrics["srcc_p_high"] for r in rs]),
            "semantic_ap": seed_stats([r.metrics["semantic_ap"] for r in rs]),
            "seconds_per_run": seed_stats(seconds),
            "levelling_srcc_p_high": _levelling(dict(zip(args.seeds, rs)), name)}
        v = report["variants"][name]
        print(f"{name:28} acc {v['acc']['mean']:.3f}  srcc {v['srcc_p_high']['mean']:.3f} "
              f"± {v['srcc_p_high']['sd'] or 0:.3f}  AP {v['semantic_ap']['mean']:.3f}  "
              f"{v['seconds_per_run']['mean']:.0f} s/run  levelling "
              f"{v['levelling_srcc_p_high']}")
    report["machine"] = machine_info()
    write_report(Path(args.report), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
