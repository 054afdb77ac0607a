"""Multi-task relationship learning (Kao et al. Sec. III-B/C, Eq. 10–11; Zhang & Yeung's MTRL).

The task-specific layer W = [W_a, W_s] ([d, T], T = C + M sub-tasks, one column each) gets the
matrix-variate normal prior MN(0, I ⊗ Ω), i.e. the term tr(W Ω⁻¹ Wᵀ) in Eq. 11 with Ω ⪰ 0,
tr Ω = 1. Training alternates: (1) SGD on Θ, W with Ω fixed (add :func:`trace_regulariser` to the
loss); (2) W fixed, the closed-form update Ω = (WᵀW)^½ / tr((WᵀW)^½) (:func:`update_task_covariance`).

Numerics: the square root comes from an eigendecomposition of WᵀW + εI in float64 (eigenvalues
clamped at 0), which keeps Ω exactly symmetric PSD with trace 1; Ω⁻¹ reuses the same eigenvectors.
**Choice:** ε is relative — ``eps`` × the mean eigenvalue tr(WᵀW)/T — so Ω does not depend on
the scale of W and stays invertible when d < T or columns are collinear.
"""
from __future__ import annotations

import torch


def _eigh_gram(W: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    if W.dim() != 2:
        raise ValueError(f"W must be a [d, T] matrix, got shape {tuple(W.shape)}")
    W64 = W.detach().to(torch.float64)
    gram = W64.T @ W64
    T = gram.shape[0]
    scale = torch.trace(gram) / T
    if not torch.isfinite(scale) or scale <= 0:
        raise ValueError("W is zero or not finite: the task covariance is undefined")
    gram = 0.5 * (gram + gram.T) + eps * scale * torch.eye(T, dtype=torch.float64, device=W.device)
    evals, evecs = torch.linalg.eigh(gram)
    return evals.clamp_min(0.0), evecs


def update_task_covariance(W: torch.Tensor, eps: float = 1e-8, *, return_inverse: bool = False):
    """Ω = (WᵀW)^½ / tr((WᵀW)^½) (Sec. III-C), a [T, T] float64 tensor, symmetric PSD, trace 1.

    With ``return_inverse=True`` returns ``(Ω, Ω⁻¹)``, Ω⁻¹ from the same eigenpairs.
    ``W`` is treated as a constant (no gradient flows through Ω).
    """
    evals, evecs = _eigh_gram(W, eps)
    root = evals.sqrt()
    root = root / root.sum()
    omega = (evecs * root) @ evecs.T
    omega = 0.5 * (omega + omega.T)
    if not return_inverse:
        return omega
    omega_inv = (evecs / root) @ evecs.T
    return omega, 0.5 * (omega_inv + omega_inv.T)


def task_covariance_inverse(omega: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Ω⁻¹ via Ω's eigendecomposition; eigenvalues below ``eps`` × mean eigenvalue are raised to it."""
    omega64 = omega.detach().to(torch.float64)
    omega64 = 0.5 * (omega64 + omega64.T)
    evals, evecs = torch.linalg.eigh(omega64)
    floor = eps * torch.trace(omega64) / omega64.shape[0]
    evals = evals.clamp_min(floor)
    inv = (evecs / evals) @ evecs.T
    return 0.5 * (inv + inv.T)


def trace_regulariser(W: torch.Tensor, omega_inv: torch.Tensor) -> torch.Tensor:
    """tr(W Ω⁻¹ Wᵀ) (Eq. 10/11): differentiable in W (gradient 2·W·Ω⁻¹), Ω⁻¹ held fixed."""
    if omega_inv.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"Ω⁻¹ has shape {tuple(omega_inv.shape)}, W has {W.shape[1]} task columns")
    omega_inv = omega_inv.detach().to(dtype=W.dtype, device=W.device)
    return ((W @ omega_inv) * W).sum()


def task_correlation(omega: torch.Tensor) -> torch.Tensor:
    """Correlation between sub-tasks, Ω_ij / sqrt(Ω_ii Ω_jj) (Fig. 9)."""
    d = torch.diagonal(omega).sqrt()
    return omega / (d[:, None] * d[None, :])
