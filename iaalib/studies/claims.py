"""The papers' headline claims, tested on our runs with 95% intervals: one table, one sentence.

A claim (``paper_results.yaml``, ``<paper>.claims``) says that one arm beats another on a metric,
e.g. Kao Table I: "λ = 1/M beats λ = 0 at δ = 0" (``better: "delta=0 | lambda=1/M"``,
``worse: "delta=0 | lambda=0"``, metric ``acc``). An arm is a grid cell
(:func:`iaalib.studies.runner.arm_label`) with one run per training seed; ``better``/``worse`` may
list several arms (the difference is then min(better) − max(worse): "w/o Act is worst" is
``better: [full, w/o Split, w/o Act & Split]``, ``worse: w/o Act``) or a glob (``"P=*"``: every
other arm that matches).

**Interval** (:data:`METHOD`): a paired bootstrap over test images and training seeds. Each of
``n_boot`` replicates draws the test images with replacement (the same images for both arms) and
the seeds with replacement (arm A's seed-s run is paired with arm B's seed-s run), and computes the
mean over the drawn seeds of metric(A) − metric(B) on the drawn images; the interval is the 2.5
and 97.5 percentiles of the replicates. It covers both the test-set sampling and the run-to-run
variation, so a verdict should survive another test split or another machine. With one seed it
is the ordinary paired bootstrap over images (``tests/test_claims.py`` checks it against
``scipy.stats.bootstrap``); :func:`seed_t_interval` is the seed-level t interval, for comparison.

**Simultaneous per table** (:func:`table_confidence`). A paper table makes several claims (Kao
Table II: four MTCNNs against one STCNN), and the book tests 26. At 95% each, a build with no true
effect at all would still call about one of them reproduced or contradicted, and two builds
would rarely agree on every verdict. **Choice:** the intervals of one table's m claims are
Bonferroni-adjusted, each at 1 − 0.05/m, so that the table's verdicts hold together at 95%
(a family-wise 95% interval). Measured on two demo builds (synth_seed 0 and 1) of stop 18: with
per-claim 95% intervals 25 of 26 verdicts agreed, "MTCNN #3 beats the STCNN" being +1.97
[+0.10, +3.97] pp on one and +0.23 on the other (``stability_demo_per_claim_95.json``);
simultaneous per table, it was +1.97 [−0.37, +4.77] and all 26 agreed. Stop 19's two builds
agreed on all 26 verdicts too, and so did a build with AVX2-only kernels and fp32 training, a
stand-in for another machine (``stability_machines_avx2.json``: 50 of its 52 cross-checks put one
build's difference inside the other's interval, where even replicates would miss about 4.7 by
chance). With stop 29's code, a real second machine (AVX2, fp32 training) and stop 29's own
agree on 25 of 26, with 52 of 52 differences inside (``stability_machines.json``); the one that
differs is a Table V claim whose interval's lower end lies near 0 on every build. Its interval is
set by the test images, not the seeds: with 10,000 target test images instead of 1,000 (stop 31)
both synth_seeds reproduce it and agree on all 26 (``transfer_test_size.json``,
``stability_demo_target10k.json``).

**Verdict** (:func:`verdict`), from the interval only: "reproduced" when it lies above 0 (the
paper's direction), "contradicted" when it lies below 0, "inconclusive" when it contains 0.
**Choice:** a claim whose arms have fewer than :data:`MIN_SEEDS` seeds is "inconclusive" whatever
its interval: with one or two seeds the interval cannot show the run-to-run variation, so it
would be too narrow (the rehearsal profile trains one seed; every arm a Kao claim names gets all
the profile's seeds, :func:`iaalib.studies.kao.seeded`).
"""
from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..engine.runrecord import Run
from . import paper as paper_data

METHOD = ("paired bootstrap over test images and training seeds (the same resampled images for "
          "both arms, seeds resampled with replacement and paired by seed), percentile interval, "
          "simultaneous at 95% for the claims of one table (Bonferroni: each at 1 − 0.05/m for "
          "the table's m claims)")
CONFIDENCE = 0.95
#: Bootstrap replicates. A table of four claims reads its intervals from 0.625% tails, about 12
#: replicates each; 4,000 replicates made the demo book 25-30 s slower (the SAF ablation chapter's
#: SRCC bootstraps: 25 -> 41 s), so the default stays 2,000.
N_BOOT = 2000
VERDICTS = ("reproduced", "contradicted", "inconclusive")
#: Fewer seeds per arm than this: the verdict is "inconclusive" (see the module docstring).
MIN_SEEDS = 3
#: Columns of claims.json and of every claims table, in order.
FIELDS = ("paper", "source", "claim", "metric", "difference", "ci_low", "ci_high", "n_seeds",
          "verdict")
