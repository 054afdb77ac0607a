"""The SAF paper's experiments as grids of experiment configs: the comparison with NIMA (Table 2),
the ablations (Table 3), the bottleneck size P (comparative-study figure), the activation losses
(Table 4), t-SNE and Grad-CAM (Visualization) and the cross-dataset test on TID2013 (Table 5).

Every run is :func:`base_config` plus a few named overrides (:func:`saf_config`,
:func:`nima_config`), so a run that two chapters need — the full model is Table 2's "SAF", Table 3's
"full", Table 4's "L1", one point of the P study and the t-SNE/Grad-CAM model — has one config
hash and is trained once (:func:`iaalib.studies.runner.run_grid` is checkpoint-or-train).

The SAF text lost its tables and equations; what it states in words is in
``paper_results.yaml`` (``iaalib.studies.paper.claims("saf")``, tested by
:mod:`iaalib.studies.claims`).
"""
from __future__ import annotations

import inspect
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.neighbors import NearestNeighbors

from ..data.tid import read_tid
from ..datasets import manifest_dir
from ..engine.config import ExperimentConfig
from ..engine.device import select_device
from ..engine.evaluate import evaluate_tid, predict
from ..data.images import load_image
from ..engine.loaders import build_batch_sampler, build_dataset, make_loader, stem_transform
from ..engine.runrecord import Run
from ..errors import IaaError
from ..gradcam import MeanScoreTarget, denormalise, mean_score_cam
from ..losses import SAF_ALPHA, SAF_BETA, saf_loss
from ..metrics import plcc, srcc
from ..models.factory import build_model
from ..profiles import Settings
from ..viz import tsne_embedding
from .runner import training_subset

#: Table 3 (ablation study): row name -> overrides of the full model. "w/o Split" replaces the
#: separated multi-way regressor by a conventional joint one; "w/o Act" drops the activation loss
#: (no pre-activation, β = 0) but keeps the fusing module's pooling and the split regressor.
ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "w/o Split": {"model.split_regressor": False},
    "w/o Act": {"loss.beta": 0.0},
    "w/o Act & Split": {"model.split_regressor": False, "loss.beta": 0.0},
}
#: Table 4 (forms of the activation loss): row name -> ``loss.activation``.
ACTIVATION_LOSSES: dict[str, str] = {"L1": "l1", "KL": "kl", "JS": "js"}
#: Columns of the SAF result tables (keys of metrics.json; ``acc`` in percent).
METRICS: tuple[str, ...] = ("srcc_mean", "plcc_mean", "srcc_sd", "plcc_sd", "acc", "emd")
#: Columns of Table 5 (TID2013 has one MOS per image: correlations of the mean only).
TID_METRICS: tuple[str, ...] = ("srcc_mean", "plcc_mean")


