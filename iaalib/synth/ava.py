"""SynthAVA: a synthetic dataset in AVA's exact file format, the book's default dataset.

``generate_synth_ava(DIR, n=N, seed=S, short_edge=E)`` (or ``iaa data synth --out DIR``) writes

* ``DIR/AVA.txt`` — ``index image_id v1..v10 tag1 tag2 challenge_id`` (15 integers per line);
* ``DIR/tags.txt`` — AVA's 66 tag ids and names (the public AVA vocabulary, Murray et al. 2012);
* ``DIR/challenges.txt`` — ``id name`` of synthetic challenges (blocks of ~150 consecutive images);
* ``DIR/images/<image_id>.jpg`` — procedural photographs (JPEG quality 90, 4:2:0), short edge ``E``;
* ``DIR/synth.json`` — version, parameters, checksums, tag counts, what Kao's filter should keep,
  and per-image latent properties (blur, exposure, ..., the latent mean score, the motifs used) and
  measured ones (luminance, RMS contrast, colourfulness, sharpness). Written last: a directory
  without it is incomplete and is regenerated; one whose ``synth.json`` matches the arguments is
  left as it is (``iaa book`` calls the generator every time).

**Tags** (:func:`assign_tags`). Images carry 0, 1 or 2 of AVA's 66 tags with exact, long-tailed
quotas. With ``x = 3000 · N / 255,530`` (Kao's threshold scaled to N), the 29 tags of Kao et al.
Fig. 9 get ``ceil(m · x)`` images with ``m`` from 6.5 (Nature) down to 1.5 (Advertisement) and the
37 others ``floor(m · x)`` with ``m = 0.66 · 0.9^k`` (≤ 0.66). So Kao's rule "more than T images",
with T = round(x) or floor(x), keeps exactly those 29 tags for every seed and every N ≥ 300, with a
clear margin (1.5 T vs 0.66 T). 27.3% of the images (as 1 − 185,751/255,530 in real AVA) have no
kept tag: they have no tag, or only one of the 37 rare tags; the other rare tags sit next to a kept
tag. The slots are paired without repeating a tag on an image and shuffled with a seeded
permutation. **Choice:** the ranking of the 29 tags loosely follows AVA's (Kao et al. Fig. 4 is not
legible in our copy); the 37 rare tags are ranked by id. Below N ≈ 300 the quotas are trimmed to fit
two tags per image and the 29-tag guarantee no longer holds.

**Images and scores**: see :mod:`iaalib.synth.motifs` (one procedural motif per tag, aspect
ratios, composition) and :mod:`iaalib.synth.quality` (latent properties, the mean-score
function with tag-dependent weights calibrated to real AVA's marginal statistics, and the votes).

**Determinism.** Every random draw comes from ``numpy.random.default_rng([seed, stream, i])`` for
image ``i`` (or ``[seed, stream]`` for the dataset-level tag quotas and ids), so the output does not
depend on the number of worker processes; rendering uses float64 elementwise numpy and
``scipy.ndimage`` filters only (no BLAS, no threads). The same arguments give byte-identical files
for the same numpy / SciPy / Pillow (libjpeg) versions. Image ids are a seeded, sorted sample of
1..999,999 (AVA's ids lie in the same range); **Choice:** they are not meant to match real AVA ids.

Rendering runs in ``workers`` processes started with the ``spawn`` method (safe in notebooks that
already run torch threads); as always with ``multiprocessing``, a script that calls the generator
with ``workers > 1`` needs an ``if __name__ == "__main__":`` guard.

**Choice:** the streams used here are 1–5; SynthTID draws its references from other streams
(:mod:`iaalib.synth.tid`), so a SynthTID reference is never a SynthAVA image.
"""
from __future__ import annotations

import concurrent.futures as cf
import io
import logging
import math
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .._io import atomic_write, read_json, sha256_file, write_json
from ..errors import IaaError
from . import motifs, quality

logger = logging.getLogger(__name__)

