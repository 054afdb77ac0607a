"""SynthTID: a small distorted-image set in TID2013's layout, and a reader for TID2013 and SynthTID.

The SAF paper tests cross-dataset on TID2013 (Ponomarenko et al. 2015: 25 references × 24
distortion types × 5 levels, MOS in 0–9). ``generate_synth_tid(DIR, synth_ava_dir=A, n_refs=R)``
(``iaa data synth-tid``) writes the same layout::

    DIR/reference_images/I01.BMP ...            DIR/mos_with_names.txt   ("MOS name" per line)
    DIR/distorted_images/i01_01_1.bmp ...       DIR/mos_std.txt          (one SD per line)
    DIR/synth_tid.json                          (parameters, references, damage table; written last)

**References** are rendered by SynthAVA's generator (same motifs, same score function, the short
edge of SynthAVA ``A``, TID's 4:3 landscape format) but from random streams SynthAVA never uses
(``[seed, 101..104, r]``), so no reference is a SynthAVA image and none can be in a SynthAVA
training set. Each reference has one Kao tag (30%: two) drawn with SynthAVA's tag frequencies, and
"pristine" latents: SynthAVA's prior with blur and noise × 0.2, exposure × 0.3, contrast and
saturation pulled 70% of the way to their optimum.

**Distortions** (TID2013's type numbers), 5 levels each:

==  ==========================  =================================================  ====================
#   type                        level parameters (1 → 5)                           SynthAVA latent
==  ==========================  =================================================  ====================
1   Additive Gaussian noise     σ = .012 .025 .045 .07 .1 (of full scale)          noise += σ / 0.12
6   Impulse noise               fraction p = .004 .01 .02 .035 .06 (salt, pepper)  (table)
8   Gaussian blur               σ = .01 .015 .022 .03 .042 × short edge            blur += σ / (0.03 E)
10  JPEG compression            quality 50 30 18 10 5                              (table)
16  Mean shift (intensity)      ΔEV = +.3 −.55 +.8 −1.05 +1.3 (linear light)       exposure
17  Contrast change             gain .83 .7 .58 .48 .4                             contrast += log2 g
18  Change of color saturation  chroma gain .78 .62 .5 .4 .32                      saturation += log2 g
==  ==========================  =================================================  ====================

**MOS.** The damage ``D`` of a distortion is its cost in SynthAVA's quality ``q``, with SynthAVA's
default weights (:class:`~iaalib.synth.quality.Weights`): noise 1.2·Δnoise, blur 1.6·Δblur,
exposure 1.0·ΔEV², contrast 1.0·Δ², saturation 0.7·Δ² (Δ measured from the optimum); impulse noise
D = .15 .3 .55 .85 1.2 and JPEG D = .1 .3 .6 1.0 1.6 (**Choice**: tables, as SynthAVA has no such
latent). Then ``μ = mean_score(q_ref − D)`` (SynthAVA's calibrated score) and the true MOS is
``9 · sigmoid((μ − 5.85) / 1.2)``, which decreases strictly with the level. **Choice:** the constants
put SynthTID near real TID2013 (MOS 4.47 ± 1.24; mean by level 5.5, 5.2, 4.6, 4.0, 3.1). The
published MOS is the mean of 30 simulated observers, each ``N(MOS_true, 0.9²)`` clipped to [0, 9];
``mos_std.txt`` holds the standard error of that mean (TID2013's values are ≈ 0.13).

:func:`read_tid` reads the real TID2013 and SynthTID alike (file names matched case-insensitively,
as TID2013's own files mix ``I01.BMP`` and ``i25.bmp``).
"""
from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .._io import atomic_write, read_json, sha256_file, write_json
from ..errors import IaaError
from ..data.tid import TID_DISTORTIONS
from . import ava as synth
from . import quality

logger = logging.getLogger(__name__)

SYNTH_TID_VERSION = 1
STREAM_REFS, STREAM_RENDER, STREAM_DISTORT, STREAM_OBSERVERS = 101, 102, 103, 104
N_OBSERVERS = 30
OBSERVER_SD = 0.9
MOS_CENTRE, MOS_SCALE = 5.85, 1.2
MAX_REFS = 99