# ============================================================================ configs
def base_config(*, train: str | os.PathLike, test: str | os.PathLike,
                image_dir: str | os.PathLike, val: str | os.PathLike | None = None,
                epochs: int = 15, batch_size: int = 32, short_edge: int = 256,
                width_mult: float = 1.0, group_size: int = 32, weights: str | None = "imagenet",
                optimizer: str = "sgd", lr: float = 0.001, momentum: float = 0.9,
                weight_decay: float = 5e-4, schedule: str = "constant",
                step_size: int = 10, ema_epochs: float = 0.0, alpha: float = SAF_ALPHA,
                beta: float = SAF_BETA, activation: str = "l1",
                regressor_hidden: int | None = None, batch_norm: bool = False,
                seed: int = 0, device: str = "auto",
                num_threads: int | None = None, num_workers: int = 0,
                eval_batch_size: int | None = None, stem: str | None = None,
                stem_size: int = 112, cpu_amp: bool = False, monitor_test: bool = False,
                max_steps: int = 0, decode_device: str = "cpu",
                resident: bool = False) -> ExperimentConfig:
    """The complete SAF model ("Our Proposal") on the standard split; every SAF/NIMA run derives
    from it, so runs asked for by several chapters hash identically.

    Paper settings ("Implementation Details"): VGG16 encoder, images resized to short edge 256 with
    the aspect ratio kept, random horizontal flip, SGD with momentum 0.9, loss EMD + α·reconstruction
    + β·activation (L1). **Choice** (values lost in the text): ImageNet weights for the encoder, lr
    0.001 (a pretrained encoder), weight decay 5e-4, constant schedule, 15 epochs, batch 32, P = 32
    maps per group (c = 320), α = β = 0.1 (``iaalib.losses``). The demo profile trains narrow
    encoders from scratch (``width_mult``, ``weights=None``) on small images, with batch norm
    (``batch_norm=True``, torchvision's ``vgg16_bn`` layout) so that they learn in two epochs;
    NIMA then gets the same encoder. ``stem``: both train above a frozen ImageNet stem on its
    cached activations (:mod:`iaalib.models.stems`, the whole image resized to ``stem_size``²);
    ``cpu_amp``: bf16 autocast on a CPU (:class:`iaalib.engine.config.ExperimentConfig`);
    ``monitor_test`` records the test metrics after every epoch (learning curves); ``max_steps``
    ends each run after that many optimiser steps (0: the whole schedule; the rehearsal profile);
    ``decode_device``, ``resident``: the GPU data path (:class:`iaalib.engine.config.DataConfig`).
    ``ema_epochs`` > 0: the run's result is a moving average of its weights over about that many
    epochs (:class:`iaalib.engine.config.OptimConfig`); **Choice:** 0, the last weights, as the
    paper.
    """
    d = {
        "name": "saf",
        "data": {"train": os.fspath(train), "val": os.fspath(val) if val else None,
                 "test": os.fspath(test), "image_dir": os.fspath(image_dir), "transform": "saf",
                 "short_edge": int(short_edge), "num_workers": int(num_workers),
                 "stem_size": int(stem_size), "decode_device": decode_device,
                 "resident": bool(resident)},
        "model": {"family": "saf", "width_mult": float(width_mult), "group_size": int(group_size),
                  "weights": weights or None, "split_regressor": True, "fusion": "gap",
                  "decoder": True, "fc_dim": regressor_hidden,
                  "options": {"batch_norm": True} if batch_norm else {}, "stem": stem or None},
        "loss": {"alpha": float(alpha), "beta": float(beta), "activation": activation},
        "optim": {"name": optimizer, "lr": float(lr), "momentum": float(momentum),
                  "weight_decay": float(weight_decay), "schedule": schedule,
                  "step_size": int(step_size), "ema_epochs": float(ema_epochs)},
        "epochs": int(epochs), "batch_size": int(batch_size), "eval_batch_size": eval_batch_size,
        "seed": int(seed), "device": device, "num_threads": num_threads, "quiet": True,
        "cpu_amp": bool(cpu_amp), "monitor_test": bool(monitor_test), "max_steps": int(max_steps or 0),
    }
    return saf_config(ExperimentConfig.from_dict(d))  # named like the full model's run


def saf_config(base: ExperimentConfig, *, ablation: str = "full", activation: str | None = None,
               group_size: int | None = None, seed: int | None = None) -> ExperimentConfig:
    """One SAF run: a Table 3 row (``ablation``), a Table 4 activation loss, a bottleneck size P
    (``group_size``) and/or another seed, applied to ``base``. Unchanged values keep the hash."""
    if ablation not in ABLATIONS:
        raise IaaError(f"unknown SAF ablation {ablation!r}; expected one of {', '.join(ABLATIONS)}")
    if base.model.family != "saf":
        raise IaaError(f"saf_config needs a SAF base config, got family {base.model.family!r}")
    overrides: dict[str, Any] = dict(ABLATIONS[ablation])
    if activation is not None:
        if activation not in ACTIVATION_LOSSES.values():
            raise IaaError(f"activation must be one of {sorted(ACTIVATION_LOSSES.values())}, "
                           f"got {activation!r}")
        overrides["loss.activation"] = activation
    if group_size is not None:
        overrides["model.group_size"] = int(group_size)
    if seed is not None:
        overrides["seed"] = int(seed)
    cfg = base.with_overrides(overrides)
    parts = [_slug(ablation), cfg.loss.activation, f"p{cfg.model.group_size}", f"s{cfg.seed}"]
    return cfg.with_overrides({"name": "saf-" + "-".join(parts)})


