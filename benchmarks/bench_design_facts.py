"""DESIGN.md's reference timings, measured again on this machine: is it the reference kind?

    python benchmarks/bench_design_facts.py [--repeats 3] [--out FILE]

``../shared/DESIGN.md`` ("Facts measured on this machine kind") gives, on 2 cores:
* a CPU forward and backward pass, batch 8 at 224², of VGG16 ≈ 9 s, ResNet-18 ≈ 0.9 s,
  EfficientNet-Lite0 ≈ 1.0 s;
* EfficientNet-Lite0's forward pass over the 2,500-image demo set at 112², batches of 50: 11 s.

This benchmark times the same work with torch's default threads (random weights: the weights do
not change the time), best and median of ``--repeats``, and the ratio to DESIGN.md's figure; the
forward pass also in channels-last, the format the demo's cache uses (DESIGN.md does not say which). A
ratio near 1 says the machine is the kind the project's budgets were set on; a ratio near 2 says a
budget measured there takes about twice as long here. Writes ``benchmarks/results/design_facts.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torchvision.models import resnet18, vgg16

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine_info, write_report  # noqa: E402
from iaalib.models.backbones import build_backbone  # noqa: E402

DESIGN_SECONDS = {"vgg16_fwd_bwd_b8_224": 9.0, "resnet18_fwd_bwd_b8_224": 0.9,
                  "efficientnet_lite0_fwd_bwd_b8_224": 1.0,
                  "efficientnet_lite0_forward_2500_at_112_b50": 11.0,
                  "efficientnet_lite0_forward_2500_at_112_b50_channels_last": 11.0}


def lite0() -> torch.nn.Module:
    features, channels = build_backbone("efficientnet_lite0", weights=None)
    return torch.nn.Sequential(features, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(channels, 1000))


def fwd_bwd_seconds(model: torch.nn.Module) -> float:
    x = torch.randn(8, 3, 224, 224)
    model.train()
    model(x).sum().backward()  # warm-up
    model.zero_grad()
    t0 = time.perf_counter()
    model(x).sum().backward()
    return time.perf_counter() - t0


def forward_2500_seconds(model: torch.nn.Module, channels_last: bool = False) -> float:
    model.eval()
    x = torch.randn(50, 3, 112, 112)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(
            memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)
        t0 = time.perf_counter()
        for _ in range(2500 // 50):
            model(x)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "design_facts.json"))
    args = p.parse_args(argv)
    torch.manual_seed(0)
    cases = {"vgg16_fwd_bwd_b8_224": (vgg16, fwd_bwd_seconds),
             "resnet18_fwd_bwd_b8_224": (resnet18, fwd_bwd_seconds),
             "efficientnet_lite0_fwd_bwd_b8_224": (lite0, fwd_bwd_seconds),
             "efficientnet_lite0_forward_2500_at_112_b50": (lite0, forward_2500_seconds),
             "efficientnet_lite0_forward_2500_at_112_b50_channels_last": (
                 lite0, lambda m: forward_2500_seconds(m, channels_last=True))}
    report: dict = {"benchmark": "design_facts", "machine": machine_info(),
                    "threads": torch.get_num_threads(), "cases": {}}
    for name, (build, measure) in cases.items():
        model = build()
        seconds = [round(measure(model), 3) for _ in range(args.repeats)]
        best, median = min(seconds), statistics.median(seconds)
        report["cases"][name] = {"seconds": seconds, "best": best, "median": median,
                                 "design_md": DESIGN_SECONDS[name],
                                 "best_over_design_md": round(best / DESIGN_SECONDS[name], 2)}
        print(f"{name:<58} best {best:7.3f} s  median {median:7.3f} s  DESIGN.md "
              f"{DESIGN_SECONDS[name]:5.1f} s  ratio {best / DESIGN_SECONDS[name]:.2f}", flush=True)
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
