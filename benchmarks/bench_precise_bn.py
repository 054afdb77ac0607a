"""Is a run's last-epoch test metric moved by its batch-norm running statistics?

    python -m benchmarks.bench_precise_bn --home IAA_HOME GLOB [GLOB ...] [--report FILE]

For each finished run under ``IAA_HOME/runs`` whose name matches a glob (e.g.
``'kao-stcnn-d0-lam0-s*'``), evaluates its ``last`` checkpoint on its test manifest twice: as
trained, and after recomputing every batch-norm layer's statistics as the plain average over one
pass of its training set ("precise BN", Wu & Johnson 2021, *Rethinking "Batch" in BatchNorm*).
A large change would say that the epoch-to-epoch jitter of the chapters' learning curves comes
from the running statistics (an exponential average over the last batches) rather than from the
weights. Runs with a shifted stem (``data.stem_shift``) are skipped. Writes
``benchmarks/results/precise_bn.json`` by default. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("srcc_p_high", "acc", "semantic_ap", "srcc_mean")


def _evaluate(model, cfg, tags) -> dict:
    from iaalib.engine.evaluate import evaluate_model
    m, _ = evaluate_model(model, cfg, cfg.data.test, tags, batch_size=256, device="cpu")
    return {k: round(float(m[k]), 4) for k in METRICS if m.get(k) is not None}


def precise_bn(model, cfg, tags) -> int:
    """Replace the running statistics of every batch-norm layer by the average over one pass of
    the training set (unaugmented, in fp32 even for a run trained under ``cpu_amp``); returns the
    number of layers."""
    from iaalib.engine.loaders import build_batch_sampler, build_dataset, make_loader
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average
    ds = build_dataset(cfg, cfg.data.train, train=False, tag_columns=tags)
    sampler = build_batch_sampler(ds, cfg.data, cfg.batch_size, shuffle=True, seed=cfg.seed)
    model.train()
    with torch.no_grad():
        for batch in make_loader(ds, sampler, num_workers=0, seed=cfg.seed):
            x = batch["image"]
            model(x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x)
    model.eval()
    return len(layers)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("globs", nargs="+")
    p.add_argument("--home", required=True)
    p.add_argument("--report", default=str(RESULTS / "precise_bn.json"))
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    os.environ["IAA_HOME"] = str(Path(args.home).resolve())
    from iaalib.engine.evaluate import load_model
    from iaalib.engine.runrecord import Run
    from iaalib.errors import IaaError

    rows = []
    for pattern in args.globs:
        for run in sorted((Path(args.home) / "runs").glob(pattern)):
            if Run(run).status != "finished":  # its last.pt is a resume point, not the result
                print(run.name, "skipped: not finished", flush=True)
                continue
            model, cfg, state = load_model(run / "checkpoints" / "last.pt")
            if cfg.data.stem_shift:
                print(run.name, "skipped: trained on shifted maps", flush=True)
                continue
            tags = list(state.get("tag_columns", []))
            try:
                before = _evaluate(model, cfg, tags)
            except IaaError as e:  # e.g. a run of another SynthAVA size: its manifest moved on
                print(run.name, "skipped:", e, flush=True)
                continue
            n = precise_bn(model, cfg, tags)
            after = _evaluate(model, cfg, tags)
            rows.append({"run": run.name, "epoch": state.get("epoch"), "bn_layers": n,
                         "as_trained": before, "precise_bn": after})
            print(run.name, before, "->", after, flush=True)
    change = {k: [r["precise_bn"][k] - r["as_trained"][k] for r in rows if k in r["as_trained"]]
              for k in METRICS}
    summary = {k: {"mean_abs_change": round(float(np.mean(np.abs(v))), 4),
                   "max_abs_change": round(float(np.max(np.abs(v))), 4)}
               for k, v in change.items() if v}
    write_report(args.report, {"benchmark": "precise_bn", "machine": machine_info(),
                               "globs": args.globs, "runs": rows, "summary": summary,
                               "note": args.note})
    print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