SYNTH_VERSION = 1
JPEG_QUALITY = 90
MIN_SHORT_EDGE = 32
MAX_SHORT_EDGE = 2048
MAX_IMAGES = 500_000
AVA_N_IMAGES = 255_530            # lines of the official AVA.txt
KAO_MIN_TAG_COUNT = 3000          # Kao et al. Sec. IV-A: tags with more than 3000 images
KAO_N_KEPT_IMAGES = 185_751       # images with at least one kept tag (Kao et al. Sec. IV-A)
DROP_FRACTION = 1.0 - KAO_N_KEPT_IMAGES / AVA_N_IMAGES
IMAGES_PER_CHALLENGE = 150
STREAM_IDS, STREAM_TAGS, STREAM_LATENTS, STREAM_VOTES, STREAM_RENDER = 1, 2, 3, 4, 5

#: AVA's tag vocabulary (``tags.txt`` of the AVA package; Murray, Marchesotti & Perronnin,
#: "AVA: A large-scale database for aesthetic visual analysis", CVPR 2012). Public.
AVA_TAGS: dict[int, str] = {
    1: "Abstract", 2: "Cityscape", 3: "Fashion", 4: "Family", 5: "Humorous", 6: "Interior",
    7: "Sky", 8: "Snapshot", 9: "Sports", 10: "Urban", 11: "Vintage", 12: "Emotive",
    13: "Performance", 14: "Landscape", 15: "Nature", 16: "Candid", 17: "Portraiture",
    18: "Still Life", 19: "Animals", 20: "Architecture", 21: "Black and White", 22: "Macro",
    23: "Travel", 24: "Action", 25: "Photojournalism", 26: "Nude", 27: "Rural", 28: "Water",
    29: "Studio", 30: "Political", 31: "Advertisement", 32: "Persuasive", 33: "Panoramic",
    34: "Digital Art", 35: "Seascapes", 36: "Traditional Art", 37: "Diptych / Triptych",
    38: "Floral", 39: "Transportation", 40: "Food and Drink", 41: "Science and Technology",
    42: "Wedding", 43: "Astrophotography", 44: "Military", 45: "History", 46: "Infrared",
    47: "Self Portrait", 48: "Textures", 49: "DPChallenge GTGs", 50: "Children", 51: "Blur",
    52: "Photo-Impressionism", 53: "High Dynamic Range (HDR)", 54: "Texture Library",
    55: "Overlays", 56: "Maternity", 57: "Birds", 58: "Horror", 59: "Music",
    60: "Pinhole/Zone Plate", 61: "Street", 62: "Lensbaby", 63: "Fish Eye", 64: "Camera Phones",
    65: "Insects, etc", 66: "Analog",
}

#: The 29 tags Kao et al. keep (Fig. 9, in ascending id order) with their frequency multiplier
#: ``m`` (images ≈ m × 3000 on full-size AVA). **Choice:** ranking and values are ours.
KAO_TAG_FREQUENCY: dict[int, float] = {
    15: 6.5, 21: 6.2, 14: 5.5, 22: 5.0, 18: 4.4, 17: 4.0, 1: 3.6, 19: 3.3, 20: 3.0, 5: 2.8,
    12: 2.6, 38: 2.5, 2: 2.4, 28: 2.3, 7: 2.2, 4: 2.1, 27: 2.0, 10: 1.95, 35: 1.9, 23: 1.85,
    8: 1.8, 9: 1.75, 16: 1.7, 50: 1.66, 24: 1.62, 29: 1.58, 40: 1.55, 39: 1.52, 31: 1.5,
}
KAO_TAGS: tuple[int, ...] = tuple(sorted(KAO_TAG_FREQUENCY))
RARE_TAG_FREQUENCY: dict[int, float] = {
    t: 0.66 * 0.9 ** k for k, t in enumerate(t for t in sorted(AVA_TAGS) if t not in KAO_TAG_FREQUENCY)
}


class InvalidArgumentError(IaaError, ValueError):
    """A generator argument is out of range or the output directory cannot be used."""


# ------------------------------------------------------------------------------------ tags


