"""MTRL (Kao Eq. 10–11): the closed-form Ω update, its inverse, the trace term, Fig. 9 correlations."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from iaalib.models.mtrl import (task_correlation, task_covariance_inverse, trace_regulariser,
                                update_task_covariance)


def _W(d=64, t=31, seed=0):
    return torch.randn(d, t, generator=torch.Generator().manual_seed(seed))


def test_omega_is_symmetric_psd_with_unit_trace():
    omega = update_task_covariance(_W())
    assert omega.dtype == torch.float64 and omega.shape == (31, 31)
    assert torch.equal(omega, omega.T)
    assert torch.linalg.eigvalsh(omega).min() >= -1e-12
    assert torch.trace(omega).item() == pytest.approx(1.0, abs=1e-12)


def test_omega_equals_scipy_sqrtm():
    W = _W().double()
    gram = (W.T @ W).numpy()
    root = np.real(scipy.linalg.sqrtm(gram))
    expected = root / np.trace(root)
    np.testing.assert_allclose(update_task_covariance(W).numpy(), expected, atol=1e-7)


def test_orthogonal_task_vectors_give_diagonal_proportional_to_norms():
    q, _ = torch.linalg.qr(torch.randn(40, 6, dtype=torch.float64))
    norms = torch.tensor([0.5, 1.0, 2.0, 3.0, 0.1, 7.0], dtype=torch.float64)
    omega = update_task_covariance(q * norms)
    # exact up to the relative ε·mean-eigenvalue ridge (1e-8 here)
    torch.testing.assert_close(torch.diagonal(omega), norms / norms.sum(), atol=1e-7, rtol=0)
    torch.testing.assert_close(omega - torch.diag(torch.diagonal(omega)),
                               torch.zeros(6, 6, dtype=torch.float64), atol=1e-9, rtol=0)


def test_invariant_to_rescaling_W():
    W = _W().double()
    torch.testing.assert_close(update_task_covariance(W), update_task_covariance(1e3 * W),
                               atol=1e-10, rtol=1e-8)
    torch.testing.assert_close(update_task_covariance(W), update_task_covariance(1e-3 * W),
                               atol=1e-10, rtol=1e-8)


def test_rank_deficient_W_stays_finite_psd_and_invertible():
    W = _W(d=8, t=31)  # d < T: WᵀW has rank 8
    omega, omega_inv = update_task_covariance(W, return_inverse=True)
    assert torch.isfinite(omega).all() and torch.isfinite(omega_inv).all()
    assert torch.linalg.eigvalsh(omega).min() > 0
    assert torch.trace(omega).item() == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(omega @ omega_inv, torch.eye(31, dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_inverse_from_same_eigenpairs_and_from_omega_agree():
    omega, inv = update_task_covariance(_W(), return_inverse=True)
    torch.testing.assert_close(omega @ inv, torch.eye(31, dtype=torch.float64), atol=1e-8, rtol=0)
    torch.testing.assert_close(task_covariance_inverse(omega), inv, atol=1e-6, rtol=1e-8)
    np.testing.assert_allclose(inv.numpy(), np.linalg.inv(omega.numpy()), rtol=1e-6)


def test_closed_form_minimises_the_trace_term():
    """min over Ω ⪰ 0, tr Ω = 1 of tr(W Ω⁻¹ Wᵀ) is (tr (WᵀW)^½)², reached at the update."""
    W = _W(d=20, t=6).double()
    _, inv = update_task_covariance(W, return_inverse=True)
    best = trace_regulariser(W, inv).item()
    root_trace = np.trace(np.real(scipy.linalg.sqrtm((W.T @ W).numpy())))
    assert best == pytest.approx(root_trace ** 2, rel=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.normal(size=(6, 6))
        other = a @ a.T + 1e-3 * np.eye(6)
        other /= np.trace(other)
        assert trace_regulariser(W, torch.from_numpy(np.linalg.inv(other))).item() >= best - 1e-9
    identity = torch.eye(6, dtype=torch.float64) * 6  # Ω = I/T (independent tasks)
    assert trace_regulariser(W, identity).item() > best


def test_trace_term_value_and_gradient_closed_form():
    W = _W(d=16, t=5).double().requires_grad_(True)
    _, inv = update_task_covariance(W, return_inverse=True)
    value = trace_regulariser(W, inv)
    expected = np.trace(W.detach().numpy() @ inv.numpy() @ W.detach().numpy().T)
    assert value.item() == pytest.approx(expected, rel=1e-10)
    value.backward()
    torch.testing.assert_close(W.grad, 2 * W.detach() @ inv)
    with pytest.raises(ValueError, match="task columns"):
        trace_regulariser(W, torch.eye(4, dtype=torch.float64))


def test_omega_update_does_not_track_gradients():
    W = _W(d=16, t=5).requires_grad_(True)
    assert not update_task_covariance(W).requires_grad


def test_task_correlation_equals_numpy_corrcoef():
    x = np.random.default_rng(1).normal(size=(7, 200))
    x[1] = -0.8 * x[0] + 0.2 * x[1]
    corr = task_correlation(torch.from_numpy(np.cov(x))).numpy()
    np.testing.assert_allclose(corr, np.corrcoef(x), atol=1e-12)
    assert corr[0, 1] < -0.9


def test_zero_W_is_an_error():
    with pytest.raises(ValueError, match="zero"):
        update_task_covariance(torch.zeros(4, 3))
