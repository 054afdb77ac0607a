"""Plots the notebooks share, one plain function per figure, each returning a matplotlib ``Figure``.

The figures are made with :class:`matplotlib.figure.Figure` directly (not through ``pyplot``), so a
notebook shows each exactly once (as the cell's value or through ``display``/myst-nb ``glue``) and
no figure stays open in ``pyplot``'s registry. Run ``%matplotlib inline`` once in a notebook so
IPython renders ``Figure`` objects as PNG.

Model-dependent plots take plain arrays (numpy, or anything ``numpy.asarray`` accepts, such as a CPU
tensor), so this module never imports torch.

=====================================  ==========================================================
function                               paper figure
=====================================  ==========================================================
:func:`tag_histogram`                  Kao et al., Fig. 4 (images per semantic tag)
:func:`per_tag_accuracy`               Kao et al., Fig. 5 (accuracy on each semantic tag)
:func:`filter_grid`                    Kao et al., Fig. 7 (first-layer filters)
:func:`image_grid`                     Kao et al., Fig. 8 (example images)
:func:`correlation_heatmap`            Kao et al., Fig. 9 (task correlation from Ω)
:func:`score_distribution`             SAF, Fig. 8 (an image's vote distribution)
:func:`tsne_scatter`                   SAF, t-SNE of distributions
:func:`gradcam_overlay`                SAF, Grad-CAM
:func:`score_histogram`,               AVA label statistics (both papers' dataset sections)
:func:`votes_per_image`,
:func:`sd_vs_mean`
:func:`distribution_figure`            SAF, predicted vs ground-truth score distributions
:func:`bottleneck_figure`              SAF, comparative study of the bottleneck dimension P
:func:`per_distortion_figure`          SAF, Table 5 per TID2013 distortion type
:func:`learning_curves`                every chapter: a run's test metric per epoch, per seed
:func:`forest_plot`                    the summary: every claim's difference and 95% interval
:func:`equation_code`                  every chapter: each equation next to the code implementing it
:func:`paper_vs_ours`                  every table: the paper's number next to ours
=====================================  ==========================================================
"""
from __future__ import annotations

import inspect
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from PIL import Image
from scipy.ndimage import zoom
from sklearn.manifold import TSNE

#: Colours used consistently across the book.
KEPT_COLOUR = "#1f77b4"
DROPPED_COLOUR = "#c7c7c7"
THRESHOLD_COLOUR = "#d62728"


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _as_series_dict(values: Any, default_name: str) -> dict[str, np.ndarray]:
    """One array or a mapping name -> array, as a dict of 1-D float arrays."""
    if isinstance(values, Mapping):
        items = values.items()
    else:
        items = [(default_name, values)]
    out = {}
    for name, v in items:
        a = np.asarray(v, dtype=float).ravel()
        out[str(name)] = a[np.isfinite(a)]
    return out


# ----------------------------------------------------------------------------- label statistics
def tag_histogram(tag_counts: Mapping[Any, int] | pd.Series, *, threshold: float | None = None,
                  kept: Sequence[Any] | None = None, title: str | None = None,
                  log: bool = False) -> Figure:
    """Images per semantic tag, largest first (Kao et al., Fig. 4).

    ``tag_counts`` maps a tag label (name or id) to its image count. Tags in ``kept`` are drawn in
    colour, the others in grey; ``threshold`` draws Kao's rule (keep tags with *more* than this many
    images) as a horizontal line. With ``kept=None`` every bar is coloured.
    """
    counts = pd.Series(tag_counts, dtype="int64").sort_values(ascending=False, kind="stable")
    if counts.empty:
        raise ValueError("tag_histogram: no tags to plot")
    kept_set = set(counts.index) if kept is None else set(kept)
    colours = [KEPT_COLOUR if t in kept_set else DROPPED_COLOUR for t in counts.index]
    fig = _figure(max(6.0, 0.22 * len(counts) + 1.5), 4.0)
    ax = fig.add_subplot()
    x = np.arange(len(counts))
    ax.bar(x, counts.to_numpy(), color=colours, width=0.8)
    ax.set_xticks(x, [str(t) for t in counts.index], rotation=90, fontsize=7)
    ax.set_xlim(-0.7, len(counts) - 0.3)
    ax.set_ylabel("images")
    if log:
        ax.set_yscale("log")
    if threshold is not None:
        ax.axhline(threshold, color=THRESHOLD_COLOUR, lw=1, ls="--",
                   label=f"threshold: more than {threshold:,.0f} images")
        ax.legend(loc="upper right", fontsize=8)
    n_kept = sum(t in kept_set for t in counts.index)
    ax.set_title(title or f"Images per semantic tag ({n_kept} of {len(counts)} tags kept)")
    return fig


