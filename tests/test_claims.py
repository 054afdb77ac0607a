"""iaalib.studies.claims: the interval behind every verdict, checked against scipy on hand-made
examples, the verdict rule, and one claims table from arms of prediction frames."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from iaalib.studies import claims


def _kao_frame(correct: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """A Kao-style predictions frame whose classifier is right exactly where ``correct``."""
    n = len(correct)
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 2, n)
    return pd.DataFrame({"image_id": np.arange(n), "gt_label": gt,
                         "pred_label": np.where(correct, gt, 1 - gt),
                         "p_high": rng.random(n), "gt_mean": rng.normal(5.4, 0.7, n)})


def _dist_frame(pred: np.ndarray, gt: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"image_id": np.arange(len(gt)), "mean": pred, "gt_mean": gt,
                         "sd": np.abs(pred) % 1, "gt_sd": np.abs(gt) % 1,
                         "gt_label": (gt > 5).astype(int)})


def test_seed_t_interval_is_scipys_t_interval():
    d = np.array([0.10, 0.30, 0.20, 0.25])
    mean, lo, hi = claims.seed_t_interval(d)
    ref = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert mean == pytest.approx(d.mean()) and (lo, hi) == pytest.approx(ref)
    assert np.isnan(claims.seed_t_interval([0.2])[1])


@pytest.mark.parametrize("confidence, tol", [(0.95, 0.35), (1 - 0.05 / 4, 0.45)])
def test_one_seed_bootstrap_is_scipys_paired_percentile_bootstrap(confidence, tol):
    """With one seed the interval is the ordinary paired bootstrap over test images: it must agree
    with scipy.stats.bootstrap (paired, percentile) up to Monte-Carlo error, at 95% and at the
    level of a table of four claims (:func:`claims.table_confidence`)."""
    rng = np.random.default_rng(1)
    a_right = rng.random(300) < 0.74
    b_right = np.where(rng.random(300) < 0.8, a_right, rng.random(300) < 0.65)  # correlated
    a, b = _kao_frame(a_right), _kao_frame(b_right)
    b["gt_label"], b["pred_label"] = a["gt_label"], np.where(b_right, a["gt_label"], 1 - a["gt_label"])
    ours = claims.paired_bootstrap([[a]], [[b]], "acc", n_boot=20000, seed=0,
                                   confidence=confidence)
    ref = stats.bootstrap((a_right.astype(float), b_right.astype(float)),
                          lambda x, y, axis: x.mean(axis) - y.mean(axis), paired=True,
                          vectorized=True, method="percentile", n_resamples=20000,
                          confidence_level=confidence, random_state=0).confidence_interval
    assert ours["difference"] == pytest.approx(100 * (a_right.mean() - b_right.mean()))
    assert ours["ci_low"] == pytest.approx(100 * ref.low, abs=tol)
    assert ours["ci_high"] == pytest.approx(100 * ref.high, abs=tol)
    assert (ours["n_seeds"], ours["n_images"]) == (1, 300)


def test_replicates_are_the_metric_of_each_resample():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=50), rng.normal(size=50)
    frame = _dist_frame(x, y)
    idx = rng.integers(0, 50, size=(7, 50))
    srcc = claims.metric_replicates([frame], "srcc_mean", idx)[0]
    plcc = claims.metric_replicates([frame], "plcc_mean", idx)[0]
    for k in range(7):
        assert srcc[k] == pytest.approx(stats.spearmanr(x[idx[k]], y[idx[k]]).statistic)
        assert plcc[k] == pytest.approx(stats.pearsonr(x[idx[k]], y[idx[k]]).statistic)
    assert claims.metric_value(frame, "srcc_mean") == pytest.approx(stats.spearmanr(x, y).statistic)
    # a distribution model's accuracy: predicted mean above 5 against the true class
    assert claims.metric_value(frame, "acc") == pytest.approx(np.mean((x > 5) == (y > 5)))


def test_seeds_are_paired_and_resampled():
    """Two seeds that disagree widen the interval beyond either seed's own."""
    rng = np.random.default_rng(3)
    gt = rng.normal(5.4, 0.7, 400)
    noise = rng.normal(0, 0.6, 400)
    better = [_dist_frame(gt + noise * s, gt) for s in (0.5, 1.0)]
    worse = [_dist_frame(gt + noise * s + rng.normal(0, 0.6, 400), gt) for s in (0.5, 1.0)]
    both = claims.paired_bootstrap([better], [worse], "srcc_mean", n_boot=3000)
    one = claims.paired_bootstrap([better[:1]], [worse[:1]], "srcc_mean", n_boot=3000)
    per_seed = [claims.metric_value(b, "srcc_mean") - claims.metric_value(w, "srcc_mean")
                for b, w in zip(better, worse)]
    assert both["n_seeds"] == 2 and both["difference"] == pytest.approx(np.mean(per_seed))
    assert both["ci_low"] > 0 and both["ci_high"] - both["ci_low"] > one["ci_high"] - one["ci_low"]
    # an arm with fewer runs limits the pairing to the seeds both have
    assert claims.paired_bootstrap([better], [worse[:1]], "srcc_mean", n_boot=200)["n_seeds"] == 1


