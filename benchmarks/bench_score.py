"""Scoring throughput: ``iaa score`` (iaalib.engine.evaluate.score_folder) vs a peer-style loop.

    python benchmarks/bench_score.py [--n 96] [--image-short-edge 480] [--families saf nima]
                                     [--batch-size 16] [--threads N] [--out benchmarks/results/score.json]

Writes ``n`` SynthAVA photographs (varied aspect ratios: portrait, landscape, square, panorama) at
``--image-short-edge`` px — photo-sized, so decoding costs what it costs on real files — and, per
model family, a demo-sized model checkpoint (random weights: throughput does not depend on them).
Then, on the same images, with the same model and thread count:

* peer loop: for each file ``Image.open → convert("RGB") → Resize(short edge) → ToTensor →
  Normalize → model(x[None])``, one image at a time (how IAA repositories usually score a folder);
* ``score_folder``: DCT-scaled JPEG decode, aspect-ratio buckets, batches of ``--batch-size``.

The two paths run alternately ``--repeats`` times (shared-machine load hits both alike); the report
keeps each path's best round, the ratio, and how close the scores are (max |Δ mean| and the SRCC
between the two rankings; they differ slightly because the batch path decodes JPEGs at reduced
DCT scale and crops batch members to a common size).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import stats
from torchvision import transforms as TV

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iaalib.engine.checkpoint import save_checkpoint  # noqa: E402
from iaalib.engine.config import ExperimentConfig, build_model  # noqa: E402
from iaalib.data.images import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from iaalib.engine.evaluate import score_folder  # noqa: E402
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODELS = {"saf": {"family": "saf", "width_mult": 0.25, "group_size": 8},
          "nima": {"family": "nima", "backbone": "resnet18", "width_mult": 0.5}}


def write_checkpoint(path: Path, family: str, short_edge: int, seed: int) -> ExperimentConfig:
    cfg = ExperimentConfig.from_dict({"name": f"bench-score-{family}", "model": MODELS[family],
                                      "data": {"transform": "saf", "short_edge": short_edge}})
    torch.manual_seed(seed)
    model = build_model(cfg.model)
    save_checkpoint(path, {"config": cfg.to_dict(), "config_hash": cfg.config_hash(),
                           "tag_columns": [], "model": model.state_dict(), "epoch": 0,
                           "batch": 0, "step": 0})
    return cfg


def peer_loop(paths: list[Path], model: torch.nn.Module, short_edge: int) -> np.ndarray:
    transform = TV.Compose([TV.Resize(short_edge), TV.ToTensor(),
                            TV.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    scores = np.arange(1, 11, dtype=np.float64)
    means = []
    model.eval()
    with torch.no_grad():
        for p in paths:
            x = transform(Image.open(p).convert("RGB"))[None]
            prob = torch.softmax(model(x)["dist_logits"], dim=1)[0].double().numpy()
            means.append(float(prob @ scores))
    return np.array(means)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--image-short-edge", type=int, default=480, help="size of the photo files")
    ap.add_argument("--short-edge", type=int, default=112, help="model input short edge (demo)")
    ap.add_argument("--families", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="default: all CPUs")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "score.json")
    args = ap.parse_args(argv)
    from iaalib.synth.ava import generate_synth_ava
    from iaalib.engine.evaluate import load_model

    threads = args.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        tmp = Path(tmp)
        info = generate_synth_ava(tmp / "synth", n=args.n, seed=args.seed,
                                  short_edge=args.image_short_edge)
        folder = Path(info["images"])
        paths = sorted(folder.glob("*.jpg"))
        sizes = [Image.open(p).size for p in paths]
        for family in args.families:
            ckpt = tmp / f"{family}.pt"
            write_checkpoint(ckpt, family, args.short_edge, args.seed)
            model, _, _ = load_model(ckpt)
            rounds = {"peer": [], "iaa_score": []}
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                peer = peer_loop(paths, model, args.short_edge)
                rounds["peer"].append(len(paths) / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                table = score_folder(folder, ckpt, batch_size=args.batch_size, device="cpu")
                rounds["iaa_score"].append(len(paths) / (time.perf_counter() - t0))
                torch.set_num_threads(threads)  # score_folder leaves the global setting alone
            ours = table.set_index("path").loc[[str(p) for p in paths], "mean"].to_numpy()
            best = {k: max(v) for k, v in rounds.items()}
            results[family] = {
                "peer_images_per_s": round(best["peer"], 2),
                "iaa_score_images_per_s": round(best["iaa_score"], 2),
                "speedup": round(best["iaa_score"] / best["peer"], 2),
                "rounds": {k: [round(x, 2) for x in v] for k, v in rounds.items()},
                "max_abs_diff_mean": float(np.max(np.abs(ours - peer))),
                "srcc_between_paths": float(stats.spearmanr(ours, peer)[0]),
            }
            r = results[family]
            print(f"{family:5s} peer {r['peer_images_per_s']:7.1f} img/s   iaa score "
                  f"{r['iaa_score_images_per_s']:7.1f} img/s   x{r['speedup']:.2f}   "
                  f"max|dmean| {r['max_abs_diff_mean']:.4f}  srcc {r['srcc_between_paths']:.4f}",
                  flush=True)
    report = {"benchmark": "score", "families": results, "n_images": len(paths),
              "image_sizes": {"min_short": int(min(min(s) for s in sizes)),
                              "max_long": int(max(max(s) for s in sizes)),
                              "aspect_ratios": sorted({round(w / h, 2) for w, h in sizes})},
              "model_short_edge": args.short_edge, "batch_size": args.batch_size,
              "threads": threads, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
              "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
