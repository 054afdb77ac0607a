"""Evaluation: every metric of both papers from a run or a checkpoint, on any manifest; the
cross-dataset TID mode; and ``iaa score`` (rank a folder of photos by predicted mean score).

Predictions are a DataFrame with one row per image (``predict``); metrics are computed from that
frame alone (``compute_metrics``), so a run's ``metrics.json``, ``iaa eval`` and a DDP run (frames
gathered from all ranks) share one code path.

Columns of a predictions frame: ``index, image_id``; for distribution models (SAF, NIMA)
``p1..p10``, ``mean``, ``sd``; for Kao's classifiers ``pred_label`` (``mean``/``sd`` are NaN);
for all ``p_high``; ``pred_tag_<id>`` (sigmoid of the tag logits) for multi-task models; ground
truth ``gt_mean, gt_sd, gt_label, gt_p1..gt_p10, gt_tag_<id>``.

**Choice:** the aesthetic probability ``p_high`` of a distribution model is its mass on scores
6..10 (Kao's classifiers: the softmax probability of the "high" class), so ``srcc_p_high`` and
``iaa score`` rankings exist for every family.
"""
from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .. import metrics as M
from ..data.tid import read_tid
from ..errors import IaaError
from ..models.factory import build_model
from ..models.stems import FrozenStem, StemmedModel
from .checkpoint import load_checkpoint
from .config import ExperimentConfig
from .device import select_device, use_channels_last
from .loaders import (IMAGE_SUFFIXES, ImageFileDataset, build_batch_sampler, build_dataset,
                      build_transform, find_images, make_loader)

log = logging.getLogger(__name__)

SCORES = np.arange(1, 11, dtype=np.float64)
DIST_COLUMNS = [f"p{i}" for i in range(1, 11)]
GT_DIST_COLUMNS = [f"gt_p{i}" for i in range(1, 11)]


