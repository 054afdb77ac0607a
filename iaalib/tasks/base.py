"""The interface between the generic trainer and a family's training behaviour."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn


class Task:
    """One family's training behaviour. The trainer calls, in this order:

    * :meth:`bind` once, with the (unwrapped) model and the number of training images;
    * :meth:`loss` for every micro-batch (model outputs as float32, the batch on the device);
    * :meth:`end_step` after every optimiser step (1-based step count);
    * :meth:`end_epoch` after every epoch, with the epoch-mean training loss terms; it returns
      extra fields for the epoch's row of ``history.jsonl``;
    * :meth:`state_dict` / :meth:`load_state_dict` with every checkpoint (exact resume);
    * :meth:`write_files` after every epoch on the main rank (e.g. MTRL's ``omega.npy``).

    ``best_metric`` is the validation metric that selects ``best.pt`` when the config says "auto".
    """

    best_metric = "srcc_mean"

    def bind(self, model: nn.Module, *, num_train: int) -> None:
        self.model = model

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]
             ) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def end_step(self, step: int, epoch: int) -> None:
        pass

    def end_epoch(self, epoch: int, step: int, train_losses: dict[str, float]) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def write_files(self, run_dir: Path) -> None:
        pass