def nima_config(base: ExperimentConfig, *, dropout: float = 0.75,
                seed: int | None = None) -> ExperimentConfig:
    """NIMA (Talebi & Milanfar) with SAF's encoder: VGG16 at the same width and weights, same data,
    optimiser and epochs, EMD loss only (Table 2's main baseline, Table 5).

    **Choice:** NIMA gets SAF's input pipeline (whole image, short edge ``data.short_edge``, aspect
    kept, flip) instead of its 224² random crops, so the comparison isolates the model.
    ``dropout`` before the last layer is NIMA's 0.75.
    """
    batch_norm = bool(base.model.options.get("batch_norm"))
    overrides: dict[str, Any] = {
        "model.family": "nima", "model.backbone": "vgg16_bn" if batch_norm else "vgg16",
        "model.options": {}, "model.group_size": None,
        "model.fc_dim": None, "model.dropout": float(dropout),
        "loss.alpha": 0.0, "loss.beta": 0.0, "loss.activation": "l1",
    }
    if seed is not None:
        overrides["seed"] = int(seed)
    cfg = base.with_overrides(overrides)
    return cfg.with_overrides({"name": f"nima-{cfg.model.backbone}-s{cfg.seed}"})


def vanilla_autoencoder_config(base: ExperimentConfig, *, separate_run: bool = False
                               ) -> ExperimentConfig:
    """The "vanilla Auto-Encoder" of the Grad-CAM figure: encoder, decoder and SPP regressor,
    no fusing module, a conventional (joint) regressor.

    **Choice:** by default this is the "w/o Act & Split" run of Table 3. Group average pooling has
    no parameters, so with β = 0 a model that computes it trains exactly like one without a fusing
    module (same weights, same steps; ``tests/test_studies_saf.py`` checks it); sharing the run
    saves one training. ``separate_run=True`` builds the literal model (``fusion: none``).
    """
    if not separate_run:
        return saf_config(base, ablation="w/o Act & Split")
    cfg = base.with_overrides({"model.fusion": "none", "model.split_regressor": False,
                               "loss.beta": 0.0})
    return cfg.with_overrides({"name": f"saf-vanilla-ae-p{cfg.model.group_size}-s{cfg.seed}"})


def table2_configs(base: ExperimentConfig, *, nima_dropout: float = 0.75,
                   baselines: Sequence[str] = ("w/o Split", "w/o Act")
                   ) -> dict[str, ExperimentConfig]:
    """Table 2 rows: "SAF", "NIMA" and cheap extra baselines named by Table 3 rows, shown as
    "SAF <row>" (by default the conventional joint regressor, "SAF w/o Split", and the
    auto-encoder without pre-activation, "SAF w/o Act"; both are reused by the ablation study)."""
    configs = {"SAF": saf_config(base), "NIMA": nima_config(base, dropout=nima_dropout)}
    for name in baselines:
        configs[f"SAF {name}"] = saf_config(base, ablation=name)
    return configs


