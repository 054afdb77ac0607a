"""``iaa data filter | synth | synth-tid | cache``: label files, protocols and synthetic datasets.

Label commands never import torch (``iaa data filter`` on the full AVA.txt stays fast); only
``iaa data cache`` decodes images, and imports the image module when it runs.
"""
from __future__ import annotations

import argparse
import os

import pandas as pd

from .._io import read_json, sha256_file
from ..data import manifests, protocols
from ..data.ava import read_ava_txt, read_id_list, read_tags
from ..data.tid import read_tid
from ..errors import IaaError
from ..synth.ava import generate_synth_ava
from ..synth.tid import generate_synth_tid


def filter_command(args: argparse.Namespace) -> int:
    """``iaa data filter``: parse AVA.txt, apply a protocol, write DIR/{train,test}.csv, summary.json."""
    strict = bool(getattr(args, "strict_checksum", False))
    if args.protocol == "standard" and not args.test_list:
        raise IaaError("--protocol standard needs --test-list (e.g. the official "
                       "aesthetics_image_lists/generic_test.jpgl)")
    recipe = manifests.load_recipe(args.recipe) if args.recipe else None
    if recipe is not None and recipe["protocol"] != args.protocol:
        raise IaaError(f"recipe {args.recipe!r} is for the {recipe['protocol']} protocol, "
                       f"not {args.protocol}")
    labels = read_ava_txt(args.ava_txt, on_bad=args.on_bad)
    if recipe is not None:
        manifests.check_label_file(args.ava_txt, recipe, strict=strict,
                                   sha256=labels.attrs["sha256"])
    try:
        if args.protocol == "kao":
            tag_names = read_tags(args.tags_txt) if args.tags_txt else None
            split = protocols.kao_protocol(labels, min_tag_count=args.min_tag_count,
                                           test_size=args.test_size, delta=args.delta,
                                           seed=args.seed, val_size=args.val_size,
                                           tag_names=tag_names)
        else:
            split = protocols.standard_protocol(labels, test_ids=read_id_list(args.test_list),
                                                delta=args.delta, seed=args.seed,
                                                val_size=args.val_size)
            split.summary.update(test_list=os.fspath(args.test_list),
                                 test_list_sha256=sha256_file(args.test_list))
    except IaaError:
        raise
    except ValueError as e:  # bad parameters (e.g. a test set larger than the data)
        raise IaaError(str(e)) from e
    if recipe is not None:
        split.summary["recipe"] = recipe["name"]
        split.summary["recipe_mismatches"] = manifests.check_expected(split.summary, recipe,
                                                                      strict=strict)
    summary = manifests.write_manifest(split, args.out)
    print(protocols.format_summary(summary, recipe))
    print(f"  wrote {', '.join(sorted(summary['files']))} to {args.out}")
    return 0


def synth_command(args: argparse.Namespace) -> int:
    """``iaa data synth``: SynthAVA (AVA-format labels and procedural images)."""
    workers = args.workers or os.cpu_count() or 1
    info = generate_synth_ava(args.out, n=args.n, seed=args.seed, short_edge=args.short_edge,
                              workers=workers)
    meta = read_json(info["synth_json"])
    exp = meta["kao_expected"]
    state = ("up to date" if info["skipped"]
             else f"written in {info['seconds']:.1f} s ({_workers_text(info['workers'], workers)})")
    print(f"SynthAVA {info['dir']}: {info['n']} images, {state}")
    print(f"  Kao filter at min_tag_count={exp['min_tag_count']}: {len(exp['kept_tags'])} tags kept, "
          f"{exp['n_images_with_kept_tag']} images with a kept tag")
    return 0


def _workers_text(used: int, asked: int) -> str:
    """"2 workers", or "1 worker of 2 asked: at most one per 250 images"."""
    text = f"{used} worker" + ("s" if used != 1 else "")
    return text if used == asked else f"{text} of {asked} asked: at most one per 250 images"


def synth_tid_command(args: argparse.Namespace) -> int:
    """``iaa data synth-tid``: SynthTID (TID2013's layout) from SynthAVA's generator."""
    info = generate_synth_tid(args.out, synth_ava_dir=args.synth_ava, n_refs=args.n_refs,
                              seed=args.seed)
    state = "up to date" if info["skipped"] else f"written in {info['seconds']:.1f} s"
    df = read_tid(info["dir"])
    print(f"SynthTID {info['dir']}: {args.n_refs} references, {len(df)} distorted images, {state}")
    print(f"  MOS {df.mos.mean():.2f} ± {df.mos.std():.2f} (range {df.mos.min():.2f}–"
          f"{df.mos.max():.2f}); by level "
          + ", ".join(f"{m:.2f}" for m in df.groupby("level").mos.mean()))
    return 0


def cache_command(args: argparse.Namespace) -> int:
    """``iaa data cache``: ``build_resized_cache`` over the ids of AVA.txt or of manifests."""
    from ..data import images  # decodes images with torch: imported only by this command

    if args.ava_txt:
        ids = read_ava_txt(args.ava_txt)[["image_id"]]
    else:
        ids = pd.concat([images.manifest_ids(path) for path in args.manifest]) \
            .drop_duplicates().to_frame()
    info = images.build_resized_cache(ids, args.images, args.out, short_edge=args.short_edge,
                                      quality=args.quality,
                                      workers=args.workers or os.cpu_count() or 1)
    skipped = sum(info["skipped"].values())
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(info["skipped"].items()))
    print(f"resized cache {info['cache_dir']}: {info['n_images']:,} images, "
          f"{info['n_written']:,} written, {info['n_existing']:,} already there, "
          f"{skipped:,} skipped" + (f" ({detail})" if skipped else ""))
    return 0
