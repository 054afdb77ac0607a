"""Where a profile's data lives: real AVA or its SynthAVA (generated on demand), SynthTID, manifests.

Every notebook and study finds its files through these functions, so a profile (or an override)
that changes the dataset changes it everywhere:

* :func:`resolve_dataset` / :func:`profile_dataset` — the label files and images of a profile;
* :func:`synth_ava_dir`, :func:`synth_tid_dir` — ``IAA_HOME/data/synth-...`` folders, one per
  generator setting;
* :func:`manifest_dir` — ``IAA_HOME/data/manifests/<profile>/<name>`` (notebook 01 writes them);
* :func:`tid_root` — the TID2013-format set of SAF's Table 5 (real or SynthTID);
* :func:`ensure_profile_data` — generate what a profile needs before the notebooks run.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import IaaError
from .paths import data_home
from .synth.ava import generate_synth_ava
from .synth.tid import generate_synth_tid

log = logging.getLogger(__name__)

#: The settings of a profile that say which dataset it uses (:func:`profile_dataset`).
DATASET_KEYS = ("ava_txt", "tags_txt", "image_dir", "synth_n", "synth_short_edge", "synth_seed",
                "image_cache_short_edge")

#: Images in the full AVA.txt; protocol sizes are scaled by N / AVA_N_IMAGES on smaller sets.
AVA_N_IMAGES = 255_530


def synth_ava_dir(n: int, short_edge: int, seed: int) -> Path:
    """The SynthAVA directory of a profile: ``IAA_HOME/data/synth-ava_n<N>_e<edge>_s<seed>``."""
    return data_home() / f"synth-ava_n{int(n)}_e{int(short_edge)}_s{int(seed)}"


def synth_tid_dir(n: int, short_edge: int, seed: int, n_refs: int) -> Path:
    """The SynthTID directory made from :func:`synth_ava_dir` ``(n, short_edge, seed)``."""
    return data_home() / f"synth-tid_n{int(n)}_e{int(short_edge)}_s{int(seed)}_r{int(n_refs)}"


def manifest_dir(profile: str, name: str, root: str | os.PathLike | None = None) -> Path:
    """Where a profile's manifests live: ``<root or IAA_HOME/data/manifests>/<profile>/<name>``.

    Notebook 01 writes ``kao-delta0``, ``kao-delta1`` and ``standard`` here; later notebooks read them.
    """
    base = Path(root) if root else data_home() / "manifests"
    return base / profile / name


@dataclasses.dataclass(frozen=True)
class DatasetPaths:
    """The label files and images one profile works on (real AVA or SynthAVA)."""

    name: str
    ava_txt: Path
    tags_txt: Path | None
    challenges_txt: Path | None
    image_dir: Path | None
    synthetic: bool


def resolve_dataset(*, ava_txt: str = "", tags_txt: str = "", image_dir: str = "",
                    synth_n: int = 3000, synth_short_edge: int = 128,
                    synth_seed: int = 0, image_cache_short_edge: int = 0,
                    generate: bool = False) -> DatasetPaths:
    """The dataset a notebook uses: the real ``ava_txt`` when given, else the profile's SynthAVA.

    With a real ``AVA.txt``, ``tags.txt``/``challenges.txt`` default to the same folder and the
    images to ``<folder>/images``. ``generate=True`` generates a missing SynthAVA (so a notebook
    runs top to bottom on a fresh machine; ``iaa book`` has generated it already). Raises
    :class:`IaaError` naming the missing file and how to get it. ``image_cache_short_edge`` > 0:
    the images are read from their resized copy (:func:`build_resized_images`).
    """
    paths = _label_files(ava_txt, tags_txt, image_dir, synth_n, synth_short_edge, synth_seed,
                         generate)
    if image_cache_short_edge and paths.image_dir is not None:
        edge = int(image_cache_short_edge)
        cache = resized_image_dir(paths.image_dir, edge)
        if generate:
            build_resized_images(paths.ava_txt, paths.image_dir, edge)
        elif not (cache / "cache.json").is_file():
            raise IaaError(f"{cache}: the resized images (short edge {edge}) are not built yet; "
                           f"run `iaa book` (it builds them) or `iaa data cache --ava-txt "
                           f"{paths.ava_txt} --images {paths.image_dir} --out {cache} "
                           f"--short-edge {edge}`")
        paths = dataclasses.replace(paths, image_dir=cache)
    return paths


def resized_image_dir(image_dir: str | os.PathLike, short_edge: int) -> Path:
    """``IAA_HOME/data/resized-e<edge>-<hash of image_dir>``: where :func:`build_resized_images`
    puts the images of ``image_dir`` resized to ``short_edge``."""
    import hashlib

    digest = hashlib.sha256(os.fspath(Path(image_dir).resolve()).encode()).hexdigest()[:10]
    return data_home() / f"resized-e{int(short_edge)}-{digest}"


def build_resized_images(ava_txt: str | os.PathLike, image_dir: str | os.PathLike,
                         short_edge: int) -> dict[str, Any]:
    """Every image of ``ava_txt`` with its short edge resized once to ``short_edge``
    (:func:`iaalib.data.images.build_resized_cache`, as ``iaa data cache`` does), into
    :func:`resized_image_dir`; resumable. Returns the cache's counts (``skipped`` by reason).

    **Choice** of the ``ava`` profile (``image_cache_short_edge: 256``): both papers read images
    at short edge 256 (Kao: 256×256, then 227 crops; SAF: short edge 256), and decoding a 256-px
    JPEG costs about a quarter of a 500-px AVA original, every epoch. Unreadable images are
    skipped and counted when the cache is built, then counted again as missing by training.
    """
    from .data.ava import read_ava_txt
    from .data.images import build_resized_cache  # decodes with torch: imported when used

    t0 = time.perf_counter()
    cache = resized_image_dir(image_dir, short_edge)
    info = build_resized_cache(read_ava_txt(ava_txt)[["image_id"]], image_dir, cache,
                               short_edge=short_edge, workers=os.cpu_count() or 1)
    info["seconds"] = round(time.perf_counter() - t0, 3)
    skipped = sum(info["skipped"].values())
    (log.warning if skipped else log.info)(
        "resized images %s: %d written, %d already there, %d skipped %s (%.1f s)", cache,
        info["n_written"], info["n_existing"], skipped, info["skipped"], info["seconds"])
    return info


def _label_files(ava_txt, tags_txt, image_dir, synth_n, synth_short_edge, synth_seed,
                 generate) -> DatasetPaths:
    if ava_txt:
        label = Path(ava_txt).expanduser()
        if not label.is_file():
            raise IaaError(f"{label}: AVA.txt not found (set ava_txt in the profile; see the "
                           "'Reproducing on real AVA' chapter)")
        folder = label.parent
        tags = Path(tags_txt).expanduser() if tags_txt else folder / "tags.txt"
        chal = folder / "challenges.txt"
        images = Path(image_dir).expanduser() if image_dir else folder / "images"
        return DatasetPaths("AVA", label, tags if tags.is_file() else None,
                            chal if chal.is_file() else None,
                            images if images.is_dir() else None, synthetic=False)
    d = synth_ava_dir(synth_n, synth_short_edge, synth_seed)
    label = d / "AVA.txt"
    if generate:
        generate_synth_ava(d, n=synth_n, seed=synth_seed, short_edge=synth_short_edge)
    if not label.is_file():
        raise IaaError(f"{label}: SynthAVA not generated yet; run `iaa book` (it generates it) or "
                       f"`iaa data synth --out {d} --n {synth_n} --short-edge {synth_short_edge} "
                       f"--seed {synth_seed}`")
    return DatasetPaths(f"SynthAVA (N={synth_n})", label, d / "tags.txt", d / "challenges.txt",
                        d / "images", synthetic=True)


def scaled_protocol_size(value: int, n_images: int, *, reference: int = AVA_N_IMAGES) -> int:
    """``value`` scaled from the full AVA (``reference`` images) to a set of ``n_images``.

    **Choice:** on SynthAVA, Kao's tag threshold (3000) and test size (20,000) are scaled by
    N / 255,530 and rounded to the nearest integer, so the filter keeps a comparable share of tags
    and images.
    """
    if n_images <= 0:
        raise ValueError(f"n_images must be positive, got {n_images}")
    return max(1, int(round(value * n_images / reference)))


def ensure_profile_data(common: Mapping[str, Any]) -> dict[str, Any]:
    """Generate the profile's SynthAVA and SynthTID (skipped by the generators when present), and
    its resized images when ``image_cache_short_edge`` is set (:func:`build_resized_images`).

    No synthetic data is generated for a profile with a real ``ava_txt``; SynthTID is not
    generated when ``tid_root`` names a real TID2013.
    """
    info = {} if common.get("ava_txt") else _ensure_synthetic_data(common)
    edge = int(common.get("image_cache_short_edge") or 0)
    if edge:
        paths = profile_dataset({**common, "image_cache_short_edge": 0})
        if paths.image_dir is not None:
            info["resized_images"] = build_resized_images(paths.ava_txt, paths.image_dir, edge)
    return info


def _ensure_synthetic_data(common: Mapping[str, Any]) -> dict[str, Any]:
    n = int(common.get("synth_n", 3000))
    edge = int(common.get("synth_short_edge", 128))
    seed = int(common.get("synth_seed", 0))
    info: dict[str, Any] = {}
    ava = synth_ava_dir(n, edge, seed)
    t0 = time.perf_counter()
    generate_synth_ava(ava, n=n, seed=seed, short_edge=edge)
    info["synth_ava"] = {"dir": str(ava), "seconds": round(time.perf_counter() - t0, 3)}
    if not common.get("tid_root"):
        refs = int(common.get("synth_tid_refs", 10))
        tid = synth_tid_dir(n, edge, seed, refs)
        t0 = time.perf_counter()
        generate_synth_tid(tid, synth_ava_dir=ava, n_refs=refs, seed=seed)
        info["synth_tid"] = {"dir": str(tid), "seconds": round(time.perf_counter() - t0, 3)}
    return info


def profile_dataset(settings: Mapping[str, Any], *, generate: bool = False) -> DatasetPaths:
    """:func:`resolve_dataset` with a profile's settings (:data:`DATASET_KEYS`)."""
    return resolve_dataset(**{k: settings[k] for k in DATASET_KEYS if k in settings},
                           generate=generate)


def tid_root(settings: Mapping[str, Any], *, generate: bool = False) -> Path:
    """The TID2013-format folder of a profile: ``tid_root`` when set (real TID2013), else the
    SynthTID made from the profile's SynthAVA (generated when missing and ``generate``)."""
    if settings.get("tid_root"):
        return Path(str(settings["tid_root"])).expanduser()
    if settings.get("ava_txt"):
        raise IaaError("a real-AVA profile needs tid_root (the TID2013 folder) for the "
                       "cross-dataset test")
    n, edge, seed = (int(settings[k]) for k in ("synth_n", "synth_short_edge", "synth_seed"))
    refs = int(settings.get("synth_tid_refs", 10))
    folder = synth_tid_dir(n, edge, seed, refs)
    if generate:
        ava = synth_ava_dir(n, edge, seed)
        generate_synth_ava(ava, n=n, seed=seed, short_edge=edge)
        generate_synth_tid(folder, synth_ava_dir=ava, n_refs=refs, seed=seed)
    return folder
