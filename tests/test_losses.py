"""Losses: EMD (hand-computed, one-hot closed form, per-sample reduction), Kao Eq. 7/12, SAF terms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
import torch

from iaalib import losses, metrics
from iaalib.models.mtrl import trace_regulariser, update_task_covariance


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


# --- EMD -------------------------------------------------------------------------------------------

def test_emd_hand_computed_example():
    # CDFs [.1 .3 .6 1] vs [.4 .7 .9 1]: differences .3 .4 .3 0 → sqrt((.09 + .16 + .09 + 0) / 4)
    p, q = _t([[0.1, 0.2, 0.3, 0.4]]), _t([[0.4, 0.3, 0.2, 0.1]])
    assert losses.emd_loss(p, q).item() == pytest.approx(math.sqrt(0.34 / 4), abs=1e-12)
    assert metrics.emd(p.numpy(), q.numpy()) == pytest.approx(math.sqrt(0.34 / 4), abs=1e-12)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_emd_one_hot_closed_form(r):
    """One-hot at bins i and j: the CDFs differ by exactly 1 on |i − j| of the N bins, so
    EMD_r = (|i − j| / N)^(1/r) (r = 2: sqrt(|i − j| / 10))."""
    n = 10
    eye = torch.eye(n, dtype=torch.float64)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    got = losses.emd_loss(eye[i.flatten()], eye[j.flatten()], r=r, reduction="none")
    expected = ((i - j).abs().flatten().double() / n) ** (1.0 / r)
    torch.testing.assert_close(got, expected)


def test_emd_r1_is_scipy_wasserstein_over_bins():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(10), 5), rng.dirichlet(np.ones(10), 5)
    bins = np.arange(1, 11)
    expected = [scipy.stats.wasserstein_distance(bins, bins, a, b) / 10 for a, b in zip(p, q)]
    got = losses.emd_loss(_t(p), _t(q), r=1, reduction="none").numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(metrics.emd(p, q, r=1, reduction="none"), expected, rtol=1e-10)


def test_emd_is_per_sample_then_batch_mean_not_batch_first():
    """The wrong variant (two of four well-known NIMA implementations) pools the batch inside the
    root: sqrt(mean over batch and bins of ΔCDF²). It differs whenever per-sample EMDs differ."""
    eye = torch.eye(10, dtype=torch.float64)
    p = torch.stack([eye[0], eye[3]])
    q = torch.stack([eye[9], eye[3]])  # EMDs sqrt(0.9) and 0
    per_sample_mean = (math.sqrt(0.9) + 0.0) / 2
    batch_first = math.sqrt(((torch.cumsum(p, 1) - torch.cumsum(q, 1)) ** 2).mean().item())
    assert batch_first == pytest.approx(math.sqrt(0.45))
    got = losses.emd_loss(p, q).item()
    assert got == pytest.approx(per_sample_mean, abs=1e-12)
    assert abs(got - batch_first) > 0.19
    # ... and they coincide when every sample has the same EMD
    same = losses.emd_loss(torch.stack([eye[0], eye[5]]), torch.stack([eye[2], eye[7]])).item()
    assert same == pytest.approx(math.sqrt(0.2), abs=1e-12)


def test_emd_reductions_zero_and_finite_gradient():
    p = torch.softmax(torch.randn(4, 10, dtype=torch.float64), 1)
    per = losses.emd_loss(p, p.flip(1), reduction="none")
    assert losses.emd_loss(p, p.flip(1), reduction="sum").item() == pytest.approx(per.sum().item())
    logits = torch.randn(3, 10, dtype=torch.float64, requires_grad=True)
    target = torch.softmax(logits.detach(), 1).clone()
    target[1] = torch.full((10,), 0.1, dtype=torch.float64)
    loss = losses.emd_loss(torch.softmax(logits, 1), target)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert losses.emd_loss(target[:1], target[:1]).item() == 0.0
    with pytest.raises(ValueError, match="B, N"):
        losses.emd_loss(p, p[:, :5])


# --- Kao Eq. 7 / 12 / 11 ---------------------------------------------------------------------------

def _kao_reference(a_logits, t_logits, label, tags, lam):
    """Eq. 7 with numpy, batch means, the standard BCE (the printed (1−z)(1−log σ) is a typo)."""
    a, s = a_logits.numpy(), t_logits.numpy()
    log_softmax = a - np.log(np.exp(a).sum(1, keepdims=True))
    ce = -log_softmax[np.arange(len(label)), label.numpy()].mean()
    sig = 1 / (1 + np.exp(-s))
    z = tags.numpy()
    bce = -(z * np.log(sig) + (1 - z) * np.log(1 - sig))
    return ce, bce.mean(0).sum(), ce + lam * bce.mean(0).sum()


@pytest.mark.parametrize("lam", [0.0, 1 / 29, 2 / 29, 1.0])
def test_kao_loss_matches_eq7(lam):
    g = torch.Generator().manual_seed(0)
    out = {"aesthetic_logits": torch.randn(6, 2, generator=g, dtype=torch.float64),
           "tag_logits": torch.randn(6, 29, generator=g, dtype=torch.float64)}
    label = torch.randint(0, 2, (6,), generator=g)
    tags = (torch.rand(6, 29, generator=g) < 0.1).double()
    ce, sem, total = _kao_reference(out["aesthetic_logits"], out["tag_logits"], label, tags, lam)
    terms = losses.kao_multitask_loss(out, label, tags, lam)
    assert terms["aesthetic"].item() == pytest.approx(ce, rel=1e-10)
    assert terms["semantic"].item() == pytest.approx(sem, rel=1e-10)
    assert terms["total"].item() == pytest.approx(total, rel=1e-10)
    assert "aux" not in terms and "mtrl" not in terms


def test_kao_loss_typo_would_differ():
    """The literal Eq. 7 term (1 − z)(1 − log σ) is not a log-likelihood: it differs from BCE."""
    s, z = np.array([0.3]), np.array([0.0])
    sig = 1 / (1 + np.exp(-s))
    typo = -(z * np.log(sig) + (1 - z) * (1 - np.log(sig)))
    out = {"aesthetic_logits": torch.zeros(1, 2), "tag_logits": torch.tensor([[0.3]])}
    sem = losses.kao_multitask_loss(out, torch.tensor([0]), torch.tensor([[0.0]]), 1.0)["semantic"]
    assert sem.item() == pytest.approx(-np.log(1 - sig[0]), rel=1e-6)
    assert abs(sem.item() - typo[0]) > 0.5


def test_kao_loss_enhanced_adds_aux_and_mtrl_term():
    g = torch.Generator().manual_seed(1)
    out = {"aesthetic_logits": torch.randn(5, 2, generator=g, dtype=torch.float64),
           "tag_logits": torch.randn(5, 3, generator=g, dtype=torch.float64),
           "aux_aesthetic_logits": torch.randn(5, 2, generator=g, dtype=torch.float64)}
    label = torch.tensor([0, 1, 1, 0, 1])
    tags = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 0, 0]]).double()
    ce_aux, _, _ = _kao_reference(out["aux_aesthetic_logits"], out["tag_logits"], label, tags, 0)
    _, _, base = _kao_reference(out["aesthetic_logits"], out["tag_logits"], label, tags, 2 / 3)
    terms = losses.kao_multitask_loss(out, label, tags, 2 / 3)
    assert terms["aux"].item() == pytest.approx(ce_aux, rel=1e-10)
    assert terms["total"].item() == pytest.approx(base + ce_aux, rel=1e-10)
    W = torch.randn(8, 5, dtype=torch.float64)
    _, inv = update_task_covariance(W, return_inverse=True)
    with_mtrl = losses.kao_multitask_loss(out, label, tags, 2 / 3, task_weights=W, omega_inv=inv,
                                          mtrl_weight=1e-3)
    expected = base + ce_aux + 1e-3 * trace_regulariser(W, inv).item()
    assert with_mtrl["total"].item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="together"):
        losses.kao_multitask_loss(out, label, tags, 1.0, task_weights=W, omega_inv=inv)


def test_kao_loss_checks_tag_shapes():
    out = {"aesthetic_logits": torch.zeros(2, 2), "tag_logits": torch.zeros(2, 4)}
    with pytest.raises(ValueError, match="tag_logits"):
        losses.kao_multitask_loss(out, torch.tensor([0, 1]), torch.zeros(2, 3), 0.25)


# --- SAF terms -------------------------------------------------------------------------------------

def test_activation_l1_hand_computed():
    pooled = _t([[0.2, 0.5, 0.0], [1.0, 0.0, 0.0]])
    target = _t([[0.1, 0.6, 0.3], [0.5, 0.5, 0.0]])
    # |.1|+|.1|+|.3| = .5 ; |.5|+|.5|+0 = 1.0 → mean .75 (raw values: no normalisation for L1)
    assert losses.activation_loss(pooled, target, "l1").item() == pytest.approx(0.75)
    # with sum-normalisation row 0 becomes [2/7, 5/7, 0]
    expected0 = abs(2 / 7 - 0.1) + abs(5 / 7 - 0.6) + 0.3
    assert losses.activation_loss(pooled, target, "l1", normalise="sum").item() == \
        pytest.approx((expected0 + 1.0) / 2)


def test_activation_kl_and_js_equal_scipy():
    rng = np.random.default_rng(3)
    pooled = rng.normal(size=(4, 10))
    target = rng.dirichlet(np.ones(10), 4)
    a = np.exp(pooled) / np.exp(pooled).sum(1, keepdims=True)  # softmax ("auto" for KL/JS)
    kl = np.mean([scipy.stats.entropy(t, q) for t, q in zip(target, a)])
    js = np.mean([scipy.spatial.distance.jensenshannon(t, q) ** 2 for t, q in zip(target, a)])
    assert losses.activation_loss(_t(pooled), _t(target), "kl").item() == pytest.approx(kl, rel=1e-9)
    assert losses.activation_loss(_t(pooled), _t(target), "js").item() == pytest.approx(js, rel=1e-9)
    with pytest.raises(ValueError, match="kind"):
        losses.activation_loss(_t(pooled), _t(target), "l2")


def test_reconstruction_loss_is_mse_and_checks_shape():
    x = torch.randn(2, 3, 8, 9)
    y = torch.randn(2, 3, 8, 9)
    assert losses.reconstruction_loss(y, x).item() == pytest.approx(((y - x) ** 2).mean().item())
    with pytest.raises(ValueError, match="differ"):
        losses.reconstruction_loss(y[..., :8], x)


def test_saf_loss_weights_and_ablation_switches():
    g = torch.Generator().manual_seed(0)
    image = torch.randn(3, 3, 16, 16, generator=g)
    dist = torch.softmax(torch.randn(3, 10, generator=g), 1)
    out = {"dist_logits": torch.randn(3, 10, generator=g), "recon": torch.randn(3, 3, 16, 16, generator=g),
           "group_pooled": torch.rand(3, 10, generator=g)}
    emd = losses.emd_loss(torch.softmax(out["dist_logits"], 1), dist).item()
    rec = ((out["recon"] - image) ** 2).mean().item()
    act = (out["group_pooled"] - dist).abs().sum(1).mean().item()
    terms = losses.saf_loss(out, dist, image, alpha=0.5, beta=2.0)
    assert terms["total"].item() == pytest.approx(emd + 0.5 * rec + 2.0 * act, rel=1e-6)
    no_act = losses.saf_loss(out, dist, image, alpha=0.5, beta=0.0)  # "w/o Act"
    assert no_act["total"].item() == pytest.approx(emd + 0.5 * rec, rel=1e-6)
    assert no_act["act"].item() == pytest.approx(act, rel=1e-6)  # still reported
    vanilla = {"dist_logits": out["dist_logits"]}
    with pytest.raises(ValueError, match="alpha"):
        losses.saf_loss(vanilla, dist, image, alpha=0.1, beta=0.0)
    with pytest.raises(ValueError, match="beta"):
        losses.saf_loss(vanilla, dist, image, alpha=0.0, beta=0.1)
    assert losses.saf_loss(vanilla, dist, image, alpha=0, beta=0)["total"].item() == \
        pytest.approx(emd, rel=1e-6)
