"""bf16 autocast on a CPU (``ExperimentConfig.cpu_amp``): how much faster, and what it changes.

    python benchmarks/bench_cpu_bf16.py --home BF16_HOME [--fp32-home FP32_HOME] [--repeats 3]

1. **Training step per image**, fp32 against bf16 autocast, one torch thread, channels-last, for
   one run of each family under ``BF16_HOME/runs`` (a demo book build's runs: their saved
   configs), on random tensors of the cached activations' shape (as
   ``bench_cpu_kernels.py``). The formats alternate, ``--repeats`` times each; the fine-tuned
   EfficientNet-Lite0 blocks are also timed at batch 32.
2. **The same runs in fp32 and in bf16** (``--fp32-home``: a build of the same code and settings
   with ``cpu_amp`` off, or of the last commit before it existed). Runs are paired by name, if
   their configs differ only in ``cpu_amp`` and the IAA_HOME in their paths; per family, the
   mean over seeds of the test metrics each paper's claims use, their difference, the seed
   standard deviation of each, and the training seconds (the sum of the epochs' ``seconds``;
   the two builds ran two runs at a time beside other chapters, so the seconds are indicative:
   part 1 is the clean comparison).

Writes ``benchmarks/results/cpu_bf16.json``. Behind ``cpu_amp: true`` in the demo profile.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine_info, write_report  # noqa: E402
from benchmarks.bench_cpu_kernels import alternating, train_ms_per_image  # noqa: E402
from iaalib.engine.config import ExperimentConfig  # noqa: E402
from iaalib.engine.runrecord import Run  # noqa: E402
from iaalib.engine.device import cpu_has_native_bf16  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("srcc_mean", "plcc_mean", "srcc_sd", "acc", "srcc_p_high", "semantic_ap")


def family(run_name: str) -> str:
    """``kao-mtcnn1-d0-lam1_M-s2`` → ``kao-mtcnn1-d0-lam1_M``: the run's name without its seed."""
    return run_name.rsplit("-s", 1)[0]


def runs_by_config(home: Path) -> dict[str, tuple[Run, str]]:
    """Finished runs under ``home/runs`` by name (``saf-full-l1-p4-s0``), each with its config
    as canonical JSON without ``cpu_amp`` and with ``home`` written as ``$HOME`` (to check that
    two builds' runs of one name differ in nothing else)."""
    out = {}
    for cfg_file in sorted((home / "runs").glob("*/run.json")):
        run = Run(cfg_file.parent)
        if run.status != "finished":
            continue
        d = run.config.to_dict()
        d.pop("cpu_amp", None)
        blob = json.dumps(d, sort_keys=True, default=str).replace(os.fspath(home), "$HOME")
        out[run.record["name"]] = (run, blob)
    return out


def kernel_times(home: Path, repeats: int) -> dict:
    torch.set_num_threads(1)
    firsts: dict[str, ExperimentConfig] = {}
    for cfg_file in sorted((home / "runs").glob("*-s0-*/config.yaml")):
        cfg = ExperimentConfig.load(cfg_file)
        firsts.setdefault(family(cfg.name), cfg)
    report = {}
    for fam, cfg in firsts.items():
        sizes = (cfg.batch_size, 32) if cfg.model.family == "mtcnn_finetune" else (cfg.batch_size,)
        for bs in sizes:
            times, med = alternating(
                lambda name: train_ms_per_image(cfg, True, shape=(112, 7, 7), bf16=name == "bf16",
                                                batch_size=bs),
                ("fp32", "bf16"), repeats)
            key = fam if bs == cfg.batch_size else f"{fam} (batch {bs})"
            report[key] = {"batch_size": bs, "repeats": times, "median": med,
                           "bf16_saves": round(1 - med["bf16"] / med["fp32"], 3)}
            print(f"{key:<44} fp32 {med['fp32']:.3f}  bf16 {med['bf16']:.3f} ms/image")
    return report


def _spread(values: list[float]) -> float | None:
    return round(statistics.stdev(values), 4) if len(values) > 1 else None


def paired_runs(bf16_home: Path, fp32_home: Path) -> dict:
    fp32 = runs_by_config(fp32_home)
    groups: dict[str, list[tuple[Run, Run]]] = defaultdict(list)
    unpaired = []
    for name, (run, blob) in runs_by_config(bf16_home).items():
        if name in fp32 and fp32[name][1] == blob:
            groups[family(name)].append((fp32[name][0], run))
        else:
            unpaired.append(name)
    if unpaired:
        print(f"{len(unpaired)} runs without an identical fp32 run: {', '.join(unpaired)}")
    report = {}
    for fam, pairs in sorted(groups.items()):
        row: dict = {"n_seeds": len(pairs)}
        for arm, i in (("fp32", 0), ("bf16", 1)):
            row[f"train_seconds_{arm}"] = round(sum(
                sum(e["seconds"] for e in p[i].history) for p in pairs) / len(pairs), 2)
            row[f"amp_{arm}"] = sorted({bool(p[i].record.get("amp")) for p in pairs})
        for m in METRICS:
            vals = [[p[i].metrics.get(m) for p in pairs] for i in (0, 1)]
            if any(v is None for v in vals[0] + vals[1]) or m == "semantic_ap" and "lam0" in fam:
                continue
            row[m] = {"fp32": round(statistics.fmean(vals[0]), 4),
                      "bf16": round(statistics.fmean(vals[1]), 4),
                      "difference": round(statistics.fmean(vals[1]) - statistics.fmean(vals[0]), 4),
                      "seed_sd_fp32": _spread(vals[0]), "seed_sd_bf16": _spread(vals[1])}
        report[fam] = row
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="IAA_HOME of a demo build with cpu_amp on")
    p.add_argument("--fp32-home", help="IAA_HOME of the same build in fp32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "cpu_bf16.json"))
    args = p.parse_args(argv)
    report: dict = {"benchmark": "cpu_bf16", "machine": machine_info(),
                    "native_bf16": cpu_has_native_bf16(),
                    "training_ms_per_image": kernel_times(Path(args.home), args.repeats)}
    if args.fp32_home:
        report["runs"] = paired_runs(Path(args.home), Path(args.fp32_home))
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
