"""Loss functions of both papers (torch).

* :func:`emd_loss` — EMD between score distributions (NIMA; SAF's prediction loss).
* :func:`kao_multitask_loss` — Kao Eq. 7 (and Eq. 12 for the enhanced MTCNN, Eq. 11 with MTRL).
* :func:`activation_loss`, :func:`reconstruction_loss`, :func:`saf_loss` — SAF's three terms.

All losses average over the batch, so their size does not depend on the batch size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from iaalib.models.mtrl import trace_regulariser

#: SAF loss weights (**Choice**: the text lost the values of α and β).
SAF_ALPHA = 0.1
SAF_BETA = 0.1


def emd_loss(p_pred: torch.Tensor, p_true: torch.Tensor, r: float = 2,
             reduction: str = "mean") -> torch.Tensor:
    """Earth mover's distance between distributions over N ordered bins (Talebi & Milanfar Eq. 1).

    Per sample: EMD = ((1/N) Σ_k |CDF_pred(k) − CDF_true(k)|^r)^(1/r); then the batch mean
    (``reduction="mean"``), sum, or per-sample values (``"none"``). The batch is *not* pooled
    before the root (that variant, seen in some NIMA code, gives a different, larger value).
    Inputs are probabilities ([B, N], rows summing to 1), not logits.
    """
    if p_pred.shape != p_true.shape or p_pred.dim() != 2:
        raise ValueError(f"emd_loss expects two [B, N] tensors, got {tuple(p_pred.shape)} "
                         f"and {tuple(p_true.shape)}")
    cdf_diff = torch.cumsum(p_pred, dim=1) - torch.cumsum(p_true.to(p_pred.dtype), dim=1)
    power_mean = cdf_diff.abs().pow(r).mean(dim=1)
    # exact 0 for identical rows, and a finite (zero) gradient there instead of NaN
    tiny = torch.finfo(power_mean.dtype).tiny
    per_sample = torch.where(power_mean > 0, power_mean.clamp_min(tiny).pow(1.0 / r),
                             torch.zeros_like(power_mean))
    return _reduce(per_sample, reduction)


def kao_multitask_loss(outputs: dict[str, torch.Tensor], label: torch.Tensor, tags: torch.Tensor,
                       lam: float, *, aux_weight: float = 1.0,
                       task_weights: torch.Tensor | None = None,
                       omega_inv: torch.Tensor | None = None,
                       mtrl_weight: float | None = None) -> dict[str, torch.Tensor]:
    """Kao et al. Eq. 7: softmax cross-entropy + λ · Σ_m binary cross-entropy_m.

    Terms (each averaged over the batch; Eq. 7 sums over the N images, a constant factor):

    * ``aesthetic`` = −log p(y | x) (Eq. 4–5);
    * ``semantic`` = Σ_m BCE(z_m, σ(s_m)), summed over the M tags (Eq. 6). Eq. 7 as printed has
      ``(1 − z)(1 − log σ)``, a typo: this is the standard BCE ``−[z log σ + (1 − z) log(1 − σ)]``;
    * ``aux`` (enhanced MTCNN, Eq. 12) = cross-entropy of ``aux_aesthetic_logits``, weight
      ``aux_weight`` (1 in Eq. 12), present when the outputs have it;
    * ``mtrl`` (Eq. 11) = tr(W Ω⁻¹ Wᵀ) when ``task_weights`` W and ``omega_inv`` are given, with
      weight ``mtrl_weight``. Eq. 11 adds it once to data terms summed over N images; with batch
      means the faithful weight is 1/N (N = training images) — pass it explicitly.

    ``total`` = aesthetic + λ·semantic [+ aux_weight·aux] [+ mtrl_weight·mtrl]. λ ∈ {0, 1/M, 2/M,
    1} in Table I (1/M is the paper's "balanced" strategy, 2/M for the enhanced net). The priors
    ΘᵀΘ + WᵀW of Eq. 7 are weight decay in the optimiser; (λ − µ)² is constant for a fixed λ.
    """
    logits = outputs["aesthetic_logits"]
    aesthetic = F.cross_entropy(logits, label)
    tag_logits = outputs["tag_logits"]
    if tag_logits.shape != tags.shape:
        raise ValueError(f"tag_logits {tuple(tag_logits.shape)} and tags {tuple(tags.shape)} differ")
    if tags.shape[1]:
        bce = F.binary_cross_entropy_with_logits(tag_logits, tags.to(tag_logits.dtype),
                                                 reduction="none")
        semantic = bce.mean(dim=0).sum()
    else:
        semantic = tag_logits.sum() * 0.0  # no tags: the term vanishes (keeps the graph)
    terms = {"aesthetic": aesthetic, "semantic": semantic}
    total = aesthetic + lam * semantic
    if "aux_aesthetic_logits" in outputs:
        terms["aux"] = F.cross_entropy(outputs["aux_aesthetic_logits"], label)
        total = total + aux_weight * terms["aux"]
    if omega_inv is not None or task_weights is not None:
        if omega_inv is None or task_weights is None or mtrl_weight is None:
            raise ValueError("the MTRL term needs task_weights, omega_inv and mtrl_weight together")
        terms["mtrl"] = trace_regulariser(task_weights, omega_inv)
        total = total + mtrl_weight * terms["mtrl"]
    terms["total"] = total
    return terms


def activation_loss(pooled: torch.Tensor, target: torch.Tensor, kind: str = "l1",
                    normalise: str | None = "auto", reduction: str = "mean") -> torch.Tensor:
    """SAF activation loss between the M group-pooled values and the score distribution.

    ``kind``: ``"l1"`` Σ_m |a_m − p_m| (the paper's choice, a "weak constraint"), ``"kl"``
    KL(p ‖ a) = Σ p log(p / a), or ``"js"`` the Jensen–Shannon divergence (natural log) — the
    variants of the comparative study. Per sample summed over the M bins, then batch mean.

    **Choice** ``normalise``: how pooled values become comparable to probabilities —
    ``None`` (raw values), ``"softmax"``, ``"sum"`` (a / Σ a; values must be ≥ 0) or ``"auto"``:
    raw for L1 (a per-value constraint), softmax for KL/JS (which need distributions).
    """
    if pooled.shape != target.shape or pooled.dim() != 2:
        raise ValueError(f"activation_loss expects two [B, M] tensors, got {tuple(pooled.shape)} "
                         f"and {tuple(target.shape)}")
    if kind not in ("l1", "kl", "js"):
        raise ValueError(f"activation loss kind must be 'l1', 'kl' or 'js', got {kind!r}")
    if normalise == "auto":
        normalise = None if kind == "l1" else "softmax"
    if normalise == "softmax":
        a = torch.softmax(pooled, dim=1)
    elif normalise == "sum":
        a = pooled / pooled.sum(dim=1, keepdim=True).clamp_min(1e-12)
    elif normalise is None:
        a = pooled
    else:
        raise ValueError(f"normalise must be None, 'softmax', 'sum' or 'auto', got {normalise!r}")
    p = target.to(a.dtype)
    if kind == "l1":
        per_sample = (a - p).abs().sum(dim=1)
    elif kind == "kl":
        per_sample = _kl(p, a)
    else:
        m = 0.5 * (p + a)
        per_sample = 0.5 * _kl(p, m) + 0.5 * _kl(a, m)
    return _reduce(per_sample, reduction)


def reconstruction_loss(recon: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """SAF reconstruction loss: mean squared error over pixels and channels (**Choice**: MSE on
    the ImageNet-normalised input the encoder sees)."""
    if recon.shape != image.shape:
        raise ValueError(f"reconstruction {tuple(recon.shape)} and image {tuple(image.shape)} differ")
    return F.mse_loss(recon, image)


def saf_loss(outputs: dict[str, torch.Tensor], dist: torch.Tensor, image: torch.Tensor, *,
             alpha: float = SAF_ALPHA, beta: float = SAF_BETA, activation: str = "l1",
             normalise: str | None = "auto") -> dict[str, torch.Tensor]:
    """SAF total loss = EMD + α·reconstruction + β·activation.

    Ablations: β = 0 is "w/o Act" (the activation term is still reported); the joint regressor
    ("w/o Split") is a model switch. Models without a decoder / fusing module need α = 0 / β = 0
    (an error otherwise — never silently drop a requested term).
    **Choice:** α = β = 0.1 by default (EMD ≈ 0.1, MSE ≈ 0.1–1, L1 ≈ 0.1–1 at these scales).
    """
    emd = emd_loss(torch.softmax(outputs["dist_logits"], dim=1), dist)
    zero = emd.new_zeros(())
    terms = {"emd": emd}
    if "recon" in outputs:
        terms["recon"] = reconstruction_loss(outputs["recon"], image)
    elif alpha:
        raise ValueError(f"alpha={alpha} but the model has no decoder (no 'recon' output): "
                         "pass alpha=0")
    else:
        terms["recon"] = zero
    if "group_pooled" in outputs:
        terms["act"] = activation_loss(outputs["group_pooled"], dist, activation, normalise)
    elif beta:
        raise ValueError(f"beta={beta} but the model has no fusing module (no 'group_pooled' "
                         "output): pass beta=0")
    else:
        terms["act"] = zero
    terms["total"] = emd + alpha * terms["recon"] + beta * terms["act"]
    return terms


def _kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ p log(p / q) per row, with 0 log 0 = 0 and q floored at 1e-12."""
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q.clamp_min(1e-12))).sum(dim=1)


def _reduce(x: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    if reduction == "none":
        return x
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
