"""Training Kao et al.'s networks: Eq. 7/12 with λ, MTRL's alternating Ω update, early stopping.

* **Loss** (Eq. 7; Eq. 12 for the enhanced MTCNN): softmax cross-entropy of the aesthetic class
  + λ · Σ_m BCE of the M tags (:func:`iaalib.losses.kao_multitask_loss`). λ = 1/M balances the
  two tasks (Sec. III-C); λ = 0 is the single-task STCNN.
* **MTRLCNN** (Eq. 11, Sec. III-C): the loss adds ``weight``·tr(W Ω⁻¹ Wᵀ) over the task-specific
  layer W = [W_a | W_s] (``model.task_weights()``), and the optimisation alternates: SGD on Θ, W
  with Ω fixed, then the closed-form Ω = (WᵀW)^½ / tr((WᵀW)^½)
  (:func:`iaalib.models.mtrl.update_task_covariance`) with Θ, W fixed, every ``every``
  epochs or steps. **Choice:** Ω starts as I/(C+M) (trace 1, tasks independent); the paper says
  only "repeat until convergence". Every Ω is kept (``omega.npy``, Fig. 9).
* **Early stopping of the semantic task** (Table I's last column): λ until the training semantic
  loss plateaus, then λ = 0. **Choice:** plateau = the epoch-mean semantic loss has not improved
  by more than ``min_delta`` (relative) for ``patience`` epochs; the paper gives no criterion.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import losses
from .._io import atomic_write, write_json
from ..models import mtrl
from .base import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MTRLSchedule:
    """When Ω is updated (``unit`` "epoch" or "step", every ``every``) and how strongly the trace
    prior weighs (``weight``; 1/N is Eq. 11's weight for batch-mean data terms)."""
    every: int = 1
    unit: str = "epoch"
    weight: float = 1.0
    eps: float = 1e-8


@dataclass(frozen=True)
class EarlyStopping:
    """Table I's plateau rule for the semantic loss (see the module docstring)."""
    patience: int = 1
    min_delta: float = 0.01


class KaoTask(Task):
    """λ-weighted multi-task loss, optional MTRL and optional early stopping of the semantic task."""

    best_metric = "acc"

    def __init__(self, *, lam: float, mtrl: MTRLSchedule | None = None,
                 early_stop: EarlyStopping | None = None):
        self.lam, self.mtrl, self.early_stop = float(lam), mtrl, early_stop
        self.omega_inv: torch.Tensor | None = None
        self.state: dict[str, Any] = {
            "mtrl": {"omega": None, "omega_history": [], "omega_steps": []},
            "early_stop": {"best": None, "bad_epochs": 0, "stopped_after_epoch": None},
        }

    # ------------------------------------------------------------------ trainer hooks
    def bind(self, model, *, num_train: int) -> None:
        super().bind(model, num_train=num_train)
        if self.mtrl is not None:
            t = model.task_weights().shape[1]
            self._set_omega(torch.eye(t, dtype=torch.float64) / t, epoch=0, step=0)

    def current_lambda(self) -> float:
        """λ now: 0 once early stopping has switched the semantic task off."""
        return 0.0 if self.state["early_stop"]["stopped_after_epoch"] is not None else self.lam

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]
             ) -> dict[str, torch.Tensor]:
        extra = {}
        if self.mtrl is not None:
            extra = {"task_weights": self.model.task_weights(), "omega_inv": self.omega_inv,
                     "mtrl_weight": self.mtrl.weight}
        return losses.kao_multitask_loss(outputs, batch["label"], batch["tags"],
                                         self.current_lambda(), **extra)

    def end_step(self, step: int, epoch: int) -> None:
        if self.mtrl is not None and self.mtrl.unit == "step" and step % self.mtrl.every == 0:
            self.update_omega(epoch=epoch, step=step)

    def end_epoch(self, epoch: int, step: int, train_losses: dict[str, float]) -> dict[str, Any]:
        row: dict[str, Any] = {"lam": self.current_lambda()}
        if self.mtrl is not None and self.mtrl.unit == "epoch" and (epoch + 1) % self.mtrl.every == 0:
            self.update_omega(epoch=epoch + 1, step=step)
        self._update_early_stop(train_losses.get("semantic"), epoch)
        row["semantic_stopped"] = self.state["early_stop"]["stopped_after_epoch"] is not None
        return row

    def state_dict(self) -> dict[str, Any]:
        return self.state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state
        if self.mtrl is not None and state["mtrl"]["omega"] is not None:
            self.omega_inv = mtrl.task_covariance_inverse(state["mtrl"]["omega"], eps=self.mtrl.eps)

    def write_files(self, run_dir: Path) -> None:
        """``omega.npy`` ([K, C+M, C+M], every Ω so far) and ``omega_steps.json`` (MTRL only)."""
        m = self.state["mtrl"]
        if not m["omega_history"]:
            return
        with atomic_write(Path(run_dir) / "omega.npy", "wb") as fh:
            np.save(fh, torch.stack(m["omega_history"]).numpy())
        write_json(Path(run_dir) / "omega_steps.json", m["omega_steps"])

    # ------------------------------------------------------------------ Eq. 11 and Table I
    def update_omega(self, *, epoch: int, step: int) -> None:
        """Fix Θ, W and set Ω = (WᵀW)^½ / tr((WᵀW)^½) (Sec. III-C)."""
        with torch.no_grad():
            w = self.model.task_weights().detach().to("cpu", torch.float64)
        self._set_omega(mtrl.update_task_covariance(w, eps=self.mtrl.eps), epoch=epoch, step=step)

    def _set_omega(self, omega: torch.Tensor, *, epoch: int, step: int) -> None:
        omega = omega.detach().to("cpu", torch.float64)
        m = self.state["mtrl"]
        m["omega"] = omega
        m["omega_history"].append(omega.clone())
        m["omega_steps"].append({"epoch": epoch, "step": step})
        self.omega_inv = mtrl.task_covariance_inverse(omega, eps=self.mtrl.eps)

    def _update_early_stop(self, semantic_loss: float | None, epoch: int) -> None:
        rule, es = self.early_stop, self.state["early_stop"]
        if rule is None or es["stopped_after_epoch"] is not None or semantic_loss is None:
            return
        if es["best"] is None or semantic_loss < es["best"] * (1.0 - rule.min_delta):
            es["best"], es["bad_epochs"] = semantic_loss, 0
        else:
            es["bad_epochs"] += 1
            if es["bad_epochs"] >= rule.patience:
                es["stopped_after_epoch"] = epoch + 1
                log.info("semantic loss plateaued after epoch %d: λ = 0 from now on", epoch + 1)
