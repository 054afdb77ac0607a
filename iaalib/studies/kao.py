"""Kao, He & Huang (MTCNN / MTRLCNN): the runs behind Tables I–V and Figs. 5, 7, 8 and 9.

Every run is an :class:`~iaalib.engine.config.ExperimentConfig` made by :func:`base_config` from a
:class:`KaoSettings` (the profile's training settings) and what the run varies: the network, λ, δ,
relationship learning, early stopping, the seed, the fine-tuning source. The grids (``table*_configs``,
:func:`trunk_config`, :func:`finetune_config`, :func:`transfer_config`) all go through it, so a run
that several tables or notebooks need (e.g. the STCNN at δ = 0: Table I's λ = 0 column, Table IV,
and Table V's fine-tuning source) has one config hash and is trained once by
:func:`iaalib.studies.runner.run_grid` (checkpoint-or-train).

Grids are ``{(row, column): config}`` with the row and column names of the paper's table
(``iaalib/studies/paper_results.yaml``; λ columns are symbolic in M: ``lambda=1/M`` is the paper's
``λ = 1/29``), repeated over seeds by :func:`iaalib.studies.runner.with_seeds`; the runner's
tables and :mod:`iaalib.studies.claims` turn the finished runs into the paper's tables and claims.

The test set is always the δ = 0 test manifest (Sec. IV-A: "We set δ to 0 for the testing set
regardless of the value of δ for the training set").
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from .._io import atomic_write, read_json
from ..data import generic
from ..data.ava import read_ava_txt
from ..data.manifests import write_manifest
from ..datasets import manifest_dir, synth_ava_dir
from ..engine.config import ExperimentConfig, resolve_lambda
from ..errors import IaaError
from ..models.factory import build_model
from ..models.mtrl import task_correlation
from ..synth.ava import generate_synth_ava
from . import paper as paper_data
from .runner import arm_label, training_subset, with_seeds

#: Table I's λ settings: numbers, "k/M", or "early" (λ = ``early_stop_lam`` until the semantic loss
#: plateaus, then 0).
LAMBDAS = (0, "1/M", "2/M", 1, "early")
#: Table II's networks (Sec. III-D) and their column names; MTCNN #1–#3 use λ = 1/M, the enhanced
#: MTCNN λ = 2/M (Sec. IV-C).
ARCHITECTURES = {"mtcnn1": "MTCNN #1", "mtcnn2": "MTCNN #2", "mtcnn3": "MTCNN #3",
                 "mtcnn_enhanced": "Enhanced MTCNN"}
ARCHITECTURE_LAMBDA = {"mtcnn1": "1/M", "mtcnn2": "1/M", "mtcnn3": "1/M", "mtcnn_enhanced": "2/M"}
#: Column names of the fine-tuned backbones (Table III/IV name AlexNet, VGG Net and ResNet FT).
BACKBONE_NAMES = {"alexnet": "AlexNet FT", "vgg16": "VGG Net FT", "resnet50": "ResNet FT",
                  "resnet18": "ResNet-18 FT", "efficientnet_lite0": "EfficientNet-Lite0 FT"}
AESTHETIC_TASKS = ("low aesthetic", "high aesthetic")


@dataclass(frozen=True)
class KaoSettings:
    """Training settings shared by every Kao run of a profile (plain values from the profile).

    The paper gives the input (227×227 crops of 256×256 images, Sec. III-D) but no optimiser,
    schedule or number of epochs. **Choice:** the defaults are the engine's (SGD, momentum 0.9,
    lr 0.01, weight decay 5e-4 as the Gaussian priors on Θ, W; dropout 0.5; no batch norm: the
    2015-era AlexNet-like trunk); a profile sets its own, e.g. the CPU demo trains narrow nets
    (``width_mult``, ``fc_dim``) with batch norm, no dropout and Adam (lr 1e-3), which learn more in
    two epochs than SGD does.

    **Choice:** fine-tuned backbones (Table III) train ``finetune_epochs`` epochs on the first
    ``finetune_train_size`` images of a seeded permutation of the training set (0 = all), with a
    head of ``finetune_fc_dim`` units; ``finetune_weights`` must be pretrained ("imagenet" or a
    file) — a randomly initialised backbone is not "fine-tuned". They train with
    ``finetune_batch_size``, ``finetune_lr`` and ``finetune_step_size`` (None: the trunk's
    ``batch_size``, ``lr``, ``step_size``), the pretrained layers at ``finetune_lr ×
    finetune_lr_mult`` (``optim.pretrained_lr_mult``; 1: one rate). ``cpu_amp``: bf16 autocast
    on a CPU (:class:`iaalib.engine.config.ExperimentConfig`); **Choice:** fine-tuned backbones
    use ``finetune_cpu_amp`` instead (off: EfficientNet's depthwise convolutions are slower in bf16
    on a CPU). **Choice:** ``finetune_train_depthwise=False`` keeps the backbone's depthwise
    kernels at their ImageNet values (:func:`iaalib.models.backbones.freeze_depthwise`: on a CPU
    their weight gradient is the slowest part of a fine-tuning step).

    **Choice:** the MTRLCNN's prior tr(W Ω⁻¹ Wᵀ) weighs ``mtrl_weight`` next to the batch-mean
    losses; None is Eq. 11 read literally, 1/N of the run's own N training images. The paper's N
    is about 185,000; on a set 70 times smaller 1/N makes the prior 70 times stronger relative to
    the data, and the demo's trunk MTRLCNN then lost its tag outputs (semantic AP 0.23 against
    0.57 without the prior, ``benchmarks/results/demo_mtrl.json``). A profile can keep the paper's
    balance instead with ``mtrl_weight`` = 1/185,751.

    **Choice:** Table I's "early stopping" column trains with λ = ``early_stop_lam`` (1, the
    column next to it) until the training semantic loss has not improved by ``early_stop_min_delta``
    (relative) for ``early_stop_patience`` epochs, then with λ = 0 (the paper states no criterion).

    ``stem``: the networks train above this frozen ImageNet stem (:mod:`iaalib.models.stems`;
    the profile's ``stem``, shared with the SAF chapters) on its cached activations of the whole
    image resized to ``stem_size``²; None trains end to end on pixels, as the paper does.
    **Choice:** ``stem_shift`` moves each training sample's cached maps by up to that many cells
    each way, zeros moving in (:func:`iaalib.data.activations.shift_maps`): the paper's random
    227² crops of a 256² image move the content by up to 29 pixels, which cached activations of
    the whole image cannot do; 0 trains on the unshifted maps.
    ``ema_epochs`` > 0: each run's result is a moving average of its weights over about that many
    epochs (:class:`iaalib.engine.config.OptimConfig`; scaled with the epochs of a δ > 0 run, so
    it spans as many optimiser steps); the fine-tuned backbones use ``finetune_ema_epochs`` and
    the Table V runs ``transfer_ema_epochs`` instead (None: ``ema_epochs``). **Choice:** 0, the
    last weights, as the paper.
    ``monitor_test`` records the test metrics after every epoch (the chapters' learning curves);
    ``max_steps`` ends each run after that many optimiser steps (0: the whole schedule; the
    rehearsal profile); ``decode_device``, ``resident``: the GPU data path
    (:class:`iaalib.engine.config.DataConfig`).

    **Choice:** with ``equal_steps`` a run on a δ > 0 training set, which is smaller, trains for
    ``epochs`` × n(δ = 0) / n(δ) epochs (rounded), i.e. about as many optimiser steps as the δ = 0
    runs; otherwise the same number of epochs. The paper gives neither; with equal epochs a small
    demo δ = 1 net sees too few steps to learn its tags. ``seeds``: the training seeds (the
    profile's); ``other_delta_seeds``: how many of them the δ ≠ 0 cells that no claim rests on use
    (None: all; 0: those cells are not trained); the arms of a claim get every seed
    (:func:`seeded`). **Choice:** the demo trains none of them (``kao_other_delta_seeds: 0``): one
    seed tests nothing, and they cost about 30 s of a build's wall time.
    """
    epochs: int = 10
    batch_size: int = 32
    resize: int = 256
    crop: int = 227
    width_mult: float = 1.0
    fc_dim: int = 4096
    batch_norm: bool = False
    dropout: float = 0.5
    pool_size: int | None = None
    optimizer: str = "sgd"
    lr: float = 0.01
    weight_decay: float = 5e-4
    schedule: str = "constant"
    step_size: int = 10
    seed: int = 0
    device: str = "auto"
    num_threads: int | None = None
    num_workers: int = 0
    finetune_epochs: int = 10
    finetune_train_size: int = 0
    finetune_fc_dim: int | None = 512
    finetune_weights: str | None = "imagenet"
    finetune_lr_mult: float = 1.0
    finetune_lr: float | None = None
    finetune_batch_size: int | None = None
    finetune_step_size: int | None = None
    finetune_cpu_amp: bool = False
    finetune_train_depthwise: bool = True
    transfer_epochs: int | None = None
    transfer_step_size: int | None = None
    finetune_ema_epochs: float | None = None
    transfer_ema_epochs: float | None = None
    early_stop_lam: float = 1.0
    early_stop_patience: int = 1
    early_stop_min_delta: float = 0.01
    mtrl_update_every: int = 1
    mtrl_update_unit: str = "epoch"
    mtrl_weight: float | None = None
    stem: str | None = None
    stem_size: int = 112
    stem_shift: int = 0
    ema_epochs: float = 0.0
    cpu_amp: bool = False
    monitor_test: bool = False
    max_steps: int = 0
    decode_device: str = "cpu"
    resident: bool = False
    equal_steps: bool = False
    seeds: tuple[int, ...] = (0,)
    other_delta_seeds: int | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> "KaoSettings":
        """The profile's ``kao_<field>`` settings (``seed``: the first of the profile's ``seeds``,
        the others come from :func:`iaalib.studies.runner.with_seeds`; ``num_workers``:
        ``kao_loader_workers``); fields the profile lacks keep their defaults."""
        names = {f.name: f"kao_{f.name}" for f in dataclasses.fields(cls)}
        names.update(num_workers="kao_loader_workers", stem="stem", stem_size="stem_size",
                     cpu_amp="cpu_amp",
                     monitor_test="monitor_test", max_steps="max_steps",
                     decode_device="decode_device", resident="resident_images")
        values = {f: settings[k] for f, k in names.items() if k in settings and f != "seed"}
        values["stem"] = values.get("stem") or None
        if settings.get("seeds"):
            values["seeds"] = tuple(int(x) for x in settings["seeds"])
            values["seed"] = values["seeds"][0]
        return cls(**values)


@dataclass(frozen=True)
class KaoData:
    """One profile's Kao manifests (written by notebook 01) and images."""
    image_dir: Path
    train: Mapping[float, Path]           # δ → train.csv
    test: Path                            # the δ = 0 test.csv, shared by every δ
    tag_columns: tuple[str, ...]          # tag_<id>, ascending id (= the order of W_s and Ω)
    tag_names: tuple[str, ...]            # lower case, as in Fig. 9
    summary: Mapping[str, Any] = field(default_factory=dict)
    train_rows: Mapping[float, int] = field(default_factory=dict)  # δ → training images

    @property
    def num_tags(self) -> int:
        return len(self.tag_columns)


@dataclass(frozen=True)
class TargetData:
    """An aesthetic-only target dataset (Table V): manifests and the image folder the engine reads."""
    train: Path
    test: Path
    image_dir: Path
    summary: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------- data
def kao_data(profile: str, image_dir: str | os.PathLike | None, *, deltas: Iterable[float] = (0, 1),
             root: str | os.PathLike | None = None) -> KaoData:
    """The ``kao-delta<δ>`` manifests of ``profile`` (:func:`iaalib.datasets.manifest_dir`) and
    the images. Raises :class:`IaaError` naming the missing folder when notebook 01 has not
    written them.
    """
    if image_dir is None:
        raise IaaError("Kao's networks train on the images: set image_dir (the folder of "
                       "<image_id>.jpg files) in the profile")
    train = {}
    for delta in sorted({float(d) for d in deltas} | {0.0}):
        folder = manifest_dir(profile, f"kao-delta{delta:g}", root)
        if not (folder / "train.csv").is_file() or not (folder / "summary.json").is_file():
            raise IaaError(f"{folder}: no Kao manifests for δ = {delta:g}; run notebook 01 "
                           f"(`iaa book --profile {profile} --only 01`) first")
        train[delta] = folder / "train.csv"
    folder0 = train[0.0].parent
    summary = read_json(folder0 / "summary.json")
    kept = [int(t) for t in summary.get("kept_tags") or []]
    names = summary.get("kept_tag_names") or [None] * len(kept)
    header = pd.read_csv(train[0.0], nrows=0).columns
    columns = tuple(f"tag_{t}" for t in kept)
    missing = [c for c in columns if c not in header]
    if missing:
        raise IaaError(f"{train[0.0]}: summary.json lists tags {missing} that the manifest lacks")
    rows = {d: len(pd.read_csv(path, usecols=["image_id"])) for d, path in train.items()}
    return KaoData(Path(image_dir), train, folder0 / "test.csv", columns,
                   tuple((n or f"tag {t}").lower() for t, n in zip(kept, names)), summary, rows)


# ---------------------------------------------------------------------------------- configs
def lambda_label(lam: float | int | str) -> str:
    """Table I's column name: ``"lambda=0"``, ``"lambda=1/M"`` (the paper's 1/29), ``"lambda=1"``,
    ``"early stopping"``."""
    if lam == "early":
        return "early stopping"
    if isinstance(lam, str) and lam.replace(" ", "").endswith("/M"):
        k = lam.replace(" ", "")[:-2] or "1"
        return f"lambda={k}/M"
    return f"lambda={resolve_lambda(lam, 1):g}"


def delta_label(delta: float) -> str:
    return f"delta={float(delta):g}"


def readable(label: str) -> str:
    """A row/column name for prose: ``"delta=0"`` → ``"δ = 0"``, ``"lambda=1/29"`` → ``"λ = 1/29"``."""
    return label.replace("delta=", "δ = ").replace("lambda=", "λ = ")


def base_config(settings: KaoSettings, *, train: str | os.PathLike, test: str | os.PathLike,
                image_dir: str | os.PathLike, family: str = "mtcnn1", lam: float | str = "1/M",
                backbone: str | None = None, mtrl: bool = False, early_stop: bool = False,
                init_from: str | os.PathLike | None = None, seed: int | None = None,
                epochs: int | None = None, steps_factor: float = 1.0,
                name: str | None = None) -> ExperimentConfig:
    """The one place a Kao run's config is made (see the module docstring).

    ``family``: a Kao network (``mtcnn1`` … ``mtcnn_enhanced``) or ``mtcnn_finetune`` with
    ``backbone`` (width 1, ``settings.finetune_weights``). ``lam``: a number or "k/M" (Eq. 7);
    ``early_stop``: Table I's semantic early stopping. ``mtrl``: the MTRLCNN (Eq. 11).
    ``init_from``: a run directory to start from (Table V). ``steps_factor`` scales the epochs and
    the step schedule (:func:`delta_steps_factor`), and the test set is monitored every
    ``round(steps_factor)`` epochs, i.e. at the δ = 0 runs' spacing in optimiser steps.
    """
    s = settings
    epochs = int(epochs if epochs is not None else s.epochs)
    if steps_factor != 1.0:
        epochs = max(1, round(epochs * steps_factor))
    model: dict[str, Any] = {"family": family, "dropout": s.dropout, "stem": s.stem}
    lr_mult, lr, batch_size, step_size = 1.0, s.lr, s.batch_size, s.step_size
    cpu_amp, ema_epochs = s.cpu_amp, s.ema_epochs
    if family == "mtcnn_finetune":
        if not backbone:
            raise ValueError("family 'mtcnn_finetune' needs a backbone")
        if not s.finetune_weights:
            raise ValueError(f"fine-tuning {backbone} needs pretrained weights (finetune_weights); "
                             "a randomly initialised backbone is not fine-tuned")
        model.update(backbone=backbone, weights=s.finetune_weights, width_mult=1.0,
                     fc_dim=s.finetune_fc_dim)
        lr_mult = float(s.finetune_lr_mult)
        lr = s.finetune_lr or lr
        batch_size = s.finetune_batch_size or batch_size
        step_size = s.finetune_step_size or step_size
        cpu_amp = s.finetune_cpu_amp
        if s.finetune_ema_epochs is not None:
            ema_epochs = s.finetune_ema_epochs
        if not s.finetune_train_depthwise:
            model["options"] = {"train_depthwise": False}
    elif family in ARCHITECTURES:
        options: dict[str, Any] = {"batch_norm": bool(s.batch_norm)}
        if s.pool_size is not None:
            options["pool_size"] = int(s.pool_size)
        model.update(width_mult=s.width_mult, fc_dim=s.fc_dim, options=options)
    else:
        raise ValueError(f"not a Kao network: {family!r}")
    if init_from is not None:
        model["init_from"] = os.fspath(init_from)
    loss: dict[str, Any] = {"lam": lam}
    if mtrl:
        loss["mtrl"] = {"enabled": True, "update_every": s.mtrl_update_every,
                        "update_unit": s.mtrl_update_unit, "weight": s.mtrl_weight}
    if early_stop:
        loss["lam"] = s.early_stop_lam
        loss["semantic_early_stop"] = {"enabled": True, "patience": s.early_stop_patience,
                                       "min_delta": s.early_stop_min_delta}
    return ExperimentConfig.from_dict({
        "name": name or "kao",
        "data": {"train": os.fspath(train), "test": os.fspath(test),
                 "image_dir": os.fspath(image_dir), "transform": "kao", "resize": s.resize,
                 "crop": s.crop, "num_workers": s.num_workers, "stem_size": s.stem_size,
                 "stem_shift": s.stem_shift,
                 "decode_device": s.decode_device, "resident": bool(s.resident)},
        "model": model,
        "loss": loss,
        "optim": {"name": s.optimizer, "lr": lr, "weight_decay": s.weight_decay,
                  "schedule": s.schedule, "pretrained_lr_mult": lr_mult,
                  "step_size": max(1, round(step_size * steps_factor)),
                  "ema_epochs": ema_epochs * steps_factor},
        "epochs": epochs,
        "batch_size": batch_size, "seed": int(s.seed if seed is None else seed),
        "device": s.device, "num_threads": s.num_threads, "quiet": True,
        "cpu_amp": bool(cpu_amp),
        "monitor_test": bool(s.monitor_test), "monitor_every": max(1, round(steps_factor)),
        "max_steps": int(s.max_steps or 0),
    })


def trunk_config(settings: KaoSettings, data: KaoData, *, family: str = "mtcnn1",
                 lam: float | str = "1/M", delta: float = 0, mtrl: bool = False,
                 seed: int | None = None) -> ExperimentConfig:
    """A Kao network trained from scratch on the δ training set (λ = "early": early stopping).

    λ = 0 with MTCNN #1 is the STCNN (Table I's first column, Table IV's "STCNN").
    """
    early = lam == "early"
    net = "stcnn" if lam == 0 and family == "mtcnn1" and not mtrl else family + ("-mtrl" if mtrl else "")
    lam_part = "early" if early else str(lam).replace("/", "_")
    name = f"kao-{net}-d{float(delta):g}-lam{lam_part}-s{settings.seed if seed is None else seed}"
    return base_config(settings, train=_train(data, delta), test=data.test, image_dir=data.image_dir,
                       family=family, lam=settings.early_stop_lam if early else lam,
                       mtrl=mtrl, early_stop=early, seed=seed, name=name,
                       steps_factor=delta_steps_factor(settings, data, delta))


def delta_steps_factor(settings: KaoSettings, data: KaoData, delta: float) -> float:
    """How many times longer a trunk run on the δ training set trains than a δ = 0 run
    (``settings.equal_steps``: n(δ = 0) / n(δ), so that every δ takes about as many optimiser
    steps; otherwise 1; see :class:`KaoSettings`). Epochs and the step schedule's ``step_size``
    are scaled by it."""
    n0, n = data.train_rows.get(0.0), data.train_rows.get(float(delta))
    if not settings.equal_steps or float(delta) == 0 or not n0 or not n:
        return 1.0
    return n0 / n


def claim_arms() -> frozenset[str]:
    """The arms (``"row | column"``) that Kao's claims name literally (``paper_results.yaml``)."""
    names = set()
    for spec in paper_data.claims("kao"):
        for side in ("better", "worse"):
            arms = [spec[side]] if isinstance(spec[side], str) else spec[side]
            names.update(a for a in arms if "{" not in a)
    return frozenset(names)


def seeded(grid: Mapping[tuple[str, str], ExperimentConfig], settings: KaoSettings
           ) -> dict[tuple[tuple[str, str], int], ExperimentConfig]:
    """A Kao grid once per training seed (:func:`iaalib.studies.runner.with_seeds`): rows
    ``"delta=0"`` (and rows that name no δ) with every seed of ``settings.seeds``, other δ rows
    with :func:`other_delta_seeds` (none: those cells are left out), except the arms a claim rests
    on (:func:`claim_arms`, e.g. Table I's δ = 1 λ = 1/M and λ = 0), which get every seed: each
    headline comparison is tested over all the profile's seeds."""
    wanted = claim_arms()
    zero = {k: c for k, c in grid.items() if not str(k[0]).startswith("delta=")
            or k[0] == delta_label(0) or arm_label(k) in wanted}
    other = {k: c for k, c in grid.items() if k not in zero}
    return {**with_seeds(zero, settings.seeds), **with_seeds(other, other_delta_seeds(settings))}


def other_delta_seeds(settings: KaoSettings) -> tuple[int, ...]:
    """The seeds of the δ ≠ 0 cells that no claim rests on: the first
    ``settings.other_delta_seeds`` of ``settings.seeds`` (None: all of them; 0: none)."""
    n = settings.other_delta_seeds
    if n is not None and int(n) < 0:
        raise IaaError(f"kao_other_delta_seeds must be null or a count ≥ 0, got {n!r}")
    return tuple(settings.seeds if n is None else settings.seeds[:int(n)])


def finetune_config(settings: KaoSettings, data: KaoData, *, backbone: str, delta: float = 0,
                    mtrl: bool = False, lam: float | str = "1/M", seed: int | None = None
                    ) -> ExperimentConfig:
    """MTCNN #1 / MTRLCNN with layers 1–6 replaced by a pretrained ``backbone`` (Sec. III-E).

    With ``settings.finetune_train_size`` > 0 it trains on a seeded subset of the δ training set
    (:func:`iaalib.studies.runner.training_subset`).
    """
    train = training_subset(_train(data, delta), int(settings.finetune_train_size),
                            seed=settings.seed)
    name = (f"kao-{backbone}-ft{'-mtrl' if mtrl else ''}-d{float(delta):g}"
            f"-s{settings.seed if seed is None else seed}")
    return base_config(settings, train=train, test=data.test, image_dir=data.image_dir,
                       family="mtcnn_finetune", backbone=backbone, lam=lam, mtrl=mtrl,
                       seed=seed, epochs=settings.finetune_epochs, name=name)


def transfer_config(settings: KaoSettings, target: TargetData, *,
                    init_from: str | os.PathLike | None = None, name: str = "kao-target",
                    seed: int | None = None) -> ExperimentConfig:
    """MTCNN #1 on an aesthetic-only target (no tags: M = 0, λ = 0), from scratch or fine-tuned from
    the AVA-trained run ``init_from`` (Table V; :func:`iaalib.engine.checkpoint.init_weights_from`).

    **Choice:** fine-tuning uses the same optimiser, learning rate, number of epochs
    (``transfer_epochs``), step schedule (``transfer_step_size``; None: the trunks'
    ``step_size``) and weight average (``transfer_ema_epochs``; None: the trunks'
    ``ema_epochs``) as training from scratch — the paper gives none of them — so the three Table V
    runs differ only in their starting weights.
    """
    ema = settings.transfer_ema_epochs
    settings = dataclasses.replace(settings,
                                   step_size=settings.transfer_step_size or settings.step_size,
                                   ema_epochs=settings.ema_epochs if ema is None else ema)
    return base_config(settings, train=target.train, test=target.test, image_dir=target.image_dir,
                       family="mtcnn1", lam=0, init_from=init_from, seed=seed,
                       epochs=settings.transfer_epochs or settings.epochs, name=name)


def early_stop_can_act(settings: KaoSettings) -> bool:
    """Whether the plateau rule can switch λ off before the last epoch: the earliest switch is
    after ``early_stop_patience + 1`` epochs (the first epoch only sets the reference loss)."""
    return settings.epochs > settings.early_stop_patience + 1


def table1_configs(settings: KaoSettings, data: KaoData, *, deltas: Iterable[float] = (0, 1),
                   lambdas: Iterable[float | str] = LAMBDAS) -> dict[tuple[str, str], ExperimentConfig]:
    """Table I: MTCNN #1 with each λ (λ = 0 is the STCNN), for each δ.

    When the early-stopping rule cannot act within ``settings.epochs``
    (:func:`early_stop_can_act`), its run would be the λ = ``early_stop_lam`` run step for step, so
    the "early stopping" cell is that run (trained once) instead of a duplicate.
    """
    out = {}
    for d in deltas:
        for lam in lambdas:
            if lam == "early" and not early_stop_can_act(settings):
                cfg = trunk_config(settings, data, lam=settings.early_stop_lam, delta=d)
            else:
                cfg = trunk_config(settings, data, lam=lam, delta=d)
            out[(delta_label(d), lambda_label(lam))] = cfg
    return out


def table2_configs(settings: KaoSettings, data: KaoData, *, deltas: Iterable[float] = (0, 1),
                   architectures: Iterable[str] = tuple(ARCHITECTURES)
                   ) -> dict[tuple[str, str], ExperimentConfig]:
    """Table II: the four networks, λ = 1/M (enhanced: 2/M), for each δ."""
    return {(delta_label(d), ARCHITECTURES[a]): trunk_config(settings, data, family=a,
                                                             lam=ARCHITECTURE_LAMBDA[a], delta=d)
            for d in deltas for a in architectures}


def table3_configs(settings: KaoSettings, data: KaoData, *, backbones: Iterable[str] = (),
                   delta: float = 0) -> dict[tuple[str, str], ExperimentConfig]:
    """Table III: MTCNN vs MTRLCNN (rows) on the trunk #1 and each fine-tuned backbone (columns)."""
    out: dict[tuple[str, str], ExperimentConfig] = {}
    for row, mtrl in (("MTCNN", False), ("MTRLCNN", True)):
        out[(row, "MTCNN #1")] = trunk_config(settings, data, lam="1/M", delta=delta, mtrl=mtrl)
        for b in backbones:
            out[(row, backbone_label(b))] = finetune_config(settings, data, backbone=b,
                                                            delta=delta, mtrl=mtrl)
    return out


def table4_configs(settings: KaoSettings, data: KaoData, *, deltas: Iterable[float] = (0, 1),
                   backbones: Iterable[str] = (), finetune_deltas: Iterable[float] = (0,)
                   ) -> dict[tuple[str, str], ExperimentConfig]:
    """Table IV's columns we run: STCNN, MTCNN #1 and "MTRLCNN <backbone> FT" per δ."""
    out: dict[tuple[str, str], ExperimentConfig] = {}
    for d in deltas:
        out[(delta_label(d), "STCNN")] = trunk_config(settings, data, lam=0, delta=d)
        out[(delta_label(d), "MTCNN #1")] = trunk_config(settings, data, lam="1/M", delta=d)
    for d in finetune_deltas:
        for b in backbones:
            out[(delta_label(d), f"MTRLCNN {backbone_label(b)}")] = finetune_config(
                settings, data, backbone=b, delta=d, mtrl=True)
    return out


def table5_configs(settings: KaoSettings, target: TargetData, *, stcnn_source: str | os.PathLike,
                   mtcnn_source: str | os.PathLike, seed: int | None = None
                   ) -> dict[tuple[str, str], ExperimentConfig]:
    """Table V: STCNN trained on the target, STCNN FT and MTCNN #1 FT (from AVA-trained runs of
    the same ``seed``)."""
    s = settings.seed if seed is None else int(seed)
    return {("delta=0", "STCNN"): transfer_config(settings, target, name=f"kao-target-stcnn-s{s}",
                                                  seed=s),
            ("delta=0", "STCNN FT"): transfer_config(settings, target, init_from=stcnn_source,
                                                     name=f"kao-target-stcnn-ft-s{s}", seed=s),
            ("delta=0", "MTCNN #1 FT"): transfer_config(settings, target, init_from=mtcnn_source,
                                                        name=f"kao-target-mtcnn1-ft-s{s}", seed=s)}


def sharing_table(settings: KaoSettings, data: KaoData,
                  architectures: Iterable[str] = tuple(ARCHITECTURES)) -> pd.DataFrame:
    """Table II's networks as this profile builds them: the trained parameters both tasks share
    (:meth:`iaalib.models.mtcnn.MTCNN.shared_parameters`) and in total. Above a frozen stem the
    layers the stem replaces are not trained: at stride 16, MTCNN #3's shared conv1–2 are the
    stem, so its tasks share no trained layer."""
    rows = {}
    for a in architectures:
        model = build_model(trunk_config(settings, data, family=a).model, num_tags=data.num_tags)
        rows[ARCHITECTURES[a]] = {
            "shared by both tasks": model.shared_parameters(),
            "trained in total": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    return pd.DataFrame.from_dict(rows, orient="index")


def backbone_label(backbone: str) -> str:
    return BACKBONE_NAMES.get(backbone, f"{backbone} FT")


def _train(data: KaoData, delta: float) -> Path:
    try:
        return Path(data.train[float(delta)])
    except KeyError:
        raise IaaError(f"no training manifest for δ = {delta:g} (have δ = "
                       f"{', '.join(f'{d:g}' for d in data.train)})") from None


def per_tag_table(runs: Mapping[str, Any], data: KaoData, *, scale: float = 100.0) -> pd.DataFrame:
    """Fig. 5: aesthetic accuracy on the test images of each tag (rows "overall" + tag names),
    one column per run."""
    out = {}
    for col, run in runs.items():
        m = run.metrics
        per_tag = m.get("per_tag_acc") or {}
        values = [m.get("acc")] + [per_tag.get(c) for c in data.tag_columns]
        out[col] = [np.nan if v is None else float(v) * scale for v in values]
    df = pd.DataFrame(out, index=["overall", *data.tag_names])
    df.attrs["runs"] = sorted({os.fspath(run.dir) for run in runs.values()})
    return df


# ---------------------------------------------------------------------------------- figures
def first_layer_filters(run) -> np.ndarray:
    """Weights of the first convolution of a run's network, [C, 3, k, k] (Fig. 7)."""
    model = run.load_model()
    conv = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    if conv is None:
        raise IaaError(f"{run.dir}: the network has no convolution")
    return conv.weight.detach().cpu().numpy()


def disagreements(right, wrong, *, n_per_class: int = 4) -> pd.DataFrame:
    """Fig. 8: test images run ``right`` classifies correctly and run ``wrong`` does not.

    Up to ``n_per_class`` high (label 1) then low images, the ones ``right`` is most confident
    about first. Columns: ``image_id, gt_label, gt_mean, p_high_right, p_high_wrong``.
    """
    a = right.predictions[["image_id", "gt_label", "gt_mean", "pred_label", "p_high"]]
    b = wrong.predictions[["image_id", "pred_label", "p_high"]]
    m = a.merge(b, on="image_id", suffixes=("_right", "_wrong"))
    hit = (m["pred_label_right"] == m["gt_label"]) & (m["pred_label_wrong"] != m["gt_label"])
    m = m[hit].copy()
    m["confidence"] = np.where(m["gt_label"] == 1, m["p_high_right"], 1.0 - m["p_high_right"])
    parts = [m[m["gt_label"] == label].sort_values(["confidence", "image_id"],
                                                   ascending=[False, True]).head(n_per_class)
             for label in (1, 0)]
    cols = ["image_id", "gt_label", "gt_mean", "p_high_right", "p_high_wrong"]
    return pd.concat(parts)[cols].reset_index(drop=True)


def task_correlations(run, data: KaoData, *, step: int = -1) -> pd.DataFrame:
    """Fig. 9: Ω_ij / sqrt(Ω_ii Ω_jj) of an MTRL run's Ω (``step``: which update, default the
    last), labelled "low aesthetic", "high aesthetic" and the tag names (W's column order)."""
    omega = run.omega()
    if omega is None:
        raise IaaError(f"{run.dir}: no omega.npy (not an MTRL run)")
    labels = [*AESTHETIC_TASKS, *data.tag_names]
    corr = task_correlation(torch.as_tensor(omega[step], dtype=torch.float64)).numpy()
    if corr.shape != (len(labels), len(labels)):
        raise IaaError(f"{run.dir}: Ω is {corr.shape[0]}×{corr.shape[1]}, expected "
                       f"{len(labels)} tasks (2 aesthetic + {data.num_tags} tags)")
    return pd.DataFrame(corr, index=labels, columns=labels)


def fig9_table(correlations: pd.DataFrame) -> pd.DataFrame:
    """The two aesthetic columns of :func:`task_correlations` (the layout of the paper's Fig. 9)."""
    return correlations.loc[:, list(AESTHETIC_TASKS)].copy()


def compare_correlations(ours: pd.Series, reference: pd.Series) -> dict[str, float]:
    """Agreement over the tags both have: Pearson and Spearman r (scipy) and the share of equal
    signs; ``n`` tags compared."""
    common = [t for t in reference.index if t in ours.index and t not in AESTHETIC_TASKS]
    a, b = ours[common].to_numpy(float), reference[common].to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"n": int(len(a)), "pearson": float("nan"), "spearman": float("nan"),
                "sign_agreement": float("nan")}
    return {"n": int(len(a)), "pearson": float(stats.pearsonr(a, b).statistic),
            "spearman": float(stats.spearmanr(a, b).statistic),
            "sign_agreement": float(np.mean(np.sign(a) == np.sign(b)))}


# ---------------------------------------------------------------------------------- Table V data
def synth_target_csv(out_csv: str | os.PathLike, *, n: int, seed: int, short_edge: int,
                     exclude_ids: Iterable[int] = (), score_range: tuple[float, float] = (1.0, 7.0),
                     threshold: float = 5.0, source_seed: int | None = None) -> dict[str, Any]:
    """A stand-in for Photo.net: a second SynthAVA (``seed`` ≠ the source's) written as an
    ``id,score`` CSV on Photo.net's 1–7 scale, without votes or tags.

    **Choice:** scores are mapped from AVA's 1–10 scale with
    :func:`iaalib.data.generic.from_ava_scale` (1 → 1, 5 → ``threshold``, 10 → 7), so "mean > 5"
    on SynthAVA is "score > 5.0" on the target, Photo.net's class rule (Sec. IV-A). Image ids that
    also occur in the source dataset (``exclude_ids``) are left out, so the two sets are disjoint
    by id as well as by content (``source_seed``: the source's seed, which must differ). Returns ``{csv, synth_dir, image_dir, n_images, n_excluded}``.
    """
    if source_seed is not None and int(seed) == int(source_seed):
        raise ValueError(f"the target SynthAVA needs another seed than the source's ({seed}): "
                         "with the same seed it would contain the same images; set "
                         f"target_synth_seed too, e.g. `iaa book -p synth_seed {seed} "
                         f"-p target_synth_seed {int(seed) + 1}`")
    synth_dir = synth_ava_dir(n, short_edge, seed)
    generate_synth_ava(synth_dir, n=n, seed=seed, short_edge=short_edge)
    labels = read_ava_txt(synth_dir / "AVA.txt")
    clash = labels["image_id"].isin(set(int(i) for i in exclude_ids)).to_numpy()
    kept = labels[~clash]
    table = pd.DataFrame({"id": kept["image_id"].to_numpy(),
                          "score": np.round(generic.from_ava_scale(kept["mean"], score_range, threshold), 6)})
    out = Path(out_csv)
    data = table.to_csv(index=False, lineterminator="\n").encode("utf-8")
    if not out.is_file() or out.read_bytes() != data:
        with atomic_write(out, "wb") as fh:
            fh.write(data)
    return {"csv": out, "synth_dir": synth_dir, "image_dir": synth_dir / "images",
            "n_images": int(len(table)), "n_excluded": int(clash.sum())}


def prepare_target(score_csv: str | os.PathLike, out_dir: str | os.PathLike, *,
                   image_root: str | os.PathLike, id_column: str = "id",
                   score_column: str = "score", score_range: tuple[float, float] = (1.0, 7.0),
                   threshold: float = 5.0, image_pattern: str = "{id}.jpg", test_size: int = 3000,
                   seed: int = 0, delta: float = 0.0) -> TargetData:
    """An ``id,score`` CSV → target manifests in ``out_dir`` (Photo.net protocol, Sec. IV-A):
    :func:`~iaalib.data.generic.read_id_score_csv`, :func:`~iaalib.data.generic.random_split`,
    :func:`~iaalib.data.manifests.write_manifest`. When the images are not already
    ``image_root/<integer id>.jpg``, ``out_dir/images`` gets links in that layout."""
    frame = generic.read_id_score_csv(score_csv, id_column=id_column, score_column=score_column,
                                      score_range=score_range, threshold=threshold,
                                      image_pattern=image_pattern)
    split = generic.random_split(frame, test_size=test_size, seed=seed, delta=delta)
    out = Path(out_dir)
    summary = write_manifest(split, out)
    direct = image_pattern == "{id}.jpg" and (frame["source_id"] == frame["image_id"].astype(str)).all()
    image_dir = Path(image_root)
    if not direct:
        image_dir = out / "images"
        summary["images"] = generic.link_images(frame, image_root, image_dir)
    return TargetData(out / "train.csv", out / "test.csv", image_dir, summary)