# ---------------------------------------------------------------------- predictions
@torch.inference_mode()
def predict(model: torch.nn.Module, loader, *, device: torch.device | str = "cpu",
            tag_columns: Sequence[str] = (), amp: bool = False,
            channels_last: bool = False) -> pd.DataFrame:
    """Run ``model`` over ``loader`` (batches of :func:`iaalib.data.images.collate_batch`) and
    return one row per image, sorted by dataset index."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    parts: list[dict[str, np.ndarray]] = []
    try:
        for batch in loader:
            if batch["image"].shape[0] == 0:
                continue
            x = batch["image"].to(device, non_blocking=True)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(x)
            parts.append(_batch_columns(out, batch, tag_columns))
    finally:
        model.train(was_training)
    if not parts:
        return pd.DataFrame(columns=["index", "image_id"])
    # one frame from the batches' columns (a frame per batch cost 20x more than the model)
    frame = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    return frame.sort_values("index", kind="stable").reset_index(drop=True)


def _batch_columns(out: dict, batch: dict, tag_columns: Sequence[str]) -> dict[str, np.ndarray]:
    cols: dict[str, Any] = {"index": batch["index"].numpy(), "image_id": batch["image_id"].numpy()}
    if "dist_logits" in out:
        p = torch.softmax(out["dist_logits"].float(), dim=1).cpu().numpy().astype(np.float64)
        for i in range(10):
            cols[f"p{i + 1}"] = p[:, i]
        cols["mean"] = M.mean_score(p)
        cols["sd"] = M.score_sd(p)
        # Choice: the aesthetic probability of a distribution model is its mass on scores 6..10.
        cols["p_high"] = p[:, 5:].sum(axis=1)
    elif "aesthetic_logits" in out:
        prob = torch.softmax(out["aesthetic_logits"].float(), dim=1).cpu().numpy()
        cols["mean"] = np.full(len(prob), np.nan)
        cols["sd"] = np.full(len(prob), np.nan)
        cols["p_high"] = prob[:, -1]
        cols["pred_label"] = prob.argmax(axis=1)
    else:
        raise IaaError(f"model output has neither 'dist_logits' nor 'aesthetic_logits' "
                       f"(keys: {sorted(out)})")
    if "tag_logits" in out and len(tag_columns):
        t = torch.sigmoid(out["tag_logits"].float()).cpu().numpy()
        for j, name in enumerate(tag_columns):
            cols[f"pred_{name}"] = t[:, j]
    dist = batch["dist"].numpy().astype(np.float64)
    cols["gt_mean"] = batch["mean"].numpy().astype(np.float64)
    known = np.isfinite(dist).all(axis=1)  # unlabelled files (iaa score) have NaN ground truth
    cols["gt_sd"] = np.full(len(dist), np.nan)
    if known.any():
        cols["gt_sd"][known] = M.score_sd(dist[known])
    cols["gt_label"] = batch["label"].numpy()
    for i in range(10):
        cols[f"gt_p{i + 1}"] = dist[:, i]
    tags = batch["tags"].numpy()
    if tags.ndim == 2 and tags.shape[1] == len(tag_columns):
        for j, name in enumerate(tag_columns):
            cols[f"gt_{name}"] = tags[:, j]
    return cols


def merge_predictions(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Frames from several DDP ranks → one frame (padding duplicates dropped, sorted by index)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["index", "image_id"])
    df = pd.concat(frames, ignore_index=True)
    return df.drop_duplicates("index").sort_values("index", kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------- metrics
def compute_metrics(pred: pd.DataFrame, *, n_total: int | None = None) -> dict[str, Any]:
    """All metrics of both papers that the predictions support (others are None).

    * ``acc``: binary accuracy at δ = 0 (high = ground-truth mean > 5); Kao's classifiers: argmax
      class vs the manifest label; distribution models: predicted mean > 5 vs ground truth.
    * ``srcc_mean, plcc_mean, srcc_sd, plcc_sd, emd`` (r = 2): distribution models only.
    * ``srcc_p_high``: SRCC of the aesthetic probability vs the ground-truth mean (all models).
    * ``semantic_ap`` (mean AP over tags) and ``per_tag_acc`` (aesthetic accuracy on the images
      of each tag, Kao Fig. 5) when the manifest has tag columns.
    * ``n_images`` scored, ``n_skipped`` = ``n_total`` − ``n_images``.
    """
    n = len(pred)
    out: dict[str, Any] = {"n_images": int(n),
                           "n_skipped": int(n_total - n) if n_total is not None else 0}
    keys = ("acc", "srcc_mean", "plcc_mean", "srcc_sd", "plcc_sd", "emd", "srcc_p_high",
            "semantic_ap", "per_tag_acc")
    out.update({k: None for k in keys})
    if n == 0:
        return out
    gt_mean = pred["gt_mean"].to_numpy(np.float64)
    gt_label = pred["gt_label"].to_numpy(np.int64)
    if "p1" in pred:
        p = pred[DIST_COLUMNS].to_numpy(np.float64)
        g = pred[GT_DIST_COLUMNS].to_numpy(np.float64)
        pm, ps = pred["mean"].to_numpy(np.float64), pred["sd"].to_numpy(np.float64)
        gt_sd = pred["gt_sd"].to_numpy(np.float64)
        out["srcc_mean"], out["plcc_mean"] = _corr(M.srcc, pm, gt_mean), _corr(M.plcc, pm, gt_mean)
        out["srcc_sd"], out["plcc_sd"] = _corr(M.srcc, ps, gt_sd), _corr(M.plcc, ps, gt_sd)
        out["emd"] = _f(M.emd(p, g))
        out["acc"] = _f(M.binary_accuracy(pm, gt_mean))
        pred_label = (pm > 5.0).astype(np.int64)
    else:
        pred_label = pred["pred_label"].to_numpy(np.int64)
        out["acc"] = M.accuracy(pred_label, gt_label)
    out["srcc_p_high"] = _corr(M.srcc, pred["p_high"].to_numpy(np.float64), gt_mean)
    tag_names = [c[len("gt_"):] for c in pred.columns if c.startswith("gt_tag_")]
    if tag_names:
        tags = pred[[f"gt_{t}" for t in tag_names]].to_numpy(np.float64)
        out["per_tag_acc"] = {t: _f(a) for t, a in
                              M.per_tag_accuracy(pred_label, gt_label, tags, tag_names).items()}
        if all(f"pred_{t}" in pred for t in tag_names) and (tags > 0).any():
            scores = pred[[f"pred_{t}" for t in tag_names]].to_numpy(np.float64)
            out["semantic_ap"] = _f(M.semantic_average_precision(scores, tags))
    return out


def _corr(fn, a, b) -> float | None:
    """A correlation, or None where it is undefined (fewer than 2 images, constant input)."""
    if len(a) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning: the result is NaN → None
        return _f(fn(a, b))


def _f(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


# ---------------------------------------------------------------------- models from files
def load_model(checkpoint: str | os.PathLike, *, pixels: bool = False
               ) -> tuple[torch.nn.Module, ExperimentConfig, dict]:
    """(network in eval mode on the CPU, its config, the checkpoint dict) from a checkpoint file
    or a run directory (its ``checkpoints/best.pt``). A network trained above a frozen stem reads
    stem activations; ``pixels=True`` returns it composed with its stem
    (:class:`~iaalib.models.stems.StemmedModel`), for images that are not cached. The network is
    in the memory format it was trained in (``channels_last``), so it computes what it did then."""
    path = Path(checkpoint)
    if path.is_dir():
        path = path / "checkpoints" / "best.pt"
    state = load_checkpoint(path)
    cfg = ExperimentConfig.from_dict(state["config"])
    model = build_model(cfg.model, num_tags=len(state.get("tag_columns", [])))
    model.load_state_dict(state["model"])
    if use_channels_last(model, torch.device("cpu"), cfg.channels_last, warn=False):
        model = model.to(memory_format=torch.channels_last)
    if pixels and cfg.model.stem:
        model = StemmedModel(FrozenStem(cfg.model.stem), model)
    model.eval()
    return model, cfg, state


def _checkpoint_file(run_or_file: Path, which: str) -> Path:
    return run_or_file if run_or_file.is_file() else run_or_file / "checkpoints" / f"{which}.pt"


# ---------------------------------------------------------------------- evaluation
def evaluate_run(run_dir: str | os.PathLike, *, manifest: str | os.PathLike | None = None,
                 images: str | os.PathLike | None = None, checkpoint: str = "best",
                 batch_size: int | None = None, device: str = "auto",
                 return_predictions: bool = False) -> dict[str, Any]:
    """Metrics (see :func:`compute_metrics`) of a run's ``best``/``last`` checkpoint (or of a
    checkpoint file passed as ``run_dir``) on the run's test manifest or on ``manifest`` (images
    under ``images``, default the run's image directory)."""
    run_dir = Path(run_dir)
    model, cfg, state = load_model(_checkpoint_file(run_dir, checkpoint))
    manifest = manifest or cfg.data.test
    if not manifest:
        raise IaaError(f"{run_dir}: the run has no test manifest; pass --manifest")
    result, pred = evaluate_model(model, cfg, manifest, list(state.get("tag_columns", [])),
                                  images=images, batch_size=batch_size, device=device)
    result.update({"run": str(run_dir), "checkpoint": checkpoint, "manifest": str(manifest),
                   "epoch": state.get("epoch")})
    if return_predictions:
        result["predictions"] = pred
    return result


