"""AVA images: decoding, the two papers' transforms, the Dataset, batching and the bad-image policy.

* :func:`load_image` decodes any photo to RGB, JPEGs at reduced scale (libjpeg DCT scaling through
  Pillow's ``draft``) so the decoded short edge is just >= what the transform needs.
* :func:`kao_transform` — Kao et al., Sec. III-D: "a 227×227×3 patch randomly extracted from a resized
  image 256×256×3". :func:`saf_transform` — SAF paper, "Image Preprocessing": short edge resized to
  256, aspect ratio kept, random horizontal flip, whole image (the SPP layer takes any size).
* :class:`AvaImageDataset` over (manifest, image directory); augmentation is a pure function of
  (seed, epoch, index). :func:`collate_batch` and :class:`~iaalib.data.sampler.AspectRatioBucketSampler`
  batch whole images of different aspect ratios without distorting them.
* Bad images are skipped with a logged, counted reason (``strict=True`` raises
  :class:`~iaalib.errors.BadImageError`); a training run never dies on one bad file.
* :func:`build_resized_cache`: a one-time short-edge-256 JPEG copy of the images that makes every
  later epoch fast on real AVA (whose ~500 px short sides rarely allow DCT scaling to 256).
"""
from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import re
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from iaalib._io import atomic_write, read_json, sha256_bytes, write_json
from iaalib.data.sampler import AspectRatioBucketSampler
from iaalib.errors import BadImageError, DataFormatError
from iaalib.paths import iaa_home

__all__ = [
    "BAD_IMAGE_REASONS", "IMAGENET_MEAN", "IMAGENET_STD", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIDE",
    "load_image", "kao_transform", "saf_transform", "augmentation_seed", "AvaImageDataset",
    "collate_batch", "AspectRatioBucketSampler", "build_resized_cache",
]

log = logging.getLogger(__name__)

BAD_IMAGE_REASONS = ("missing", "truncated", "corrupt", "too_small", "decompression_bomb", "unsupported")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Choice: 50 megapixels. Far above any AVA photo (long side <= 800 px) and above common camera
#: originals (~45 MP), far below what exhausts a worker's memory when decoded (150 MB as RGB).
DEFAULT_MAX_PIXELS = 50_000_000
#: Choice: 64 px. Smaller images are mostly interpolation once upscaled to 227/256 px; images between
#: this and the crop size are upscaled by the transform.
DEFAULT_MIN_SIDE = 64
VOTE_COLUMNS = [f"vote_{i}" for i in range(1, 11)]
_TAG_COLUMN = re.compile(r"^tag_\d+$")
_WHITE = (255, 255, 255)