def score_histogram(means: Any, *, bins: int = 40, threshold: float = 5.0,
                    delta: float | None = None, title: str | None = None) -> Figure:
    """Histogram of mean scores; one array, or a mapping name -> array drawn as overlaid densities.

    Draws the binary boundary ``threshold`` (5 in both papers) and, when ``delta`` is given, Kao's
    margins ``threshold ± delta`` (training images between them are discarded).
    """
    series = _as_series_dict(means, "mean score")
    overlay = len(series) > 1
    edges = np.linspace(1.0, 10.0, bins + 1)
    fig = _figure(6.5, 3.6)
    ax = fig.add_subplot()
    for name, a in series.items():
        ax.hist(a, bins=edges, density=overlay, alpha=0.55 if overlay else 0.9,
                label=f"{name} (n={a.size:,})")
    ax.axvline(threshold, color=THRESHOLD_COLOUR, lw=1)
    if delta:
        for x in (threshold - delta, threshold + delta):
            ax.axvline(x, color=THRESHOLD_COLOUR, lw=1, ls="--")
    ax.set_xlabel("mean score")
    ax.set_ylabel("density" if overlay else "images")
    ax.set_xlim(1, 10)
    ax.legend(fontsize=8)
    ax.set_title(title or "Mean score")
    return fig


def votes_per_image(n_votes: Any, *, bins: int = 40, title: str | None = None) -> Figure:
    """Histogram of the number of votes per image (AVA: 78–549, mean ≈ 210); array or mapping."""
    series = _as_series_dict(n_votes, "votes")
    overlay = len(series) > 1
    lo = min(a.min() for a in series.values() if a.size)
    hi = max(a.max() for a in series.values() if a.size)
    edges = np.linspace(lo, hi + 1, bins + 1)
    fig = _figure(6.5, 3.2)
    ax = fig.add_subplot()
    for name, a in series.items():
        ax.hist(a, bins=edges, density=overlay, alpha=0.55 if overlay else 0.9,
                label=f"{name}: mean {a.mean():.1f}, range {a.min():.0f}–{a.max():.0f}")
    ax.set_xlabel("votes per image")
    ax.set_ylabel("density" if overlay else "images")
    ax.legend(fontsize=8)
    ax.set_title(title or "Votes per image")
    return fig


def sd_vs_mean(mean: Any, sd: Any, *, gridsize: int = 45, title: str | None = None) -> Figure:
    """Score standard deviation against mean score, as a hexbin density (log colour scale)."""
    mean = np.asarray(mean, dtype=float).ravel()
    sd = np.asarray(sd, dtype=float).ravel()
    if mean.shape != sd.shape:
        raise ValueError(f"sd_vs_mean: mean has {mean.size} values, sd has {sd.size}")
    fig = _figure(5.5, 4.2)
    ax = fig.add_subplot()
    hb = ax.hexbin(mean, sd, gridsize=gridsize, bins="log", mincnt=1, cmap="viridis")
    fig.colorbar(hb, ax=ax, label="images")
    ax.set_xlabel("mean score")
    ax.set_ylabel("score SD")
    ax.set_title(title or f"SD vs mean ({mean.size:,} images)")
    return fig


def score_distribution(votes_or_dist: Any, *, title: str | None = None) -> Figure:
    """One image's score distribution over 1..10 (SAF, Fig. 8): vote counts or probabilities.

    Vote counts are shown on the left axis and the normalised probabilities on the right; the mean
    score Σ i·p_i is marked.
    """
    v = np.asarray(votes_or_dist, dtype=float).ravel()
    if v.size != 10 or (v < 0).any() or v.sum() <= 0:
        raise ValueError("score_distribution: need 10 non-negative values with a positive sum")
    p = v / v.sum()
    scores = np.arange(1, 11)
    mean = float((scores * p).sum())
    fig = _figure(4.8, 3.2)
    ax = fig.add_subplot()
    ax.bar(scores, v, color=KEPT_COLOUR)
    ax.axvline(mean, color=THRESHOLD_COLOUR, lw=1.2, label=f"mean {mean:.2f}")
    ax.set_xticks(scores)
    ax.set_xlabel("score")
    ax.set_ylabel("votes" if v.sum() > 1 + 1e-9 else "probability")
    right = ax.twinx()
    right.set_ylim(np.array(ax.get_ylim()) / v.sum())
    right.set_ylabel("probability")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title or "Score distribution")
    return fig


