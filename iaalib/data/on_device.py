"""The GPU data path: JPEGs decoded and augmented on the training device (``data.decode_device``),
optionally kept resized in its memory (``data.resident``).

On a fast GPU the CPU's JPEG decoding is the bottleneck (``benchmarks/bench_decode.py``). With
``decode_device: cuda`` the DataLoader workers only read each file's bytes; each batch is decoded
by nvJPEG (``torchvision.io.decode_jpeg(device="cuda")``) and goes through the *same* torchvision v2
transform as on the CPU path, on the device, with the same per-image seeds
(:func:`iaalib.data.images.augmentation_seed`), so crops and flips are the CPU path's. With
``resident: true`` each image is decoded and resized once (the transform's deterministic steps, up
to its last resize) and kept as uint8 in device memory; later epochs only crop, flip and normalise
there (the whole of AVA at short edge 256 is about 61 GB). Every function here runs on any device;
the tests run them on the CPU.

**Choice:** the device decodes the full-size JPEG (the CPU path decodes at a reduced DCT scale
where libjpeg can), so pixels differ by the resampling, not by the geometry. A file that does not
decode is dropped from its batch and counted in ``n_skipped``, as on the CPU path. torchvision
0.29 deprecates its decoders in favour of TorchCodec; :func:`decode_images` is the one place to
change when TorchCodec becomes a dependency.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms import v2

from .images import AvaImageDataset, BadImageError, augmentation_seed, collate_batch

log = logging.getLogger(__name__)


def split_transform(transform: v2.Compose) -> tuple[v2.Compose, v2.Compose]:
    """(the deterministic steps up to and including the last resize, the rest): what a resident
    image keeps, and what each epoch still applies (crop, flip, dtype, normalisation)."""
    steps = list(transform.transforms)
    last_resize = max((i for i, s in enumerate(steps) if isinstance(s, v2.Resize)), default=0)
    return v2.Compose(steps[:last_resize + 1]), v2.Compose(steps[last_resize + 1:])


def decode_images(jpegs: Sequence[torch.Tensor], device: torch.device | str) -> list[torch.Tensor | None]:
    """uint8 [3, H, W] images on ``device`` from encoded JPEG bytes (one batched call; if it
    fails, one call per image, None for each image that does not decode)."""
    if not jpegs:
        return []
    try:
        return list(decode_jpeg(list(jpegs), mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        out: list[torch.Tensor | None] = []
        for data in jpegs:
            try:
                out.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            except RuntimeError as e:
                log.warning("skipping an image that does not decode (%s)", str(e).splitlines()[0])
                out.append(None)
        return out


class EncodedImageDataset(AvaImageDataset):
    """:class:`AvaImageDataset` whose samples carry the file's bytes (``"jpeg"``) instead of the
    decoded image; :meth:`decode_batch` decodes and transforms a batch on ``device``.

    ``resident``: keep each image after its deterministic steps (uint8) on ``device``, keyed by
    row, so it is decoded once per run.
    """

    def __init__(self, *args: Any, device: torch.device | str = "cuda", resident: bool = False,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.device = torch.device(device)
        self.resident = bool(resident)
        self.prefix, self.rest = split_transform(self.transform)
        self.store: dict[int, torch.Tensor] = {}
        self._resident_rows: frozenset[int] = frozenset()

    def __getstate__(self) -> dict[str, Any]:
        """What a DataLoader worker gets: the rows already resident, not the device tensors."""
        state = self.__dict__.copy()
        state["_resident_rows"] = frozenset(self.store)
        state["store"] = {}
        return state

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        index = int(index)
        sample = {"dist": self._dist[index], "label": self._label[index], "tags": self._tags[index],
                  "mean": float(self._mean[index]), "index": index,
                  "image_id": int(self.image_ids[index])}
        if self.resident and (index in self.store or index in self._resident_rows):  # no file read
            return {**sample, "jpeg": None}
        path = self.image_path(index)
        try:
            data = path.read_bytes()
        except OSError:
            e = BadImageError(path, "missing")
            if self.strict:
                raise e from None
            self.skipped[e.reason] += 1
            log.warning("skipping image %s", e)
            return None
        return {**sample, "jpeg": torch.frombuffer(bytearray(data), dtype=torch.uint8)}

    def resident_bytes(self) -> int:
        """Device memory the resident images take now."""
        return sum(t.numel() * t.element_size() for t in self.store.values())

    def decode_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """``batch`` of :func:`collate_encoded` → the batch :func:`collate_batch` would give, with
        ``image`` on ``self.device`` (undecodable images dropped, counted in ``n_skipped``)."""
        indices = batch["index"].tolist()
        todo = [k for k, j in enumerate(batch["jpeg"]) if j is not None]
        decoded = dict(zip(todo, decode_images([batch["jpeg"][k] for k in todo], self.device)))
        samples: list[dict[str, Any] | None] = []
        for k, index in enumerate(indices):
            base = self.store.get(index)
            if base is None:
                image = decoded.get(k)
                if image is None:
                    self.skipped["corrupt"] += 1
                    samples.append(None)
                    continue
                base = self.prefix(image)
                if self.resident:
                    self.store[index] = base
            with torch.random.fork_rng(devices=[]):  # the CPU path's seeds: the same crops and flips
                torch.default_generator.manual_seed(augmentation_seed(self.seed, self.epoch, index))
                tensor = self.rest(base)
            samples.append({"image": tensor, **{f: batch[f][k] for f in _FIELDS}})
        out = collate_batch(samples)
        out["n_skipped"] += int(batch["n_skipped"])
        return out


_FIELDS = ("dist", "label", "tags", "mean", "index", "image_id")


def collate_encoded(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Batch of :class:`EncodedImageDataset` samples: ``jpeg`` a list of byte tensors (None for a
    resident image), the labels stacked; skipped samples dropped and counted."""
    kept = [s for s in samples if s is not None]
    return {"jpeg": [s["jpeg"] for s in kept],
            "dist": torch.stack([s["dist"] for s in kept]) if kept else torch.zeros(0, 10),
            "label": torch.tensor([int(s["label"]) for s in kept], dtype=torch.int64),
            "tags": torch.stack([s["tags"] for s in kept]) if kept else torch.zeros(0, 0),
            "mean": torch.tensor([s["mean"] for s in kept], dtype=torch.float32),
            "index": torch.tensor([s["index"] for s in kept], dtype=torch.int64),
            "image_id": torch.tensor([s["image_id"] for s in kept], dtype=torch.int64),
            "n_skipped": len(samples) - len(kept)}


class DecodedBatches:
    """The batches of ``loader`` (over an :class:`EncodedImageDataset`) decoded on its device."""

    def __init__(self, loader: Iterable[dict[str, Any]], dataset: EncodedImageDataset):
        self.loader, self.dataset = loader, dataset

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.loader:
            yield self.dataset.decode_batch(batch)


def decode_device(name: str, *, local_rank: int | None = None) -> torch.device | None:
    """``data.decode_device`` as the device this path decodes on, or None for "cpu" (decoding
    stays in the DataLoader workers): "auto" is "cuda" when a GPU is visible, else "cpu"; "cuda" is
    this process's GPU (``LOCAL_RANK`` under torchrun); "cuda:N" names one."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return None
    if name == "cuda":
        rank = int(os.environ.get("LOCAL_RANK", 0)) if local_rank is None else local_rank
        return torch.device("cuda", rank)
    return torch.device(name)