def test_verdict_is_decided_by_the_interval_only():
    assert claims.verdict(0.1, 2.0) == "reproduced"
    assert claims.verdict(-3.0, -0.5) == "contradicted"
    assert claims.verdict(-0.1, 5.0) == "inconclusive"
    assert claims.verdict(float("nan"), float("nan")) == "inconclusive"
    # fewer than MIN_SEEDS seeds: the interval misses the run-to-run variation
    assert claims.verdict(0.1, 2.0, n_seeds=claims.MIN_SEEDS - 1) == "inconclusive"
    assert claims.verdict(0.1, 2.0, n_seeds=claims.MIN_SEEDS) == "reproduced"


def test_evaluate_builds_the_claims_table_of_a_paper_table():
    rng = np.random.default_rng(4)
    gt = rng.normal(5.4, 0.7, 300)
    good = lambda s: _dist_frame(gt + rng.normal(0, s, 300), gt)  # noqa: E731
    arms = {"full": [good(0.3) for _ in range(3)], "w/o Split": [good(0.5) for _ in range(3)],
            "w/o Act": [good(2.0) for _ in range(3)],
            "w/o Act & Split": [good(0.6) for _ in range(3)]}
    table = claims.evaluate("saf", "table3", arms, n_boot=500)
    assert list(table.columns[:9]) == list(claims.FIELDS)
    by_id = table.set_index("id")
    assert by_id.at["t3-full-vs-wo-act", "verdict"] == "reproduced"
    worst = by_id.loc["t3-wo-act-worst"]
    assert worst["better"] == ["full", "w/o Split", "w/o Act & Split"] and worst["worse"] == ["w/o Act"]
    assert worst["verdict"] == "reproduced" and (table["n_seeds"] == 3).all()
    # the same clear difference with one seed per arm is inconclusive
    one_seed = claims.evaluate("saf", "table3", {k: v[:1] for k, v in arms.items()}, n_boot=300)
    assert (one_seed["verdict"] == "inconclusive").all() and (one_seed["ci_low"] > 0).any()
    # a missing arm is "not run", never a silent verdict
    partial = claims.evaluate("saf", "table3", {k: v for k, v in arms.items() if k != "w/o Split"},
                              n_boot=200).set_index("id")
    assert partial.at["t3-full-vs-wo-split", "verdict"] == "not run"
    # globs and substitutions: the chosen P against every other P
    p_arms = {"P=2": [good(0.8)], "P=4": [good(0.2)], "P=8": [good(0.9)]}
    p = claims.evaluate("saf", "bottleneck", p_arms, substitutions={"p": 4}, n_boot=300)
    assert p.loc[0, "better"] == ["P=4"] and p.loc[0, "worse"] == ["P=2", "P=8"]
    assert "P = 4" in p.loc[0, "claim"]
    text = claims.sentence(table)
    assert text.startswith(f"Of {len(table)} claims tested here") and "**Reproduced:**" in text
    assert claims.verdict_box(table).startswith(":::{admonition} Verdict")


def test_a_tables_intervals_are_bonferroni_simultaneous():
    """A table of m claims: each interval at 1 − 0.05/m (0.9833 for three), the paired bootstrap of
    one claim at that level; with one claim, the plain 95% interval. (scipy's interval at such a
    level: test_one_seed_bootstrap_is_scipys_paired_percentile_bootstrap.)"""
    assert claims.table_confidence(3) == pytest.approx(1 - 0.05 / 3)
    assert claims.table_confidence(1) == claims.table_confidence(0) == pytest.approx(0.95)
    rng = np.random.default_rng(5)
    gt = rng.normal(5.4, 0.7, 300)
    arms = {name: [_dist_frame(gt + rng.normal(0, s, 300), gt) for _ in range(3)]
            for name, s in (("full", 0.4), ("w/o Split", 0.5), ("w/o Act", 0.6),
                            ("w/o Act & Split", 0.55))}
    table = claims.evaluate("saf", "table3", arms, n_boot=800).set_index("id")
    assert np.allclose(table["confidence"].astype(float), 1 - 0.05 / 3)
    alone = claims.paired_bootstrap([arms["full"]], [arms["w/o Act"]], "srcc_mean", n_boot=800,
                                    confidence=1 - 0.05 / 3)
    row = table.loc["t3-full-vs-wo-act"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((alone["ci_low"], alone["ci_high"]))
    at_95 = claims.paired_bootstrap([arms["full"]], [arms["w/o Act"]], "srcc_mean", n_boot=800)
    assert row["ci_low"] < at_95["ci_low"] and row["ci_high"] > at_95["ci_high"]


def test_the_summary_chapter_never_imports_torch(tmp_path):
    """The summary chapter (10) reads run records and result tables only; its kernel starts last, on
    the book's critical path, and torch with torchvision took 4 of its 6.4 s of imports (importing
    the runner for one sentence took the chapter from 5.6 to 10-12 s in stop 23's builds). The
    imports are read from the notebook itself."""
    import subprocess
    import sys

    import json
    from iaalib.paths import REPO_ROOT

    cells = json.loads((REPO_ROOT / "notebooks" / "10_summary.ipynb").read_text())["cells"]
    imports = [line for c in cells if c["cell_type"] == "code" for line in
               "".join(c["source"]).splitlines() if line.startswith(("from iaalib", "import iaalib"))]
    assert any("summary" in line for line in imports)          # the notebook's own imports
    code = ("import sys; " + "; ".join(imports) + "; from iaalib.engine.runrecord import Run; "
            f"t = summary.claims('demo', root={str(tmp_path)!r}); "
            f"v = summary.levelling('demo', root={str(tmp_path)!r}); "
            "print(t.empty, v.empty, 'torch' in sys.modules, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False", "False"]