#: Level parameters of the distortion types SynthTID implements (module docstring).
LEVELS: dict[int, tuple[float, ...]] = {
    1: (0.012, 0.025, 0.045, 0.07, 0.1),
    6: (0.004, 0.01, 0.02, 0.035, 0.06),
    8: (0.01, 0.015, 0.022, 0.03, 0.042),
    10: (50, 30, 18, 10, 5),
    16: (0.3, -0.55, 0.8, -1.05, 1.3),
    17: (0.83, 0.7, 0.58, 0.48, 0.4),
    18: (0.78, 0.62, 0.5, 0.4, 0.32),
}
IMPULSE_DAMAGE = (0.15, 0.3, 0.55, 0.85, 1.2)
JPEG_DAMAGE = (0.1, 0.3, 0.6, 1.0, 1.6)
def damage(distortion: int, level: int) -> float:
    """Cost of a distortion in SynthAVA's quality ``q`` (module docstring); level is 1..5."""
    w, v = quality.DEFAULT_WEIGHTS, LEVELS[distortion][level - 1]
    if distortion == 1:
        return w.noise * v / quality.NOISE_SIGMA
    if distortion == 6:
        return IMPULSE_DAMAGE[level - 1]
    if distortion == 8:
        return w.blur * v / quality.BLUR_SIGMA
    if distortion == 10:
        return JPEG_DAMAGE[level - 1]
    if distortion == 16:
        return w.exposure * v ** 2
    if distortion == 17:
        return w.contrast * np.log2(v) ** 2
    if distortion == 18:
        return w.saturation * np.log2(v) ** 2
    raise ValueError(f"SynthTID does not implement distortion type {distortion}")


def true_mos(mu):
    """MOS on TID's 0–9 scale from a SynthAVA mean score μ."""
    return 9.0 / (1.0 + np.exp(-(np.asarray(mu, dtype=np.float64) - MOS_CENTRE) / MOS_SCALE))


