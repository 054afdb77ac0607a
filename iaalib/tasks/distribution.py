"""Training the distribution models: SAF ("Our Proposal") and its baseline NIMA.

* SAF: total = EMD + α·reconstruction + β·activation (:func:`iaalib.losses.saf_loss`; the
  activation loss is L1, KL or JS, Table 4). The reconstruction target is the network's input.
* NIMA (Talebi & Milanfar): total = EMD between the predicted and the ground-truth 10-bin
  distribution (:func:`iaalib.losses.emd_loss`).
"""
from __future__ import annotations

from typing import Any

import torch

from .. import losses
from .base import Task


class SafTask(Task):
    """SAF's three loss terms with weights ``alpha`` (reconstruction) and ``beta`` (activation)."""

    def __init__(self, *, alpha: float, beta: float, activation: str = "l1"):
        self.alpha, self.beta, self.activation = float(alpha), float(beta), activation

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]
             ) -> dict[str, torch.Tensor]:
        return losses.saf_loss(outputs, batch["dist"], batch["image"], alpha=self.alpha,
                               beta=self.beta, activation=self.activation)


class NimaTask(Task):
    """NIMA's EMD loss on the softmax of ``dist_logits``."""

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]
             ) -> dict[str, torch.Tensor]:
        emd = losses.emd_loss(torch.softmax(outputs["dist_logits"].float(), dim=1), batch["dist"])
        return {"total": emd, "emd": emd}