#: metric → (prediction column, ground-truth column, kind)
METRIC_COLUMNS = {
    "srcc_mean": ("mean", "gt_mean", "spearman"),
    "plcc_mean": ("mean", "gt_mean", "pearson"),
    "srcc_sd": ("sd", "gt_sd", "spearman"),
    "plcc_sd": ("sd", "gt_sd", "pearson"),
    "srcc_p_high": ("p_high", "gt_mean", "spearman"),
    "acc": ("correct", None, "mean"),
}
#: Percent-scaled metrics (as in the result tables).
PERCENT = ("acc",)


# ============================================================================ intervals
def seed_t_interval(differences: Sequence[float], confidence: float = CONFIDENCE
                    ) -> tuple[float, float, float]:
    """Mean of per-seed differences and its Student t interval (n − 1 degrees of freedom):
    ``(mean, low, high)``; NaN bounds for fewer than two seeds."""
    d = np.asarray(differences, float)
    mean = float(d.mean())
    if d.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
    return mean, mean - half, mean + half


def _scores(frame: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The per-image arrays a metric needs: (prediction, ground truth, kind)."""
    pred, gt, kind = METRIC_COLUMNS[metric]
    if metric == "acc":
        if "pred_label" in frame and frame["pred_label"].notna().all():
            label = frame["pred_label"].to_numpy()
        else:  # a distribution model calls an image high when its predicted mean is above 5
            label = (frame["mean"].to_numpy() > 5.0).astype(int)
        return (label == frame["gt_label"].to_numpy()).astype(float), None, kind
    return frame[pred].to_numpy(float), frame[gt].to_numpy(float), kind


def _replicates(x: np.ndarray, y: np.ndarray | None, kind: str, idx: np.ndarray) -> np.ndarray:
    """The metric on each row of resampled image indices ``idx`` [B, N] (vectorised)."""
    xs = x[idx]
    if kind == "mean":
        return xs.mean(axis=1)
    ys = y[idx]
    if kind == "spearman":
        xs, ys = stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1)
    xc = xs - xs.mean(axis=1, keepdims=True)
    yc = ys - ys.mean(axis=1, keepdims=True)
    den = np.sqrt((xc ** 2).sum(axis=1) * (yc ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (xc * yc).sum(axis=1) / den, np.nan)


def metric_replicates(frames: Sequence[pd.DataFrame], metric: str, idx: np.ndarray) -> np.ndarray:
    """[S, B]: the metric of each seed's predictions on each bootstrap sample of images."""
    out = []
    for frame in frames:
        x, y, kind = _scores(frame, metric)
        out.append(np.concatenate([_replicates(x, y, kind, idx[i:i + 250])
                                   for i in range(0, len(idx), 250)]))
    return np.asarray(out)


def metric_value(frame: pd.DataFrame, metric: str) -> float:
    """The metric on every image of one prediction frame (= the run's metrics.json value)."""
    x, y, kind = _scores(frame, metric)
    return float(_replicates(x, y, kind, np.arange(len(x))[None, :])[0])


def paired_bootstrap(better: Sequence[Sequence[pd.DataFrame]],
                     worse: Sequence[Sequence[pd.DataFrame]], metric: str, *,
                     n_boot: int = N_BOOT, confidence: float = CONFIDENCE, seed: int = 0
                     ) -> dict[str, float]:
    """The interval of :data:`METHOD` for min over ``better`` arms − max over ``worse`` arms.

    Each arm is a list of per-seed prediction frames over the same test images (aligned by
    ``image_id``); seeds are paired by position. Returns ``difference`` (the mean over seeds on
    all images), ``ci_low``, ``ci_high``, ``n_seeds``, ``n_images``.
    """
    groups = [list(a) for a in (*better, *worse)]
    n_seeds = min(len(g) for g in groups)
    if n_seeds == 0:
        raise ValueError("every arm needs at least one run")
    aligned = _align([[f for f in g[:n_seeds]] for g in groups])
    n_images = len(aligned[0][0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_images, size=(n_boot, n_images))
    full = np.arange(n_images)[None, :]
    reps = [metric_replicates(g, metric, idx) for g in aligned]          # arms × [S, B]
    points = [metric_replicates(g, metric, full)[:, 0] for g in aligned]  # arms × [S]
    k = len(better)
    diff_rep = np.min(reps[:k], axis=0) - np.max(reps[k:], axis=0)        # [S, B]
    diff_point = np.min(points[:k], axis=0) - np.max(points[k:], axis=0)  # [S]
    pick = rng.integers(0, n_seeds, size=(n_boot, n_seeds))               # seeds, per replicate
    boot = np.take_along_axis(diff_rep.T, pick, axis=1).mean(axis=1)
    boot = boot[np.isfinite(boot)]
    scale = 100.0 if metric in PERCENT else 1.0
    alpha = (1.0 - confidence) / 2
    lo, hi = (np.quantile(boot, [alpha, 1 - alpha]) if boot.size else (np.nan, np.nan))
    return {"difference": float(diff_point.mean()) * scale, "ci_low": float(lo) * scale,
            "ci_high": float(hi) * scale, "n_seeds": int(n_seeds), "n_images": int(n_images)}


def _align(groups: list[list[pd.DataFrame]]) -> list[list[pd.DataFrame]]:
    """Restrict every frame to the image ids all of them have, in one order."""
    common = None
    for g in groups:
        for f in g:
            ids = set(f["image_id"])
            common = ids if common is None else common & ids
    order = np.array(sorted(common or ()))
    if order.size < 3:
        raise ValueError("the arms share fewer than 3 test images")
    return [[f.set_index("image_id").loc[order].reset_index() for f in g] for g in groups]


def table_confidence(n_claims: int, confidence: float = CONFIDENCE) -> float:
    """Each claim's level when a table's ``n_claims`` intervals hold together at ``confidence``
    (Bonferroni): 1 − (1 − confidence) / n_claims."""
    return 1.0 - (1.0 - confidence) / max(1, int(n_claims))


def verdict(ci_low: float, ci_high: float, n_seeds: int = MIN_SEEDS) -> str:
    """"reproduced" (interval above 0), "contradicted" (below 0), else "inconclusive" (also when
    the arms have fewer than :data:`MIN_SEEDS` seeds)."""
    if n_seeds < MIN_SEEDS:
        return "inconclusive"
    if np.isfinite(ci_low) and ci_low > 0:
        return "reproduced"
    if np.isfinite(ci_high) and ci_high < 0:
        return "contradicted"
    return "inconclusive"


# ============================================================================ claims
def _arm_names(spec: str | Sequence[str], available: Sequence[str], exclude: Sequence[str],
               subs: Mapping[str, Any]) -> list[str]:
    names = [spec] if isinstance(spec, str) else list(spec)
    out = []
    for name in names:
        name = name.format(**subs)
        if any(ch in name for ch in "*?["):
            out += [a for a in available if fnmatch.fnmatchcase(a, name) and a not in exclude]
        else:
            out.append(name)
    return out


def evaluate(paper: str, table: str, arms: Mapping[str, Sequence[Run | pd.DataFrame]], *,
             substitutions: Mapping[str, Any] | None = None, n_boot: int = N_BOOT,
             seed: int = 0) -> pd.DataFrame:
    """Every claim of ``paper``'s ``table`` (``paper_results.yaml``) on ``arms``: one row each
    with :data:`FIELDS` plus ``better``, ``worse``, ``paper_difference``, ``confidence`` (each
    interval's level: :func:`table_confidence` of the claims tested), ``method`` and the run
    directories (``runs``). A claim whose arms were not run in this profile gets verdict
    "not run". ``substitutions`` fill ``{name}`` placeholders in the arms and the claim text;
    a placeholder given a list expands the claim into one row per value."""
    frames = {name: [_predictions(x) for x in runs] for name, runs in arms.items()}
    dirs = {name: [str(x.dir) for x in runs if isinstance(x, Run)] for name, runs in arms.items()}
    rows, tested = [], []
    for spec in paper_data.claims(paper, table):
        for subs in _expand(substitutions or {}):
            better = _arm_names(spec["better"], list(frames), (), subs)
            worse = _arm_names(spec["worse"], list(frames), better, subs)
            row = {"paper": paper_data.PAPER_NAMES[paper], "source": spec["source"],
                   "claim": spec["claim"].format(**subs), "metric": spec["metric"],
                   "better": better, "worse": worse, "id": spec["id"].format(**subs),
                   "paper_difference": spec.get("paper_difference"), "method": METHOD}
            missing = [a for a in (*better, *worse) if a not in frames or not frames[a]]
            if missing or not worse:
                row.update(difference=np.nan, ci_low=np.nan, ci_high=np.nan, n_seeds=0,
                           verdict="not run", runs=[])
            else:
                tested.append(row)
            rows.append(row)
    level = table_confidence(len(tested))
    for row in tested:
        res = paired_bootstrap([frames[a] for a in row["better"]],
                               [frames[a] for a in row["worse"]], row["metric"], n_boot=n_boot,
                               confidence=level, seed=seed)
        row.update(res, confidence=level,
                   verdict=verdict(res["ci_low"], res["ci_high"], res["n_seeds"]),
                   runs=sorted({d for a in (*row["better"], *row["worse"]) for d in dirs[a]}))
    columns = [*FIELDS, "id", "better", "worse", "paper_difference", "n_images", "confidence",
               "method", "runs"]
    return pd.DataFrame(rows).reindex(columns=columns)


def _predictions(x: Run | pd.DataFrame) -> pd.DataFrame | None:
    if isinstance(x, pd.DataFrame):
        return x
    return x.predictions if x.status == "finished" else None


def _expand(subs: Mapping[str, Any]) -> list[dict[str, Any]]:
    lists = {k: v for k, v in subs.items() if isinstance(v, (list, tuple))}
    if not lists:
        return [dict(subs)]
    (key, values), = list(lists.items())[:1]
    rest = {k: v for k, v in subs.items() if k != key}
    return [{**r, key: v} for v in values for r in _expand(rest)]


def sentence(table: pd.DataFrame) -> str:
    """The verdicts of a claims table in one paragraph (Markdown), generated, never typed."""
    rows = table[table["verdict"] != "not run"]
    if rows.empty:
        return "No claim of this chapter was run in this profile."
    counts = rows["verdict"].value_counts()
    head = (f"Of {len(rows)} claim{'s' if len(rows) != 1 else ''} tested here, "
            + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)
            + " (95% intervals, simultaneous per table, "
            + f"{int(rows['n_seeds'].min())}–{int(rows['n_seeds'].max())} seeds per arm).")
    parts = [head]
    for v in VERDICTS:
        chosen = rows[rows["verdict"] == v]
        if chosen.empty:
            continue
        items = "; ".join(f"{r.claim} ({_fmt(r)})" for r in chosen.itertuples())
        parts.append(f"**{v.capitalize()}:** {items}.")
    return " ".join(parts)


def _fmt(r: Any) -> str:
    unit = " pp" if r.metric in PERCENT else ""
    digits = 1 if r.metric in PERCENT else 3
    return (f"{r.metric} {r.difference:+.{digits}f}{unit}, [{r.ci_low:+.{digits}f}, "
            f"{r.ci_high:+.{digits}f}]")


def claims_box(paper: str, tables: Sequence[str], title: str = "What the paper claims") -> str:
    """A MyST admonition listing the claims this chapter tests (``paper_results.yaml``), with the
    paper's own difference where it prints one (for a chapter's opening box)."""
    items = []
    for table in tables:
        for spec in paper_data.claims(paper, table):
            text = spec["claim"].replace("{net}", "each MTCNN").replace("{ft}", "each fine-tuned "
                                                                          "backbone")
            text = text.replace("(P = {p})", "").replace("  ", " ")
            diff = spec.get("paper_difference")
            extra = f" (paper: {diff:+.2f} pp)" if diff is not None else ""
            items.append(f"- **{spec['source']}:** {text}{extra}")
    return f":::{{admonition}} {title}\n:class: note\n" + "\n".join(items) + "\n:::\n"


def verdict_box(table: pd.DataFrame, title: str = "Verdict") -> str:
    """A MyST admonition with :func:`sentence` (for a chapter's closing box)."""
    return f":::{{admonition}} {title}\n:class: tip\n{sentence(table)}\n:::\n"


def display_table(table: pd.DataFrame):
    """The claims table styled for a chapter (pandas Styler)."""
    shown = table[["source", "claim", "metric", "difference", "ci_low", "ci_high", "n_seeds",
                   "verdict"]]
    return shown.style.format({"difference": "{:+.3f}", "ci_low": "{:+.3f}", "ci_high": "{:+.3f}"},
                              na_rep="—").hide(axis="index")