def evaluate_model(model: torch.nn.Module, cfg: ExperimentConfig, manifest,
                   tag_columns: Sequence[str], *, images: str | os.PathLike | None = None,
                   batch_size: int | None = None, device: str = "auto"
                   ) -> tuple[dict[str, Any], pd.DataFrame]:
    """(metrics, predictions) of ``model``, trained with ``cfg``, on ``manifest`` (images under
    ``images``, default ``cfg``'s image directory); the tag metrics where the manifest has every
    one of ``tag_columns``."""
    header = pd.read_csv(manifest, nrows=0).columns if isinstance(manifest, (str, os.PathLike)) \
        else manifest.columns
    usable_tags = list(tag_columns) if all(c in header for c in tag_columns) else []
    ds = build_dataset(cfg, manifest, train=False, image_dir=images, tag_columns=usable_tags)
    dev = select_device(device)
    model.to(dev)
    sampler = build_batch_sampler(ds, cfg.data, batch_size or cfg.eval_batch_size or cfg.batch_size,
                                  shuffle=False, seed=cfg.seed)
    loader = make_loader(ds, sampler, num_workers=cfg.data.num_workers, seed=cfg.seed)
    pred = predict(model, loader, device=dev, tag_columns=usable_tags,
                   channels_last=cfg.channels_last)
    return compute_metrics(pred, n_total=len(ds)), pred