# ----------------------------------------------------------------------------------------- decoding
def load_image(path: str | os.PathLike, *, short_edge: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE) -> Image.Image:
    """Decode one image to an RGB ``PIL.Image``, at reduced scale when ``short_edge`` allows it.

    JPEG: ``draft('RGB', (s, s))`` picks the largest libjpeg DCT scale 1/2, 1/4 or 1/8 that keeps both
    sides >= ``s``; other formats are box-``reduce``d by the largest integer factor that does the same.
    The exact final resize is the transform's job. Header checks (size, pixel count) run before decoding.

    Mode conversion: CMYK, 1, L, YCbCr → RGB; LA, RGBA, P/L/RGB with a transparency key → composited
    **on white** (Choice: AVA photos have no alpha; white is how a browser shows a transparent page);
    16-bit greyscale (I;16*, and I, taken as 16-bit) → 8 bits by v/257 (Pillow's ``convert('RGB')``
    clips them to white). Only the first frame of animated files is used. Choice: EXIF orientation is
    not applied — the stored pixel grid is what the header (and peer pipelines) report.

    Raises :class:`BadImageError` with ``reason`` in :data:`BAD_IMAGE_REASONS`. Pillow's global
    ``LOAD_TRUNCATED_IMAGES`` is never changed, so a truncated JPEG is an error, not a grey band.
    ``max_pixels`` is the decompression-bomb limit; Pillow's own ``Image.MAX_IMAGE_PIXELS`` still
    rejects images above twice its value when opening them (reported as "decompression_bomb" too).
    """
    path = os.fspath(path)
    try:
        fh = open(path, "rb")
    except (FileNotFoundError, NotADirectoryError):
        raise BadImageError(path, "missing") from None
    except IsADirectoryError:
        raise BadImageError(path, "corrupt", "is a directory") from None
    with fh:
        try:
            with warnings.catch_warnings():
                # Pillow warns above MAX_IMAGE_PIXELS; our own limit (max_pixels) is checked below.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(fh)
        except Image.DecompressionBombError as e:
            raise BadImageError(path, "decompression_bomb", str(e)) from None
        except (OSError, SyntaxError, ValueError, EOFError) as e:  # incl. UnidentifiedImageError
            raise BadImageError(path, _decode_error_reason(e), str(e)) from None
        width, height = im.size
        if width * height > max_pixels:
            raise BadImageError(path, "decompression_bomb",
                                f"{width}x{height} = {width * height} pixels > max_pixels={max_pixels}")
        if min(width, height) < min_side:
            raise BadImageError(path, "too_small", f"{width}x{height}, min_side={min_side}")
        if short_edge and im.format == "JPEG":
            im.draft("RGB", (short_edge, short_edge))
        try:
            im.load()
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise BadImageError(path, _decode_error_reason(e), str(e)) from None
        try:
            rgb = _to_rgb(im, path)
        except (OSError, ValueError) as e:  # e.g. a broken palette
            raise BadImageError(path, "corrupt", str(e)) from None
    if short_edge:
        factor = min(rgb.size) // short_edge
        if factor >= 2:
            rgb = rgb.reduce(factor)
    return rgb


def _decode_error_reason(exc: BaseException) -> str:
    # Pillow says "image file is truncated (N bytes not processed)" / "Truncated File Read".
    return "truncated" if "truncat" in str(exc).lower() else "corrupt"


def _to_rgb(im: Image.Image, path: str) -> Image.Image:
    mode = im.mode
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
            mode in ("P", "L", "RGB") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode == "RGB":
        return im
    if mode in ("1", "L", "P", "CMYK", "YCbCr"):
        return im.convert("RGB")
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(im).astype(np.float64)
        grey = np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    raise BadImageError(path, "unsupported", f"image mode {mode!r}")


# --------------------------------------------------------------------------------------- transforms
def tensor_pipeline(geometry: Sequence[Any], *, mean: Sequence[float] | None = IMAGENET_MEAN,
                    std: Sequence[float] | None = IMAGENET_STD) -> v2.Compose:
    """PIL image → uint8 tensor → ``geometry`` (resize, crop, flip) → float in [0, 1] → normalised.

    The geometric steps run on the uint8 tensor, not on the PIL image: torchvision's antialiased
    uint8 resize is about 2.5× faster than Pillow's here and agrees with it to within one grey level
    (``benchmarks/bench_decode.py``).
    """
    steps: list = [v2.ToImage(), *geometry, v2.ToDtype(torch.float32, scale=True)]
    if mean is not None:
        steps.append(v2.Normalize(mean=list(mean), std=list(std if std is not None else (1.0,) * 3)))
    steps.append(v2.ToPureTensor())
    return v2.Compose(steps)


