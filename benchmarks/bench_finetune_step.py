"""What does a fine-tuning step of the demo's EfficientNet-Lite0 spend its time on?

    python -m benchmarks.bench_finetune_step [--home IAA_HOME] [--repeats 5] [--out FILE]

1. **Training step per image** of the fine-tuned MTCNN #1 (the blocks of EfficientNet-Lite0
   above the stride-16 stem, ImageNet architecture; the config of a demo build's run under
   ``IAA_HOME/runs``), one torch thread, channels-last, batch 16, with every weight trained
   against the depthwise kernels frozen (``mtcnn_finetune(train_depthwise=False)``); the two
   alternate ``--repeats`` times.
2. **Each depthwise convolution's backward** in that network at its own input shape: the input
   gradient and the weight gradient, timed apart.

Behind ``kao_finetune_train_depthwise`` (demo: false). Writes
``benchmarks/results/finetune_step.json``. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine_info, write_report  # noqa: E402
from benchmarks.bench_cpu_kernels import alternating, train_ms_per_image  # noqa: E402
from iaalib.engine.config import ExperimentConfig  # noqa: E402
from iaalib.models.backbones import is_depthwise  # noqa: E402
from iaalib.models.factory import build_model  # noqa: E402
from iaalib.paths import iaa_home  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RUN = "kao-efficientnet_lite0-ft-d0-s0"
SHAPE = (112, 7, 7)  # the stride-16 activations of a 112x112 image


def _ms(fn, n: int = 20) -> float:
    for _ in range(3):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1000


def depthwise_backward(cfg: ExperimentConfig, batch_size: int) -> list[dict]:
    """The input and weight gradient of each depthwise convolution, at its input shape."""
    model = build_model(cfg.model, num_tags=29).train().to(memory_format=torch.channels_last)
    convs, shapes = [], {}

    def record(name):
        def hook(module, inputs, output):
            shapes[name] = inputs[0].shape
        return hook

    for name, m in model.named_modules():
        if is_depthwise(m):
            convs.append((name, m))
            m.register_forward_hook(record(name))
    model(torch.randn(batch_size, *SHAPE).contiguous(memory_format=torch.channels_last))
    rows = []
    for name, m in convs:
        x = torch.randn(shapes[name]).contiguous(memory_format=torch.channels_last).requires_grad_()
        y = m(x)
        g = torch.randn_like(y)
        rows.append({"module": name, "input": list(shapes[name]), "kernel": m.kernel_size[0],
                     "stride": m.stride[0],
                     "grad_input_ms": round(_ms(lambda: torch.autograd.grad(
                         y, [x], g, retain_graph=True)), 3),
                     "grad_weight_ms": round(_ms(lambda: torch.autograd.grad(
                         y, [m.weight], g, retain_graph=True)), 3)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", default=None, help="IAA_HOME of a demo book build (default: IAA_HOME)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / "finetune_step.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    home = Path(args.home) if args.home else iaa_home()
    run = next(iter(sorted((home / "runs").glob(f"{RUN}-*"))), None)
    if run is None:
        raise SystemExit(f"no run {RUN}-* under {home / 'runs'}: build the demo book first")
    cfg = ExperimentConfig.load(run / "config.yaml")

    def with_depthwise(trained: bool) -> ExperimentConfig:  # whatever the build's run chose
        options = {**cfg.model.options, "train_depthwise": trained}
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, options=options))

    variants = {"every weight trained": with_depthwise(True),
                "depthwise kernels frozen": with_depthwise(False)}
    times, medians = alternating(lambda name: train_ms_per_image(
        variants[name], True, shape=SHAPE, batch_size=16), list(variants), args.repeats)
    rows = depthwise_backward(variants["every weight trained"], 16)
    for name, ms in medians.items():
        print(f"{name:24} {ms:.3f} ms per image (median of {args.repeats})")
    for r in rows:
        print(f"{r['module']:40} {r['kernel']}x{r['kernel']} s{r['stride']} {r['input']}: "
              f"dX {r['grad_input_ms']:.2f} ms, dW {r['grad_weight_ms']:.2f} ms")
    write_report(Path(args.out), {
        "benchmark": "finetune_step", "run_config": str(run / "config.yaml"), "batch_size": 16,
        "threads": 1, "train_ms_per_image": times, "median_ms_per_image": medians,
        "step_saving": round(1 - medians["depthwise kernels frozen"]
                             / medians["every weight trained"], 3),
        "depthwise_backward": rows, "machine": machine_info()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