def predict_files(paths: Sequence[str | os.PathLike], model: torch.nn.Module,
                  cfg: ExperimentConfig, *, batch_size: int = 16, num_workers: int = 0,
                  device: str = "auto") -> tuple[pd.DataFrame, int]:
    """Predictions for arbitrary image files with ``cfg``'s evaluation transform (SAF/NIMA: the
    whole image at its aspect ratio; Kao: Resize + centre crop), batched by aspect ratio.
    Returns (frame with a ``path`` column, number of unreadable files skipped)."""
    ds = ImageFileDataset(paths, build_transform(cfg.data, train=False, stem=cfg.model.stem))
    sampler = build_batch_sampler(ds, cfg.data, batch_size, shuffle=False, seed=0)
    loader = make_loader(ds, sampler, num_workers=num_workers)
    dev = select_device(device)
    model.to(dev)
    pred = predict(model, loader, device=dev)
    pred.insert(0, "path", [str(ds.paths[i]) for i in pred["index"]])
    n_skipped = len(ds) - len(pred)
    if n_skipped:
        done = set(pred["index"].tolist())
        missing = [str(ds.paths[i]) for i in range(len(ds)) if i not in done]
        log.warning("skipped %d unreadable file(s): %s", n_skipped, ", ".join(missing[:10])
                    + (" ..." if n_skipped > 10 else ""))
    return pred, n_skipped


def evaluate_tid(run_dir: str | os.PathLike, tid_root: str | os.PathLike, *,
                 checkpoint: str = "best", batch_size: int = 16, device: str = "auto",
                 return_predictions: bool = False) -> dict[str, Any]:
    """Cross-dataset mode (SAF Table 5): SRCC/PLCC of the predicted mean score (Kao's
    classifiers: the aesthetic probability) against the MOS of a TID2013-format set."""

    model, cfg, state = load_model(_checkpoint_file(Path(run_dir), checkpoint), pixels=True)
    tid = read_tid(tid_root)
    pred, n_skipped = predict_files(list(tid["path"]), model, cfg, batch_size=batch_size,
                                    device=device)
    mos = tid["mos"].to_numpy(np.float64)[pred["index"].to_numpy()]
    score = pred["mean"].to_numpy(np.float64) if "p1" in pred else pred["p_high"].to_numpy()
    result = {"srcc_mean": _corr(M.srcc, score, mos), "plcc_mean": _corr(M.plcc, score, mos),
              "score": "mean" if "p1" in pred else "p_high",
              "n_images": int(len(pred)), "n_skipped": int(n_skipped),
              "run": str(run_dir), "checkpoint": checkpoint, "tid_root": str(tid_root)}
    if return_predictions:
        pred["mos"] = mos
        result["predictions"] = pred
    return result


def score_folder(directory: str | os.PathLike, checkpoint: str | os.PathLike, *,
                 batch_size: int = 16, num_workers: int = 0, device: str = "auto",
                 return_skipped: bool = False):
    """Rank every image under ``directory`` (recursive; jpg/png/bmp/webp/tif/gif) by predicted
    mean score: DataFrame ``path, mean, sd, p1..p10, p_high`` sorted by mean (Kao's classifiers:
    by ``p_high``; mean/sd/p1..p10 are NaN), best first. Unreadable files are skipped with a
    warning; ``return_skipped=True`` also returns their number."""
    directory = Path(directory)
    if not directory.is_dir():
        raise IaaError(f"{directory}: not a directory")
    paths = find_images(directory)
    if not paths:
        raise IaaError(f"{directory}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    model, cfg, _ = load_model(checkpoint, pixels=True)
    pred, n_skipped = predict_files(paths, model, cfg, batch_size=batch_size,
                                    num_workers=num_workers, device=device)
    for c in DIST_COLUMNS:
        if c not in pred:
            pred[c] = np.nan
    key = "mean" if pred["mean"].notna().any() else "p_high"
    table = pred[["path", "mean", "sd", *DIST_COLUMNS, "p_high"]] \
        .sort_values([key, "path"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return (table, n_skipped) if return_skipped else table