def kao_transform(train: bool, *, resize: int = 256, crop: int = 227, hflip: bool = False,
                  mean: Sequence[float] | None = IMAGENET_MEAN,
                  std: Sequence[float] | None = IMAGENET_STD) -> v2.Compose:
    """Kao et al. Sec. III-D: resize to ``resize``×``resize`` (aspect ratio *not* kept, as the paper
    says), then a random ``crop``×``crop`` patch (train) or the centre patch (eval) → Tensor[3,crop,crop].

    Choice: no horizontal flip by default (the paper names none; ``hflip=True`` adds one for training).
    Choice: ImageNet mean/std normalisation (``mean=None`` keeps values in [0, 1]).
    The returned Compose carries ``decode_short_edge = resize`` so the Dataset decodes JPEGs at the
    smallest DCT scale that keeps both sides >= ``resize``.
    """
    if crop > resize:
        raise ValueError(f"crop ({crop}) must not exceed resize ({resize})")
    steps: list = [v2.Resize((resize, resize), antialias=True)]
    steps.append(v2.RandomCrop(crop) if train else v2.CenterCrop(crop))
    if train and hflip:
        steps.append(v2.RandomHorizontalFlip())
    transform = tensor_pipeline(steps, mean=mean, std=std)
    transform.decode_short_edge = resize
    return transform


