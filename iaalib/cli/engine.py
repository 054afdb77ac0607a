"""``iaa train | eval | score``: one experiment, its evaluation, and ranking a folder of photos.

``python -m iaalib.cli train --config CFG`` is also the ``torchrun`` entry point (one process per
rank; see the "Reproducing on real AVA" chapter for multi-node commands).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .._io import atomic_write, write_json
from ..engine.config import ExperimentConfig
from ..engine.evaluate import evaluate_run, evaluate_tid, score_folder
from ..engine.trainer import train
from ..errors import IaaError


def train_command(args: argparse.Namespace) -> int:
    """``iaa train --config CFG [--out RUN] [--resume] [--force] [--quiet]``."""
    cfg = ExperimentConfig.load(args.config)
    run = train(cfg, out=args.out, force=args.force, quiet=args.quiet, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        shown = {k: v for k, v in run.metrics.items()
                 if isinstance(v, (int, float)) and v is not None}
        print(f"run: {run.dir}")
        print("metrics: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in sorted(shown.items())))
    return 0


def eval_command(args: argparse.Namespace) -> int:
    """``iaa eval --run RUN [--manifest F --images DIR | --tid ROOT] [--out metrics.json]``."""
    if args.tid:
        if args.manifest:
            raise IaaError("--tid and --manifest are exclusive")
        result = evaluate_tid(args.run, args.tid, checkpoint=args.checkpoint,
                              batch_size=args.batch_size or 16, device=args.device)
    else:
        if args.images and not args.manifest:
            raise IaaError("--images needs --manifest")
        result = evaluate_run(args.run, manifest=args.manifest, images=args.images,
                              checkpoint=args.checkpoint, batch_size=args.batch_size,
                              device=args.device)
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")
    else:
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        print()
    if result["n_images"] == 0:
        raise IaaError("no image could be evaluated")
    return 0


def score_command(args: argparse.Namespace) -> int:
    """``iaa score DIR --checkpoint CKPT [--out scores.csv] [--top K]``."""
    table, n_skipped = score_folder(args.directory, args.checkpoint, batch_size=args.batch_size,
                                    num_workers=args.workers, device=args.device,
                                    return_skipped=True)
    with atomic_write(args.out, "w", encoding="utf-8", newline="") as fh:
        table.to_csv(fh, index=False, float_format="%.6g")
    print(f"scored {len(table)} image(s), skipped {n_skipped} unreadable; wrote {args.out}")
    if args.top:
        key = "mean" if table["mean"].notna().any() else "p_high"
        for rank, row in enumerate(table.head(args.top).itertuples(index=False), start=1):
            print(f"{rank:4d}  {getattr(row, key):7.4f}  {row.path}")
    if len(table) == 0:
        raise IaaError(f"{args.directory}: no readable image")
    return 0