def kao_threshold(n: int) -> float:
    """Kao's 3000-image threshold scaled to a dataset of ``n`` images (unrounded)."""
    return KAO_MIN_TAG_COUNT * n / AVA_N_IMAGES


def tag_quotas(n: int) -> dict[int, int]:
    """Exact number of images per tag id before fitting to ``n`` images (see module docstring)."""
    x = kao_threshold(n)
    quotas = {t: math.ceil(m * x) for t, m in KAO_TAG_FREQUENCY.items()}
    quotas.update({t: math.floor(m * x) for t, m in RARE_TAG_FREQUENCY.items()})
    return quotas


def assign_tags(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(tag1, tag2)`` int64 arrays of length ``n`` with the quotas of :func:`tag_quotas`."""
    rng = np.random.default_rng([seed, STREAM_TAGS])
    quotas = tag_quotas(n)
    kept_ids = sorted(KAO_TAG_FREQUENCY, key=lambda t: (-KAO_TAG_FREQUENCY[t], t))
    kept_counts = [quotas[t] for t in kept_ids]
    rare_slots = rng.permutation(np.repeat(sorted(RARE_TAG_FREQUENCY),
                                           [quotas[t] for t in sorted(RARE_TAG_FREQUENCY)]))
    n_r1 = (len(rare_slots) + 1) // 2
    n_r1 = min(n_r1, n)
    n0 = max(round(DROP_FRACTION * n) - n_r1, 0)
    g = n - n0 - n_r1                                  # images with a kept tag
    n_kr = min(len(rare_slots) - n_r1, g)              # ... of which also carry a rare tag
    k = sum(kept_counts)
    if k < g:                                          # too few kept slots: more untagged images
        n0, g = n0 + g - k, k
        n_kr = min(n_kr, g)
    if k > 2 * g - n_kr:                               # too many: fewer untagged images, then trim
        move = min(n0, math.ceil((k - (2 * g - n_kr)) / 2))
        n0, g = n0 - move, g + move
        excess = k - (2 * g - n_kr)
        for j in range(len(kept_counts) - 1, -1, -1):
            if excess <= 0:
                break
            cut = min(excess, kept_counts[j])
            kept_counts[j] -= cut
            excess -= cut
        k = sum(kept_counts)
    n_kk = k - g
    kept_slots = rng.permutation(np.repeat(kept_ids, kept_counts))
    with_rare = kept_slots[:n_kr]
    paired = np.sort(kept_slots[n_kr:n_kr + 2 * n_kk], kind="stable")
    first, second = paired[:n_kk], paired[n_kk:]
    _separate_equal_pairs(first, second)
    singles = kept_slots[n_kr + 2 * n_kk:]
    t1 = np.concatenate([np.zeros(n0, np.int64), rare_slots[:n_r1], with_rare, first, singles])
    t2 = np.concatenate([np.zeros(n0 + n_r1, np.int64), rare_slots[n_r1:n_r1 + n_kr], second,
                         np.zeros(len(singles), np.int64)])
    swap = (rng.random(n) < 0.5) & (t2 > 0)
    t1, t2 = np.where(swap, t2, t1), np.where(swap, t1, t2)
    perm = rng.permutation(n)
    return t1[perm].astype(np.int64), t2[perm].astype(np.int64)


def _separate_equal_pairs(first: np.ndarray, second: np.ndarray) -> None:
    """Swap partners so that no pair holds the same tag twice (only needed for tiny N)."""
    for i in np.flatnonzero(first == second):
        for j in range(len(first)):
            if first[i] != second[j] and first[j] != second[i]:
                second[i], second[j] = second[j], second[i]
                break


def tag_image_counts(tag1: np.ndarray, tag2: np.ndarray) -> dict[int, int]:
    ids, counts = np.unique(np.concatenate([tag1[tag1 > 0], tag2[tag2 > 0]]), return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts)}


# ------------------------------------------------------------------------------ generation


def _check_args(n, seed, short_edge, workers) -> None:
    if not isinstance(n, (int, np.integer)) or not 0 < n <= MAX_IMAGES:
        raise InvalidArgumentError(f"SynthAVA: n must be an integer in 1..{MAX_IMAGES}, got {n!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"SynthAVA: seed must be a non-negative integer, got {seed!r}")
    if not isinstance(short_edge, (int, np.integer)) or not MIN_SHORT_EDGE <= short_edge <= MAX_SHORT_EDGE:
        raise InvalidArgumentError(f"SynthAVA: short_edge must be an integer in {MIN_SHORT_EDGE}.."
                                   f"{MAX_SHORT_EDGE} pixels, got {short_edge!r}")
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise InvalidArgumentError(f"SynthAVA: workers must be a positive integer, got {workers!r}")


def prepare_output_dir(out_dir: Path, marker: str, label_file: str, what: str) -> None:
    """Create ``out_dir``, check it is writable, refuse a foreign dataset directory."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise InvalidArgumentError(f"{out_dir}: cannot write the {what} here: "
                                   f"{e.strerror or e}") from e
    if (out_dir / label_file).exists() and not (out_dir / marker).exists() \
            and not (out_dir / ".incomplete").exists():
        raise InvalidArgumentError(f"{out_dir}: contains {label_file} but no {marker}; it does not look "
                                   f"like a {what} directory, refusing to overwrite it")