def saf_transform(train: bool, *, short_edge: int = 256, max_long_edge: int | None = None,
                  mean: Sequence[float] | None = IMAGENET_MEAN,
                  std: Sequence[float] | None = IMAGENET_STD) -> v2.Compose:
    """SAF paper, "Image Preprocessing": short edge resized to ``short_edge`` with the aspect ratio kept,
    random horizontal flip for training, no crop → Tensor[3,H,W] with min(H, W) == short_edge.

    Choice: ``max_long_edge`` (default None = the paper) caps the long edge of panoramas; when it
    applies the short edge comes out below ``short_edge`` (torchvision ``Resize(max_size=...)``).
    Choice: ImageNet mean/std normalisation (``mean=None`` keeps values in [0, 1]).
    """
    steps: list = [v2.Resize(short_edge, max_size=max_long_edge, antialias=True)]
    if train:
        steps.append(v2.RandomHorizontalFlip())
    transform = tensor_pipeline(steps, mean=mean, std=std)
    transform.decode_short_edge = short_edge
    return transform


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """The torch seed for one sample's augmentation: a hash of (seed, epoch, index) (numpy SeedSequence,
    identical in every process and on every machine)."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1, np.uint64)[0])


# ------------------------------------------------------------------------------------------ dataset
class AvaImageDataset(Dataset):
    """AVA-format manifest rows → ``{"image", "dist", "label", "tags", "mean", "index", "image_id"}``.

    ``manifest``: a manifest CSV path or DataFrame with at least ``image_id, vote_1..vote_10, mean,
    label`` (the contract in DEVELOPING.md); ``tag_<id>`` columns become the multi-hot ``tags``.
    Images are ``image_dir/<image_id><ext>``.

    ``short_edge`` is the decode size handed to :func:`load_image`; None takes the transform's
    ``decode_short_edge`` (set by :func:`kao_transform` / :func:`saf_transform`), 0 decodes full size.

    Augmentation is a pure function of (seed, epoch, index): each call runs the transform inside
    ``torch.random.fork_rng`` seeded with :func:`augmentation_seed`, so results do not depend on the
    number of DataLoader workers or on a resume point, and the global RNG is untouched. Call
    :meth:`set_epoch` before creating the epoch's DataLoader iterator; workers created with
    ``persistent_workers=True`` keep the epoch they started with, so do not use that option here.

    A bad image returns None (see :func:`collate_batch`), logs a warning with path and reason and counts
    the reason in ``self.skipped`` (only in the process that loaded it — with workers, use the batches'
    ``n_skipped``); ``strict=True`` raises :class:`BadImageError` instead.
    """

    def __init__(self, manifest: str | os.PathLike | pd.DataFrame, image_dir: str | os.PathLike,
                 transform: Callable[[Image.Image], torch.Tensor], *, short_edge: int | None = None,
                 strict: bool = False, seed: int = 0, ext: str = ".jpg",
                 tag_columns: Sequence[str] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 min_side: int = DEFAULT_MIN_SIDE, cache_dir: str | os.PathLike | None = None):
        if isinstance(manifest, pd.DataFrame):
            self.manifest_path: Path | None = None
            frame = manifest
        else:
            self.manifest_path = Path(manifest)
            try:
                frame = pd.read_csv(self.manifest_path)
            except FileNotFoundError:
                raise DataFormatError(self.manifest_path, None, "manifest file not found") from None
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
                raise DataFormatError(self.manifest_path, None, f"not a readable CSV manifest ({e})") from None
        self.image_dir = Path(image_dir)
        self.transform = transform
        self.short_edge = getattr(transform, "decode_short_edge", None) if short_edge is None else short_edge
        self.strict = strict
        self.seed = int(seed)
        self.epoch = 0
        self.ext = ext
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.skipped: collections.Counter[str] = collections.Counter()
        if tag_columns is None:
            tag_columns = [c for c in frame.columns if _TAG_COLUMN.match(str(c))]
        self.tag_columns = list(tag_columns)
        self._read_columns(frame)

    def _read_columns(self, frame: pd.DataFrame) -> None:
        required = ["image_id", *VOTE_COLUMNS, "mean", "label", *self.tag_columns]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise DataFormatError(self.manifest_path, 1 if self.manifest_path else None,
                                  f"manifest lacks columns {missing}")
        numeric = frame[required].apply(pd.to_numeric, errors="coerce")
        bad_rows = np.flatnonzero(numeric.isna().any(axis=1).to_numpy())
        votes = numeric[VOTE_COLUMNS].to_numpy(np.float64)
        totals = votes.sum(axis=1)
        if not len(bad_rows):
            bad_rows = np.flatnonzero((votes < 0).any(axis=1) | (totals <= 0))
        if len(bad_rows):
            row = int(bad_rows[0])
            where = "" if self.manifest_path else f"row {row}: "
            raise DataFormatError(self.manifest_path, row + 2 if self.manifest_path else None,
                                  f"{where}non-numeric, negative or all-zero values in "
                                  "image_id/votes/mean/label/tags")
        self.image_ids = numeric["image_id"].to_numpy(np.int64)
        self._dist = torch.from_numpy(votes / totals[:, None]).float()
        self._label = torch.from_numpy(numeric["label"].to_numpy(np.int64, copy=True))
        self._mean = numeric["mean"].to_numpy(np.float64)
        self._tags = torch.from_numpy(numeric[self.tag_columns].to_numpy(np.float32, copy=True).reshape(len(frame), -1))

    def __len__(self) -> int:
        return len(self.image_ids)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def image_path(self, index: int) -> Path:
        return self.image_dir / f"{self.image_ids[index]}{self.ext}"

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        index = int(index)
        path = self.image_path(index)
        try:
            image = load_image(path, short_edge=self.short_edge or None, max_pixels=self.max_pixels,
                               min_side=self.min_side)
        except BadImageError as e:
            if self.strict:
                raise
            self.skipped[e.reason] += 1
            log.warning("skipping image %s", e)  # "<path>: <reason> (<detail>)"
            return None
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed also seeds (lazily) every CUDA device, which
            # costs ~10x more per image and is not needed for CPU-side augmentation
            torch.default_generator.manual_seed(augmentation_seed(self.seed, self.epoch, index))
            tensor = self.transform(image)
        return {"image": tensor, "dist": self._dist[index], "label": self._label[index],
                "tags": self._tags[index], "mean": float(self._mean[index]), "index": index,
                "image_id": int(self.image_ids[index])}

    def aspect_ratios(self) -> np.ndarray:
        """width/height per row from the image headers (no decoding); unreadable or missing images get
        1.0 (they are skipped at load time).

        Choice: cached as ``<cache_dir>/aspect_sizes-<key>.npy`` (``cache_dir`` defaults to
        ``$IAA_HOME/cache``), keyed by the sha256 of the manifest's image ids, the image directory and
        the extension; rows without a size are probed again on the next call.
        """
        key = sha256_bytes(self.image_ids.tobytes() + f"\0{self.image_dir.resolve()}\0{self.ext}".encode())
        cache_dir = self.cache_dir
        if cache_dir is None:
            cache_dir = iaa_home() / "cache"
        cache_file = Path(cache_dir) / f"aspect_sizes-{key[:24]}.npy"
        sizes = None
        if cache_file.exists():
            try:
                sizes = np.load(cache_file)
            except (OSError, ValueError):
                sizes = None
            if sizes is not None and sizes.shape != (len(self), 2):
                sizes = None
        if sizes is None:
            sizes = np.full((len(self), 2), -1, dtype=np.int64)
        todo = np.flatnonzero(sizes[:, 0] <= 0)
        for i in todo:
            sizes[i] = _header_size(self.image_path(i))
        if len(todo) or not cache_file.exists():
            with atomic_write(cache_file, "wb") as fh:
                np.save(fh, sizes)
        unknown = sizes[:, 0] <= 0
        if unknown.any():
            log.warning("%d of %d images have no readable header in %s; aspect ratio 1.0 assumed",
                        int(unknown.sum()), len(self), self.image_dir)
        ratios = np.ones(len(self), dtype=np.float64)
        ratios[~unknown] = sizes[~unknown, 0] / sizes[~unknown, 1]
        return ratios


def _header_size(path: Path) -> tuple[int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return (-1, -1)


# ------------------------------------------------------------------------------------------ batches
def collate_batch(samples: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack dataset samples into a batch; None (skipped) samples are dropped and counted.

    Images are centre-cropped to the batch's common min H×W (torchvision ``center_crop``: offsets
    ``round((H-h)/2)``) — no resizing, so nothing is distorted; with
    :class:`AspectRatioBucketSampler` batch members share an aspect ratio and the crop is small.
    Returns ``image [B,3,h,w]``, ``dist [B,10]``, ``label [B] int64``, ``tags [B,M]``, ``mean [B]``,
    ``index [B]``, ``image_id [B]`` (int64) and ``n_skipped`` (int). If every sample was skipped the
    batch has **0 images** (``image`` of shape [0,3,0,0]); the trainer skips such batches.
    """
    kept = [s for s in samples if s is not None]
    n_skipped = len(samples) - len(kept)
    if not kept:
        return {"image": torch.zeros(0, 3, 0, 0), "dist": torch.zeros(0, 10),
                "label": torch.zeros(0, dtype=torch.int64), "tags": torch.zeros(0, 0),
                "mean": torch.zeros(0), "index": torch.zeros(0, dtype=torch.int64),
                "image_id": torch.zeros(0, dtype=torch.int64), "n_skipped": n_skipped}
    height = min(s["image"].shape[-2] for s in kept)
    width = min(s["image"].shape[-1] for s in kept)
    images = [s["image"] if s["image"].shape[-2:] == (height, width)
              else TF.center_crop(s["image"], [height, width]) for s in kept]
    return {"image": torch.stack(images),
            "dist": torch.stack([s["dist"] for s in kept]),
            "label": torch.stack([torch.as_tensor(s["label"], dtype=torch.int64) for s in kept]),
            "tags": torch.stack([s["tags"] for s in kept]),
            "mean": torch.tensor([s["mean"] for s in kept], dtype=torch.float32),
            "index": torch.tensor([s["index"] for s in kept], dtype=torch.int64),
            "image_id": torch.tensor([s["image_id"] for s in kept], dtype=torch.int64),
            "n_skipped": n_skipped}