def table3_configs(base: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """Table 3 rows: "full", "w/o Split", "w/o Act", "w/o Act & Split"."""
    return {name: saf_config(base, ablation=name) for name in ABLATIONS}


def table4_configs(base: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """Table 4 rows: the activation loss as "L1" (the full model), "KL" or "JS"."""
    return {name: saf_config(base, activation=kind) for name, kind in ACTIVATION_LOSSES.items()}


def bottleneck_configs(base: ExperimentConfig, sizes: Sequence[int]) -> dict[str, ExperimentConfig]:
    """The comparative study of the bottleneck dimension: rows "P=<p>" (c = 10·P maps)."""
    return {f"P={int(p)}": saf_config(base, group_size=int(p)) for p in sizes}


def seed_configs(base: ExperimentConfig, seeds: Sequence[int]) -> dict[str, ExperimentConfig]:
    """The full model with other training seeds (run-to-run variation): rows "seed=<s>"."""
    return {f"seed={int(s)}": saf_config(base, seed=int(s)) for s in seeds}


def book_config(profile: str, image_dir: str | os.PathLike, *, manifest_root: str | None = None,
                train_subset: int = 0, subset_seed: int = 0, **settings: Any) -> ExperimentConfig:
    """:func:`base_config` on the standard split notebook 01 wrote for ``profile``
    (:func:`iaalib.datasets.manifest_dir`), training on a seeded subset
    (:func:`iaalib.studies.runner.training_subset`)."""
    if not image_dir:
        raise IaaError("no image folder: set image_dir in the profile (real AVA) or use SynthAVA")
    folder = manifest_dir(profile, "standard", manifest_root or None)
    train = training_subset(folder / "train.csv", train_subset, seed=subset_seed)
    if not (folder / "test.csv").is_file():
        raise IaaError(f"{folder / 'test.csv'}: test manifest not found (run notebook 01 first)")
    return base_config(train=train, test=folder / "test.csv", image_dir=image_dir, **settings)


#: base_config arguments read from a profile under another name than ``saf_<argument>``.
_PROFILE_NAMES = {"num_workers": "saf_loader_workers", "stem": "stem", "stem_size": "stem_size",
                  "cpu_amp": "cpu_amp",
                  "monitor_test": "monitor_test", "max_steps": "max_steps",
                  "decode_device": "decode_device", "resident": "resident_images"}


def profile_config(settings: Settings, image_dir: str | os.PathLike) -> ExperimentConfig:
    """The base config of every SAF/NIMA run of a profile: :func:`book_config` with the profile's
    ``saf_*`` settings (``saf_weights: ""`` = random init, ``saf_num_threads: 0`` = all cores),
    trained with the first of its ``seeds`` (the others: :func:`iaalib.studies.runner.with_seeds`);
    the training subset is drawn with the profile's ``seed``."""
    names = [n for n in inspect.signature(base_config).parameters
             if n not in ("train", "test", "image_dir", "val", "seed")]
    kw = {n: settings[_PROFILE_NAMES.get(n, f"saf_{n}")] for n in names
          if _PROFILE_NAMES.get(n, f"saf_{n}") in settings}
    kw["weights"] = kw.get("weights") or None
    kw["num_threads"] = kw.get("num_threads") or None
    kw["seed"] = int(settings["seeds"][0])
    return book_config(settings.profile, image_dir,
                       manifest_root=settings.get("manifest_root") or None,
                       train_subset=int(settings.get("saf_train_subset") or 0),
                       subset_seed=int(settings.get("seed", 0)), **kw)


# ============================================================================ the model, shown
def forward_shapes(model, image) -> pd.DataFrame:
    """One forward pass of a SAF model on ``image`` ([3, H, W] or [1, 3, H, W]): the shape of
    every stage (input, encoder output, bottleneck F, group average pooling, SPP, split regressor,
    decoder) and the parameters of the module that produces it."""

    x = image.unsqueeze(0) if image.dim() == 3 else image
    stages = [("encoder", "encoder (VGG16 conv blocks)"),
              ("bottleneck", "bottleneck F (1×1 conv to M·P maps, ReLU)"),
              ("spp", "spatial pyramid pooling"), ("regressor", "regressor → logits"),
              ("decoder", "decoder → reconstruction")]
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [getattr(model, name).register_forward_hook(
        lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape)))
        for name, _ in stages if getattr(model, name, None) is not None]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            out = model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    rows = [("input image", tuple(x.shape), 0)]
    for name, text in stages:
        if name in seen:
            n = sum(p.numel() for p in getattr(model, name).parameters())
            rows.append((text, seen[name], n))
            if name == "bottleneck" and "group_pooled" in out:
                rows.append(("group average pooling (M values)", tuple(out["group_pooled"].shape), 0))
    rows.append(("softmax → score distribution", tuple(out["dist_logits"].shape), 0))
    return pd.DataFrame(rows, columns=["stage", "shape", "parameters"]).set_index("stage")


def loss_terms(model, sample: Mapping[str, Any], cfg: ExperimentConfig) -> dict[str, float]:
    """The SAF loss terms (``iaalib.losses.saf_loss`` with ``cfg``'s α, β and activation loss) of
    ``model`` on one dataset sample (``{"image", "dist"}``), without gradients."""


    model.eval()
    with torch.no_grad():
        x = sample["image"].unsqueeze(0)
        terms = saf_loss(model(x), sample["dist"].unsqueeze(0), x, alpha=cfg.loss.alpha,
                         beta=cfg.loss.beta, activation=cfg.loss.activation)
    return {k: float(v) for k, v in terms.items()}


# ============================================================================ Table 5 (TID2013)
def tid_predictions(run: Run, tid_root: str | os.PathLike, *, batch_size: int = 16,
                    device: str = "auto") -> pd.DataFrame:
    """One run's best checkpoint on a TID2013-format set without fine-tuning
    (:func:`iaalib.engine.evaluate.evaluate_tid`): one row per scored image with ``image_id``
    (the row of ``mos_with_names.txt``), ``mean``, ``sd``, ``gt_mean`` (= the MOS), ``mos``,
    ``distortion``, ``distortion_name``, ``level`` — a predictions frame the claims can resample."""
    tid = read_tid(tid_root)
    res = evaluate_tid(run.dir, tid_root, batch_size=batch_size, device=device,
                       return_predictions=True)
    pred = res["predictions"]
    rows = pred["index"].to_numpy()
    return pred.assign(image_id=rows, gt_mean=pred["mos"], distortion=tid["distortion"].to_numpy()[rows],
                       distortion_name=tid["distortion_name"].to_numpy()[rows],
                       level=tid["level"].to_numpy()[rows])