def _is_complete(out_dir: Path, params: dict) -> bool:
    meta_path = out_dir / "synth.json"
    if not meta_path.is_file():
        return False
    try:
        meta = read_json(meta_path)
    except (OSError, ValueError):
        return False
    if meta.get("version") != SYNTH_VERSION or meta.get("params") != params:
        return False
    for name, digest in meta.get("files", {}).items():
        p = out_dir / name
        if not p.is_file() or sha256_file(p) != digest:
            return False
    images = out_dir / "images"
    return all((images / f"{i}.jpg").is_file() for i in meta["images"]["image_id"])


def image_labels(n: int, seed: int, short_edge: int) -> dict:
    """Everything about the dataset except the pixels: ids, tags, sizes, latents, votes."""
    ids = np.sort(np.random.default_rng([seed, STREAM_IDS]).choice(999_999, size=n, replace=False) + 1)
    tag1, tag2 = assign_tags(n, seed)
    rows, q = [], np.empty(n)
    for i in range(n):
        tags = tuple(int(t) for t in (tag1[i], tag2[i]) if t > 0)
        rng = np.random.default_rng([seed, STREAM_LATENTS, i])
        width, height = motifs.choose_size(rng, tags, short_edge)
        grey = motifs.is_greyscale(tags)
        lat = quality.draw_latents(rng, quality.prior_for(tags), has_subject=motifs.has_subject(tags))
        q[i] = quality.quality(lat, quality.weights_for(tags, greyscale=grey))
        rows.append({"tags": tags, "width": width, "height": height, "greyscale": grey, **lat})
    mu = quality.mean_score(q)
    sd_target, n_votes, vote_rngs = np.empty(n), np.empty(n, np.int64), []
    for i in range(n):
        rng = np.random.default_rng([seed, STREAM_VOTES, i])
        spread = quality.prior_for(rows[i]["tags"]).spread
        sd_target[i] = quality.vote_sd_target(float(mu[i]), spread, rng)
        n_votes[i] = quality.draw_n_votes(rng)
        vote_rngs.append(rng)
    p = quality.vote_distribution(mu, sd_target)
    votes = np.stack([quality.draw_votes(vote_rngs[i], p[i], int(n_votes[i])) for i in range(n)])
    n_chal = max(1, round(n / IMAGES_PER_CHALLENGE))
    challenge = 1 + (np.arange(n) * n_chal) // n
    return {"image_id": ids, "tag1": tag1, "tag2": tag2, "rows": rows, "quality": q,
            "latent_mean": mu, "vote_sd": sd_target, "votes": votes, "challenge_id": challenge,
            "n_challenges": n_chal}


