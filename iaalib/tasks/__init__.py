"""How each family is trained: the loss of one step and what happens between steps and epochs.

The generic :class:`~iaalib.engine.trainer.Trainer` names no paper: it calls a task object
(:class:`~iaalib.tasks.base.Task`) for the loss of every micro-batch and at the end of every
optimiser step and epoch, and checkpoints the task's state with the model's.

* :mod:`iaalib.tasks.kao` — Kao et al.: Eq. 7/12 with the weight λ, the MTRLCNN's alternating
  Ω update (Eq. 11, Sec. III-C) and Table I's semantic early stopping.
* :mod:`iaalib.tasks.distribution` — SAF (EMD + α·reconstruction + β·activation) and NIMA (EMD).

:func:`build_task` maps an experiment config (:mod:`iaalib.engine.config`, the only part of the
engine a task reads) to its task; the maths lives in :mod:`iaalib.losses` and
:mod:`iaalib.models.mtrl`.
"""
from __future__ import annotations

from typing import Any

from ..engine.config import resolve_lambda
from ..models import KAO_FAMILIES
from .base import Task
from .distribution import NimaTask, SafTask
from .kao import EarlyStopping, KaoTask, MTRLSchedule

__all__ = ["Task", "KaoTask", "MTRLSchedule", "EarlyStopping", "SafTask", "NimaTask",
           "build_task"]


def build_task(cfg: Any, *, num_tags: int, num_train: int) -> Task:
    """The task of an :class:`~iaalib.engine.config.ExperimentConfig` (read, not imported).

    ``num_tags`` is M (the training manifest's tag columns); ``num_train`` the number of training
    images (the MTRL weight 1/N of Eq. 11).
    """
    family, loss = cfg.model.family, cfg.loss
    if family in KAO_FAMILIES:
        mtrl = None
        if loss.mtrl.enabled:
            mtrl = MTRLSchedule(every=loss.mtrl.update_every, unit=loss.mtrl.update_unit,
                                weight=(loss.mtrl.weight if loss.mtrl.weight is not None
                                        else 1.0 / max(1, num_train)), eps=loss.mtrl.eps)
        early = None
        if loss.semantic_early_stop.enabled:
            early = EarlyStopping(patience=loss.semantic_early_stop.patience,
                                  min_delta=loss.semantic_early_stop.min_delta)
        return KaoTask(lam=resolve_lambda(loss.lam, num_tags), mtrl=mtrl, early_stop=early)
    if family == "saf":
        return SafTask(alpha=loss.alpha, beta=loss.beta, activation=loss.activation)
    if family == "nima":
        return NimaTask()
    raise ValueError(f"no training task for model family {family!r}")
