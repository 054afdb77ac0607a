"""Aspect-ratio bucketing: batches of whole images with (nearly) the same shape.

The SAF paper keeps each image's aspect ratio (short edge 256, no crop) and relies on SPP to accept
any size. To train with batch size > 1 without distorting images, images are grouped into buckets of
similar log aspect ratio; :func:`iaalib.data.images.collate_batch` then crops the few pixels by which
the members of a batch differ.
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

__all__ = ["AspectRatioBucketSampler"]


class AspectRatioBucketSampler(Sampler[list[int]]):
    """Batch sampler yielding lists of dataset indices whose aspect ratios share a bucket.

    Buckets: ``round(log(w/h) / bucket_width)``. Choice: ``bucket_width=0.05`` — members of a batch
    differ in aspect ratio by at most ~5%, i.e. at most ~13 px of the long edge at short edge 256,
    while AVA's common ratios (3:2, 4:3, 1:1, 2:3, 3:4) each fill their own large bucket.

    Each epoch (``set_epoch``), with ``shuffle=True``, indices are shuffled within buckets, cut into
    batches (a bucket's last batch may be smaller), and the order of all batches is shuffled, using a
    numpy generator seeded with (seed, epoch) — the same in every process and on every machine.
    ``shuffle=False`` (evaluation): buckets in ratio order, indices ascending; every index once.

    Sharding for DDP (``num_replicas``, ``rank``): rank r takes batches r, r+R, r+2R, ... so shards are
    disjoint; every rank gets the same number of batches: ``drop_last=False`` pads the batch list by
    repeating its first batches (those images are then seen twice in the epoch, as with
    ``DistributedSampler``; evaluators should de-duplicate by index), ``drop_last=True`` drops the
    tail batches instead (and, as usual, every bucket's incomplete last batch).

    ``set_start_batch(k)`` skips the first k batches of the current epoch (resuming mid-epoch); call it
    after ``set_epoch``. It holds for every pass over this epoch (DataLoader calls ``iter`` more than
    once per pass) until ``set_start_batch`` is called again or ``set_epoch`` moves to another epoch,
    which resets it to 0. ``len()`` counts the batches a pass yields (i.e. after skipping).
    """

    def __init__(self, aspect_ratios: Sequence[float] | np.ndarray, batch_size: int, *,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 num_replicas: int = 1, rank: int = 0, bucket_width: float = 0.05):
        ratios = np.asarray(aspect_ratios, dtype=np.float64)
        if ratios.ndim != 1:
            raise ValueError(f"aspect_ratios must be 1-D, got shape {ratios.shape}")
        if not np.all(np.isfinite(ratios) & (ratios > 0)):
            raise ValueError("aspect_ratios must be finite and > 0")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas}, {rank}")
        if not bucket_width > 0:
            raise ValueError(f"bucket_width must be > 0, got {bucket_width}")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.bucket_width = float(bucket_width)
        self.epoch = 0
        self.start_batch = 0
        bucket_of = np.rint(np.log(ratios) / self.bucket_width).astype(np.int64)
        order = np.argsort(bucket_of, kind="stable")
        bounds = np.flatnonzero(np.diff(bucket_of[order])) + 1
        self.buckets: list[np.ndarray] = [b for b in np.split(order, bounds) if len(b)]

    def set_epoch(self, epoch: int) -> None:
        if int(epoch) != self.epoch:
            self.start_batch = 0
        self.epoch = int(epoch)

    def set_start_batch(self, k: int) -> None:
        if k < 0:
            raise ValueError(f"start batch must be >= 0, got {k}")
        self.start_batch = int(k)

    def _n_total_batches(self) -> int:
        if self.drop_last:
            return sum(len(b) // self.batch_size for b in self.buckets)
        return sum(math.ceil(len(b) / self.batch_size) for b in self.buckets)

    def _n_rank_batches(self) -> int:
        total = self._n_total_batches()
        if self.drop_last:
            return total // self.num_replicas
        return math.ceil(total / self.num_replicas)

    def epoch_batches(self) -> list[list[int]]:
        """All batches this rank yields in the current epoch (ignoring the start batch)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        batches: list[list[int]] = []
        for bucket in self.buckets:
            indices = rng.permutation(bucket) if self.shuffle else bucket
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start:start + self.batch_size]
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch.tolist())
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.num_replicas > 1 and batches:
            n = self._n_rank_batches() * self.num_replicas
            batches = [batches[i % len(batches)] for i in range(n)]
            batches = batches[self.rank::self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.epoch_batches()[self.start_batch:])

    def __len__(self) -> int:
        return max(0, self._n_rank_batches() - self.start_batch)