def cross_dataset(predictions: Mapping[str, pd.DataFrame | Sequence[pd.DataFrame]],
                  tid_root: str | os.PathLike
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Table 5 from :func:`tid_predictions` frames (per label: one frame or one per seed, averaged).

    Returns ``(table, per_distortion, by_level)``: table rows = labels, columns ``srcc_mean,
    plcc_mean, n_images``; per_distortion rows = distortion types, columns (label, metric) — SRCC
    and PLCC of the predicted mean vs MOS within one distortion type; by_level rows = distortion
    levels 1..5, columns the mean MOS and each label's mean predicted score."""
    tid = read_tid(tid_root)
    rows, per = {}, {}
    by_level = {"MOS": tid.groupby("level")["mos"].mean()}
    for label, frames in predictions.items():
        frames = [frames] if isinstance(frames, pd.DataFrame) else list(frames)
        rows[label] = {"srcc_mean": float(np.mean([srcc(f["mean"], f["mos"]) for f in frames])),
                       "plcc_mean": float(np.mean([plcc(f["mean"], f["mos"]) for f in frames])),
                       "n_images": int(len(frames[0]))}
        by_level[label] = pd.concat(frames).groupby("level")["mean"].mean()
        for (code, name), _ in frames[0].groupby(["distortion", "distortion_name"], sort=True):
            dist = f"#{int(code)} {name}"
            values = {"srcc_mean": [], "plcc_mean": []}
            for f in frames:
                g = f[f["distortion"] == code]
                ok = len(g) > 2 and g["mean"].std() > 0
                values["srcc_mean"].append(srcc(g["mean"], g["mos"]) if ok else np.nan)
                values["plcc_mean"].append(plcc(g["mean"], g["mos"]) if ok else np.nan)
            for metric, v in values.items():
                per.setdefault(dist, {})[(label, metric)] = float(np.nanmean(v)) \
                    if np.isfinite(v).any() else np.nan
    table = pd.DataFrame.from_dict(rows, orient="index")
    per_distortion = pd.DataFrame.from_dict(per, orient="index")
    per_distortion.columns = pd.MultiIndex.from_tuples(per_distortion.columns)
    per_distortion.index.name = "distortion"
    levels = pd.DataFrame(by_level)
    levels.index.name = "level"
    return table, per_distortion, levels


# ============================================================================ t-SNE
def untrained_predictions(cfg: ExperimentConfig, *, manifest: str | os.PathLike | None = None,
                          device: str = "auto") -> pd.DataFrame:
    """Predictions (``iaalib.engine.evaluate.predict`` frame) of ``cfg``'s network at its random
    initialisation — the "random initialised model" of the t-SNE figure — on ``manifest``
    (default the test manifest). The weights are drawn after ``torch.manual_seed(cfg.seed)``,
    as the trainer does before it builds the model."""


    torch.manual_seed(cfg.seed)
    dev = select_device(device)
    model = build_model(cfg.model).to(dev)
    ds = build_dataset(cfg, manifest or cfg.data.test, train=False)
    sampler = build_batch_sampler(ds, cfg.data, cfg.eval_batch_size or cfg.batch_size,
                                  shuffle=False, seed=cfg.seed)
    return predict(model, make_loader(ds, sampler, seed=cfg.seed), device=dev)


def tsne_panels(predictions: Mapping[str, pd.DataFrame], *, n_points: int | None = None,
                seed: int = 0, perplexity: float = 30.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """2-D t-SNE embeddings (``iaalib.viz.tsne_embedding``) of the 10-bin score distributions:
    a "ground truth" panel (``gt_p1..gt_p10``) and one panel per model (``p1..p10``), over the same
    images, each coloured by the ground-truth mean score. ``n_points``: a seeded sample of the
    images common to every frame (all when None).

    **Choice:** the paper's number of images and t-SNE settings are lost; each panel is its own
    t-SNE (PCA init, ``seed``), so a model whose predictions order the images like the ground truth
    shows the same colour gradient, and a random model shows none.
    """

    frames = list(predictions.values())
    if not frames:
        raise ValueError("tsne_panels: no predictions")
    ids = set(frames[0]["image_id"])
    for f in frames[1:]:
        ids &= set(f["image_id"])
    ids = np.array(sorted(ids))
    if n_points and n_points < len(ids):
        ids = np.sort(np.random.default_rng(seed).choice(ids, size=int(n_points), replace=False))
    first = frames[0].set_index("image_id").loc[ids]
    gt_cols = [f"gt_p{i}" for i in range(1, 11)]
    values = first["gt_mean"].to_numpy(float)
    panels = {"ground truth": (tsne_embedding(first[gt_cols].to_numpy(float), seed=seed,
                                              perplexity=perplexity), values)}
    for label, frame in predictions.items():
        p = frame.set_index("image_id").loc[ids, [f"p{i}" for i in range(1, 11)]].to_numpy(float)
        panels[label] = (tsne_embedding(p, seed=seed, perplexity=perplexity), values)
    return panels


def neighbour_agreement(points: np.ndarray, values: np.ndarray, k: int = 10) -> float:
    """How well a 2-D embedding keeps images of similar score together: the SRCC between each
    point's value and the mean value of its ``k`` nearest neighbours in the embedding (about 0
    for a random layout, near 1 when the colour changes smoothly)."""


    pts, vals = np.asarray(points, float), np.asarray(values, float)
    k = int(min(k, len(pts) - 1))
    if k < 1:
        raise ValueError("neighbour_agreement needs at least 2 points")
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(pts).kneighbors(pts)
    return float(srcc(vals, vals[idx[:, 1:]].mean(axis=1)))


# ============================================================================ Grad-CAM
def gradcam_examples(runs: Mapping[str, Run], image_ids: Sequence[int], *,
                     manifest: str | os.PathLike | None = None
                     ) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]], pd.DataFrame]:
    """Grad-CAM maps of the predicted mean score (``iaalib.gradcam.mean_score_cam``) for the
    images ``image_ids`` of the test manifest, one list per run (best checkpoint).

    Returns ``(images [H, W, 3] in [0, 1], {label: [H, W] maps}, scores)`` where ``scores`` has
    the ground-truth mean and each model's predicted mean per image. Images go through each run's
    evaluation transform (the whole image, aspect kept); a network above a frozen stem gets the
    stem's input (the whole image, square) and is composed with its stem, so the maps are on pixels.
    """
    first = next(iter(runs.values()))
    cfg = first.config
    ds = build_dataset(cfg, manifest or cfg.data.test, train=False)
    index_of = {int(i): k for k, i in enumerate(ds.image_ids)}
    missing = [i for i in image_ids if int(i) not in index_of]
    if missing:
        raise IaaError(f"image ids {missing} are not in {manifest or cfg.data.test}")
    samples = [ds[index_of[int(i)]] for i in image_ids]
    if any(s is None for s in samples):
        bad = [i for i, s in zip(image_ids, samples) if s is None]
        raise IaaError(f"images {bad} could not be read (see the log)")
    if cfg.model.stem:  # pixels, not the cached activations
        transform = stem_transform(cfg.data)
        tensors = [transform(load_image(Path(cfg.data.image_dir) / f"{int(i)}.jpg",
                                        short_edge=cfg.data.stem_size)) for i in image_ids]
    else:
        tensors = [s["image"] for s in samples]
    scores = pd.DataFrame({"image_id": list(image_ids),
                           "ground truth": [float(s["mean"]) for s in samples]})
    maps: dict[str, list[np.ndarray]] = {}
    target = MeanScoreTarget()
    for label, run in runs.items():
        model = run.load_model(pixels=True)
        maps[label] = mean_score_cam(model, tensors)
        with torch.no_grad():
            scores[label] = [float(target(model(x.unsqueeze(0))["dist_logits"])[0])
                             for x in tensors]
    return [denormalise(x) for x in tensors], maps, scores


def cam_concentration(maps: Sequence[np.ndarray], top: float = 0.2) -> float:
    """Mean share of a CAM's total mass in its ``top`` fraction of pixels (``top`` for a flat map,
    1 for one concentrated on few pixels): how focused the maps are. All-zero maps have no share
    and are left out of the mean; NaN when every map is zero."""
    shares = []
    for m in maps:
        v = np.sort(np.asarray(m, float).ravel())[::-1]
        total = v.sum()
        k = max(1, int(round(top * v.size)))
        if total > 0:
            shares.append(v[:k].sum() / total)
    return float(np.mean(shares)) if shares else float("nan")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