# ----------------------------------------------------------------------------- model results
def correlation_heatmap(matrix: Any, labels: Sequence[str], *, title: str | None = None,
                        vmin: float = -1.0, vmax: float = 1.0, annotate: bool = False) -> Figure:
    """Task correlation heatmap (Kao et al., Fig. 9): ``matrix`` [T, T], e.g. from
    ``iaalib.models.mtrl.task_correlation(Omega)``; ``labels`` names the T tasks."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(labels):
        raise ValueError(f"correlation_heatmap: matrix {m.shape} does not match {len(labels)} labels")
    side = max(4.5, 0.28 * len(labels) + 2.0)
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot()
    sns.heatmap(m, ax=ax, vmin=vmin, vmax=vmax, cmap="RdBu_r", square=True, annot=annotate,
                fmt=".2f", xticklabels=list(labels), yticklabels=list(labels),
                cbar_kws={"shrink": 0.7, "label": "correlation"})
    ax.tick_params(labelsize=7)
    ax.set_title(title or "Task correlation")
    return fig


def per_tag_accuracy(table: pd.DataFrame | Mapping[str, Mapping[str, float]], *,
                     title: str | None = None, ylabel: str = "accuracy (%)",
                     ylim: tuple[float, float] | None = None) -> Figure:
    """Grouped bars: aesthetic accuracy per semantic tag for several methods (Kao et al., Fig. 5).

    ``table``: rows = tags (e.g. "Overall", "Landscape", ...), columns = methods (e.g. λ values);
    a mapping method -> {tag: value} works too. Rows are drawn in the given order.
    """
    df = pd.DataFrame(table) if not isinstance(table, pd.DataFrame) else table
    if df.empty:
        raise ValueError("per_tag_accuracy: empty table")
    n_tags, n_methods = df.shape
    width = 0.8 / n_methods
    fig = _figure(max(6.0, 0.35 * n_tags * max(1, n_methods / 2) + 2.0), 4.0)
    ax = fig.add_subplot()
    x = np.arange(n_tags)
    for j, method in enumerate(df.columns):
        ax.bar(x - 0.4 + width * (j + 0.5), df[method].to_numpy(dtype=float), width=width,
               label=str(method))
    ax.set_xticks(x, [str(t) for t in df.index], rotation=90, fontsize=7)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, ncols=min(n_methods, 5))
    ax.set_title(title or "Accuracy on each semantic tag")
    return fig


def normalise_filters(weights: Any) -> np.ndarray:
    """First-layer filters [C, 3, k, k] (PyTorch layout) → images [C, k, k, 3] in [0, 1].

    Each filter is min-max scaled on its own (the usual way to show learned filters, as in Kao
    et al., Fig. 7); a constant filter becomes 0.5 grey. A first trained layer above a frozen stem
    reads C_in activation maps instead of colours: each tile then shows the filter's L2 norm over
    its inputs (grey).
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 4:
        raise ValueError(f"normalise_filters: expected [C, C_in, k, k], got {w.shape}")
    if w.shape[1] not in (1, 3):
        w = np.sqrt((w ** 2).sum(axis=1, keepdims=True))
    w = np.transpose(w, (0, 2, 3, 1))
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - lo
    out = np.where(span > 0, (w - lo) / np.where(span > 0, span, 1.0), 0.5)
    return np.repeat(out, 3, axis=3) if out.shape[3] == 1 else out