def render_image(tags: tuple[int, ...], lat: dict, width: int, height: int, *, seed: int,
                 index: int, stream: int = STREAM_RENDER) -> tuple[np.ndarray, dict]:
    """The uint8 ``[H, W, 3]`` photograph of one image and the motifs used."""
    rng = np.random.default_rng([seed, stream, index])
    bg, fg, alpha, info = motifs.render_scene(tags, lat["composition"], rng, height, width)
    img = quality.develop(bg, fg, alpha, lat, greyscale=motifs.is_greyscale(tags), rng=rng)
    return img, info


def encode_jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, "JPEG", quality=JPEG_QUALITY, subsampling="4:2:0",
                                     optimize=False, progressive=False)
    return buf.getvalue()


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _render_chunk(task: tuple) -> list[tuple[int, dict, dict]]:
    """Worker: render, encode and write a list of images; return measurements and motifs."""
    image_dir, seed, items = task
    out = []
    for index, image_id, tags, lat, width, height in items:
        img, info = render_image(tuple(tags), lat, width, height, seed=seed, index=index)
        _write_bytes_atomic(Path(image_dir) / f"{image_id}.jpg", encode_jpeg(img))
        out.append((index, quality.measure(img), info))
    return out


def run_chunks(tasks: list[tuple], workers: int, fn=_render_chunk) -> list:
    """Run ``fn`` over ``tasks`` in ``workers`` spawned processes (in-process when 1)."""
    if workers <= 1 or len(tasks) <= 1:
        return [r for t in tasks for r in fn(t)]
    ctx = mp.get_context("spawn")  # safe in notebooks that already run torch threads
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return [r for chunk in pool.map(fn, tasks) for r in chunk]


def _ava_lines(lab: dict) -> str:
    lines = []
    for i in range(len(lab["image_id"])):
        fields = [i + 1, int(lab["image_id"][i]), *lab["votes"][i].tolist(), int(lab["tag1"][i]),
                  int(lab["tag2"][i]), int(lab["challenge_id"][i])]
        lines.append(" ".join(str(int(v)) for v in fields))
    return "\n".join(lines) + "\n"


