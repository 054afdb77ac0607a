"""The two papers' AVA protocols: Kao et al.'s tag-filtered random split and the standard split.

* :func:`kao_protocol` — Kao, He & Huang, Sec. IV-A: keep tags with more than 3000 images, keep
  images with at least one kept tag (29 tags, 185,751 images on the full AVA.txt), 20,000 random test
  images, training labels high if mean > 5+δ, low if mean < 5−δ, the rest dropped; δ=0 on the test set.
* :func:`standard_protocol` — the SAF paper's AVA setup: the official ``generic_test.jpgl`` test list
  (or any id list), the rest for training, 10-bin distributions as targets.

Both return a :class:`Split` of manifest DataFrames (columns in ``MANIFEST_COLUMNS`` plus, for kao, one
0/1 ``tag_<id>`` column per kept tag) and a ``summary`` dict. No torch here.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .ava import VOTE_COLUMNS
from .manifests import MANIFEST_COLUMNS, THRESHOLD, Split, tag_column

logger = logging.getLogger(__name__)

_LABEL_COLUMNS = ["image_id", *VOTE_COLUMNS, "tag1", "tag2", "challenge_id", "n_votes", "mean", "sd"]
def tag_image_counts(labels: pd.DataFrame) -> dict[int, int]:
    """Images per tag id > 0, counting a tag in either slot once per image (Kao et al. Fig. 4)."""
    t1, t2 = labels["tag1"].to_numpy(), labels["tag2"].to_numpy()
    tags = np.concatenate([t1, t2[t2 != t1]])
    ids, counts = np.unique(tags[tags > 0], return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts)}


def binary_label(mean: np.ndarray | pd.Series) -> np.ndarray:
    """Aesthetic class at δ=0: 1 (high) if mean > 5 else 0 (Kao et al. Sec. IV-A)."""
    return (np.asarray(mean) > THRESHOLD).astype(np.int64)


def delta_keep(mean: np.ndarray | pd.Series, delta: float) -> np.ndarray:
    """Training rows kept at margin δ: mean > 5+δ or mean < 5−δ (Kao et al. Sec. IV-A).

    At δ=0 every row is kept (the paper's 165,751 training images at δ=0 are the whole training
    split), so a mean of exactly 5 stays in, labelled low by :func:`binary_label`.
    """
    mean = np.asarray(mean)
    if delta < 0:
        raise ValueError(f"delta must be >= 0, got {delta}")
    if delta == 0:
        return np.ones(len(mean), dtype=bool)
    return (mean > THRESHOLD + delta) | (mean < THRESHOLD - delta)


def kao_protocol(labels: pd.DataFrame, *, min_tag_count: int = 3000, test_size: int = 20000,
                 delta: float = 0.0, seed: int = 0, val_size: int = 0,
                 tag_names: dict[int, str] | None = None) -> Split:
    """Kao, He & Huang, Sec. IV-A, on the output of :func:`~iaalib.data.ava.read_ava_txt`.

    1. count images per tag (either slot); keep tags with **more than** ``min_tag_count`` images;
    2. keep images with at least one kept tag; add one 0/1 ``tag_<id>`` column per kept tag;
    3. draw ``test_size`` test images uniformly at random (``numpy.random.default_rng(seed)``);
    4. training rows: keep those with mean > 5+δ or < 5−δ (all of them at δ=0); the test set uses δ=0.

    ``label`` is 1 if mean > 5 else 0 in every split. ``tag_names`` (from ``read_tags``) fills
    ``summary["kept_tag_names"]``.

    **Choice:** ``val_size`` images (default 0; the paper has no validation set) are held out of the
    training images after the test draw, from the same permutation, so adding a validation set never
    changes the test set; like the test set they use δ=0.
    """
    _check_labels(labels)
    tag_counts = tag_image_counts(labels)
    kept = sorted(t for t, c in tag_counts.items() if c > min_tag_count)
    t1, t2 = labels["tag1"].to_numpy(), labels["tag2"].to_numpy()
    has_kept = np.isin(t1, kept) | np.isin(t2, kept)
    images = _manifest_frame(labels[has_kept])
    for t in kept:
        images[tag_column(t)] = ((images["tag1"] == t) | (images["tag2"] == t)).astype(np.int8)

    n = len(images)
    if not 0 < test_size < n or val_size < 0 or test_size + val_size >= n:
        raise ValueError(f"kao protocol: test_size={test_size} and val_size={val_size} leave no "
                         f"training images out of {n} images with a kept tag "
                         f"(min_tag_count={min_tag_count})")
    perm = np.random.default_rng(seed).permutation(n)
    test_idx = np.sort(perm[:test_size])
    val_idx = np.sort(perm[test_size:test_size + val_size])
    train_idx = np.sort(perm[test_size + val_size:])

    train, test = images.iloc[train_idx], images.iloc[test_idx]
    val = images.iloc[val_idx] if val_size > 0 else None
    train_kept = train[delta_keep(train["mean"], delta)]

    names = None
    if tag_names is not None:
        unknown = sorted(set(tag_counts) - set(tag_names))
        if unknown:
            logger.warning("tag ids %s occur in the labels but not in tags.txt", unknown)
        names = [tag_names.get(t) for t in kept]
    summary = _summary(labels, "kao", train_kept, test, val, delta=delta, seed=seed,
                       n_train_before_delta=len(train), tag_counts=tag_counts)
    summary.update(n_images=int(n), kept_tags=kept, kept_tag_names=names,
                   min_tag_count=int(min_tag_count), test_size=int(test_size),
                   n_dropped_no_kept_tag=int(len(labels) - n))
    return Split(_reset(train_kept), _reset(test), _reset(val), summary)


def standard_protocol(labels: pd.DataFrame, *, test_ids, delta: float = 0.0, seed: int = 0,
                      val_size: int = 0) -> Split:
    """The standard AVA split used by the SAF paper: test = ``test_ids`` (the official
    ``generic_test.jpgl``), train = every other image; targets are the 10-bin vote distributions.

    Listed ids absent from the labels are counted (``summary["n_test_missing"]``; of the official list's
    20,000 ids only 19,930 images are downloadable). ``delta`` (default 0: keep all) drops training
    rows as in :func:`kao_protocol`. **Choice:** ``val_size`` images (default 0; not in the paper) are
    held out of the training images at random with ``seed``.
    """
    _check_labels(labels)
    test_ids = np.unique(np.asarray(test_ids, dtype=np.int64))
    images = _manifest_frame(labels)
    in_test = np.isin(images["image_id"].to_numpy(), test_ids)
    test, pool = images[in_test], images[~in_test]

    if val_size < 0 or val_size >= len(pool):
        raise ValueError(f"standard protocol: val_size={val_size} leaves no training images "
                         f"out of {len(pool)}")
    perm = np.random.default_rng(seed).permutation(len(pool))
    val = pool.iloc[np.sort(perm[:val_size])] if val_size > 0 else None
    train = pool.iloc[np.sort(perm[val_size:])]
    train_kept = train[delta_keep(train["mean"], delta)]

    summary = _summary(labels, "standard", train_kept, test, val, delta=delta, seed=seed,
                       n_train_before_delta=len(train), tag_counts=tag_image_counts(labels))
    summary.update(n_images=int(len(images)), kept_tags=[], kept_tag_names=[], min_tag_count=None,
                   test_size=None, n_dropped_no_kept_tag=0, n_test_list=int(len(test_ids)),
                   n_test_missing=int(len(test_ids) - len(test)))
    return Split(_reset(train_kept), _reset(test), _reset(val), summary)


def _check_labels(labels: pd.DataFrame) -> None:
    missing = [c for c in _LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise ValueError(f"labels lack columns {missing}; pass the output of read_ava_txt")


def _manifest_frame(labels: pd.DataFrame) -> pd.DataFrame:
    out = labels[_LABEL_COLUMNS].copy()
    out["label"] = binary_label(out["mean"])
    return out[MANIFEST_COLUMNS]


def _reset(df: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if df is None else df.reset_index(drop=True)


def _summary(labels, protocol, train, test, val, *, delta, seed, n_train_before_delta, tag_counts):
    high = int(train["label"].sum())
    return {
        "protocol": protocol,
        "n_rows": int(len(labels)),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "n_val": int(len(val)) if val is not None else 0,
        # JSON object keys are strings; keep them strings in memory too so file and dict agree.
        "tag_counts": {str(t): c for t, c in sorted(tag_counts.items())},
        "delta": float(delta),
        "seed": int(seed),
        "n_train_before_delta": int(n_train_before_delta),
        "n_high_train": high,
        "n_low_train": int(len(train) - high),
        "n_high_test": int(test["label"].sum()),
        "label_file": labels.attrs.get("path"),
        "label_sha256": labels.attrs.get("sha256"),
        "label_n_dropped": labels.attrs.get("n_dropped", 0),
    }


def format_summary(summary: dict, recipe: dict | None = None) -> str:
    """The protocol's figures as a few lines of text (the CLI and the filtering notebook print it);
    with a recipe, also the counts it expects on the full AVA.txt (for kao: the paper's)."""
    s = summary
    lines = [f"{s['protocol']} protocol on {s.get('label_file')} "
             f"(sha256 {str(s.get('label_sha256'))[:12]}…): {s['n_rows']:,} images"]
    if s["protocol"] == "kao":
        lines += [f"  tags kept: {len(s['kept_tags'])} of {len(s['tag_counts'])} "
                  f"(more than {s['min_tag_count']:,} images each)",
                  f"  images with at least one kept tag: {s['n_images']:,}"]
    else:
        lines += [f"  test list: {s['n_test_list']:,} ids, {s['n_test_missing']:,} not in the labels"]
    lines += [f"  test: {s['n_test']:,}   validation: {s['n_val']:,}",
              f"  train: {s['n_train_before_delta']:,} before delta, {s['n_train']:,} at "
              f"delta={s['delta']:g} (high {s['n_high_train']:,} / low {s['n_low_train']:,})"]
    if recipe is not None:
        known = {**(recipe.get("expected") or {}), **(recipe.get("reported") or {})}
        known = ", ".join(f"{k} {v:,}" for k, v in known.items() if v is not None)
        lines.append(f"  recipe {recipe.get('name')} on the full AVA.txt: {known}")
    return "\n".join(lines)