def distort(img: np.ndarray, distortion: int, level: int, rng: np.random.Generator) -> np.ndarray:
    """Apply one distortion at one level to a uint8 RGB image (returns uint8)."""
    v = LEVELS[distortion][level - 1]
    if distortion == 10:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=int(v), subsampling="4:2:0")
        buf.seek(0)
        with Image.open(buf) as im:
            return np.asarray(im.convert("RGB")).copy()
    x = img.astype(np.float64) / 255.0
    h, w = x.shape[:2]
    if distortion == 1:
        x = x + v * rng.standard_normal(x.shape)
    elif distortion == 6:
        hit = rng.random((h, w)) < v
        x = np.where(hit[..., None], (rng.random((h, w)) < 0.5)[..., None].astype(np.float64), x)
    elif distortion == 8:
        s = v * min(h, w)
        x = ndimage.gaussian_filter(x, sigma=(s, s, 0), mode="reflect", truncate=3.0)
    elif distortion == 16:
        x = np.sqrt(np.minimum(x * x * 2.0 ** v, 1.0))
    elif distortion in (17, 18):
        lum = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]
        centre = lum.mean() if distortion == 17 else lum
        x = centre + (x - centre) * v
    else:
        raise ValueError(f"SynthTID does not implement distortion type {distortion}")
    return np.floor(np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def reference_spec(r: int, seed: int, short_edge: int) -> dict:
    """Tags and pristine latents of reference ``r`` (1-based), from SynthTID's own streams."""
    rng = np.random.default_rng([seed, STREAM_REFS, r])
    kao = np.array(synth.KAO_TAGS)
    p = np.array([synth.KAO_TAG_FREQUENCY[t] for t in synth.KAO_TAGS])
    k = 2 if rng.random() < 0.3 else 1
    tags = tuple(int(t) for t in rng.choice(kao, size=k, replace=False, p=p / p.sum()))
    lat = quality.draw_latents(rng, quality.prior_for(tags), has_subject=synth.motifs.has_subject(tags))
    w = quality.weights_for(tags, greyscale=synth.motifs.is_greyscale(tags))
    lat.update(blur=0.2 * lat["blur"], noise=0.2 * lat["noise"], exposure=0.3 * lat["exposure"],
               contrast=w.contrast_opt + 0.3 * (lat["contrast"] - w.contrast_opt),
               saturation=w.saturation_opt + 0.3 * (lat["saturation"] - w.saturation_opt))
    q = quality.quality(lat, w)
    return {"ref": r, "tags": list(tags), "width": int(round(short_edge * 4 / 3)), "height": short_edge,
            "latents": lat, "quality": q, "mean_score": float(quality.mean_score(q))}


def _save_bmp(path: Path, img: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, "BMP")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def generate_synth_tid(out_dir: str | os.PathLike, *, synth_ava_dir: str | os.PathLike,
                       n_refs: int = 10, seed: int = 0) -> dict:
    """Write SynthTID to ``out_dir`` unless an identical one is there (module docstring).

    ``synth_ava_dir`` is the SynthAVA whose generator settings (short edge, version) are used.
    Returns ``{"dir", "mos_with_names", "n_images", "skipped", "seconds"}``.
    """
    t0 = time.perf_counter()
    if not isinstance(n_refs, (int, np.integer)) or not 1 <= n_refs <= MAX_REFS:
        raise synth.InvalidArgumentError(f"SynthTID: n_refs must be an integer in 1..{MAX_REFS}, got {n_refs!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise synth.InvalidArgumentError(f"SynthTID: seed must be a non-negative integer, got {seed!r}")
    ava_meta_path = Path(synth_ava_dir).expanduser() / "synth.json"
    if not ava_meta_path.is_file():
        raise IaaError(f"{ava_meta_path}: not found; {synth_ava_dir} is not a complete SynthAVA directory "
                       "(generate it first with `iaa data synth`)")
    ava_params = read_json(ava_meta_path)["params"]
    short_edge = int(ava_params["short_edge"])
    out = Path(out_dir).expanduser()
    params = {"n_refs": int(n_refs), "seed": int(seed), "short_edge": short_edge,
              "synth_ava": ava_params, "synth_version": synth.SYNTH_VERSION}
    result = {"dir": str(out), "mos_with_names": str(out / "mos_with_names.txt"),
              "n_images": int(n_refs) * len(LEVELS) * 5}
    synth.prepare_output_dir(out, "synth_tid.json", "mos_with_names.txt", "SynthTID")
    meta_path = out / "synth_tid.json"
    if meta_path.is_file():
        try:
            meta = read_json(meta_path)
        except (OSError, ValueError):
            meta = {}
        if meta.get("version") == SYNTH_TID_VERSION and meta.get("params") == params and all(
                (out / f).is_file() and sha256_file(out / f) == h for f, h in meta.get("files", {}).items()):
            return {**result, "skipped": True, "seconds": time.perf_counter() - t0}

    write_json(out / ".incomplete", params)
    for name in ("synth_tid.json", "mos_with_names.txt", "mos_std.txt"):
        (out / name).unlink(missing_ok=True)
    ref_dir, dist_dir = out / "reference_images", out / "distorted_images"
    ref_dir.mkdir(exist_ok=True)
    dist_dir.mkdir(exist_ok=True)

    refs, lines, std_lines, rows = [], [], [], []
    for r in range(1, int(n_refs) + 1):
        spec = reference_spec(r, int(seed), short_edge)
        img, info = synth.render_image(tuple(spec["tags"]), spec["latents"], spec["width"], spec["height"],
                                       seed=int(seed), index=r, stream=STREAM_RENDER)
        _save_bmp(ref_dir / f"I{r:02d}.BMP", img)
        refs.append({**spec, "motifs": info})
        for d in sorted(LEVELS):
            for level in range(1, 6):
                rng = np.random.default_rng([int(seed), STREAM_DISTORT, r, d, level])
                name = f"i{r:02d}_{d:02d}_{level}.bmp"
                _save_bmp(dist_dir / name, distort(img, d, level, rng))
                mu = float(quality.mean_score(spec["quality"] - damage(d, level)))
                obs = np.random.default_rng([int(seed), STREAM_OBSERVERS, r, d, level])
                ratings = np.clip(true_mos(mu) + OBSERVER_SD * obs.standard_normal(N_OBSERVERS), 0.0, 9.0)
                mos, se = float(ratings.mean()), float(ratings.std(ddof=1) / np.sqrt(N_OBSERVERS))
                lines.append(f"{mos:.5f} {name}\n")
                std_lines.append(f"{se:.5f}\n")
                rows.append({"name": name, "ref": r, "distortion": d, "level": level,
                             "damage": round(float(damage(d, level)), 4), "mean_score": round(mu, 4),
                             "true_mos": round(float(true_mos(mu)), 4)})
    with atomic_write(out / "mos_with_names.txt") as fh:
        fh.write("".join(lines))
    with atomic_write(out / "mos_std.txt") as fh:
        fh.write("".join(std_lines))
    meta = {"generator": "iaalib.synth.tid", "version": SYNTH_TID_VERSION, "params": params,
            "files": {f: sha256_file(out / f) for f in ("mos_with_names.txt", "mos_std.txt")},
            "distortions": {str(d): {"name": TID_DISTORTIONS[d], "levels": list(LEVELS[d])} for d in LEVELS},
            "references": refs, "images": rows}
    write_json(meta_path, meta)
    (out / ".incomplete").unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    logger.info("SynthTID: %d references, %d distorted images in %s (%.1f s)", n_refs, len(rows), out, seconds)
    return {**result, "skipped": False, "seconds": seconds}


