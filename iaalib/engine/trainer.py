"""The training engine: one generic loop for every model, checkpoint-or-train, exact resume.

``train(cfg)`` returns the finished run for ``cfg``'s config hash without training (unless
``force``), resumes an unfinished one from ``checkpoints/last.pt``, or trains from scratch
(:func:`plan_run` says which).

* What is minimised, and what happens between steps and epochs, is the family's task object
  (:mod:`iaalib.tasks`: Kao's λ, MTRL's Ω updates and early stopping; SAF's and NIMA's losses).
  The loop itself names no paper.
* Checkpoints every epoch and every ``checkpoint_every`` optimiser steps hold model, optimiser,
  scheduler, RNG states, sampler position, epoch accumulators and the task's state, so a run
  killed at any point resumes to the same result as an uninterrupted one (exactly, on the CPU
  with ``deterministic: true``).
* A NaN/Inf loss term stops the run with :class:`TrainingDivergedError` naming the step and the
  term; the last good checkpoint stays and ``run.json`` records the reason.
* DDP: ``torchrun --nproc_per_node N -m iaalib.cli train --config CFG``; the bucket sampler shards
  whole micro-batches over ranks, rank 0 logs and writes files, predictions are gathered.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from .._io import atomic_write, read_json, write_json
from ..errors import CheckpointError, IaaError, TrainingDivergedError
from ..models.factory import build_model, pretrained_part
from ..paths import runs_home
from ..tasks import build_task
from .checkpoint import (init_weights_from, load_checkpoint, rng_state, save_checkpoint,
                         set_rng_state)
from .config import ExperimentConfig, OptimConfig
from .device import (configure_torch, peak_memory, reset_peak_memory, select_device, use_amp,
                     use_channels_last)
from .distributed import (DistInfo, all_gather_objects, all_reduce_sum, barrier,
                          broadcast_object, init_distributed)
from .evaluate import compute_metrics, merge_predictions, predict
from .loaders import build_batch_sampler, build_dataset, make_loader
from .runrecord import Run, manifest_checksums, new_record, now, update_record, write_history

log = logging.getLogger(__name__)

#: Validation metrics where lower is better (for ``best_metric``).
LOWER_IS_BETTER = ("emd",)
_RUN_FILES = ("run.json", "history.jsonl", "metrics.json", "predictions.csv", "omega.npy",
              "omega_steps.json", "config.yaml")


def default_run_dir(cfg: ExperimentConfig) -> Path:
    """``$IAA_HOME/runs/<name>-<first 10 hex of the config hash>``; an existing directory of the
    same config hash under another name is returned instead (the name is presentation only, so
    two chapters that name one run differently share it)."""
    h = cfg.config_hash()[:10]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", cfg.name).strip("-") or "run"
    own = runs_home() / f"{slug}-{h}"
    if own.is_dir():
        return own
    for other in sorted(runs_home().glob(f"*-{h}")):
        if (other / "run.json").is_file() and \
                read_json(other / "run.json").get("config_hash") == cfg.config_hash():
            return other
    return own


# ---------------------------------------------------------------------- entry point
def train(cfg: ExperimentConfig, *, out: str | Path | None = None, force: bool = False,
          quiet: bool = False, resume: bool = False) -> Run:
    """Checkpoint-or-train ``cfg`` into ``out`` (default :func:`default_run_dir`).

    A finished run of the same config hash (and the same manifest sha256s) is returned as is
    unless ``force``; an unfinished run resumes from ``checkpoints/last.pt``; ``resume=True``
    insists on resuming. A run directory holding another config is an error unless ``force``.
    """
    dinfo = init_distributed(select_device(cfg.device).type)
    run_dir = Path(out) if out is not None else default_run_dir(cfg)
    action: str | IaaError | None = None
    if dinfo.is_main:
        try:
            action = plan_run(cfg, run_dir, force=force, resume=resume)
        except IaaError as e:  # every rank raises it, none waits forever
            action = e
    action = broadcast_object(action, dinfo)
    if isinstance(action, IaaError):
        raise action
    if action == "reuse":
        log.info("reusing finished run %s", run_dir)
        return Run(run_dir)
    if action == "fresh" and dinfo.is_main:
        _clear_run(run_dir)
    barrier(dinfo)
    trainer = Trainer(cfg, run_dir, dinfo=dinfo, quiet=quiet or cfg.quiet)
    try:
        trainer.start(resume=action == "resume")
        trainer.fit()
        trainer.finish()
    except TrainingDivergedError as e:
        if dinfo.is_main:  # deterministic: training again diverges again, so it is a result
            update_record(run_dir, status="diverged", reason=str(e), diverged_at=e.where,
                          finished=now())
        raise
    except BaseException as e:
        if dinfo.is_main:
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            update_record(run_dir, status="failed", reason=reason, finished=now())
        raise
    return Run(run_dir)


def plan_run(cfg: ExperimentConfig, run_dir: str | Path | None = None, *, force: bool = False,
             resume: bool = False) -> str:
    """What :func:`train` would do with ``cfg`` in ``run_dir`` (default :func:`default_run_dir`):
    "reuse" (a finished or diverged run of the same config hash and manifest sha256s: training is
    deterministic, so a diverged run would diverge again), "resume" or "fresh".
    A directory holding another config raises :class:`IaaError` unless ``force``."""
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    record_file = run_dir / "run.json"
    if not record_file.is_file():
        if resume:
            raise IaaError(f"{run_dir}: nothing to resume (no run.json)")
        return "fresh"
    rec = read_json(record_file)
    h = cfg.config_hash()
    if rec.get("config_hash") != h:
        if force:
            return "fresh"
        raise IaaError(f"{run_dir} holds a run of another config (hash "
                       f"{str(rec.get('config_hash'))[:10]}, this config {h[:10]}); "
                       "choose another --out or pass --force to overwrite it")
    if force:
        return "fresh"
    if rec.get("manifest_sha256") != manifest_checksums(cfg):
        log.warning("%s: the manifests changed since this run started; training again", run_dir)
        return "fresh"
    if rec.get("status") in ("finished", "diverged"):
        return "reuse"
    if (run_dir / "checkpoints" / "last.pt").is_file():
        return "resume"
    if resume:
        raise IaaError(f"{run_dir}: nothing to resume (no checkpoints/last.pt)")
    return "fresh"


def _clear_run(run_dir: Path) -> None:
    for name in _RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


# ---------------------------------------------------------------------- building blocks
def parameter_groups(model: torch.nn.Module, cfg: ExperimentConfig) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: one, or (``optim.pretrained_lr_mult`` ≠ 1 and a
    pretrained backbone, :func:`iaalib.models.factory.pretrained_part`) the new layers at ``lr``
    followed by the pretrained ones at ``lr × pretrained_lr_mult``. Frozen parameters
    (``requires_grad`` off) are left out."""
    trained = [p for p in model.parameters() if p.requires_grad]
    part = pretrained_part(model, cfg.model) if cfg.optim.pretrained_lr_mult != 1.0 else None
    if part is None:
        return [{"params": trained}]
    old = {id(p) for p in part.parameters()}
    return [{"params": [p for p in trained if id(p) not in old]},
            {"params": [p for p in trained if id(p) in old],
             "lr": cfg.optim.lr * cfg.optim.pretrained_lr_mult}]


