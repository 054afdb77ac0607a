"""What a run costs: forward FLOPs per image (PyTorch's FLOP counter) and the FLOPs of a schedule.

Used by ``benchmarks/bench_rehearsal.py`` to estimate the ``ava`` profile's GPU time from the
rehearsal's runs. FLOPs are PyTorch's count (a multiply-add is 2 FLOPs).
"""
from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .config import ExperimentConfig

#: Real AVA photos: median 720 × 509 pixels (landscape), the aspect ratio of a typical SAF input.
AVA_MEDIAN_SIZE = (720, 509)
#: A backward pass costs about two forward passes (weights' and inputs' gradients).
BACKWARD_FACTOR = 2.0


def input_shape(cfg: ExperimentConfig, size: tuple[int, int] = AVA_MEDIAN_SIZE) -> tuple[int, ...]:
    """[3, H, W] of one training image: Kao's crop × crop, or SAF's short edge with the long side
    of a ``size`` (width, height) photo."""
    d = cfg.data
    if d.transform == "kao":
        return (3, d.crop, d.crop)
    w, h = size
    long_side = round(d.short_edge * max(w, h) / min(w, h))
    return (3, d.short_edge, long_side) if w >= h else (3, long_side, d.short_edge)


def forward_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of ``model`` on one image of ``shape`` (PyTorch's counter)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def run_flops(cfg: ExperimentConfig) -> float:
    """The FLOPs of training ``cfg`` as its manifests and schedule say (:func:`schedule_flops`):
    the network's forward FLOPs on one input (the stem's activations when ``model.stem`` is set,
    else :func:`input_shape`) times the images it sees. For ordering runs, not for a GPU bill."""
    from ..data.manifests import TAG_COLUMN
    from ..models import stem_channels, stem_stride
    from ..models.factory import build_model

    header, n_train = _manifest_size(cfg.data.train)
    n_test = _manifest_size(cfg.data.test)[1] if cfg.data.test else 0
    if cfg.model.stem:
        side = cfg.data.stem_size // stem_stride(cfg.model.stem)
        shape: tuple[int, ...] = (stem_channels(cfg.model.stem), side, side)
    else:
        shape = input_shape(cfg)
    model = build_model(cfg.model, num_tags=sum(bool(TAG_COLUMN.match(c)) for c in header))
    return schedule_flops(forward_flops(model, shape), epochs=cfg.epochs, n_train=n_train,
                          n_test=n_test, monitor_test=cfg.monitor_test,
                          monitor_every=cfg.monitor_every, has_val=bool(cfg.data.val))


def _manifest_size(path) -> tuple[list[str], int]:
    """A manifest CSV's header and number of rows."""
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
        return header, sum(1 for line in fh if line.strip())


def schedule_flops(flops_per_image: float, *, epochs: int, n_train: int, n_test: int,
                   monitor_test: bool, monitor_every: int = 1, has_val: bool = False) -> float:
    """Training (forward + backward on every training image, every epoch) and testing: a forward
    pass on the test set at the end and, with ``monitor_test``, after every ``monitor_every``-th
    epoch and the last, whose pass is the final one when no validation set picks another
    checkpoint (the trainer does not repeat it)."""
    monitored = epochs // monitor_every + (epochs % monitor_every != 0) if monitor_test else 0
    test_passes = monitored + (0 if monitor_test and not has_val else 1)
    return flops_per_image * ((1 + BACKWARD_FACTOR) * epochs * n_train + test_passes * n_test)


def summarise_costs(rows: Sequence[Mapping[str, Any]], *, seeds: int, gpu_tflops: float,
                    utilisation: float) -> dict[str, Any]:
    """Per family of ``rows`` (one per run: ``family``, ``cpu_s_per_image``, ``peak_memory_mib``,
    ``forward_gflops_per_image``, ``ava_flops``): the runs, the mean CPU time per training image,
    the FLOPs and peak memory, and the GPU hours of ``seeds`` × its runs' FLOPs at
    ``gpu_tflops`` × ``utilisation``; the totals and each family's share."""
    by_family: dict[str, list] = collections.defaultdict(list)
    for r in rows:
        by_family[r["family"]].append(r)
    families = {}
    for name, rs in sorted(by_family.items()):
        cpu = [r["cpu_s_per_image"] for r in rs if r["cpu_s_per_image"]]
        mem = [r["peak_memory_mib"] for r in rs if r["peak_memory_mib"]]
        flops = sum(r["ava_flops"] for r in rs) * seeds
        families[name] = {
            "runs_per_seed": len(rs),
            "cpu_s_per_training_image": round(sum(cpu) / len(cpu), 4) if cpu else None,
            "forward_gflops_per_image": round(max(r["forward_gflops_per_image"] for r in rs), 2),
            "peak_memory_mib_max": max(mem) if mem else None,
            "ava_flops": flops,
            "ava_gpu_hours": flops / (gpu_tflops * 1e12 * utilisation) / 3600,
        }
    total = sum(f["ava_flops"] for f in families.values())
    return {"families": families, "ava_flops_total": total,
            "ava_gpu_hours_total": total / (gpu_tflops * 1e12 * utilisation) / 3600,
            "share_by_family": {k: round(v["ava_flops"] / total, 3) for k, v in families.items()}}
