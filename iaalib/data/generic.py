"""Aesthetic-only datasets (one id and one mean score per image) as manifests for the engine.

Kao et al. (Sec. III-E, IV-A, IV-G, Table V) fine-tune an AVA-trained network on **Photo.net**:
17,232 images rated 1–7, high quality if the average score is above 5.0 (+δ), 3,000 random test
images. Datasets like Photo.net or AADB (scores 0–1) come as a table of image ids and mean scores,
without votes and without semantic tags. :func:`read_id_score_csv` turns such a CSV into a manifest
with the columns of DEVELOPING.md (``image_id, vote_1..vote_10, n_votes, mean, sd, label, tag1,
tag2, challenge_id``), so :func:`iaalib.data.manifests.read_manifest`, ``AvaImageDataset`` and the
training engine take it unchanged; it has no ``tag_<id>`` columns, so Kao's networks train on it as
the single-task STCNN (M = 0, λ = 0). :func:`random_split` draws the test set like Kao et al.

**Choice:** the score is mapped to AVA's 1–10 scale piecewise linearly with three anchors: the low
end of ``score_range`` → 1, ``threshold`` → 5, the high end → 10. So ``label`` (1 if mean > 5, as in
every manifest) is exactly "score > threshold", and rankings are kept. The vote columns hold
``PSEUDO_VOTES`` pseudo-votes split between the two bins next to the mapped mean (a point mass
spread linearly over its neighbours), the distribution with that mean and the least spread: a
NaN-free placeholder, not a rating distribution. ``mean`` is recomputed from the pseudo-votes
(quantised to 1/``PSEUDO_VOTES`` score points, always on the same side of 5 as the score), and
``sd`` is that of the placeholder — SD metrics mean nothing on such data. The original id and score
stay in the extra columns ``source_id`` and ``score``; ``image_path`` is ``image_pattern`` filled in.

Image ids: integer ids are kept; other ids (e.g. AADB's file names) get a stable integer, the first
12 hex digits (48 bits) of the sha256 of the id. The engine reads ``<image_dir>/<image_id>.jpg``;
:func:`link_images` makes such a folder of symbolic links from the ``image_path`` column.

No torch here.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import sha256_file
from ..errors import DataFormatError, IaaError
from .ava import VOTE_COLUMNS
from .manifests import MANIFEST_COLUMNS, THRESHOLD, Split

logger = logging.getLogger(__name__)

#: Pseudo-votes per image in the placeholder distribution (module docstring).
PSEUDO_VOTES = 1000
#: Photo.net as Kao et al. use it (Sec. IV-A): scores 1–7, threshold 5.0, 3,000 test images.
PHOTONET = {"score_range": (1.0, 7.0), "threshold": 5.0, "test_size": 3000}
_AVA_RANGE = (1.0, 10.0)
_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


def to_ava_scale(score, score_range: tuple[float, float], threshold: float) -> np.ndarray:
    """Piecewise-linear map of ``score`` to 1–10: low end → 1, ``threshold`` → 5, high end → 10."""
    lo, hi = (float(v) for v in score_range)
    s = np.asarray(score, dtype=np.float64)
    below = 1.0 + (THRESHOLD - 1.0) * (s - lo) / (threshold - lo)
    above = THRESHOLD + (_AVA_RANGE[1] - THRESHOLD) * (s - threshold) / (hi - threshold)
    return np.where(s > threshold, above, below)


def from_ava_scale(mean, score_range: tuple[float, float], threshold: float) -> np.ndarray:
    """The inverse of :func:`to_ava_scale` (1–10 → ``score_range``, 5 → ``threshold``)."""
    lo, hi = (float(v) for v in score_range)
    m = np.asarray(mean, dtype=np.float64)
    below = lo + (threshold - lo) * (m - 1.0) / (THRESHOLD - 1.0)
    above = threshold + (hi - threshold) * (m - THRESHOLD) / (_AVA_RANGE[1] - THRESHOLD)
    return np.where(m > THRESHOLD, above, below)


def pseudo_votes(mean: np.ndarray, n_votes: int = PSEUDO_VOTES,
                 high: np.ndarray | None = None) -> np.ndarray:
    """[N, 10] integer votes on the two bins around each ``mean`` (in 1–10), ``n_votes`` each.

    ``high`` (bool [N]) forces the votes' mean strictly above 5 where True and to at most 5
    elsewhere, so quantisation never flips a label.
    """
    m = np.clip(np.asarray(mean, dtype=np.float64), 1.0, 10.0)
    lower = np.minimum(np.floor(m), 9.0).astype(np.int64)          # bin of the lower neighbour
    k = np.rint((m - lower) * n_votes).astype(np.int64)            # votes on lower + 1
    if high is not None:
        high = np.asarray(high, dtype=bool)
        at_five = lower == 5
        k = np.where(high & at_five, np.maximum(k, 1), k)          # just above 5: at least 1 vote up
    votes = np.zeros((len(m), 10), dtype=np.int64)
    rows = np.arange(len(m))
    votes[rows, lower - 1] = n_votes - k
    votes[rows, lower] += k
    return votes


def image_id_for(source_id: str) -> int:
    """The manifest ``image_id`` of a dataset id: the integer itself, or 48 bits of its sha256."""
    if _INTEGER.match(source_id):
        return int(source_id)
    return int(hashlib.sha256(source_id.encode("utf-8")).hexdigest()[:12], 16)


def read_id_score_csv(path: str | os.PathLike, *, id_column: str, score_column: str,
                      score_range: tuple[float, float], threshold: float, delta: float = 0.0,
                      image_pattern: str = "{id}", on_bad: str = "raise") -> pd.DataFrame:
    """A CSV of (image id, mean score) → a manifest DataFrame (module docstring).

    Args:
        path: the CSV (header in the first line; other columns are ignored).
        id_column, score_column: column names, e.g. ``"dis_img_path"``, ``"score"`` for AADB.
        score_range: the rating scale ``(low, high)``, e.g. ``(1, 7)`` for Photo.net.
        threshold: high quality if score > threshold + δ (Photo.net: 5.0, Kao Sec. IV-A).
        delta: Kao's margin; rows with threshold − δ ≤ score ≤ threshold + δ are dropped (δ = 0
            keeps all). Use it for a training set only; test sets use δ = 0.
        image_pattern: the image file relative to an image root, ``{id}`` standing for the id,
            e.g. ``"{id}.jpg"`` (→ column ``image_path``).
        on_bad: ``"raise"`` a :class:`DataFormatError` naming file and line for an empty id, an
            id repeated with a different score, a missing / non-numeric / out-of-range score;
            ``"drop"`` skips such rows instead, counted in ``df.attrs["n_dropped"]`` and logged.
            A row repeating an earlier one (same id, same score; AADB's file has 127) is counted
            once, with a logged count (``df.attrs["n_repeated"]``).

    ``df.attrs``: ``path, n_lines, n_dropped, dropped [(line, reason)], n_repeated,
    n_delta_dropped, score_range, threshold, delta``.
    """
    path = Path(path)
    lo, hi = (float(v) for v in score_range)
    if not lo < float(threshold) < hi:
        raise ValueError(f"threshold {threshold} must lie inside score_range ({lo}, {hi})")
    if delta < 0:
        raise ValueError(f"delta must be >= 0, got {delta}")
    if on_bad not in ("raise", "drop"):
        raise ValueError(f"on_bad must be 'raise' or 'drop', not {on_bad!r}")
    if "{id}" not in image_pattern:
        raise ValueError(f"image_pattern {image_pattern!r} has no '{{id}}' placeholder")
    if not path.is_file():
        raise IaaError(f"{path}: score file not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError as e:
        raise DataFormatError(path, None, "empty file: no header") from e
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        m = re.search(r"line (\d+)", str(e))
        raise DataFormatError(path, int(m.group(1)) if m else None, f"not a CSV file: {e}") from e
    for col in (id_column, score_column):
        if col not in raw.columns:
            raise DataFormatError(path, 1, f"no column {col!r} (columns: {', '.join(raw.columns)})")

    ids = raw[id_column].str.strip()
    score = pd.to_numeric(raw[score_column].str.strip(), errors="coerce").to_numpy(np.float64)
    lines = np.arange(len(raw)) + 2                      # line 1 is the header
    blank = (raw.apply(lambda c: c.str.strip()) == "").all(axis=1).to_numpy()
    problems: list[tuple[np.ndarray, str]] = [
        (~blank & (ids == "").to_numpy(), "empty image id"),
        (~blank & ~np.isfinite(score), f"{score_column} is not a number"),
        (~blank & np.isfinite(score) & ((score < lo) | (score > hi)),
         f"{score_column} outside the score range [{lo:g}, {hi:g}]"),
    ]
    bad = np.zeros(len(raw), dtype=bool)
    dropped: list[tuple[int, str]] = []
    for mask, reason in problems:
        new = mask & ~bad
        dropped += [(int(line), reason) for line in lines[new]]
        bad |= new
    valid = ~bad & ~blank
    first_score = pd.Series(score[valid], index=ids[valid]).groupby(level=0).first()
    dup = valid & ids.where(valid).duplicated().to_numpy()
    same = dup & (score == first_score.reindex(ids).to_numpy())
    conflict = dup & ~same
    dropped += [(int(line), f"image id {ids.iloc[i]!r} repeated with another score")
                for i, line in zip(np.flatnonzero(conflict), lines[conflict])]
    bad |= conflict
    if same.any():
        logger.warning("%s: %d repeated rows (same id and score) counted once (first: line %d)",
                       path, int(same.sum()), int(lines[same][0]))
    dropped.sort()
    if dropped and on_bad == "raise":
        line, reason = dropped[0]
        raise DataFormatError(path, line, reason + (f" ({len(dropped)} bad rows in all; "
                                                    "on_bad='drop' skips them)" if len(dropped) > 1 else ""))
    if dropped:
        logger.warning("%s: dropped %d bad rows (first: line %d, %s)", path, len(dropped), *dropped[0])
    keep = ~bad & ~blank & ~same
    ids, score = ids[keep].reset_index(drop=True), score[keep]

    image_ids = np.array([image_id_for(i) for i in ids], dtype=np.int64)
    clash = pd.Series(image_ids).duplicated(keep=False).to_numpy()
    if clash.any():
        a, b = ids[clash].iloc[:2]
        raise DataFormatError(path, None, f"ids {a!r} and {b!r} map to the same image_id "
                              f"{image_ids[clash][0]}; rename one of them")
    high = score > threshold
    votes = pseudo_votes(to_ava_scale(score, (lo, hi), threshold), high=high)
    n_votes = votes.sum(axis=1)
    bins = np.arange(1, 11, dtype=np.float64)
    mean = votes @ bins / n_votes
    sd = np.sqrt(np.clip(votes @ bins**2 / n_votes - mean**2, 0.0, None))
    df = pd.DataFrame({"image_id": image_ids, **{c: votes[:, j] for j, c in enumerate(VOTE_COLUMNS)},
                       "n_votes": n_votes, "mean": mean, "sd": sd,
                       "label": (mean > THRESHOLD).astype(np.int64),
                       "tag1": 0, "tag2": 0, "challenge_id": 0,
                       "source_id": ids.to_numpy(), "score": score,
                       "image_path": [image_pattern.format(id=i) for i in ids]})
    assert (df["label"].to_numpy() == high).all()  # pseudo_votes keeps every label
    keep_delta = np.ones(len(df), dtype=bool) if delta == 0 else \
        (score > threshold + delta) | (score < threshold - delta)
    df = df[keep_delta].reset_index(drop=True)
    df.attrs.update(path=os.fspath(path), n_lines=int(len(raw)) + 1, n_dropped=len(dropped),
                    dropped=dropped, n_repeated=int(same.sum()), n_delta_dropped=int((~keep_delta).sum()),
                    score_range=[lo, hi], threshold=float(threshold), delta=float(delta))
    return df[[*MANIFEST_COLUMNS, "source_id", "score", "image_path"]]


def random_split(manifest: pd.DataFrame, *, test_size: int, seed: int = 0,
                 delta: float = 0.0) -> Split:
    """Kao et al.'s Photo.net protocol (Sec. IV-A): ``test_size`` random test images
    (``numpy.random.default_rng(seed)``), the rest for training; training rows with a score within
    ``delta`` of the threshold are dropped (the test set keeps δ = 0).

    ``manifest`` comes from :func:`read_id_score_csv` with ``delta=0``. The summary has the keys
    of the other protocols that apply (``protocol: "generic"``).
    """
    n = len(manifest)
    if not 0 < test_size < n:
        raise ValueError(f"random split: test_size={test_size} must be between 1 and {n - 1} "
                         f"({n} images)")
    attrs = dict(manifest.attrs)
    perm = np.random.default_rng(seed).permutation(n)
    test = manifest.iloc[np.sort(perm[:test_size])].reset_index(drop=True)
    train = manifest.iloc[np.sort(perm[test_size:])].reset_index(drop=True)
    n_before = len(train)
    if delta > 0:
        thr = attrs.get("threshold")
        if thr is None:
            raise ValueError("delta > 0 needs the threshold: pass a frame from read_id_score_csv")
        score = train["score"].to_numpy(np.float64)
        train = train[(score > thr + delta) | (score < thr - delta)].reset_index(drop=True)
    summary = {
        "protocol": "generic", "n_rows": int(n), "n_images": int(n), "n_train": int(len(train)),
        "n_test": int(len(test)), "n_val": 0, "tag_counts": {}, "kept_tags": [],
        "kept_tag_names": [], "delta": float(delta), "seed": int(seed), "test_size": int(test_size),
        "n_train_before_delta": int(n_before), "n_high_train": int(train["label"].sum()),
        "n_low_train": int(len(train) - train["label"].sum()),
        "n_high_test": int(test["label"].sum()), "min_tag_count": None,
        "n_dropped_no_kept_tag": 0, "label_file": attrs.get("path"), "label_sha256": None,
        "label_n_dropped": int(attrs.get("n_dropped", 0)),
        "score_range": attrs.get("score_range"), "threshold": attrs.get("threshold"),
    }
    if attrs.get("path") and os.path.isfile(attrs["path"]):
        summary["label_sha256"] = sha256_file(attrs["path"])
    return Split(train, test, None, summary)


def link_images(manifest: pd.DataFrame, image_root: str | os.PathLike, out_dir: str | os.PathLike,
                *, ext: str = ".jpg") -> dict[str, int]:
    """Make ``out_dir/<image_id><ext>`` symbolic links to ``image_root/<image_path>`` (the layout
    the engine reads). Missing images are counted (and skipped by the loader later), existing
    links are replaced. Returns ``{"linked", "missing"}``."""
    root, out = Path(image_root).resolve(), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    linked = missing = 0
    for image_id, rel in zip(manifest["image_id"], manifest["image_path"]):
        src = root / str(rel)
        if not src.is_file():
            missing += 1
            continue
        dst = out / f"{int(image_id)}{ext}"
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(src, tmp)
        os.replace(tmp, dst)
        linked += 1
    if missing:
        logger.warning("%d of %d images listed in the manifest are missing under %s", missing,
                       len(manifest), root)
    return {"linked": linked, "missing": missing}
