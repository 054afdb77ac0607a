"""The ``iaa`` command: the only place that parses arguments.

Parsers live here; the handlers live in ``iaalib.cli.data`` (labels, synthetic data, the resized
cache), ``iaalib.cli.engine`` (train, eval, score) and ``iaalib.cli.book``, each imported only when
its subcommand runs (``iaa data filter`` never imports torch). Every handler has the signature
``handler(args: argparse.Namespace) -> int`` (the exit code).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Sequence

from ..errors import IaaError


def _lazy(target: str) -> Callable[[argparse.Namespace], int]:
    module, func = target.split(":")

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), func)(args)

    run.target = target  # type: ignore[attr-defined]
    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="iaa",
        description="Reproduce Kao et al. (MTCNN/MTRLCNN) and SAF on AVA or the embedded SynthAVA.",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # ---------------------------------------------------------------- iaa data ...
    data = sub.add_parser("data", help="label files, protocols, synthetic datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)

    f = dsub.add_parser(
        "filter",
        help="apply a paper's protocol to AVA.txt and write train/test manifests",
        description="Parse AVA.txt and write DIR/train.csv, DIR/test.csv and DIR/summary.json "
        "following Kao et al. (tag filter, random test split, delta) or the standard split.",
    )
    f.add_argument("--ava-txt", required=True, help="AVA.txt (15 integer fields per line)")
    f.add_argument("--tags-txt", help="tags.txt (tag id and name per line); names the kept tags")
    f.add_argument("--protocol", required=True, choices=["kao", "standard"])
    f.add_argument("--min-tag-count", type=int, default=3000,
                   help="kao: keep tags with MORE than this many images (paper: 3000)")
    f.add_argument("--test-size", type=int, default=20000,
                   help="kao: size of the seeded random test split (paper: 20000)")
    f.add_argument("--test-list", help="standard: file of test image ids (official generic_test.jpgl)")
    f.add_argument("--val-size", type=int, default=0,
                   help="images held out of the training set for validation (not in the papers; default 0)")
    f.add_argument("--delta", type=float, default=0.0,
                   help="training-set margin: high if mean > 5+delta, low if mean < 5-delta (test: delta=0)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--recipe", help="data_manifests/ recipe (kao, standard or a YAML path): check the "
                   "label file's sha256 and the resulting counts against it")
    f.add_argument("--strict-checksum", action="store_true",
                   help="with --recipe: stop with an error (instead of a warning) when the label file's "
                   "sha256 or the counts differ from the recipe's")
    f.add_argument("--on-bad", choices=["raise", "drop"], default="raise",
                   help="malformed AVA.txt lines: stop with file:line (default) or drop and count")
    f.add_argument("--out", required=True, help="output directory")
    f.set_defaults(handler=_lazy("iaalib.cli.data:filter_command"))

    s = dsub.add_parser("synth", help="generate SynthAVA: AVA-format labels + procedural images",
                        description="Write DIR/AVA.txt, DIR/tags.txt, DIR/challenges.txt and DIR/images/.")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=3000, help="number of images")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--short-edge", type=int, default=128, help="short edge of the images in pixels")
    s.add_argument("--workers", type=int, default=None,
                   help="processes (default: CPU count; at most one per 250 images, since "
                        "starting a process costs about a second)")
    s.set_defaults(handler=_lazy("iaalib.cli.data:synth_command"))

    t = dsub.add_parser("synth-tid", help="generate SynthTID: TID2013-format distorted set",
                        description="Distort held-out SynthAVA references in TID2013's layout.")
    t.add_argument("--out", required=True)
    t.add_argument("--synth-ava", required=True, help="a SynthAVA directory to take references from")
    t.add_argument("--n-refs", type=int, default=10)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(handler=_lazy("iaalib.cli.data:synth_tid_command"))

    c = dsub.add_parser("cache", help="resize images once to a short edge (a cache that makes every epoch fast)",
                        description="Write OUT/<image_id>.jpg with the short edge resized to --short-edge "
                        "(never upscaled) for every image of AVA.txt or of the given manifests; then use "
                        "OUT as the image directory. Resumable; bad images are skipped and counted.")
    ids = c.add_mutually_exclusive_group(required=True)
    ids.add_argument("--ava-txt", help="take the image ids of this AVA.txt")
    ids.add_argument("--manifest", action="append", help="a manifest CSV with an image_id column "
                     "(repeatable: train and test)")
    c.add_argument("--images", required=True, help="the source images (<image_id>.jpg)")
    c.add_argument("--out", required=True, help="the cache directory")
    c.add_argument("--short-edge", type=int, default=256, help="short edge in pixels (default 256, "
                   "both papers' resize)")
    c.add_argument("--quality", type=int, default=95, help="JPEG quality of the cached files")
    c.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    c.set_defaults(handler=_lazy("iaalib.cli.data:cache_command"))

    # ---------------------------------------------------------------- training / evaluation
    tr = sub.add_parser("train", help="train (or reuse / resume) one experiment",
                        description="Checkpoint-or-train: a finished run with the same config is "
                        "reused unless --force; an unfinished one resumes.")
    tr.add_argument("--config", required=True, help="experiment config (YAML or JSON)")
    tr.add_argument("--out", help="run directory (default: .iaa/runs/<name>-<config hash>)")
    tr.add_argument("--resume", action="store_true", help="resume an unfinished run (default when one exists)")
    tr.add_argument("--force", action="store_true", help="retrain even if a finished run exists")
    tr.add_argument("--quiet", action="store_true", help="no progress bars (papermill logs)")
    tr.set_defaults(handler=_lazy("iaalib.cli.engine:train_command"))

    ev = sub.add_parser("eval", help="evaluate a run on its test manifest or another one")
    ev.add_argument("--run", required=True, help="run directory")
    ev.add_argument("--manifest", help="manifest CSV (default: the run's test manifest)")
    ev.add_argument("--images", help="image directory for --manifest")
    ev.add_argument("--tid", help="TID2013-format root (cross-dataset mode: SRCC/PLCC vs MOS)")
    ev.add_argument("--checkpoint", choices=["best", "last"], default="best")
    ev.add_argument("--batch-size", type=int, default=None, help="default: the run's batch size")
    ev.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda[:N], mps")
    ev.add_argument("--out", help="metrics.json path (default: print)")
    ev.set_defaults(handler=_lazy("iaalib.cli.engine:eval_command"))

    sc = sub.add_parser("score", help="rank every image in a folder by predicted mean score",
                        description="Score every image under DIRECTORY (recursive; jpg, png, bmp, "
                        "webp, tif, gif; any size or aspect ratio) and write a CSV sorted by "
                        "predicted mean score (Kao's classifiers: by p_high). Unreadable files are "
                        "skipped with a warning and counted.")
    sc.add_argument("directory", help="folder of images")
    sc.add_argument("--checkpoint", required=True, help="a checkpoint file or a run directory")
    sc.add_argument("--out", default="scores.csv", help="CSV: path, mean, sd, p1..p10, p_high")
    sc.add_argument("--top", type=int, default=None, help="print the K best images")
    sc.add_argument("--batch-size", type=int, default=16)
    sc.add_argument("--workers", type=int, default=0, help="image-decoding processes")
    sc.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda[:N], mps")
    sc.set_defaults(handler=_lazy("iaalib.cli.engine:score_command"))

    # ---------------------------------------------------------------- the book
    b = sub.add_parser("book", help="execute the notebooks with papermill and build the Jupyter Book",
                       description="Generate the profile's SynthAVA/SynthTID if missing, execute "
                       "notebooks/NN_*.ipynb with papermill in order into OUT/executed/<profile>/ "
                       "(chapters that train different runs side by side), "
                       "build the HTML book with Jupyter Book 1 into OUT/html/ and write "
                       "OUT/book-run.json. Stops at the first failing cell, naming notebook and cell.")
    b.add_argument("--profile", default="demo",
                   help="notebooks/params/<profile>.yaml: smoke (CI, seconds), demo (default: CPU, "
                   "about ten minutes), ava (real AVA, GPU; edit its paths first)")
    b.add_argument("--only", nargs="+", metavar="NB",
                   help="execute only these notebooks (numbers like 1 or 01, or names like 01_dataset); "
                   "the book still shows the other chapters from earlier runs or as 'not run'")
    b.add_argument("--out", default="_build",
                   help="output folder: executed/<profile>/, html/, book-run.json (default: _build)")
    b.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override one setting of the profile (repeatable), as papermill's -p: a "
                   "chapter parameter (e.g. -p lambdas '[0, 1]') or a common setting "
                   "(e.g. -p kao_epochs 5); VALUE is read as YAML")
    b.add_argument("-j", "--jobs", type=int, default=3,
                   help="notebooks executed at a time (default 3: while one chapter trains, others "
                   "draw or wait for a training slot; 1: one after another, with progress bars)")
    b.add_argument("--no-html", action="store_true", help="execute the notebooks only, no HTML build")
    b.add_argument("--browser-check", action="store_true",
                   help="open every page of the built book in headless Chromium (Debian's chromium "
                   "and chromium-driver): math typeset, images loaded, links, no tracebacks; "
                   "screenshots in OUT/screenshots, report in OUT/browser-check.json")
    b.set_defaults(handler=_lazy("iaalib.cli.book:book_command"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except IaaError as e:
        print(f"iaa: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("iaa: interrupted", file=sys.stderr)
        return 130
    finally:
        _shutdown_distributed()


def _shutdown_distributed() -> None:
    """Under torchrun, leave the process group cleanly (only if ``iaa train`` initialised one)."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