# ------------------------------------------------------------------------------------ resized cache
def build_resized_cache(manifest: str | os.PathLike | pd.DataFrame, image_dir: str | os.PathLike,
                        cache_dir: str | os.PathLike, short_edge: int = 256, *, quality: int = 95,
                        ext: str = ".jpg", workers: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS,
                        min_side: int = DEFAULT_MIN_SIDE) -> dict[str, Any]:
    """Write ``cache_dir/<image_id>.jpg`` with the short edge resized to ``short_edge`` (never
    upscaled), for every manifest image; point the Dataset's ``image_dir`` at ``cache_dir`` afterwards.

    Resumable: existing files are kept, each file is written atomically. Bad images are skipped and
    counted by reason (the Dataset then reports them as "missing"). ``cache_dir/cache.json`` records
    ``short_edge`` and ``quality``; reusing a directory built with other values is an error. Once
    every image has been tried, ``cache.json`` also records the set of ids (a sha256) and the
    skipped ids by reason: a later call with the same ids reads that record and touches no image
    (on real AVA: no 255k file checks, no retrying and re-warning about the damaged originals).
    Choice: JPEG quality 95 with 4:4:4 chroma (re-encoding loss well below what the 227/256 px
    networks resolve); Pillow's antialiased bilinear resize, as torchvision's ``Resize`` uses on PIL.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    settings = {"short_edge": int(short_edge), "quality": int(quality), "format": "JPEG"}
    info_file = cache_dir / "cache.json"
    info = read_json(info_file) if info_file.exists() else {}
    if not info:
        info = settings
        write_json(info_file, info)
    elif {k: info.get(k) for k in settings} != settings:
        raise ValueError(f"{info_file}: built with {info}, asked for {settings}; use another cache_dir")
    ids = (manifest["image_id"] if isinstance(manifest, pd.DataFrame) else manifest_ids(manifest)).to_numpy(np.int64)
    ids_sha256 = sha256_bytes(np.sort(ids).tobytes())
    complete = info.get("complete") or {}
    if complete.get("ids_sha256") == ids_sha256:  # every image tried before: only bad ones left
        skipped_ids = complete["skipped_ids"]
        n_tried = sum(len(v) for v in skipped_ids.values())
    else:
        jobs = [(Path(image_dir) / f"{i}{ext}", cache_dir / f"{i}.jpg") for i in ids]
        todo = [job for job in jobs if not job[1].exists()]
        args = dict(short_edge=short_edge, quality=quality, max_pixels=max_pixels,
                    min_side=min_side)
        if workers > 1 and len(todo) > 64:  # spawning a worker costs more than a few images
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                results = list(pool.map(_cache_one, todo, [args] * len(todo), chunksize=32))
        else:
            results = [_cache_one(job, args) for job in todo]
        skipped_ids = {}
        for (source, _), reason in zip(todo, results):
            if reason is not None:
                skipped_ids.setdefault(reason, []).append(int(source.stem))
        write_json(info_file, {**info, "complete": {"ids_sha256": ids_sha256,
                                                    "skipped_ids": skipped_ids}})
        n_tried = len(todo)
    skipped = {reason: len(v) for reason, v in skipped_ids.items()}
    return {"n_images": len(ids), "n_written": n_tried - sum(skipped.values()),
            "n_existing": len(ids) - n_tried, "skipped": skipped, "cache_dir": str(cache_dir)}


def manifest_ids(path: str | os.PathLike) -> pd.Series:
    """The ``image_id`` column of a manifest CSV; a missing file or column is a :class:`DataFormatError`."""
    try:
        return pd.read_csv(path, usecols=["image_id"])["image_id"]
    except FileNotFoundError:
        raise DataFormatError(path, None, "manifest file not found") from None
    except ValueError as e:  # usecols: no image_id column
        raise DataFormatError(path, 1, f"manifest has no image_id column ({e})") from None


def _cache_one(job: tuple[Path, Path], args: dict[str, Any]) -> str | None:
    source, target = job
    try:
        image = load_image(source, short_edge=args["short_edge"], max_pixels=args["max_pixels"],
                           min_side=args["min_side"])
    except BadImageError as e:
        log.warning("resized cache: skipping %s", e)
        return e.reason
    if min(image.size) > args["short_edge"]:
        image = TF.resize(image, args["short_edge"], antialias=True)  # same sizes as saf_transform
    with atomic_write(target, "wb") as fh:
        image.save(fh, "JPEG", quality=args["quality"], subsampling=0)
    return None