def build_optimizer(optim: OptimConfig, params) -> torch.optim.Optimizer:
    """SGD with momentum (both papers) or Adam; ``weight_decay`` is Kao's Gaussian prior.

    The update runs as torch's fused kernel where the parameters' device has one (CPU and CUDA):
    the same rule, one kernel for all tensors instead of a dozen small ops per tensor. On the
    demo's CPU an Adam step took 0.28 ms against 0.93 for the Kao trunk and 1.86 against 6.41
    for the fine-tuned EfficientNet-Lite0 (``benchmarks/results/train_overhead.json``). It rounds
    differently from the per-tensor step, so results moved by about a seed's worth once."""
    params = list(params)
    fused = _fused_ok(params)
    if optim.name == "sgd":
        return torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum,
                               weight_decay=optim.weight_decay, fused=fused)
    return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay, fused=fused)


def _fused_ok(params) -> bool | None:
    """True when every parameter is a floating tensor on a CPU or CUDA device (where torch has a
    fused optimiser kernel); None (torch's default) otherwise."""
    tensors = [p for g in params for p in (g["params"] if isinstance(g, dict) else [g])]
    ok = bool(tensors) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda")
                               for p in tensors)
    return True if ok else None


def ema_decay(ema_epochs: float, steps_per_epoch: int) -> float:
    """The per-step decay of a moving average whose time constant is ``ema_epochs`` epochs:
    1 − 1 / (ema_epochs × steps_per_epoch), 0 (no averaging) when that is a step or less."""
    return max(0.0, 1.0 - 1.0 / (ema_epochs * steps_per_epoch)) if ema_epochs > 0 else 0.0


