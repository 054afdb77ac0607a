"""How fast the CPU kernels run the demo's networks: memory format and stem batch size.

    python benchmarks/bench_cpu_kernels.py [--home IAA_HOME] [--repeats 3] [--out FILE]

1. **Training step per image**, contiguous (NCHW) against channels-last (NHWC), one torch thread
   (as each grid worker runs), for one run of each demo family found under ``IAA_HOME/runs`` (a
   book build's runs: their saved configs, so the networks are exactly the demo's). Random
   tensors of the cached activations' shape stand in for a batch; forward, a squared-output loss,
   backward and an Adam step. The two formats alternate, ``--repeats`` times each.
2. **The frozen stem's forward per image** at several batch sizes, two threads (as notebook 01
   builds the activation cache), channels-last, on random 112² inputs: the eager module and the
   frozen TorchScript graph the cache uses (``iaalib.data.activations.frozen_graph``).

The report keeps every repeat and the median. Behind ``ExperimentConfig.channels_last`` (on by
default) and ``iaalib.data.activations.STEM_BATCH_SIZE``. Writes ``benchmarks/results/cpu_kernels.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine_info, write_report  # noqa: E402
from iaalib.data.activations import frozen_graph  # noqa: E402
from iaalib.engine.config import ExperimentConfig  # noqa: E402
from iaalib.models.factory import build_model  # noqa: E402
from iaalib.models.stems import FrozenStem  # noqa: E402
from iaalib.paths import iaa_home  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: one run of each family the demo trains (run-name prefix → batch size it trains with)
FAMILIES = ("kao-mtcnn1-d0-lam1_M-s0", "kao-mtcnn3-d0-lam1_M-s0", "kao-efficientnet_lite0-ft-d0-s0",
            "saf-full-l1-p4-s0", "nima-vgg16_bn-s0")


def _outputs(out) -> list[torch.Tensor]:
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else [out]
    return [v for v in values if torch.is_tensor(v) and v.is_floating_point()]


def train_ms_per_image(cfg: ExperimentConfig, channels_last: bool, *, shape, steps: int = 20,
                       bf16: bool = False, batch_size: int | None = None) -> float:
    """Milliseconds per image of one training step of ``cfg``'s network on random inputs of
    ``shape`` (forward under bf16 autocast when ``bf16``, as the trainer does with ``cpu_amp``)."""
    torch.manual_seed(0)
    model = build_model(cfg.model, num_tags=29).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch_size = batch_size or cfg.batch_size
    x = torch.randn(batch_size, *shape).contiguous(memory_format=fmt)
    for i in range(steps + 3):
        if i == 3:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = _outputs(model(x))
        loss = sum(o.float().square().mean() for o in out)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps / batch_size * 1000


def alternating(measure, names: Sequence[str], repeats: int) -> tuple[dict, dict]:
    """``measure(name)`` for each of ``names`` in turn, ``repeats`` times over (so a machine whose
    speed drifts favours none): ``({name: [ms, ...]}, {name: median})``."""
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            times[name].append(round(measure(name), 3))
    return times, {k: statistics.median(v) for k, v in times.items()}


def stem_ms_per_image(stem, batch_size: int, n: int = 400) -> float:
    x = torch.randn(n, 3, 112, 112)
    with torch.inference_mode():
        stem(x[:batch_size].contiguous(memory_format=torch.channels_last))
        t0 = time.perf_counter()
        for i in range(0, n, batch_size):
            stem(x[i:i + batch_size].contiguous(memory_format=torch.channels_last))
    return (time.perf_counter() - t0) / n * 1000


def speed_probe() -> float:
    """How fast this machine is right now: the frozen stem's best of three passes over 400 random
    images in batches of 16, two threads, in ms per image (1.48 on stop 19's day). Shared
    machines change speed from hour to hour; a build's wall time means little without it."""
    torch.set_num_threads(2)
    stem = FrozenStem("efficientnet_lite0:16").to(memory_format=torch.channels_last)
    graph = frozen_graph(stem, torch.randn(16, 3, 112, 112).contiguous(
        memory_format=torch.channels_last))
    return round(min(stem_ms_per_image(graph, 16) for _ in range(3)), 3)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", default=None, help="IAA_HOME of a demo book build (default: IAA_HOME)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "cpu_kernels.json"))
    args = p.parse_args(argv)
    runs = Path(args.home or iaa_home()) / "runs"
    report: dict = {"benchmark": "cpu_kernels", "machine": machine_info(),
                    "training_ms_per_image": {}, "stem_ms_per_image": {}}
    torch.set_num_threads(1)
    for prefix in FAMILIES:
        found = sorted(runs.glob(f"{prefix}-*/config.yaml"))
        if not found:
            print(f"{prefix}: no run under {runs}; skipped")
            continue
        cfg = ExperimentConfig.load(found[0])
        times, med = alternating(
            lambda name: train_ms_per_image(cfg, name == "channels_last", shape=(112, 7, 7)),
            ("contiguous", "channels_last"), args.repeats)
        report["training_ms_per_image"][prefix] = {
            "batch_size": cfg.batch_size, "repeats": times, "median": med,
            "channels_last_saves": round(1 - med["channels_last"] / med["contiguous"], 3)}
        print(f"{prefix:<36} contiguous {med['contiguous']:.3f}  channels-last "
              f"{med['channels_last']:.3f} ms/image")
    torch.set_num_threads(2)
    stem = FrozenStem("efficientnet_lite0:16").to(memory_format=torch.channels_last)
    example = torch.randn(16, 3, 112, 112).contiguous(memory_format=torch.channels_last)
    for name, module in (("eager", stem), ("frozen_graph", frozen_graph(stem, example))):
        report["stem_ms_per_image"][name] = {}
        for bs in (8, 16, 32, 64):
            times = [round(stem_ms_per_image(module, bs), 3) for _ in range(args.repeats)]
            report["stem_ms_per_image"][name][str(bs)] = {"repeats": times,
                                                          "median": statistics.median(times)}
            print(f"stem, {name}, batch {bs:>3}: {statistics.median(times):.2f} ms/image")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