def filter_grid(weights: Any, *, ncols: int = 12, title: str | None = None,
                cell: float = 0.55) -> Figure:
    """The learned filters of a first convolutional layer, one tile each (Kao et al., Fig. 7)."""
    tiles = normalise_filters(weights)
    n = len(tiles)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = _figure(cell * ncols + 0.2, cell * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(tiles[i], interpolation="nearest", vmin=0.0, vmax=1.0)
    fig.suptitle(title or f"First-layer filters ({n})", fontsize=10)
    return fig


def _load_image_array(img: Any) -> np.ndarray:
    if isinstance(img, (str, os.PathLike)):
        with Image.open(img) as im:
            return np.asarray(im.convert("RGB"))
    if hasattr(img, "convert"):  # PIL image
        return np.asarray(img.convert("RGB"))
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[2] not in (1, 3):  # CHW tensor layout
        a = np.transpose(a, (1, 2, 0))
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype.kind == "f":
        a = np.clip(a, 0.0, 1.0)
    return a


def image_grid(images: Sequence[Any], *, titles: Sequence[str] | None = None, ncols: int = 4,
               cell: float = 2.2, title: str | None = None) -> Figure:
    """Images in a grid with optional per-image titles (Kao et al., Fig. 8; example images).

    Each image may be a file path, a PIL image, or an array [H, W, 3] / [3, H, W] (floats in [0, 1]
    or uint8). Aspect ratios are kept.
    """
    if len(images) == 0:
        raise ValueError("image_grid: no images")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"image_grid: {len(images)} images but {len(titles)} titles")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig = _figure(cell * ncols, cell * nrows + (0.3 if title else 0.0))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(images):
            a = _load_image_array(images[i])
            ax.imshow(a, cmap="gray" if a.ndim == 2 else None)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def tsne_embedding(features: Any, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE (scikit-learn) of ``features`` [N, D]; perplexity is capped at (N − 1) / 3 so
    small demo sets work. **Choice:** PCA initialisation and a fixed ``seed`` make the layout
    reproducible; the SAF paper does not state its t-SNE settings."""
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or len(x) < 4:
        raise ValueError(f"tsne_embedding: need [N>=4, D] features, got {x.shape}")
    perp = float(min(perplexity, (len(x) - 1) / 3.0))
    return TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed).fit_transform(x)


def tsne_scatter(points: Any, values: Any = None, *, title: str | None = None,
                 label: str = "mean score", cmap: str = "viridis", ax_size: float = 4.2) -> Figure:
    """Scatter of a 2-D embedding ``points`` [N, 2] coloured by ``values`` [N] (SAF's t-SNE
    figures: distributions coloured by their mean score). A mapping name -> (points, values) draws
    panels side by side with one shared colour scale."""
    if not isinstance(points, Mapping) and values is None:
        raise ValueError("tsne_scatter: give values [N] with points [N, 2], or a mapping of panels")
    panels = points if isinstance(points, Mapping) else {title or "t-SNE": (points, values)}
    arrays = {k: (np.asarray(p, dtype=float), np.asarray(v, dtype=float).ravel())
              for k, (p, v) in panels.items()}
    for k, (p, v) in arrays.items():
        if p.ndim != 2 or p.shape[1] != 2 or len(p) != len(v):
            raise ValueError(f"tsne_scatter[{k}]: points {p.shape} and values {v.shape} do not match")
    vmin = min(v.min() for _, v in arrays.values())
    vmax = max(v.max() for _, v in arrays.values())
    fig = _figure(ax_size * len(arrays) + 0.8, ax_size)
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    sc = None
    for ax, (name, (p, v)) in zip(axes, arrays.items()):
        sc = ax.scatter(p[:, 0], p[:, 1], c=v, s=6, cmap=cmap, vmin=vmin, vmax=vmax, linewidths=0)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(name), fontsize=9)
    fig.colorbar(sc, ax=list(axes), label=label, shrink=0.85)
    return fig


def gradcam_overlay(images: Any, cams: Any, *, titles: Sequence[str] | None = None,
                    alpha: float = 0.45, cmap: str = "jet", cell: float = 2.2) -> Figure:
    """Grad-CAM heatmaps over their images (SAF, Grad-CAM figure).

    ``images``: [N, H, W, 3] (or a list of arrays/PIL images); ``cams``: [N, h, w] in [0, 1], or a
    mapping model name -> [N, h, w] for one row per model. A CAM of another size is resized to its
    image (bilinear). The first row shows the images themselves when several models are given.
    """
    imgs = [_load_image_array(im) for im in images]
    rows = dict(cams) if isinstance(cams, Mapping) else {"Grad-CAM": cams}
    n = len(imgs)
    for name, c in rows.items():
        if len(c) != n:
            raise ValueError(f"gradcam_overlay[{name}]: {len(c)} maps for {n} images")
    show_plain = len(rows) > 1
    nrows = len(rows) + int(show_plain)
    fig = _figure(cell * n + 0.6, cell * nrows)
    axes = fig.subplots(nrows, n, squeeze=False)
    if show_plain:
        for j, a in enumerate(imgs):
            axes[0, j].imshow(a)
            if titles is not None:
                axes[0, j].set_title(titles[j], fontsize=8)
    for r, (name, maps) in enumerate(rows.items(), start=int(show_plain)):
        for j, a in enumerate(imgs):
            cam = np.asarray(maps[j], dtype=float)
            if cam.shape != a.shape[:2]:
                cam = zoom(cam, (a.shape[0] / cam.shape[0], a.shape[1] / cam.shape[1]), order=1)
            ax = axes[r, j]
            ax.imshow(a)
            ax.imshow(np.clip(cam, 0.0, 1.0), cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
            if not show_plain and titles is not None:
                ax.set_title(titles[j], fontsize=8)
        axes[r, 0].set_ylabel(str(name), fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
    return fig


# ----------------------------------------------------------------------------- tables
def levelling_table(table: pd.DataFrame, *, caption: str | None = None):
    """Style a levelling table (:func:`iaalib.studies.runner.levelling`,
    :func:`iaalib.studies.summary.levelling`) as every chapter shows it (a ``pandas`` Styler): the
    final value, its last move and the SD over seeds to three decimals, ``p_chance`` to two, "—"
    where not assessed."""
    formats = {"final": "{:.3f}", "move": "{:.3f}", "seed_sd": "{:.3f}", "p_chance": "{:.2f}"}
    styler = table.style.format({k: v for k, v in formats.items() if k in table}, na_rep="—")
    return styler.set_caption(caption) if caption else styler


def paper_vs_ours(table: pd.DataFrame, *, paper: str = "paper", ours: str = "ours",
                  rel_tol: float | None = None, show_delta: bool = True, fmt: str = "{:,.4g}",
                  caption: str | None = None):
    """Style a table that puts the paper's numbers next to ours (a ``pandas`` Styler).

    Adds a ``Δ (ours − paper)`` column (unless ``show_delta=False``, e.g. when the datasets differ);
    where ``rel_tol`` is given, rows with ``|Δ| <= rel_tol·|paper|`` are shaded green and the others
    amber. Missing numbers (NaN, shown as "—") stay unshaded. Non-numeric columns (e.g. the
    profile a number came from) pass through.
    """
    if paper not in table.columns or ours not in table.columns:
        raise KeyError(f"paper_vs_ours: need columns {paper!r} and {ours!r}, got {list(table.columns)}")
    df = table.copy()
    p = pd.to_numeric(df[paper], errors="coerce")
    o = pd.to_numeric(df[ours], errors="coerce")
    delta_col = f"Δ ({ours} − {paper})"
    delta = o - p
    if show_delta:
        df[delta_col] = delta
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    styler = df.style.format({c: (lambda v, f=fmt: "—" if pd.isna(v) else f.format(v))
                              for c in numeric})
    if rel_tol is not None:
        ok = delta.abs() <= rel_tol * p.abs()

        def shade(row):
            if pd.isna(p[row.name]) or pd.isna(o[row.name]):
                return [""] * len(row)
            colour = "#d9f2d9" if ok[row.name] else "#fde9c8"
            return [f"background-color: {colour}" if c in (ours, delta_col) else "" for c in row.index]

        styler = styler.apply(shade, axis=1)
    if caption:
        styler = styler.set_caption(caption)
    return styler


# ============================================================================ SAF studies
def distribution_figure(images: Sequence[Any], ground_truth: np.ndarray,
                        predicted: Mapping[str, np.ndarray], *, titles: Sequence[str] | None = None):
    """Images (top row) with their ground-truth and predicted 10-bin score distributions (bottom
    row, one bar series per model). ``ground_truth`` [N, 10]; ``predicted`` {name: [N, 10]}."""

    n = len(images)
    gt = np.asarray(ground_truth, float)
    fig = Figure(figsize=(2.6 * n + 0.4, 4.6), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False, height_ratios=[1.2, 1])
    series = {"ground truth": gt, **{k: np.asarray(v, float) for k, v in predicted.items()}}
    width = 0.8 / len(series)
    scores = np.arange(1, 11)
    for j in range(n):
        axes[0, j].imshow(_load_image_array(images[j]))
        axes[0, j].set_axis_off()
        if titles is not None:
            axes[0, j].set_title(titles[j], fontsize=8)
        ax = axes[1, j]
        for k, (name, d) in enumerate(series.items()):
            ax.bar(scores + (k - (len(series) - 1) / 2) * width, d[j], width=width, label=name)
        ax.set_xticks(scores)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("score", fontsize=8)
    axes[1, 0].set_ylabel("probability", fontsize=8)
    axes[1, 0].legend(fontsize=7)
    return fig


def bottleneck_figure(table: pd.DataFrame, metrics: Sequence[str] = ("srcc_mean", "plcc_mean"),
                      *, errors: pd.DataFrame | None = None, title: str | None = None):
    """The comparative study of P: ``metrics`` against P for rows "P=<p>" (a Figure, no pyplot).
    ``errors`` (same rows, one column per metric) draws ± that value as an error bar (e.g. the SD
    over seeds)."""
    ps = [int(re.fullmatch(r"P=(\d+)", str(i)).group(1)) for i in table.index]
    order = np.argsort(ps)
    fig = Figure(figsize=(4.8, 3.2), layout="constrained")
    ax = fig.subplots()
    for m in metrics:
        y = table[m].to_numpy(float)[order]
        err = None if errors is None or m not in errors else \
            errors[m].reindex(table.index).to_numpy(float)[order]
        ax.errorbar(np.asarray(ps)[order], y, yerr=err, marker="o", capsize=3, label=m)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ps), [str(p) for p in sorted(ps)])
    ax.set_xlabel("P (maps per score group; c = 10·P)")
    ax.set_ylabel("correlation with ground truth")
    ax.legend(fontsize=8)
    ax.set_title(title or "Bottleneck dimension (comparative study)", fontsize=10)
    return fig


def per_distortion_figure(per_distortion: pd.DataFrame, metric: str = "srcc_mean", *,
                          title: str | None = None):
    """Bars of ``metric`` per distortion type (rows) and model (the first column level) from
    :func:`cross_dataset`'s per-distortion table."""
    table = per_distortion.xs(metric, axis=1, level=1)
    fig = Figure(figsize=(1.0 * len(table) + 2.5, 3.4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, table.shape[1])
    x = np.arange(len(table))
    for k, model in enumerate(table.columns):
        ax.bar(x + (k - (table.shape[1] - 1) / 2) * width, table[model].to_numpy(float),
               width=width, label=str(model))
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xticks(x, [str(i) for i in table.index], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} vs MOS (within type)")
    ax.legend(fontsize=8)
    ax.set_title(title or "Cross-dataset, per distortion type", fontsize=10)
    return fig


# ============================================================================ every chapter
#: Verdict colours of the claims (forest plot, verdict boxes).
VERDICT_COLOURS = {"reproduced": "#2ca02c", "contradicted": "#d62728", "inconclusive": "#7f7f7f"}


def learning_curves(curves: pd.DataFrame, *, ylabel: str, title: str | None = None,
                    group: Mapping[str, str] | None = None) -> Figure:
    """One line per column of ``curves`` (index = epoch): a test or training metric per epoch.
    ``group`` maps a column to a group name; columns of one group share a colour. By default the
    seeds of one arm (columns ``"<arm> (seed <s>)"``, :func:`iaalib.studies.runner.learning_curves`)
    form a group."""
    fig = Figure(figsize=(6.4, 3.4), layout="constrained")
    ax = fig.subplots()
    if group is None:
        group = {c: re.sub(r" \(seed \d+\)$", "", str(c)) for c in curves.columns}
    if curves.empty:
        ax.text(0.5, 0.5, "no per-epoch test metric was recorded\n(the profile's monitor_test is off)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    groups = list(dict.fromkeys((group or {}).get(c, c) for c in curves.columns))
    colours = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    seen: set[str] = set()
    for col in curves.columns:
        g = (group or {}).get(col, col)
        ax.plot(curves.index, curves[col].to_numpy(float), marker=".", color=colours[g],
                alpha=0.85, label=None if g in seen else g)
        seen.add(g)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if len(groups) <= 12:
        ax.legend(fontsize=7, ncols=2 if len(groups) > 6 else 1)
    ax.set_title(title or f"{ylabel} per epoch", fontsize=10)
    return fig


def forest_plot(claims: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Every claim on one line: our difference (better − worse arm, the paper's direction is to
    the right) with its 95% interval, coloured by verdict, and the paper's own difference (a
    black diamond) where the paper prints one (``paper_difference``). One panel per unit (accuracy
    in percentage points; correlations), claims that were not run are left out."""
    rows = claims[claims["verdict"].isin(list(VERDICT_COLOURS))].copy()
    rows["unit"] = np.where(rows["metric"].eq("acc"), "accuracy difference (percentage points)",
                            "correlation difference (SRCC / PLCC)")
    units = [u for u in ("accuracy difference (percentage points)",
                         "correlation difference (SRCC / PLCC)") if u in set(rows["unit"])]
    heights = [max(1.2, 0.32 * int((rows["unit"] == u).sum()) + 0.8) for u in units] or [1.0]
    fig = Figure(figsize=(9.0, sum(heights) + 0.6), layout="constrained")
    axes = fig.subplots(len(units) or 1, 1, squeeze=False, height_ratios=heights)[:, 0]
    for ax, unit in zip(axes, units):
        part = rows[rows["unit"] == unit].iloc[::-1]
        y = np.arange(len(part))
        for yi, r in zip(y, part.itertuples()):
            colour = VERDICT_COLOURS[r.verdict]
            ax.plot([r.ci_low, r.ci_high], [yi, yi], color=colour, linewidth=2.2)
            ax.plot([r.difference], [yi], "o", color=colour, markersize=5)
            paper_diff = getattr(r, "paper_difference", None)
            if paper_diff is not None and np.isfinite(float(paper_diff)):
                ax.plot([float(paper_diff)], [yi], "D", color="black", markersize=4)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(y, [f"{r.paper} {r.source}: {r.claim}" for r in part.itertuples()],
                      fontsize=7)
        ax.set_xlabel(unit, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    handles = [axes[0].plot([], [], color=c, linewidth=2.2, label=v)[0]
               for v, c in VERDICT_COLOURS.items()]
    if "paper_difference" in rows and pd.to_numeric(rows["paper_difference"], errors="coerce").notna().any():
        handles.append(axes[0].plot([], [], "D", color="black", markersize=4,
                                    label="the paper's difference")[0])
    axes[0].legend(handles=handles, fontsize=7, loc="lower right")
    axes[0].set_title(title or "Every claim: our difference and its 95% interval "
                      "(simultaneous per table)", fontsize=10)
    return fig


def lambda_sweep(paper: pd.DataFrame, ours: pd.DataFrame, *, ours_name: str = "ours",
                 paper_name: str = "paper (AVA)", title: str | None = None) -> Figure:
    """Kao Table I as a picture: accuracy against λ, one line per δ (rows), the paper's panel next
    to ours (each on its own scale: the datasets differ, the shapes can be compared)."""
    columns = [c for c in paper.columns if c in ours.columns] or list(ours.columns)
    fig = Figure(figsize=(9.0, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (name, table) in zip(axes, ((paper_name, paper), (ours_name, ours))):
        x = np.arange(len(columns))
        for i, (row, values) in enumerate(table.reindex(columns=columns).iterrows()):
            ax.plot(x, values.to_numpy(float), marker="o", color=f"C{i}",
                    label=str(row).replace("delta=", "δ = "))
        ax.set_xticks(x, [str(c).replace("lambda=", "λ = ") for c in columns], fontsize=7,
                      rotation=20)
        ax.set_ylabel("accuracy (%)", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title or "Table I: accuracy of MTCNN #1 against λ", fontsize=10)
    return fig


def equation_code(entries: Sequence[tuple[str, Any]], *, title: str = "Equation → code") -> str:
    """MyST Markdown for a chapter's "equation → code" box: for each ``(what the paper calls it,
    function or class)`` one line naming the function, then its source in a collapsed dropdown
    (``inspect.getsource``). A notebook displays it as Markdown from a cell whose input is hidden."""
    lines = [f":::{{admonition}} {title}", ":class: seealso"]
    blocks = []
    for label, obj in entries:
        name = f"{obj.__module__}.{obj.__qualname__}"
        lines.append(f"- {label} → `{name}`")
        source = inspect.getsource(obj).rstrip()
        blocks += [f"::::{{dropdown}} {label}: `{name}`", "```python", source, "```", "::::", ""]
    lines.append(":::")
    return "\n".join(lines) + "\n\n" + "\n".join(blocks)