def debiased_ema(decay: float):
    """``AveragedModel``'s ``multi_avg_fn`` for a moving average without start-up bias: after the
    weights w₁ … wₙ of n steps the average is Σₖ dⁿ⁻ᵏ·wₖ / Σₖ dⁿ⁻ᵏ (d = ``decay``), i.e. the
    update moves it towards wₙ by (1 − d) / (1 − dⁿ) (as Adam corrects its moments). torch's own
    EMA gives w₁ the weight dⁿ⁻¹ of every step before it, a third of the average after 55 steps
    at d = 0.98, which a short fine-tuning run of the demo would notice."""
    @torch.no_grad()
    def update(averaged, current, n_averaged):
        rate = (1 - decay) / (1 - decay ** (int(n_averaged) + 1))  # n_averaged: steps before
        for a, c in zip(averaged, current):
            if a.is_floating_point():
                a.lerp_(c, rate)
            else:  # counters (batch norm's num_batches_tracked)
                a.copy_(c)
    return update


def build_scheduler(optim: OptimConfig, optimizer: torch.optim.Optimizer, epochs: int):
    """Per-epoch learning-rate schedule (None = constant)."""
    if optim.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=optim.step_size,
                                               gamma=optim.gamma)
    if optim.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    return None


# ---------------------------------------------------------------------- the trainer
class Trainer:
    """Owns the model, optimiser, loaders and the resumable training state of one run."""

    def __init__(self, cfg: ExperimentConfig, run_dir: str | Path, *,
                 dinfo: DistInfo = DistInfo(), quiet: bool = False):
        self.cfg, self.run_dir, self.dinfo, self.quiet = cfg, Path(run_dir), dinfo, quiet
        if not cfg.data.train:
            raise IaaError("config data.train: a training manifest is required")
        self.device = select_device(cfg.device, local_rank=dinfo.local_rank)
        reset_peak_memory(self.device)
        self.threads = configure_torch(self.device, deterministic=cfg.deterministic,
                                       num_threads=cfg.num_threads,
                                       local_world_size=dinfo.local_world_size)
        self.amp = use_amp(self.device, cfg.amp, cpu=cfg.cpu_amp)  # training
        self.eval_amp = use_amp(self.device, cfg.amp)  # evaluation: fp32 on a CPU
        micro = dinfo.world_size * cfg.grad_accumulation
        if cfg.batch_size % micro:
            raise IaaError(f"batch_size {cfg.batch_size} is not divisible by world size × "
                           f"grad_accumulation = {micro}")
        self.micro_batch = cfg.batch_size // micro
        _seed_everything(cfg.seed)

        self.train_set = build_dataset(cfg, cfg.data.train, train=True, device=self.device)
        if len(self.train_set) == 0:
            raise IaaError(f"{cfg.data.train}: the training manifest has no images")
        self.tag_columns = list(self.train_set.tag_columns)
        self.val_set = (build_dataset(cfg, cfg.data.val, train=False, tag_columns=self.tag_columns,
                                      device=self.device) if cfg.data.val else None)
        self.num_tags = len(self.tag_columns)
        self._test_set = None
        self._final_test = None  # (metrics, predictions) of the last epoch's test pass
        self.model = build_model(cfg.model, num_tags=self.num_tags)
        self.init_report = (init_weights_from(self.model, cfg.model.init_from)
                            if cfg.model.init_from else None)
        self.model = self.model.to(self.device)
        self.channels_last = use_channels_last(self.model, self.device, cfg.channels_last)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if dinfo.enabled:
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        else:
            self.net = self.model
        _decorrelate_ranks(cfg.seed, dinfo.rank, 0)
        self.optimizer = build_optimizer(cfg.optim, parameter_groups(self.model, cfg))
        self.scheduler = build_scheduler(cfg.optim, self.optimizer, cfg.epochs)
        self.task = build_task(cfg, num_tags=self.num_tags, num_train=len(self.train_set))
        self.sampler = build_batch_sampler(self.train_set, cfg.data, self.micro_batch, shuffle=True,
                                           seed=cfg.seed, num_replicas=dinfo.world_size,
                                           rank=dinfo.rank)
        self.best_metric = self.task.best_metric if cfg.best_metric == "auto" else cfg.best_metric
        #: The weights a run's result is: an average of the trained ones (``optim.ema_epochs``).
        self.ema_decay_per_step = ema_decay(cfg.optim.ema_epochs,
                                            math.ceil(len(self.sampler) / cfg.grad_accumulation))
        self.ema = (AveragedModel(self.model, use_buffers=True,
                                  multi_avg_fn=debiased_ema(self.ema_decay_per_step))
                    if cfg.optim.ema_epochs else None)
        self.eval_model = self.ema.module if self.ema is not None else self.model
        self.state: dict[str, Any] = {}

    # ------------------------------------------------------------------ state
    def start(self, *, resume: bool) -> None:
        """Fresh state and run record, or the state of ``checkpoints/last.pt``."""
        cfg = self.cfg
        self.state = {
            "epoch": 0, "batch": 0, "step": 0, "history": [], "running": _fresh_running(),
            "best": {"metric": self.best_metric, "value": None, "epoch": None},
        }
        self.task.bind(self.model, num_train=len(self.train_set))
        if resume:
            self._restore(self.run_dir / "checkpoints" / "last.pt")
        elif self.dinfo.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.run_dir / "config.yaml")
            record = new_record(cfg, world_size=self.dinfo.world_size)
            if self.init_report is not None:
                record["init_from"] = self.init_report
            write_json(self.run_dir / "run.json", record)
        barrier(self.dinfo)

    def _restore(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        if ckpt.get("config_hash") != self.cfg.config_hash():
            raise CheckpointError(f"{path}: written for another config (hash "
                                  f"{str(ckpt.get('config_hash'))[:10]})")
        if self.ema is not None:
            self.model.load_state_dict(ckpt["train_model"])
            self.ema.module.load_state_dict(ckpt["model"])
            self.ema.n_averaged.fill_(int(ckpt["ema_n_averaged"]))
        else:
            self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if "task" not in ckpt:
            raise CheckpointError(f"{path}: written by an older iaalib (no task state); "
                                  "train again with --force")
        for key in ("epoch", "batch", "step", "history", "running", "best"):
            self.state[key] = ckpt[key]
        self.task.load_state_dict(ckpt["task"])
        set_rng_state(ckpt["rng"])  # rank 0's states (only rank 0 writes checkpoints)
        _decorrelate_ranks(self.cfg.seed, self.dinfo.rank, self.state["step"])
        where = {"epoch": self.state["epoch"], "batch": self.state["batch"],
                 "step": self.state["step"], "at": now()}
        log.info("resuming %s at epoch %d batch %d (step %d)", self.run_dir, where["epoch"],
                 where["batch"], where["step"])
        if self.dinfo.is_main:
            rec = read_json(self.run_dir / "run.json")
            update_record(self.run_dir, status="running", reason=None,
                          resumed=[*rec.get("resumed", []), where])

    def weights_state(self) -> dict[str, Any]:
        """What evaluation and fine-tuning read: the weights (averaged ones with
        ``optim.ema_epochs``), the config and where training is."""
        return {"config": self.cfg.to_dict(), "config_hash": self.cfg.config_hash(),
                "tag_columns": self.tag_columns, "model": self.eval_model.state_dict(),
                "task": self.task.state_dict(), **self.state}

    def checkpoint_state(self) -> dict[str, Any]:
        """What resuming needs on top: optimiser, scheduler and RNG states (and the trained
        weights behind an average)."""
        averaged = ({"train_model": self.model.state_dict(),
                     "ema_n_averaged": int(self.ema.n_averaged)} if self.ema is not None else {})
        return {**self.weights_state(), **averaged, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "rng": rng_state()}

    def _save(self, *, best: bool = False, resume: bool = True) -> None:
        """``last.pt`` for resuming (unless ``resume`` is False); ``best.pt`` holds the weights
        only (no optimiser state, which is as large as the weights for SGD with momentum and twice
        that for Adam)."""
        if not self.dinfo.is_main:
            return
        ckpt_dir = self.run_dir / "checkpoints"
        if resume:
            save_checkpoint(ckpt_dir / "last.pt", self.checkpoint_state())
        if best:
            save_checkpoint(ckpt_dir / "best.pt", self.weights_state())
        st = self.state
        if resume:
            log.debug("checkpoint saved: epoch=%d batch=%d step=%d%s", st["epoch"], st["batch"],
                      st["step"], " (best)" if best else "")
        elif best:
            log.debug("best weights saved: epoch=%d step=%d", st["epoch"], st["step"])

    # ------------------------------------------------------------------ loop
    def fit(self) -> None:
        cfg, st = self.cfg, self.state
        epochs = tqdm(range(st["epoch"], cfg.epochs), desc=cfg.name, unit="epoch",
                      initial=st["epoch"], total=cfg.epochs, disable=self._no_bars(), leave=True)
        for epoch in epochs:
            if self.step_limit_reached() and st["batch"] == 0:
                break
            self._train_epoch(epoch)
            self._end_epoch(epoch)

    def step_limit_reached(self) -> bool:
        """``max_steps`` optimiser steps are done (never, with ``max_steps`` 0)."""
        return 0 < self.cfg.max_steps <= self.state["step"]

    def _no_bars(self) -> bool:
        return self.quiet or not self.dinfo.is_main

    def _train_epoch(self, epoch: int) -> None:
        cfg, st = self.cfg, self.state
        start_batch = st["batch"]
        if start_batch == 0:
            st["running"] = _fresh_running()
        self.train_set.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        self.sampler.set_start_batch(0)
        n_batches = len(self.sampler)
        self.sampler.set_start_batch(start_batch)
        loader = make_loader(self.train_set, self.sampler, num_workers=cfg.data.num_workers,
                             seed=cfg.seed * 100_003 + epoch, pin_memory=self.device.type == "cuda")
        accum = cfg.grad_accumulation
        run = st["running"]
        self.net.train()
        bar = tqdm(total=n_batches, initial=start_batch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", leave=False, disable=self._no_bars())
        t0, seen = time.perf_counter(), 0
        for b, batch in enumerate(loader, start=start_batch):
            if self.step_limit_reached():  # max_steps: this epoch ends here (closed as usual)
                break
            group_start = (b // accum) * accum
            group_size = min(accum, n_batches - group_start)
            last_in_group = b - group_start == group_size - 1
            sync = contextlib.nullcontext() if (last_in_group or not self.dinfo.enabled) \
                else self.net.no_sync()
            n = int(batch["image"].shape[0])
            with sync:
                terms = self._forward_backward(batch, group_size, epoch=epoch, batch_index=b)
            for k, v in terms.items():
                run["sums"][k] = run["sums"].get(k, 0.0) + v * n
            run["n"] += n
            run["skipped"] += int(batch.get("n_skipped", 0))
            seen += n
            if last_in_group:
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
                st["step"] += 1
                self.task.end_step(st["step"], epoch)
                if cfg.checkpoint_every and st["step"] % cfg.checkpoint_every == 0 \
                        and b + 1 < n_batches:
                    st["epoch"], st["batch"] = epoch, b + 1
                    self._save()
            bar.update(1)
            if not self._no_bars():
                rate = seen * self.dinfo.world_size / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{terms.get('total', float('nan')):.4f}",
                                img_s=f"{rate:.1f}", refresh=False)
        bar.close()
        run["seconds"] = run.get("seconds", 0.0) + time.perf_counter() - t0

    def _forward_backward(self, batch: dict, group_size: int, *, epoch: int,
                          batch_index: int) -> dict[str, float]:
        """Loss of one micro-batch, finite check (all ranks agree), backward of total/group."""
        n = int(batch["image"].shape[0])
        step = self.state["step"] + 1
        if n == 0:  # every image of this micro-batch was unreadable
            if self.dinfo.enabled:  # keep DDP's collective backward in step on every rank
                zero = sum(p.sum() for p in self.model.parameters()) * 0.0
                zero.backward()
            return {}
        dev = self.device
        batch = {k: (v.to(dev, non_blocking=True) if torch.is_tensor(v) else v)
                 for k, v in batch.items()}
        x = batch["image"]
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=self.amp):
            outputs = self.net(x)
        outputs = {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v)
                   for k, v in outputs.items()}
        terms = dict(self.task.loss(outputs, batch))
        values = {k: float(v.detach()) for k, v in terms.items() if torch.is_tensor(v)}
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if self.dinfo.enabled and all_reduce_sum([float(len(bad))], self.dinfo)[0] > 0 and not bad:
            bad = ["(another rank)"]
        if bad:
            term = next((k for k in bad if k != "total"), bad[0])
            raise TrainingDivergedError(
                f"loss term '{term}' is {values.get(term, 'non-finite')} at step {step} "
                f"(epoch {epoch + 1}, batch {batch_index}); run {self.run_dir}; the last good "
                f"checkpoint is kept (lower optim.lr or check the data)",
                where={"step": step, "epoch": epoch + 1, "batch": batch_index, "term": term})
        (terms["total"] / group_size).backward()
        return values

    def _end_epoch(self, epoch: int) -> None:
        cfg, st = self.cfg, self.state
        run = st["running"]
        keys = sorted(run["sums"])
        totals = all_reduce_sum([run["sums"][k] for k in keys] + [run["n"], run["skipped"]],
                                self.dinfo)
        n, skipped = totals[len(keys)], totals[len(keys) + 1]
        if n == 0:
            raise IaaError(f"epoch {epoch + 1}: every training image was skipped ({int(skipped)} "
                           f"unreadable, missing or too small; see the warnings) — check "
                           f"data.image_dir={cfg.data.image_dir} and {cfg.data.train}")
        if skipped and self.dinfo.is_main:
            log.warning("epoch %d: skipped %d of %d training images (logged above)", epoch + 1,
                        int(skipped), int(n + skipped))
        train_losses = {k: totals[i] / n for i, k in enumerate(keys)}
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        row: dict[str, Any] = {"epoch": epoch + 1, "step": st["step"], "lr": lr,
                               "n_images": int(n), "n_skipped": int(skipped),
                               "seconds": round(run.get("seconds", 0.0), 3),
                               "images_per_s": round(n / max(run.get("seconds", 0.0), 1e-9), 2)}
        row.update(self.task.end_epoch(epoch, st["step"], train_losses))
        row.update({f"train_{k}": v for k, v in train_losses.items()})
        improved = False
        last = epoch + 1 >= cfg.epochs or self.step_limit_reached()
        if cfg.monitor_test and cfg.data.test and (last or (epoch + 1) % cfg.monitor_every == 0):
            if last and self.best_is_last:  # these weights are the result: finish() reuses it
                self._final_test = self.evaluate(self.test_set(), return_predictions=True)
                test = self._final_test[0]
            else:
                test = self.evaluate(self.test_set())
            row.update({f"test_{k}": v for k, v in test.items() if not isinstance(v, dict)})
        if self.val_set is not None:
            val = self.evaluate(self.val_set)
            row.update({f"val_{k}": v for k, v in val.items() if not isinstance(v, dict)})
            improved = self._is_better(val.get(self.best_metric))
            if improved:
                st["best"].update(value=val.get(self.best_metric), epoch=epoch + 1)
        st["history"].append(row)
        st["epoch"], st["batch"], st["running"] = epoch + 1, 0, _fresh_running()
        # The last epoch writes no resume state: finish() follows at once and replaces last.pt
        # with the final weights (for a VGG16 run, about 1 GB of optimiser state not written).
        # Killed in between, the run resumes from the epoch before and repeats this one exactly.
        self._save(best=improved, resume=not last)
        if self.dinfo.is_main:
            write_history(self.run_dir, st["history"])
            self.task.write_files(self.run_dir)
        barrier(self.dinfo)
        self._report(row)

    @property
    def best_is_last(self) -> bool:
        """**Choice:** without a validation manifest the best checkpoint is the last one."""
        return self.val_set is None

    def test_set(self):
        """The test manifest's dataset (built once; its tag columns are the training set's that
        it has)."""
        if self._test_set is None:
            cfg = self.cfg
            header = pd.read_csv(cfg.data.test, nrows=0).columns
            self._test_set = build_dataset(cfg, cfg.data.test, train=False, device=self.device,
                                           tag_columns=[c for c in self.tag_columns if c in header])
        return self._test_set

    def _is_better(self, value: float | None) -> bool:
        best = self.state["best"]
        if best["epoch"] is None:
            return True
        if value is None:
            return False
        if best["value"] is None:
            return True
        if self.best_metric in LOWER_IS_BETTER:
            return value < best["value"]
        return value > best["value"]

    def _report(self, row: dict) -> None:
        if not self.dinfo.is_main:
            return
        shown = {k: v for k, v in row.items()
                 if k.startswith(("train_", "val_")) and isinstance(v, float)
                 and k.split("_", 1)[1] in ("total", "emd", "semantic", "aesthetic", "acc",
                                            "srcc_mean", "mtrl")}
        parts = [f"epoch {row['epoch']}/{self.cfg.epochs}"]
        parts += [f"{k}={v:.4f}" for k, v in shown.items()]
        if "lam" in row:
            parts.append(f"lam={row['lam']:.4g}")
        parts.append(f"{row['images_per_s']:.1f} img/s")
        line = "  ".join(parts)
        if self.quiet:
            print(line, flush=True)
        else:
            tqdm.write(line)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, dataset, *, return_predictions: bool = False):
        """Metrics of the current model on ``dataset`` (predictions gathered over ranks)."""
        cfg = self.cfg
        sampler = build_batch_sampler(dataset, cfg.data, cfg.eval_batch_size or self.micro_batch,
                                      shuffle=False, seed=cfg.seed,
                                      num_replicas=self.dinfo.world_size, rank=self.dinfo.rank)
        loader = make_loader(dataset, sampler, num_workers=cfg.data.num_workers, seed=cfg.seed)
        pred = predict(self.eval_model, loader, device=self.device, tag_columns=self.tag_columns,
                       amp=self.eval_amp, channels_last=self.channels_last)
        pred = merge_predictions(all_gather_objects(pred, self.dinfo))
        metrics = compute_metrics(pred, n_total=len(dataset))
        return (metrics, pred) if return_predictions else metrics

    def finish(self) -> None:
        """Best weights → test predictions and metrics → run.json ``finished``."""
        cfg, st = self.cfg, self.state
        ckpt_dir = self.run_dir / "checkpoints"
        best_is_last = self.best_is_last
        if best_is_last:
            st["best"].update(epoch=st["epoch"], value=None)
        final = self.weights_state() if self.dinfo.is_main else None
        if final is not None and not best_is_last:  # a copy: loading best.pt below overwrites
            final["model"] = {k: v.detach().clone() for k, v in final["model"].items()}
        if best_is_last and self.dinfo.is_main:
            save_checkpoint(ckpt_dir / "best.pt", final)
        elif not best_is_last and st["best"]["epoch"] != st["epoch"]:
            self.eval_model.load_state_dict(load_checkpoint(ckpt_dir / "best.pt")["model"])
        barrier(self.dinfo)
        metrics: dict[str, Any] = {}
        if cfg.data.test:
            if best_is_last and self._final_test is not None:  # the last epoch's test pass
                metrics, pred = dict(self._final_test[0]), self._final_test[1]
            else:
                metrics, pred = self.evaluate(self.test_set(), return_predictions=True)
            if self.dinfo.is_main:
                with atomic_write(self.run_dir / "predictions.csv", "w", encoding="utf-8",
                                  newline="") as fh:
                    pred.drop(columns=["index"]).to_csv(fh, index=False)
        metrics.update({"split": "test" if cfg.data.test else None, "checkpoint": "best",
                        "best_epoch": st["best"]["epoch"], "best_metric": self.best_metric,
                        "epochs": cfg.epochs, "epochs_trained": st["epoch"], "steps": st["step"]})
        if self.dinfo.is_main:
            write_json(self.run_dir / "metrics.json", metrics)
            update_record(self.run_dir, status="finished", finished=now(), reason=None,
                          best=st["best"], steps=st["step"], threads=self.threads,
                          device=str(self.device), amp=self.amp,
                          channels_last=self.channels_last,
                          **({"ema_decay": self.ema_decay_per_step} if self.ema is not None
                             else {}),
                          peak_memory=peak_memory(self.device))
            _finish_checkpoints(ckpt_dir, final, best_is_last=best_is_last)
        barrier(self.dinfo)


def _finish_checkpoints(ckpt_dir: Path, final: dict[str, Any], *, best_is_last: bool) -> None:
    """Once the run is recorded as finished it is reused, never resumed: ``last.pt`` drops the
    optimiser, scheduler and RNG states and keeps the final weights and task state. When best =
    last it becomes a hard link to ``best.pt`` (one file on disk; a copy where links fail)."""
    last = ckpt_dir / "last.pt"
    if not best_is_last:
        save_checkpoint(last, final)
        return
    tmp = ckpt_dir / "last.pt.link"
    tmp.unlink(missing_ok=True)
    try:
        os.link(ckpt_dir / "best.pt", tmp)
    except OSError:
        shutil.copyfile(ckpt_dir / "best.pt", tmp)
    os.replace(tmp, last)


def _fresh_running() -> dict[str, Any]:
    return {"sums": {}, "n": 0, "skipped": 0, "seconds": 0.0}


def _decorrelate_ranks(seed: int, rank: int, step: int) -> None:
    """DDP ranks > 0 reseed so their dropout masks differ from rank 0's (one process: no-op)."""
    if rank > 0:
        torch.manual_seed(int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0]))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
