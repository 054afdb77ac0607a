"""Batches for the engine: an ExperimentConfig's transforms, datasets and DataLoaders, and a
Dataset over arbitrary image files for ``iaa score`` and TID-format sets.

With a frozen stem (``model.stem``) a manifest's dataset is the cached stem activations of its
image folder (:class:`~iaalib.data.activations.ActivationDataset`), batched by tensor indexing
without a DataLoader; arbitrary files go through the stem on the fly (``stem_transform`` and
:class:`~iaalib.models.stems.StemmedModel`).

Every loader is driven by :class:`~iaalib.data.sampler.AspectRatioBucketSampler` (shuffling,
DDP sharding via ``num_replicas``/``rank``, mid-epoch resume via ``set_start_batch``) and
:func:`~iaalib.data.images.collate_batch` (drops skipped images, counts them).
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data import images, on_device
from ..data.activations import ActivationDataset, load_activations
from ..errors import BadImageError
from ..models.stems import FrozenStem, stem_identity
from .config import DataConfig, ExperimentConfig

log = logging.getLogger(__name__)

#: Suffixes ``iaa score`` picks up (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm")


def build_transform(data: DataConfig, *, train: bool, stem: str | None = None):
    """Kao: Resize(resize²) + crop (Sec. III-D). SAF/NIMA: short edge, aspect kept (SAF "Image
    Preprocessing"); the whole image at evaluation. With a stem: :func:`stem_transform`."""
    if stem:
        return stem_transform(data)
    if data.transform == "kao":
        return images.kao_transform(train, resize=data.resize, crop=data.crop)
    return images.saf_transform(train, short_edge=data.short_edge, max_long_edge=data.max_long_edge)


def stem_transform(data: DataConfig):
    """Pixels for a frozen stem: the whole image resized to ``stem_size``² (see DataConfig)."""
    return images.kao_transform(False, resize=data.stem_size, crop=data.stem_size)


def stem_activations(spec: str, image_dir, size: int):
    """The cached activations of every image of ``image_dir`` through the frozen stem ``spec``
    (:mod:`iaalib.data.activations`; computed on first use)."""
    return load_activations(image_dir, stem=lambda: FrozenStem(spec), stem_id=stem_identity(spec),
                            size=size)


def build_dataset(cfg: ExperimentConfig, manifest, *, train: bool, image_dir=None,
                  tag_columns: Sequence[str] | None = None,
                  device: torch.device | None = None) -> images.AvaImageDataset:
    """The dataset of ``manifest``: cached stem activations, images decoded on the CPU, or (with
    ``data.decode_device`` ≠ "cpu") images decoded on ``device`` or the one it names."""
    if cfg.model.stem:
        acts = stem_activations(cfg.model.stem, image_dir or cfg.data.image_dir,
                                cfg.data.stem_size)
        return ActivationDataset(manifest, acts, train=train, flip=cfg.data.stem_flip,
                                 shift=cfg.data.stem_shift,
                                 seed=cfg.seed, tag_columns=tag_columns)
    args = (manifest, image_dir or cfg.data.image_dir, build_transform(cfg.data, train=train))
    kwargs = dict(strict=cfg.data.strict_images, seed=cfg.seed, tag_columns=tag_columns)
    where = on_device.decode_device(cfg.data.decode_device)
    if where is None:
        return images.AvaImageDataset(*args, **kwargs)
    if device is not None and device.type != "cpu":  # the training device (its rank under DDP)
        where = device
    return on_device.EncodedImageDataset(*args, device=where, resident=cfg.data.resident, **kwargs)


def build_batch_sampler(dataset, data: DataConfig, batch_size: int, *, shuffle: bool, seed: int,
                        num_replicas: int = 1, rank: int = 0):
    """Aspect-ratio buckets for whole-image transforms. **Choice:** Kao's fixed-size crops (and
    stem activations) need no buckets, so every image gets ratio 1.0 (one bucket = a plain
    shuffle, no header reads)."""
    if data.transform == "kao" or hasattr(dataset, "batch"):
        ratios = np.ones(len(dataset))
    else:
        ratios = dataset.aspect_ratios()
    return images.AspectRatioBucketSampler(ratios, batch_size, shuffle=shuffle, seed=seed,
                                           drop_last=False, num_replicas=num_replicas, rank=rank)


class TensorBatches:
    """Batches of a dataset with a ``batch(indices)`` method (cached activations) in the order of
    ``batch_sampler``: what a DataLoader would yield, without per-sample work or worker processes."""

    def __init__(self, dataset, batch_sampler):
        self.dataset, self.batch_sampler = dataset, batch_sampler

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        for indices in self.batch_sampler:
            yield self.dataset.batch(indices)


def worker_start_method() -> str | None:
    """How DataLoader workers start. **Choice:** forked where the platform allows it. A grid's runs
    train in processes started by a fork server or spawned (:mod:`iaalib.studies.runner`), which
    start their own children the same way, so every loader worker of every train and test pass
    would import torch again: a rehearsal run took 10.6 s that way and 3.1 s forked, a tiny
    two-epoch run 16.1 s and 0.42 s (``benchmarks/bench_loader_start.py``). The workers read
    files and never touch the GPU, so forking is safe; elsewhere the platform's default."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


def make_loader(dataset, batch_sampler, *, num_workers: int = 0, seed: int = 0,
                pin_memory: bool = False):
    """A DataLoader over ``batch_sampler``. It gets its own ``torch.Generator`` so creating an
    iterator never draws from the global RNG (needed for an exact mid-epoch resume). Datasets
    that gather whole batches (:class:`~iaalib.data.activations.ActivationDataset`) get
    :class:`TensorBatches` instead."""
    if hasattr(dataset, "batch"):
        return TensorBatches(dataset, batch_sampler)
    g = torch.Generator()
    g.manual_seed(int(seed))
    encoded = isinstance(dataset, on_device.EncodedImageDataset)
    loader = DataLoader(dataset, batch_sampler=batch_sampler, generator=g,
                        collate_fn=on_device.collate_encoded if encoded else images.collate_batch,
                        num_workers=num_workers, pin_memory=pin_memory and not encoded,
                        persistent_workers=False,
                        multiprocessing_context=worker_start_method() if num_workers else None)
    return on_device.DecodedBatches(loader, dataset) if encoded else loader


def find_images(directory: str | os.PathLike) -> list[Path]:
    """Every image file under ``directory`` (recursive, sorted, hidden files skipped)."""
    root = Path(directory)
    return sorted(p for p in root.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


class ImageFileDataset(Dataset):
    """Image files with no labels → the AvaImageDataset sample dict with unknown ground truth
    (``dist``/``mean`` NaN, ``label`` -1, no tags). A file that cannot be decoded is logged with
    its reason and returned as None (counted by :func:`~iaalib.data.images.collate_batch`)."""

    def __init__(self, paths: Sequence[str | os.PathLike], transform, *, short_edge=None):
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self.short_edge = getattr(transform, "decode_short_edge", None) if short_edge is None \
            else short_edge

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        path = self.paths[int(index)]
        try:
            image = images.load_image(path, short_edge=self.short_edge or None)
        except BadImageError as e:
            log.warning("skipping unreadable image %s", e)
            return None
        return {"image": self.transform(image), "dist": torch.full((10,), float("nan")),
                "label": torch.tensor(-1), "tags": torch.zeros(0), "mean": float("nan"),
                "index": int(index), "image_id": int(index)}

    def aspect_ratios(self) -> np.ndarray:
        ratios = np.ones(len(self.paths))
        for i, p in enumerate(self.paths):
            w, h = images._header_size(p)
            if w > 0 and h > 0:
                ratios[i] = w / h
        return ratios
