"""Training throughput (images/s) of every model family through the real engine, on the CPU.

    python benchmarks/bench_train.py [--n-train 128] [--threads N] [--families saf nima ...]
                                     [--config my.yaml ...] [--out benchmarks/results/train.json]

Generates a SynthAVA (``--synth-n`` images at the demo profile's short edge, read from
``notebooks/params/demo.yaml``; or reuses ``--synth DIR``), applies Kao's protocol, and trains each
family for one epoch on ``--n-train`` images with ``iaalib.engine.trainer.train`` — data loading, forward,
backward and optimiser step included, as a notebook runs it. Model sizes are the demo-sized
settings in :data:`DEMO_MODELS` (a CPU-friendly width; the papers' full-size models are for the
``ava`` profile on a GPU); ``--config`` adds experiment files (their ``data.train`` is replaced by
the benchmark subset when ``--subset`` is given).

The first ``--warmup`` batches are excluded from the rate (one-off allocation). The report records
threads, ``os.getloadavg()`` before/after and the machine; on a shared machine the load from
other processes slows every family, so compare rates measured in the same run.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iaalib.engine.config import ExperimentConfig  # noqa: E402
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

#: Demo-sized models (CPU, 2 cores). Kao: Resize(128) + 112 crop (the paper: 256/227).
DEMO_MODELS: dict[str, dict] = {
    "mtcnn1": {"model": {"family": "mtcnn1", "width_mult": 0.25, "fc_dim": 256}},
    "mtcnn2": {"model": {"family": "mtcnn2", "width_mult": 0.25, "fc_dim": 256}},
    "mtcnn3": {"model": {"family": "mtcnn3", "width_mult": 0.25, "fc_dim": 256}},
    "mtcnn_enhanced": {"model": {"family": "mtcnn_enhanced", "width_mult": 0.25, "fc_dim": 256}},
    "mtcnn_mtrl": {"model": {"family": "mtcnn1", "width_mult": 0.25, "fc_dim": 256},
                   "loss": {"mtrl": {"enabled": True, "update_unit": "step", "update_every": 4}}},
    "mtcnn_finetune": {"model": {"family": "mtcnn_finetune", "backbone": "resnet18",
                                 "width_mult": 0.5, "fc_dim": 128}},
    "saf": {"model": {"family": "saf", "width_mult": 0.25, "group_size": 8}},
    "nima": {"model": {"family": "nima", "backbone": "resnet18", "width_mult": 0.5}},
}


def demo_short_edge() -> int:
    path = ROOT / "notebooks" / "params" / "demo.yaml"
    if path.is_file():
        common = (yaml.safe_load(path.read_text()) or {}).get("common", {})
        return int(common.get("synth_short_edge", 112))
    return 112


def prepare_data(work: Path, synth_dir: Path | None, n: int, short_edge: int, n_train: int,
                 seed: int) -> dict:
    from iaalib.data.ava import read_ava_txt
    from iaalib.data.manifests import write_manifest
    from iaalib.data.protocols import kao_protocol
    from iaalib.synth.ava import generate_synth_ava, kao_threshold

    synth_dir = synth_dir or work / "synth"
    info = generate_synth_ava(synth_dir, n=n, seed=seed, short_edge=short_edge)
    labels = read_ava_txt(Path(info["ava_txt"]))
    split = kao_protocol(labels, min_tag_count=int(kao_threshold(n)), test_size=max(10, n // 10),
                         seed=seed)
    write_manifest(split, work / "manifests")
    subset = work / "manifests" / "bench_train.csv"
    split.train.iloc[:n_train].to_csv(subset, index=False)
    return {"train": str(subset), "images": info["images"], "n_tags": len(split.summary["kept_tags"])}


def family_config(name: str, overrides: dict, data: dict, *, short_edge: int, batch_size: int,
                  threads: int | None, seed: int) -> ExperimentConfig:
    is_kao = overrides["model"]["family"].startswith("mtcnn")
    d = {"name": f"bench-{name}",
         "data": {"train": data["train"], "image_dir": data["images"],
                  "transform": "kao" if is_kao else "saf", "resize": 128, "crop": 112,
                  "short_edge": short_edge},
         "epochs": 1, "batch_size": batch_size, "device": "cpu", "num_threads": threads,
         "seed": seed, "quiet": True}
    for key, value in overrides.items():
        d[key] = {**d.get(key, {}), **value} if isinstance(value, dict) else value
    return ExperimentConfig.from_dict(d)


def time_training(cfg: ExperimentConfig, run_dir: Path, warmup: int) -> dict:
    """One epoch through Trainer; rate over the batches after ``warmup``."""
    import iaalib.engine.trainer as T

    stamps: list[tuple[float, int]] = []
    real = T.Trainer._forward_backward

    def timed(self, batch, *args, **kwargs):
        out = real(self, batch, *args, **kwargs)
        stamps.append((time.perf_counter(), int(batch["image"].shape[0])))
        return out

    T.Trainer._forward_backward = timed
    try:
        t0 = time.perf_counter()
        run = T.train(cfg, out=run_dir, force=True, quiet=True)
        wall = time.perf_counter() - t0
    finally:
        T.Trainer._forward_backward = real
    steady = stamps[warmup:]
    rate = (sum(n for _, n in steady[1:]) / (steady[-1][0] - steady[0][0])
            if len(steady) > 2 else float("nan"))
    hist = run.history[0]
    return {"images_per_s": round(rate, 2), "epoch_images_per_s": hist["images_per_s"],
            "n_images": hist["n_images"], "batches": len(stamps), "wall_seconds": round(wall, 2),
            "threads": torch.get_num_threads(),
            "parameters": int(sum(p.numel() for p in run.load_model("last").parameters()))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth", type=Path, help="reuse this SynthAVA directory")
    ap.add_argument("--synth-n", type=int, default=400)
    ap.add_argument("--short-edge", type=int, default=None, help="default: demo profile's")
    ap.add_argument("--n-train", type=int, default=128, help="images per timed epoch")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="default: the engine's (all CPUs)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--families", nargs="+", default=list(DEMO_MODELS), choices=list(DEMO_MODELS))
    ap.add_argument("--config", nargs="*", default=[], type=Path, help="extra experiment files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "train.json")
    args = ap.parse_args(argv)
    short_edge = args.short_edge or demo_short_edge()
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        work = Path(tmp)
        data = prepare_data(work, args.synth, args.synth_n, short_edge, args.n_train, args.seed)
        jobs = [(name, family_config(name, DEMO_MODELS[name], data, short_edge=short_edge,
                                     batch_size=args.batch_size, threads=args.threads,
                                     seed=args.seed)) for name in args.families]
        for path in args.config:
            cfg = ExperimentConfig.load(path).with_overrides(
                {"data.train": data["train"], "data.val": None, "data.test": None, "epochs": 1,
                 "data.image_dir": data["images"]})
            jobs.append((path.stem, cfg))
        for name, cfg in jobs:
            r = time_training(cfg, work / "runs" / name, args.warmup)
            results[name] = {**r, "family": cfg.model.family, "width_mult": cfg.model.width_mult,
                             "transform": cfg.data.transform,
                             "input": (f"{cfg.data.crop}x{cfg.data.crop}" if cfg.data.transform == "kao"
                                       else f"short edge {cfg.data.short_edge}, aspect kept")}
            print(f"{name:16s} {r['images_per_s']:8.1f} img/s  (epoch incl. warm-up "
                  f"{r['epoch_images_per_s']:.1f}; {r['parameters']:,} params; "
                  f"{r['threads']} threads)", flush=True)
    report = {"benchmark": "train", "families": results, "batch_size": args.batch_size,
              "n_train": args.n_train, "short_edge": short_edge, "synth_n": args.synth_n,
              "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
