"""CPU time of one training step (forward + loss + backward + SGD step) per model, at the papers'
size and at the demo size.

    python benchmarks/bench_models.py [--sizes demo paper] [--only saf mtcnn1 ...]
                                      [--repeats 5] [--threads 1 2] [--out benchmarks/results/models.json]

Random tensors stand in for images (no data loading: see ``bench_train.py`` for the whole loop).
Each case runs ``--warmup`` untimed steps, then ``--repeats`` timed ones; the report keeps the
median and the minimum (the minimum is the least disturbed by other processes on a shared machine)
plus ``os.getloadavg()`` before and after. ``--threads`` takes several counts: when other
processes keep the cores busy, 2 torch threads can be many times slower than 1 (OpenMP threads
wait on each other), so the report shows both. Paper-size cases are slow on a CPU (VGG16-based SAF at
256 px short edge: tens of seconds per step), so they use small batches and report per-image time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from iaalib import losses  # noqa: E402
from iaalib.models import mtcnn, nima, saf  # noqa: E402
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
M_TAGS = 29


def _kao_loss(model, x, b):
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 2, (b,), generator=g)
    tags = (torch.rand(b, M_TAGS, generator=g) < 0.1).float()
    return losses.kao_multitask_loss(model(x), label, tags, lam=1 / M_TAGS)["total"]


def _emd_loss(model, x, b):
    dist = torch.softmax(torch.randn(b, 10, generator=torch.Generator().manual_seed(0)), 1)
    return losses.emd_loss(torch.softmax(model(x)["dist_logits"], 1), dist)


def _saf_loss(model, x, b):
    dist = torch.softmax(torch.randn(b, 10, generator=torch.Generator().manual_seed(0)), 1)
    out = model(x)
    alpha = losses.SAF_ALPHA if "recon" in out else 0.0
    return losses.saf_loss(out, dist, x, alpha=alpha, beta=losses.SAF_BETA)["total"]


#: name -> size -> (builder, loss, batch, (H, W)). Paper sizes: Kao 227² crops; SAF short edge
#: 256 (a 4:3 photo → 256×341); NIMA/fine-tuning 224².
CASES: dict[str, dict[str, tuple[Callable, Callable, int, tuple[int, int]]]] = {
    "mtcnn1": {"paper": (lambda: mtcnn.mtcnn1(), _kao_loss, 8, (227, 227)),
               "demo": (lambda: mtcnn.mtcnn1(width_mult=0.25, fc_dim=128), _kao_loss, 16, (96, 96))},
    "mtcnn2": {"paper": (lambda: mtcnn.mtcnn2(), _kao_loss, 8, (227, 227)),
               "demo": (lambda: mtcnn.mtcnn2(width_mult=0.25, fc_dim=128), _kao_loss, 16, (96, 96))},
    "mtcnn3": {"paper": (lambda: mtcnn.mtcnn3(), _kao_loss, 8, (227, 227)),
               "demo": (lambda: mtcnn.mtcnn3(width_mult=0.25, fc_dim=128), _kao_loss, 16, (96, 96))},
    "mtcnn_enhanced": {
        "paper": (lambda: mtcnn.mtcnn_enhanced(), _kao_loss, 8, (227, 227)),
        "demo": (lambda: mtcnn.mtcnn_enhanced(width_mult=0.25, fc_dim=128), _kao_loss, 16, (96, 96))},
    "mtcnn_finetune_resnet18": {
        "paper": (lambda: mtcnn.mtcnn_finetune("resnet18", weights=None), _kao_loss, 8, (224, 224)),
        "demo": (lambda: mtcnn.mtcnn_finetune("resnet18", weights=None, width_mult=0.25, fc_dim=128),
                 _kao_loss, 16, (96, 96))},
    "mtcnn_finetune_efficientnet_lite0": {
        "paper": (lambda: mtcnn.mtcnn_finetune("efficientnet_lite0", weights="imagenet"),
                  _kao_loss, 8, (224, 224)),
        "demo": (lambda: mtcnn.mtcnn_finetune("efficientnet_lite0", weights="imagenet", fc_dim=128),
                 _kao_loss, 16, (112, 112))},
    "saf": {"paper": (lambda: saf.saf_vgg16(), _saf_loss, 2, (256, 341)),
            "demo": (lambda: saf.saf_vgg16(width_mult=0.125, group_size=4), _saf_loss, 16, (96, 128))},
    "saf_demo_128": {"demo": (lambda: saf.saf_vgg16(width_mult=0.125, group_size=4), _saf_loss, 16,
                              (128, 171))},
    "saf_no_decoder": {
        "paper": (lambda: saf.saf_vgg16(decoder=False), _saf_loss, 2, (256, 341)),
        "demo": (lambda: saf.saf_vgg16(width_mult=0.125, group_size=4, decoder=False), _saf_loss,
                 16, (96, 128))},
    "nima_vgg16": {"paper": (lambda: nima.nima("vgg16"), _emd_loss, 2, (224, 224)),
                   "demo": (lambda: nima.nima("vgg16", width_mult=0.125), _emd_loss, 16, (96, 128))},
    "nima_efficientnet_lite0": {
        "paper": (lambda: nima.nima("efficientnet_lite0", weights="imagenet"), _emd_loss, 8, (224, 224)),
        "demo": (lambda: nima.nima("efficientnet_lite0", weights="imagenet"), _emd_loss, 16, (112, 112))},
}


def time_case(build, loss_fn, batch: int, hw: tuple[int, int], *, warmup: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build().train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, 3, *hw)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model, x, batch)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"batch": batch, "input": f"{hw[0]}x{hw[1]}",
            "parameters": sum(p.numel() for p in model.parameters()),
            "step_seconds_median": round(median, 4), "step_seconds_min": round(min(times), 4),
            "images_per_s_median": round(batch / median, 2),
            "ms_per_image_min": round(1000 * min(times) / batch, 2), "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["demo", "paper"], choices=["demo", "paper"])
    ap.add_argument("--only", nargs="+", default=None, help=f"subset of: {', '.join(CASES)}")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--paper-repeats", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                    help="torch thread counts to measure (default: 1 2)")
    ap.add_argument("--out", default=str(RESULTS / "models.json"))
    args = ap.parse_args(argv)
    names = args.only or list(CASES)
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    report = {"benchmark": "models", "what": "one training step: forward + loss + backward + SGD step",
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "threads": args.threads,
              "machine": machine_info(), "cases": {}}
    for name in names:
        for size in args.sizes:
            if size not in CASES[name]:
                continue
            build, loss_fn, batch, hw = CASES[name][size]
            repeats = args.repeats if size == "demo" else args.paper_repeats
            for threads in args.threads:
                torch.set_num_threads(threads)
                result = time_case(build, loss_fn, batch, hw, warmup=args.warmup, repeats=repeats)
                result["threads"] = threads
                report["cases"][f"{name}/{size}/threads={threads}"] = result
                print(f"{name:34s} {size:5s} {threads}t batch {batch:2d} @ {result['input']:>7s}: "
                      f"{result['step_seconds_median']:7.3f} s/step (min "
                      f"{result['step_seconds_min']:.3f}), {result['images_per_s_median']:7.1f} img/s, "
                      f"{result['parameters'] / 1e6:6.2f} M params", flush=True)
    report["loadavg_after"] = os.getloadavg()
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
