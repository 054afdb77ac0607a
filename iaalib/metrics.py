"""Evaluation metrics of both papers: numpy arrays in, floats (or float arrays) out; no torch.

* Score distributions over bins 1..10: :func:`mean_score` (Σ i·p_i), :func:`score_sd`, :func:`emd`.
* Correlations: :func:`srcc` (Spearman), :func:`plcc` (Pearson on the raw predictions — no
  logistic/nonlinear fitting before it, as in NIMA and SAF).
* Classification: :func:`binary_accuracy` (high = mean score > 5), :func:`accuracy`,
  :func:`per_tag_accuracy` (Kao Fig. 5/6), :func:`semantic_average_precision` (Kao Sec. IV-F).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score


def _dist(dist, name: str = "dist", atol: float = 1e-3) -> np.ndarray:
    d = np.asarray(dist, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    if d.ndim != 2:
        raise ValueError(f"{name} must be [N, bins], got shape {d.shape}")
    if not np.all(np.isfinite(d)) or np.any(d < -atol):
        raise ValueError(f"{name} has negative or non-finite entries")
    bad = np.flatnonzero(np.abs(d.sum(axis=1) - 1.0) > atol)
    if bad.size:
        raise ValueError(f"{name} row {bad[0]} sums to {d[bad[0]].sum():.6g}, not 1 "
                         f"({bad.size} such rows); pass probabilities, not vote counts or logits")
    return d


def mean_score(dist) -> np.ndarray:
    """Σ_i i·p_i for bins i = 1..N, per row of ``dist`` ([N, bins] or [bins])."""
    d = _dist(dist)
    return d @ np.arange(1, d.shape[1] + 1, dtype=np.float64)


def score_sd(dist) -> np.ndarray:
    """sqrt(Σ_i (i − mean)² p_i), per row."""
    d = _dist(dist)
    i = np.arange(1, d.shape[1] + 1, dtype=np.float64)
    mu = d @ i
    return np.sqrt(np.clip(d @ i**2 - mu**2, 0.0, None))


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"length mismatch: {x.size} predictions vs {y.size} targets")
    if x.size < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("need at least 2 finite values on each side")
    return x, y


def srcc(pred, target) -> float:
    """Spearman rank-order correlation (``scipy.stats.spearmanr``)."""
    x, y = _pair(pred, target)
    return float(stats.spearmanr(x, y).statistic)


def plcc(pred, target) -> float:
    """Pearson linear correlation (``scipy.stats.pearsonr``) without logistic correction."""
    x, y = _pair(pred, target)
    return float(stats.pearsonr(x, y).statistic)


def binary_accuracy(pred_mean, true_mean, threshold: float = 5.0) -> float:
    """Fraction of images on the same side of ``threshold``: high quality = mean score > 5."""
    x, y = _pair(pred_mean, true_mean)
    return float(np.mean((x > threshold) == (y > threshold)))


def accuracy(pred_label, true_label) -> float:
    """Fraction of equal labels."""
    p, t = np.asarray(pred_label).ravel(), np.asarray(true_label).ravel()
    if p.shape != t.shape or p.size == 0:
        raise ValueError(f"need equal, non-empty label arrays ({p.size} vs {t.size})")
    return float(np.mean(p == t))


def emd(p_pred, p_true, r: float = 2, reduction: str = "mean"):
    """EMD on CDFs per sample, ((1/N) Σ_k |CDF_pred(k) − CDF_true(k)|^r)^(1/r), then the mean
    (``reduction="none"`` returns the per-sample array)."""
    a, b = _dist(p_pred, "p_pred"), _dist(p_true, "p_true")
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    per_sample = np.mean(np.abs(np.cumsum(a, 1) - np.cumsum(b, 1)) ** r, axis=1) ** (1.0 / r)
    if reduction == "none":
        return per_sample
    if reduction == "mean":
        return float(per_sample.mean())
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def per_tag_accuracy(pred_label, true_label, tags, tag_names: Sequence[str] | None = None
                     ) -> dict[str, float]:
    """Aesthetic accuracy restricted to the images carrying each tag (Kao Fig. 5).

    ``tags``: [N, M] 0/1 matrix. Returns ``{name: accuracy}`` in column order (names default to
    "0".."M-1"); a tag with no image gets NaN (explicitly undefined, not 0).
    """
    p, t = np.asarray(pred_label).ravel(), np.asarray(true_label).ravel()
    z = np.asarray(tags)
    if z.ndim != 2 or z.shape[0] != p.size or p.shape != t.shape:
        raise ValueError(f"need pred/true [N] and tags [N, M]; got {p.shape}, {t.shape}, {z.shape}")
    names = [str(i) for i in range(z.shape[1])] if tag_names is None else list(tag_names)
    if len(names) != z.shape[1]:
        raise ValueError(f"{len(names)} tag names for {z.shape[1]} tag columns")
    correct = p == t
    out = {}
    for m, name in enumerate(names):
        has = z[:, m] > 0
        out[name] = float(correct[has].mean()) if has.any() else float("nan")
    return out


def semantic_average_precision(tag_scores, tags, per_tag: bool = False):
    """Mean over tags of sklearn's ``average_precision_score`` (Kao Sec. IV-F's semantic AP).

    ``tag_scores``: [N, M] scores (probabilities or logits); ``tags``: [N, M] 0/1. Tags without
    a positive image are skipped (AP undefined). ``per_tag=True`` returns ``(mean, {m: AP})``.
    """
    s, z = np.asarray(tag_scores, dtype=np.float64), np.asarray(tags)
    if s.shape != z.shape or s.ndim != 2:
        raise ValueError(f"tag_scores {s.shape} and tags {z.shape} must be equal [N, M]")
    keep = np.flatnonzero((z > 0).any(axis=0))
    if not keep.size:
        raise ValueError("no tag has a positive image: average precision is undefined")
    # one call over the tag columns (sklearn's per-column AP, validated once: 10x faster)
    per_column = np.atleast_1d(average_precision_score(z[:, keep] > 0, s[:, keep], average=None))
    aps = {int(m): float(ap) for m, ap in zip(keep, per_column)}
    mean = float(np.mean(list(aps.values())))
    return (mean, aps) if per_tag else mean
