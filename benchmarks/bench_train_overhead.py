"""What a demo run spends outside its network's forward and backward, before and after the fixes.

    python -m benchmarks.bench_train_overhead --home IAA_HOME [--repeats 3] [--out FILE]

1. **The optimiser step** of the demo's nets (the configs of a demo build's runs under
   ``IAA_HOME/runs``): Adam as torch runs it by default on a CPU (one tensor at a time), with
   ``foreach`` and ``fused`` (what :func:`iaalib.engine.trainer.build_optimizer` now uses), in ms.
2. **The mirror choice of a cached-activation batch**: one ``augmentation_seed`` per sample
   against :func:`iaalib.data.activations.mirror_bits`, computed once per (seed, epoch) per
   process, in ms per epoch of the demo's training set.
3. **Whole runs**, trained alone with one thread, in ABAB order: each run with the per-tensor
   optimiser and per-sample mirror seeds ("before", as at 9593eb8) against fused and memoised
   ("after"), after loading the activation cache once: seconds and the final test metrics. The
   fused step rounds differently, and training carries the difference on: the metrics move by
   about as much as another seed would move them.

Not a test: numbers, not assertions. Writes ``benchmarks/results/train_overhead.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import shutil
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine_info, write_report  # noqa: E402
from iaalib.data import activations as A  # noqa: E402
from iaalib.data.images import augmentation_seed  # noqa: E402
from iaalib.engine import trainer as T  # noqa: E402
from iaalib.engine.config import ExperimentConfig  # noqa: E402
from iaalib.engine.loaders import stem_activations  # noqa: E402
from iaalib.models.factory import build_model  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RUNS = {"Kao MTCNN #1 (lambda 1/M)": "kao-mtcnn1-d0-lam1_M-s0",
        "fine-tuned EfficientNet-Lite0": "kao-efficientnet_lite0-ft-d0-s0",
        "SAF (P = 4)": "saf-full-l1-p4-s0"}
METRICS = ("acc", "srcc_p_high", "semantic_ap", "srcc_mean", "plcc_mean")


def _config(home: Path, run: str) -> ExperimentConfig:
    found = sorted((home / "runs").glob(f"{run}-*/config.yaml"))
    if not found:
        raise SystemExit(f"no run {run}-* under {home / 'runs'}: build the demo book first")
    return ExperimentConfig.load(found[0])


def optimiser_ms(cfg: ExperimentConfig, steps: int = 100) -> dict[str, float]:
    params = [p for p in build_model(cfg.model, num_tags=29).parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.randn_like(p)
    out = {}
    for name, kw in {"per tensor (default)": {"foreach": False}, "foreach": {"foreach": True},
                     "fused": {"fused": True}}.items():
        opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4, **kw)
        for _ in range(5):
            opt.step()
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.step()
        out[name] = round((time.perf_counter() - t0) / steps * 1000, 3)
    return out


def mirror_ms(n: int, epochs: int = 3) -> dict[str, float]:
    t0 = time.perf_counter()
    for epoch in range(epochs):
        [augmentation_seed(0, epoch, i) % 2 for i in range(n)]
    per_sample = (time.perf_counter() - t0) / epochs * 1000
    A.mirror_bits.cache_clear()
    A._draws.cache_clear()  # the seeds the bits come from are memoised too
    t0 = time.perf_counter()
    for _ in range(3):  # three runs of one seed in one worker: computed once
        for epoch in range(epochs):
            A.mirror_bits(0, epoch, n)
    memo = (time.perf_counter() - t0) / epochs / 3 * 1000
    return {"per sample, each run": round(per_sample, 1), "memoised, 3 runs of a seed": round(memo, 1)}


@contextlib.contextmanager
def before_fix():
    """The optimiser and mirror choice as they were: per-tensor Adam, a seed per sample."""
    def views(self, indices):
        if not (self.train and self.flip):
            return torch.zeros(len(indices), dtype=torch.long)
        return torch.tensor([augmentation_seed(self.seed, self.epoch, int(i)) % 2
                             for i in indices], dtype=torch.long)
    with mock.patch.object(T, "_fused_ok", lambda params: None), \
            mock.patch.object(A.ActivationDataset, "_views", views):
        yield


def train_once(cfg: ExperimentConfig, variant: str, seed: int) -> tuple[float, dict]:
    cfg = dataclasses.replace(cfg, name=f"overhead-{variant}-{cfg.name}", seed=seed)
    A.mirror_bits.cache_clear()
    A._draws.cache_clear()  # the seeds the bits come from are memoised too
    ctx = before_fix() if variant == "before" else contextlib.nullcontext()
    t0 = time.perf_counter()
    with ctx, contextlib.redirect_stdout(io.StringIO()):
        run = T.train(cfg, quiet=True)
    seconds = time.perf_counter() - t0
    metrics = run.metrics
    shutil.rmtree(run.dir)
    return seconds, {k: metrics.get(k) for k in METRICS if metrics.get(k) is not None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="IAA_HOME of a demo book build")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=11, help="a seed no book run uses")
    p.add_argument("--out", default=str(RESULTS / "train_overhead.json"))
    args = p.parse_args(argv)
    os.environ["IAA_HOME"] = str(Path(args.home).resolve())
    torch.set_num_threads(1)
    home = Path(args.home)
    configs = {label: _config(home, run) for label, run in RUNS.items()}
    report: dict = {"benchmark": "train_overhead", "home": str(home), "threads": 1,
                    "optimiser_step_ms": {}, "runs": {}}
    for label, cfg in configs.items():
        report["optimiser_step_ms"][label] = optimiser_ms(cfg)
        print(label, report["optimiser_step_ms"][label])
    n = len(pd.read_csv(configs["Kao MTCNN #1 (lambda 1/M)"].data.train, usecols=["image_id"]))
    report["mirror_choice_ms_per_epoch"] = {"n_samples": n, **mirror_ms(n)}
    print("mirror choice", report["mirror_choice_ms_per_epoch"])
    for cfg in configs.values():  # load the activation caches before any run is timed
        stem_activations(cfg.model.stem, cfg.data.image_dir, cfg.data.stem_size)
    for label, cfg in configs.items():
        rows: dict = {"before": {"seconds": []}, "after": {"seconds": []}}
        for _ in range(args.repeats):
            for variant in ("before", "after"):
                seconds, metrics = train_once(cfg, variant, args.seed)
                rows[variant]["seconds"].append(round(seconds, 2))
                rows[variant]["metrics"] = metrics
        for variant in rows:
            rows[variant]["median_seconds"] = float(np.median(rows[variant]["seconds"]))
        rows["saving"] = round(1 - rows["after"]["median_seconds"]
                               / rows["before"]["median_seconds"], 3)
        rows["largest_metric_difference"] = max(
            (abs(rows["after"]["metrics"][k] - rows["before"]["metrics"][k])
             for k in rows["after"]["metrics"]), default=None)
        report["runs"][label] = rows
        print(label, {v: rows[v]["seconds"] for v in ("before", "after")},
              "saving", rows["saving"], "largest metric difference",
              rows["largest_metric_difference"])
    report["machine"] = machine_info()
    write_report(Path(args.out), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
