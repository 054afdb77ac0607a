"""Frozen-stem activations, computed once per image folder and cached on disk (the demo's stem).

Training above a frozen ImageNet stem (:mod:`iaalib.models.stems`) repeats the same forward pass
through the stem in every epoch of every run. :func:`load_activations` computes it once for every
image of a folder — the image and its horizontal mirror, so training can still flip — and stores
``[2, N, C, h, w]`` float32 under ``IAA_HOME/cache/activations/<key>/``; runs and chapters reuse it.

**Keying.** The key is the sha256 of the image contents (every file's sha256, by id), the stem's
identity (its name, cut and weight file's sha256: ``stem_id``), the input transform (the whole
image resized to ``size``×``size``) and the cache format: a changed image, stem or transform gives
another key, so a stale cache is never read. A cache whose files are missing, partial or corrupt
(its sha256 does not match ``meta.json``) is rebuilt with a warning. Images that cannot be decoded
are left out of the cache, logged and counted; their manifest rows are skipped like unreadable
images (:class:`ActivationDataset` returns None).

This module does not know which network the stem is: it takes the stem as a callable and its
identity as a string (the engine builds both).
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

try:
    import fcntl
except ImportError:  # not on Windows: parallel runs may then build the same cache twice
    fcntl = None

from .._io import atomic_write, read_json, sha256_file, write_json
from ..errors import BadImageError, DataFormatError, IaaError
from ..paths import iaa_home
from .images import AvaImageDataset, augmentation_seed, kao_transform, load_image

log = logging.getLogger(__name__)

CACHE_VERSION = 4  # 2: channels-last; 3: batches of STEM_BATCH_SIZE, frozen graph; 4: STEM_THREADS
#: Images per stem forward pass when a cache is built (:func:`load_activations`).
STEM_BATCH_SIZE = 16
#: torch threads of the stem's forward pass when a cache is built (:func:`load_activations`).
STEM_THREADS = 1
#: A folder larger than this is not cached (the cache is for the demo's small datasets; the ava
#: profile trains end to end and needs none).
MAX_IMAGES = 50_000
#: More manifest images than this share missing from the cache is a wrong folder, not bad images.
MAX_MISSING = 0.05
_LOADED: dict[str, "Activations"] = {}


class Activations:
    """The cached activations of one image folder: ``values`` [2, N, C, h, w] (0: the image,
    1: its mirror), ``ids`` (image ids, one per row) and ``key``."""

    def __init__(self, values: torch.Tensor, ids: np.ndarray, key: str, skipped: dict[str, int],
                 image_dir: str = "", unreadable: Sequence[int] = (), seconds: float | None = None):
        self.values, self.ids, self.key, self.skipped = values, ids, key, skipped
        self.image_dir, self.seconds = image_dir, seconds  # seconds: how long the build took
        self.unreadable = frozenset(int(i) for i in unreadable)  # ids left out: not decodable
        self.row = {int(i): k for k, i in enumerate(ids)}

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[2:])


def folder_ids(image_dir: str | os.PathLike, ext: str = ".jpg") -> np.ndarray:
    """The integer ids of the ``<id><ext>`` files of a folder, ascending."""
    folder = Path(image_dir)
    if not folder.is_dir():
        raise IaaError(f"{folder}: image folder not found")
    ids = sorted(int(p.stem) for p in folder.glob(f"*{ext}") if p.stem.isdigit())
    return np.asarray(ids, dtype=np.int64)


#: :func:`image_digest` results of this process by folder and stat signature (every file's size,
#: modification time and inode): a file that is rewritten changes its signature and is hashed again.
_DIGESTS: dict[tuple[str, str], str] = {}


def image_digest(image_dir: str | os.PathLike, ids: np.ndarray, ext: str = ".jpg") -> str:
    """sha256 over ``id:sha256(file)`` of every image, in id order (the images' content).

    Hashed once per process while the files' stat signature stays the same: every run builds
    two datasets, and hashing 5,000 demo images costs 0.7 s, a stat of each 0.02 s.
    """
    paths = [Path(image_dir) / f"{int(i)}{ext}" for i in ids]
    sig = hashlib.sha256()
    for i, path in zip(ids, paths):
        st = path.stat()
        sig.update(f"{int(i)}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}\n".encode())
    memo = (os.fspath(Path(image_dir).resolve()), sig.hexdigest())
    if memo not in _DIGESTS:
        h = hashlib.sha256()
        for i, path in zip(ids, paths):
            h.update(f"{int(i)}:{sha256_file(path)}\n".encode())
        _DIGESTS[memo] = h.hexdigest()
    return _DIGESTS[memo]


def cache_key(image_dir: str | os.PathLike, stem_id: str, size: int, ext: str = ".jpg") -> str:
    """The key of a folder's activations (module docstring)."""
    ids = folder_ids(image_dir, ext)
    blob = json.dumps({"version": CACHE_VERSION, "stem": stem_id, "size": int(size),
                       "transform": "resize-square", "images": image_digest(image_dir, ids, ext)},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_activations(image_dir: str | os.PathLike, *, stem: Callable[[], torch.nn.Module],
                     stem_id: str, size: int, cache_root: str | os.PathLike | None = None,
                     batch_size: int = STEM_BATCH_SIZE, ext: str = ".jpg") -> Activations:
    """The activations of every image of ``image_dir`` through the stem ``stem()`` builds (called
    only when they must be computed), from the cache when it holds them (module docstring).

    **Choice:** the stem runs over ``batch_size`` = 16 images at a time, the fastest of 8–64 on
    two CPU cores: 1.86 ms per image against 4.11 in batches of 64, eagerly
    (``benchmarks/results/cpu_kernels.json``), on ``STEM_THREADS`` = 1 thread whatever the
    process has: a convolution split over two threads sums in another order, so a chapter
    building a cache alone (two threads) and one building it beside others (one thread) wrote
    activations 3.5e-5 apart, and the Table V runs trained on them differed by 0.13 accuracy
    points. One thread makes the cache the same on every machine of one CPU kind; beside busy
    grid workers it took a third as long as two threads, which wait for a core
    (``benchmarks/results/cache_threads.json``). A process with more threads splits the images
    over them instead (:func:`_forward_all`), which leaves every bit the same."""
    ids = folder_ids(image_dir, ext)
    if len(ids) > MAX_IMAGES:
        raise IaaError(f"{image_dir}: {len(ids):,} images; the activation cache is for the demo's "
                       f"small datasets (at most {MAX_IMAGES:,}): train end to end (stem: '')")
    key = cache_key(image_dir, stem_id, size, ext)
    folder = Path(cache_root or iaa_home() / "cache" / "activations") / key[:24]
    if os.fspath(folder) in _LOADED:  # read once per process
        return _LOADED[os.fspath(folder)]
    acts = _read(folder, key, quiet=True)
    if acts is None:
        with _exclusive(folder):  # parallel runs: one builds, the others wait and read it
            acts = _read(folder, key) or _build(folder, key, image_dir, ids, stem(), size,
                                                batch_size, ext, stem_id)
    _LOADED[os.fspath(folder)] = acts
    return acts


@contextlib.contextmanager
def _exclusive(folder: Path):
    """An exclusive lock on ``folder/.lock`` (fcntl; no lock where fcntl is missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _read(folder: Path, key: str, quiet: bool = False) -> Activations | None:
    meta_file, values_file = folder / "meta.json", folder / "activations.pt"
    if not meta_file.is_file() and not values_file.exists():
        return None
    try:
        meta = read_json(meta_file)
        if meta.get("key") != key or meta.get("version") != CACHE_VERSION:
            raise ValueError("written for another key")
        if sha256_file(values_file) != meta["sha256"]:
            raise ValueError("the activations file does not match its sha256")
        values = torch.load(values_file, map_location="cpu", weights_only=True)
        if list(values.shape) != meta["shape"]:
            raise ValueError(f"shape {list(values.shape)}, expected {meta['shape']}")
    except Exception as e:  # missing meta, partial or corrupt file, another key: rebuild
        if not quiet:
            log.warning("activation cache %s is unusable (%s); rebuilding it", folder, e)
        return None
    return Activations(values, np.asarray(meta["ids"], dtype=np.int64), key, meta["skipped"],
                       meta.get("image_dir", ""), meta.get("unreadable", ()), meta.get("seconds"))


def frozen_graph(module: torch.nn.Module, example: torch.Tensor) -> Callable:
    """``module`` traced on ``example`` and frozen with TorchScript, for inference only.

    **Choice:** the stem computes the cache as a frozen graph: freezing folds each batch norm
    into its convolution. On two CPU cores, in batches of 16, it took 1.48 ms per image against
    the eager module's 1.86 (``benchmarks/results/cpu_kernels.json``); the activations agree with
    the module's to float rounding (``tests/test_activations.py``). A module that cannot be
    traced runs as it is, with a warning."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarning: sizes taken as constants
            return torch.jit.freeze(torch.jit.trace(module, example, check_trace=False).eval())
    except Exception as e:  # noqa: BLE001 - any tracing failure: the eager module still works
        log.warning("cannot trace %s for the activation cache (%s); running it eagerly",
                    type(module).__name__, e)
        return module


def _build(folder: Path, key: str, image_dir, ids: np.ndarray, stem: torch.nn.Module, size: int,
           batch_size: int, ext: str, stem_id: str) -> Activations:
    t0 = time.perf_counter()
    stem = stem.eval().to(memory_format=torch.channels_last)  # 1.6x faster on a CPU
    threads = torch.get_num_threads()
    torch.set_num_threads(STEM_THREADS)  # the same sums whatever the process's threads
    try:
        graph = frozen_graph(stem, torch.zeros(batch_size, 3, size, size).contiguous(
            memory_format=torch.channels_last))
        values, kept, skipped, unreadable = _forward_all(graph, image_dir, ids, size, batch_size,
                                                         ext, workers=threads)
    finally:
        torch.set_num_threads(threads)
    values_file = folder / "activations.pt"
    try:
        with atomic_write(values_file, "wb") as fh:
            torch.save(values, fh)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as "unexpected pos"
        mib, free = values.nbytes / 2**20, shutil.disk_usage(folder).free / 2**20
        raise IaaError(f"{values_file}: cannot write the activation cache ({mib:,.0f} MiB; "
                       f"{free:,.0f} MiB free on its disk): {e}") from e
    meta: dict[str, Any] = {"key": key, "version": CACHE_VERSION, "stem": stem_id, "size": size,
                            "image_dir": os.fspath(image_dir), "ids": kept,
                            "shape": list(values.shape), "sha256": sha256_file(values_file),
                            "skipped": skipped, "unreadable": unreadable,
                            "seconds": round(time.perf_counter() - t0, 3)}
    write_json(folder / "meta.json", meta)  # last: a cache without meta.json is incomplete
    log.info("cached stem activations of %d images (%s) in %s (%.1f s)", len(kept),
             "×".join(map(str, values.shape[2:])), folder, meta["seconds"])
    return Activations(values, np.asarray(kept, dtype=np.int64), key, skipped, os.fspath(image_dir),
                       unreadable, meta["seconds"])


def _forward_all(graph: Callable, image_dir, ids: np.ndarray, size: int, batch_size: int,
                 ext: str, workers: int = 1
                 ) -> tuple[torch.Tensor, list[int], dict[str, int], list[int]]:
    """``[2, N, C, h, w]`` activations of the readable images of ``ids`` and their mirrors, the
    ids kept, and the unreadable ones (counted by reason, and listed).

    **Choice:** ``workers`` threads each take whole batches of ``batch_size`` consecutive ids
    (decoding and both forward passes), so the work is split over images, never inside a
    convolution: each batch sums in the same order whatever the number of workers, and the cache
    is the same bit for bit (``tests/test_activations.py``). :func:`_build` gives it the threads
    the process had; a chapter building its cache alone on two cores took half the time."""
    transform = kao_transform(False, resize=size, crop=size)

    def batch(chunk: np.ndarray):
        images, kept, bad = [], [], []
        for i in chunk:
            try:
                images.append(transform(load_image(Path(image_dir) / f"{int(i)}{ext}",
                                                   short_edge=size)))
                kept.append(int(i))
            except BadImageError as e:
                bad.append((int(i), e))
        if not images:
            return None, kept, bad
        x = torch.stack(images).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = torch.stack([graph(x).contiguous(), graph(torch.flip(x, dims=[3])).contiguous()])
        return out, kept, bad

    chunks = [ids[k:k + batch_size] for k in range(0, len(ids), batch_size)]
    if workers > 1:
        with cf.ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(batch, chunks))
    else:
        results = [batch(c) for c in chunks]
    kept, outputs, skipped, unreadable = [], [], {}, []
    for out, ok, bad in results:
        kept.extend(ok)
        if out is not None:
            outputs.append(out)
        for i, e in bad:
            skipped[e.reason] = skipped.get(e.reason, 0) + 1
            unreadable.append(i)
            log.warning("activation cache: skipping image %s", e)
    if not kept:
        raise IaaError(f"{image_dir}: no readable image to cache")
    return torch.cat(outputs, dim=1).contiguous(), kept, skipped, unreadable


@functools.lru_cache(maxsize=256)
def _draws(seed: int, epoch: int, n: int) -> np.ndarray:
    """``augmentation_seed(seed, epoch, index)`` of samples 0..n-1, computed once per process for
    each (seed, epoch): a pool worker trains many runs with the same seeds, and each seed costs
    8 µs per sample (0.2 s of a ten-epoch Kao run; ``benchmarks/results/train_overhead.json``)."""
    draws = np.fromiter((augmentation_seed(seed, epoch, i) for i in range(n)), np.uint64, n)
    draws.flags.writeable = False
    return draws


@functools.lru_cache(maxsize=256)
def mirror_bits(seed: int, epoch: int, n: int) -> np.ndarray:
    """Which of samples 0..n-1 train on the mirrored image in ``epoch``: ``augmentation_seed(seed,
    epoch, index) % 2`` (memoised, read-only)."""
    bits = (_draws(seed, epoch, n) % np.uint64(2)).astype(np.int64)
    bits.flags.writeable = False
    return bits


@functools.lru_cache(maxsize=256)
def shift_offsets(seed: int, epoch: int, n: int, shift: int) -> np.ndarray:
    """``[n, 2]`` (row, column) offsets in 0..2·shift of samples 0..n-1 in ``epoch``: two more
    digits of each sample's ``augmentation_seed`` (bits above the mirror bit), so the shift is
    independent of the flip. Offset ``shift`` is no move."""
    k = np.uint64(2 * shift + 1)
    rest = _draws(seed, epoch, n) >> np.uint64(1)
    offsets = np.stack([rest % k, (rest // k) % k], axis=1).astype(np.int64)
    offsets.flags.writeable = False
    return offsets


def shift_maps(x: torch.Tensor, offsets: torch.Tensor, shift: int) -> torch.Tensor:
    """Each map of ``x`` [B, C, h, w] moved by ``shift − offsets[b]`` cells (down, right), the
    cells moved in being zeros: torchvision's ``RandomCrop(size, padding=shift)`` on activations
    (the zero-padded crop that CIFAR training applies to pixels)."""
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (shift, shift, shift, shift))
    out = torch.empty_like(x)
    for dy, dx in torch.unique(offsets, dim=0).tolist():
        sel = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
        out[sel] = padded[sel, :, dy:dy + h, dx:dx + w]
    return out


class ActivationDataset(AvaImageDataset):
    """A manifest's rows with the cached activations in place of the image: the sample dict of
    :class:`~iaalib.data.images.AvaImageDataset` with ``"image"`` = [C, h, w] activations.

    ``train`` with ``flip``: each sample is the mirrored image's activations with probability ½;
    with ``shift`` > 0 its maps also move by up to ``shift`` cells each way (:func:`shift_maps`,
    each offset equally likely). Both are pure functions of (seed, epoch, index), like every
    augmentation here. Rows whose image is not in the cache (unreadable) return None and are
    counted in ``skipped``. :meth:`batch` gathers a whole batch at once (the engine's fast path:
    no per-sample Python work).
    """

    def __init__(self, manifest, activations: Activations, *, train: bool, flip: bool = True,
                 shift: int = 0, seed: int = 0, tag_columns=None):
        super().__init__(manifest, image_dir=".", transform=None, seed=seed,
                         tag_columns=tag_columns)
        self.activations = activations
        self.train, self.flip = bool(train), bool(flip)
        side = min(activations.values.shape[-2:])
        if shift < 0 or (self.train and shift >= side):
            raise ValueError(f"shift must be 0 to {side - 1} cells for {side}-cell maps, not "
                             f"{shift} (a larger shift leaves some samples all zeros)")
        self.shift = int(shift) if self.train else 0
        rows = np.array([activations.row.get(int(i), -1) for i in self.image_ids], dtype=np.int64)
        self._rows = torch.from_numpy(rows)
        absent = rows < 0
        bad = int(sum(int(i) in activations.unreadable for i in self.image_ids[absent]))
        missing = int(absent.sum()) - bad
        if missing > MAX_MISSING * len(rows):
            raise DataFormatError(self.manifest_path, None,
                                  f"{missing} of {len(rows)} images are not in the image folder "
                                  f"{activations.image_dir}: the manifest was written for "
                                  "another image folder (run notebook 01 with this profile again)")
        if bad or missing:
            self.skipped["unreadable"] += bad
            self.skipped["missing"] += missing
            log.warning("%d unreadable and %d missing manifest images are not in the activation "
                        "cache; they are skipped", bad, missing)

    def _views(self, indices: np.ndarray) -> torch.Tensor:
        if not (self.train and self.flip):
            return torch.zeros(len(indices), dtype=torch.long)
        return torch.from_numpy(mirror_bits(self.seed, self.epoch, len(self))[indices])

    def _maps(self, views: torch.Tensor, rows: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
        x = self.activations.values[views, rows]
        if not self.shift:
            return x
        offsets = shift_offsets(self.seed, self.epoch, len(self), self.shift)[indices]
        return shift_maps(x, torch.from_numpy(offsets), self.shift)

    def batch(self, indices) -> dict[str, Any]:
        """The collated batch of ``indices`` (unreadable rows dropped and counted)."""
        idx = np.asarray(list(indices), dtype=np.int64)
        rows = self._rows[idx]
        ok = rows >= 0
        idx, rows = idx[ok.numpy()], rows[ok]
        views = self._views(idx)
        t = torch.from_numpy(idx)
        return {"image": self._maps(views, rows, idx), "dist": self._dist[t],
                "label": self._label[t], "tags": self._tags[t],
                "mean": torch.from_numpy(self._mean[idx]).float(), "index": t,
                "image_id": torch.from_numpy(self.image_ids[idx]),
                "n_skipped": int((~ok).sum())}

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        index = int(index)
        row = int(self._rows[index])
        if row < 0:
            return None
        at = np.array([index])
        image = self._maps(self._views(at), torch.tensor([row]), at)[0]
        return {"image": image, "dist": self._dist[index],
                "label": self._label[index], "tags": self._tags[index],
                "mean": float(self._mean[index]), "index": index,
                "image_id": int(self.image_ids[index])}

    def aspect_ratios(self) -> np.ndarray:
        return np.ones(len(self), dtype=np.float64)   # every activation map has the same shape