def generate_synth_ava(out_dir: str | os.PathLike, *, n: int = 3000, seed: int = 0,
                       short_edge: int = 128, workers: int | None = None) -> dict:
    """Write SynthAVA to ``out_dir`` unless an identical one is already there (module docstring).

    Returns ``{"dir", "ava_txt", "tags_txt", "challenges_txt", "images", "synth_json", "n",
    "skipped", "seconds", "workers"}``. Raises :class:`InvalidArgumentError` (an ``IaaError`` and
    ``ValueError``) for bad arguments or an unusable directory.
    """
    _check_args(n, seed, short_edge, workers)
    n, seed, short_edge = int(n), int(seed), int(short_edge)
    out = Path(out_dir).expanduser()
    params = {"n": n, "seed": seed, "short_edge": short_edge, "jpeg_quality": JPEG_QUALITY}
    result = {"dir": str(out), "ava_txt": str(out / "AVA.txt"), "tags_txt": str(out / "tags.txt"),
              "challenges_txt": str(out / "challenges.txt"), "images": str(out / "images"),
              "synth_json": str(out / "synth.json"), "n": n}
    t0 = time.perf_counter()
    prepare_output_dir(out, "synth.json", "AVA.txt", "SynthAVA")
    if _is_complete(out, params):
        (out / ".incomplete").unlink(missing_ok=True)  # killed between synth.json and this cleanup
        logger.info("SynthAVA in %s is up to date (n=%d, seed=%d, short_edge=%d)", out, n, seed, short_edge)
        return {**result, "skipped": True, "seconds": time.perf_counter() - t0, "workers": 0}

    write_json(out / ".incomplete", params)
    for name in ("synth.json", "AVA.txt"):
        (out / name).unlink(missing_ok=True)
    image_dir = out / "images"
    image_dir.mkdir(exist_ok=True)

    lab = image_labels(n, seed, short_edge)
    workers = min(workers or os.cpu_count() or 1, max(1, n // 250))  # spawning costs ~1 s
    items = [(i, int(lab["image_id"][i]), list(r["tags"]), {k: r[k] for k in quality.LATENTS},
              r["width"], r["height"]) for i, r in enumerate(lab["rows"])]
    chunk = max(8, math.ceil(n / (workers * 8)))
    tasks = [(str(image_dir), seed, items[s:s + chunk]) for s in range(0, n, chunk)]
    rendered = sorted(run_chunks(tasks, workers), key=lambda r: r[0])

    keep = {f"{i}.jpg" for i in lab["image_id"].tolist()}
    for p in image_dir.iterdir():
        if p.suffix == ".jpg" and p.name not in keep:
            p.unlink()
    with atomic_write(out / "tags.txt") as fh:
        fh.write("".join(f"{t} {name}\n" for t, name in sorted(AVA_TAGS.items(), key=lambda kv: kv[1])))
    with atomic_write(out / "challenges.txt") as fh:
        fh.write("".join(f"{k} Synthetic_challenge_{k:04d}\n" for k in range(1, lab["n_challenges"] + 1)))
    with atomic_write(out / "AVA.txt") as fh:
        fh.write(_ava_lines(lab))
    os.sync()  # images are renamed into place without fsync; flush them before synth.json
    write_json(out / "synth.json", _metadata(lab, rendered, params, out))
    (out / ".incomplete").unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    logger.info("SynthAVA: %d images in %s (%.1f s, %d workers)", n, out, seconds, workers)
    return {**result, "skipped": False, "seconds": seconds, "workers": workers}


def _metadata(lab: dict, rendered: list, params: dict, out: Path) -> dict:
    n = len(lab["image_id"])
    counts = tag_image_counts(lab["tag1"], lab["tag2"])
    threshold = max(1, round(kao_threshold(n)))
    kept = sorted(t for t, c in counts.items() if c > threshold)
    has_kept = np.isin(lab["tag1"], kept) | np.isin(lab["tag2"], kept)
    rows = lab["rows"]
    images = {
        "image_id": lab["image_id"].tolist(), "width": [r["width"] for r in rows],
        "height": [r["height"] for r in rows], "tag1": lab["tag1"].tolist(), "tag2": lab["tag2"].tolist(),
        "latent_mean": [round(float(v), 4) for v in lab["latent_mean"]],
        "quality": [round(float(v), 4) for v in lab["quality"]],
        "vote_sd_target": [round(float(v), 4) for v in lab["vote_sd"]],
        "greyscale": [r["greyscale"] for r in rows],
        "composition": [r["composition"] for r in rows],
        **{k: [round(float(r[k]), 4) for r in rows]
           for k in quality.LATENTS if k != "composition"},
        "background": [info["background"] for _, _, info in rendered],
        "subjects": ["+".join(info["subjects"]) for _, _, info in rendered],
        "modifiers": ["+".join(info["modifiers"]) for _, _, info in rendered],
        **{k: [m[k] for _, m, _ in rendered] for k in ("luminance", "rms_contrast", "colourfulness", "sharpness")},
    }
    return {
        "generator": "iaalib.synth.ava", "version": SYNTH_VERSION, "params": params,
        "files": {name: sha256_file(out / name) for name in ("AVA.txt", "tags.txt", "challenges.txt")},
        "tag_counts": {str(t): c for t, c in sorted(counts.items())},
        "kao_expected": {"min_tag_count": threshold, "kept_tags": kept,
                         "n_images_with_kept_tag": int(has_kept.sum())},
        "calibration": {"score_mean": quality.SCORE_MEAN, "score_sd": quality.SCORE_SD,
                        "q_mean": quality.Q_MEAN, "q_sd": quality.Q_SD},
        "images": images,
    }


def read_synth_latents(out_dir: str | os.PathLike):
    """Per-image latent and measured properties of a SynthAVA directory as a DataFrame."""
    path = Path(out_dir) / "synth.json"
    if not path.is_file():
        raise IaaError(f"{path}: not found (generate SynthAVA with `iaa data synth`)")
    return pd.DataFrame(read_json(path)["images"])


