"""SynthAVA's procedural scenes: one recognisable motif per AVA tag.

A scene is a background layer (``bg``), a premultiplied subject layer (``fg``) with its coverage
(``alpha``) and a greyscale flag; :func:`iaalib.synth.quality.develop` turns it into the final
photograph. Each tag has a :class:`Style`: a background family, a subject family, modifiers and a
subject size (canvas units: the short edge is 1). For two tags, the background is the first tag's
(or the second's if the first has none), the first tag's subject is drawn full size where the
composition puts it and the second tag's subject smaller beside it; modifiers of both apply.
Images without tags get generic content (a smooth colour field with one accent).

Backgrounds: sky gradients with clouds (Sky, Travel), a sea under a horizon (Seascapes), water ripple
rings (Water), layered hills (Landscape), striped fields (Rural), leaf texture (Nature), a city
skyline with lit windows (Cityscape), a one-point-perspective street (Urban), a facade with a window
grid (Architecture), a room (Interior), a seamless studio backdrop (Studio, Advertisement), bokeh
discs (Portraiture), clutter (Snapshot, Candid), comic sunbursts (Humorous), a striped pitch (Sports,
Action), a dusk silhouette (Emotive), stage spotlights, a table top (Still Life, Food and Drink), a
starry sky, textures, bold abstract shapes (Abstract). Subjects: faces (Portraiture, Family, Candid in
profile, Snapshot), children with a balloon, full figures, a cartoon face (Humorous), a ball, a
four-legged animal, a bird, an insect on a leaf (Macro), a flower (Floral), a landmark (Travel), a
barn, a car (Transportation), a product bottle (Advertisement), a food plate, fruit and a vase.
Modifiers: greyscale (Black and White), sepia, vignette, flash, low key (Emotive), motion streaks
(Action), macro (a subject 1.8× larger), diptych.

Composition (latent ``composition``): the subject's centre sits on a rule-of-thirds point, in the
centre, or near an edge so that the frame cuts it; without a subject the horizon is on a third,
centred, or tilted (a crooked horizon), and horizon-less backgrounds place their accent (sun, tower,
doorway, ripple centre...) the same way.

**Choice:** the motifs are ours (the papers only name the tags); each is a few antialiased shapes
and sinusoidal textures, sized in canvas units so they look the same at every short edge, and
distinct enough for a small CNN to tell the kept tags apart (tag mAP ≈ 0.7 in
``benchmarks/learnability.py``). **Choice:** aspect ratios are drawn from {3:2, 4:3, 1:1, 2:3, 3:4, 16:9, 5:2, 4:5} with weights
(.34, .14, .12, .16, .08, .08, .04, .04), wide formats three times as likely for Landscape,
Seascapes, Cityscape, Sky and Panoramic and tall formats 2.5 times as likely for people; the short
edge is exactly the requested one (sizes vary through the long edge).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

TAU = 2.0 * np.pi

# ------------------------------------------------------------------------------------ styles


@dataclass(frozen=True)
class Style:
    background: str | None
    subject: str | None = None
    modifiers: tuple[str, ...] = ()
    size: float = 0.2


STYLES: dict[int, Style] = {
    1: Style("abstract"), 2: Style("city"), 3: Style("seamless", "figure", size=0.24),
    4: Style("park", "group", size=0.2), 5: Style("sunburst", "cartoon", size=0.28),
    6: Style("interior"), 7: Style("sky"), 8: Style("clutter", "face", ("flash",), 0.2),
    9: Style("pitch", "ball", size=0.15), 10: Style("street"), 11: Style(None, None, ("sepia", "vignette")),
    12: Style("dusk", "silhouette", ("lowkey",), 0.22), 13: Style("stage", "figure", size=0.22),
    14: Style("hills"), 15: Style("foliage"), 16: Style("clutter", "profile", size=0.2),
    17: Style("bokeh", "face", size=0.24), 18: Style("table", "objects", size=0.2),
    19: Style("meadow", "animal", size=0.2), 20: Style("facade"), 21: Style(None, None, ("greyscale",)),
    22: Style("foliage", "insect", ("macro",), 0.16), 23: Style("sky", "landmark", size=0.24),
    24: Style("pitch", "figure", ("motion",), 0.22), 25: Style("clutter", "group", size=0.18),
    26: Style("seamless", "figure", size=0.24), 27: Style("fields", "barn", size=0.17),
    28: Style("water"), 29: Style("seamless", "face", size=0.24), 30: Style("street", "group", size=0.16),
    31: Style("seamless", "product", size=0.2), 32: Style("sunburst", "product", size=0.2),
    33: Style("hills"), 34: Style("abstract"), 35: Style("sea"), 36: Style("abstract", None, ("sepia",)),
    37: Style("generic", None, ("diptych",)), 38: Style("foliage", "flower", size=0.22),
    39: Style("road", "car", size=0.2), 40: Style("table", "plate", size=0.24),
    41: Style("texture"), 42: Style("bokeh", "group", size=0.18), 43: Style("stars"),
    44: Style("road", "car", size=0.2), 45: Style("sky", "landmark", ("sepia",), 0.24), 46: Style("hills"),
    47: Style("bokeh", "face", size=0.24), 48: Style("texture"), 49: Style("park", "group", size=0.16),
    50: Style("park", "child", size=0.17), 51: Style("generic"), 52: Style("bokeh"),
    53: Style("hills"), 54: Style("texture"), 55: Style("abstract"),
    56: Style("bokeh", "figure", size=0.22), 57: Style("sky", "bird", size=0.16),
    58: Style("dusk", "silhouette", ("lowkey",), 0.22), 59: Style("stage", "figure", size=0.22),
    60: Style("generic", None, ("vignette",)), 61: Style("street", "figure", size=0.18),
    62: Style("bokeh", "flower", size=0.22), 63: Style("street"), 64: Style("clutter", "face", ("flash",), 0.2),
    65: Style("foliage", "insect", size=0.16), 66: Style("generic", None, ("sepia",)),
}
GENERIC = Style("generic")

WIDE_TAGS = frozenset({2, 7, 14, 33, 35, 53})
TALL_TAGS = frozenset({3, 17, 26, 29, 47, 56})
ASPECTS = ((3, 2), (4, 3), (1, 1), (2, 3), (3, 4), (16, 9), (5, 2), (4, 5))
ASPECT_WEIGHTS = (0.34, 0.14, 0.12, 0.16, 0.08, 0.08, 0.04, 0.04)


def styles_for(tags: tuple[int, ...]) -> list[Style]:
    return [STYLES.get(t, GENERIC) for t in tags] or [GENERIC]


def has_subject(tags: tuple[int, ...]) -> bool:
    """Whether an image with these tags shows a subject (and so has a depth of field)."""
    return any(s.subject for s in styles_for(tags))


def is_greyscale(tags: tuple[int, ...]) -> bool:
    return any("greyscale" in s.modifiers for s in styles_for(tags))


def choose_size(rng: np.random.Generator, tags: tuple[int, ...], short_edge: int) -> tuple[int, int]:
    """(width, height) of an image: a tag-dependent aspect ratio with the given short edge."""
    wts = np.array(ASPECT_WEIGHTS)
    if any(t in WIDE_TAGS for t in tags):
        wts[[5, 6]] *= 3.0
    if any(t in TALL_TAGS for t in tags):
        wts[[3, 4, 7]] *= 2.5
    a, b = ASPECTS[int(rng.choice(len(ASPECTS), p=wts / wts.sum()))]
    long_edge = int(round(short_edge * max(a, b) / min(a, b)))
    return (long_edge, short_edge) if a >= b else (short_edge, long_edge)


# ------------------------------------------------------------------------------ primitives


class Canvas:
    """Pixel grid in canvas units (the short edge is 1), with background and subject layers."""

    def __init__(self, height: int, width: int):
        self.h, self.w = height, width
        self.s = float(min(height, width))
        self.W, self.H = width / self.s, height / self.s
        self.x = ((np.arange(width) + 0.5) / self.s)[None, :]
        self.y = ((np.arange(height) + 0.5) / self.s)[:, None]
        self.bg = np.zeros((height, width, 3))
        self.fg = np.zeros((height, width, 3))
        self.alpha = np.zeros((height, width))

    def window(self, x0, y0, x1, y1):
        """Pixel slices covering a canvas-unit box (with a margin), or None when off-canvas."""
        j0, j1 = max(int(np.floor(x0 * self.s)) - 2, 0), min(int(np.ceil(x1 * self.s)) + 2, self.w)
        i0, i1 = max(int(np.floor(y0 * self.s)) - 2, 0), min(int(np.ceil(y1 * self.s)) + 2, self.h)
        return None if j0 >= j1 or i0 >= i1 else (slice(i0, i1), slice(j0, j1))

    def full(self):
        return slice(None), slice(None)

    def paint(self, mask, colour, layer: str = "bg") -> None:
        """Paint ``colour`` (rgb or a full-canvas ``[H, W, 3]`` array) through ``mask`` on a layer."""
        if mask is None:
            return
        (sy, sx), a = mask
        col = np.asarray(colour, dtype=np.float64)
        if col.ndim == 3:
            col = col[sy, sx]
        if layer == "bg":
            region = self.bg[sy, sx]
            region += a[..., None] * (col - region)
        else:  # premultiplied "over"
            fg, al = self.fg[sy, sx], self.alpha[sy, sx]
            fg *= 1.0 - a[..., None]
            fg += a[..., None] * col
            al *= 1.0 - a
            al += a

    def put(self, mask, colour) -> None:
        self.paint(mask, colour, layer="fg")


def _aa(dist_px):
    """Coverage from a signed distance in pixels (positive inside), one-pixel antialiasing."""
    return np.clip(dist_px + 0.5, 0.0, 1.0)


def disc(c: Canvas, cx, cy, rx, ry=None, angle=0.0):
    ry = rx if ry is None else ry
    ext = max(rx, ry)
    win = c.window(cx - ext, cy - ext, cx + ext, cy + ext)
    if win is None or rx <= 0 or ry <= 0:
        return None
    dx, dy = c.x[:, win[1]] - cx, c.y[win[0], :] - cy
    if angle:
        ca, sa = np.cos(angle), np.sin(angle)
        dx, dy = dx * ca + dy * sa, dy * ca - dx * sa
    d = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
    return win, _aa((1.0 - d) * min(rx, ry) * c.s)


def box(c: Canvas, x0, y0, x1, y1):
    win = c.window(x0, y0, x1, y1)
    if win is None or x1 <= x0 or y1 <= y0:
        return None
    x, y = c.x[:, win[1]], c.y[win[0], :]
    return win, _aa(np.minimum(np.minimum(x - x0, x1 - x), np.minimum(y - y0, y1 - y)) * c.s)


def polygon(c: Canvas, pts):
    """Convex polygon (vertices in either orientation)."""
    pts = np.asarray(pts, dtype=np.float64)
    win = c.window(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
    if win is None:
        return None
    x, y = c.x[:, win[1]], c.y[win[0], :]
    area = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
    sign = 1.0 if area > 0 else -1.0
    dist = None
    for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0)):
        nx, ny = -(y1 - y0), x1 - x0
        norm = np.hypot(nx, ny)
        if norm == 0:
            continue
        d = sign * ((x - x0) * nx + (y - y0) * ny) / norm
        dist = d if dist is None else np.minimum(dist, d)
    return win, _aa(dist * c.s)


def below(c: Canvas, y_line):
    """Everything below a line ``y_line`` (scalar or ``[1, W]``)."""
    return c.full(), _aa((c.y - y_line) * c.s) * np.ones((1, c.w))


def full_mask(c: Canvas, a):
    return c.full(), np.broadcast_to(a, (c.h, c.w))


def vgrad(c: Canvas, top, bottom, y0=0.0, y1=None):
    """Vertical colour gradient ``[H, W, 3]`` from ``top`` at ``y0`` to ``bottom`` at ``y1``."""
    y1 = c.H if y1 is None else y1
    t = np.clip((c.y - y0) / max(y1 - y0, 1e-6), 0.0, 1.0)[..., None]
    return np.broadcast_to(np.asarray(top) + t * (np.asarray(bottom) - np.asarray(top)), (c.h, c.w, 3))


def waves(c: Canvas, rng, n=4, freq=(1.0, 3.0), stretch=(1.0, 1.0)):
    """Sum of ``n`` random plane sinusoids, unit SD (a cheap smooth texture)."""
    t = np.zeros((c.h, c.w))
    for _ in range(n):
        f, th, ph = rng.uniform(*freq), rng.uniform(0, TAU), rng.uniform(0, TAU)
        ax = TAU * f * np.cos(th) * stretch[0] * c.x          # [1, W]
        by = TAU * f * np.sin(th) * stretch[1] * c.y + ph     # [H, 1]
        t += np.sin(ax) * np.cos(by)                          # sin(ax + by), separably: only
        t += np.cos(ax) * np.sin(by)                          # 1-D trigonometry
    return t / np.sqrt(n / 2.0)


def jitter(rng, rgb, amount=0.06):
    return np.clip(np.asarray(rgb, dtype=np.float64) + rng.uniform(-amount, amount, 3), 0.0, 1.0)


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def mix(a, b, t):
    """Blend two colours by a ``[H, W]`` weight (returns ``[H, W, 3]``)."""
    t = np.clip(t, 0.0, 1.0)[..., None]
    return np.asarray(a) + t * (np.asarray(b) - np.asarray(a))


SKIN = ((0.96, 0.80, 0.69), (0.87, 0.67, 0.53), (0.72, 0.52, 0.38), (0.49, 0.33, 0.24), (0.98, 0.87, 0.77))
HAIR = ((0.12, 0.08, 0.05), (0.35, 0.22, 0.12), (0.75, 0.6, 0.35), (0.05, 0.05, 0.05), (0.55, 0.25, 0.1))
VIVID = ((0.9, 0.15, 0.2), (0.1, 0.45, 0.85), (0.95, 0.75, 0.1), (0.2, 0.7, 0.3), (0.6, 0.2, 0.7),
         (0.95, 0.45, 0.1), (0.1, 0.7, 0.75), (0.95, 0.4, 0.65))

# ---------------------------------------------------------------------------------- layout


@dataclass
class Layout:
    composition: str
    cx: float
    cy: float
    r: float
    horizon: float
    tilt: float

    def horizon_y(self, c: Canvas):
        return self.horizon + self.tilt * (c.x - c.W / 2.0)


def make_layout(c: Canvas, rng, composition: str, size: float, subject: bool) -> Layout:
    """Where the subject (or, without one, the horizon and accent) goes for a composition."""
    r = size * rng.uniform(0.85, 1.15)
    tilt = 0.0
    if composition == "third":
        cx, cy = c.W * pick(rng, (1 / 3, 2 / 3)), c.H * pick(rng, (1 / 3, 2 / 3))
        horizon = c.H * pick(rng, (1 / 3, 2 / 3))
    elif composition == "centre":
        cx, cy = c.W / 2 + rng.normal(0, 0.015), c.H / 2 + rng.normal(0, 0.015)
        horizon = c.H / 2
    else:  # cut by the frame
        inset = r * rng.uniform(-0.1, 0.35)
        side = int(rng.integers(4))
        cx, cy = c.W * rng.uniform(0.3, 0.7), c.H * rng.uniform(0.3, 0.7)
        if side == 0:
            cx = inset
        elif side == 1:
            cx = c.W - inset
        elif side == 2:
            cy = inset
        else:
            cy = c.H - inset
        horizon = c.H * rng.uniform(0.42, 0.58)
        tilt = pick(rng, (-1.0, 1.0)) * rng.uniform(0.07, 0.15)
    if subject:  # the horizon behind a subject is neutral
        horizon, tilt = c.H * rng.uniform(0.35, 0.65), 0.0
    return Layout(composition, cx, cy, r, horizon, tilt)

# ------------------------------------------------------------------------------ backgrounds


def _sky(c, rng, lay, *, dusk=False, clouds=True):
    if dusk:
        top, bottom = jitter(rng, (0.12, 0.1, 0.3)), jitter(rng, (0.95, 0.5, 0.25))
    else:
        top, bottom = jitter(rng, (0.2, 0.4, 0.78)), jitter(rng, (0.75, 0.86, 0.96), 0.04)
    c.bg[...] = vgrad(c, top, bottom, 0.0, lay.horizon + 0.05)
    if clouds:
        t = waves(c, rng, 4, (1.2, 3.5), stretch=(0.7, 2.5))
        c.paint(full_mask(c, np.clip((t - rng.uniform(0.2, 1.2)) * 0.8, 0, 0.85)), (0.97, 0.97, 0.98))


def _accent_sun(c, rng, lay, colour=(1.0, 0.95, 0.75)):
    cy = min(lay.cy, lay.horizon - 0.02)
    halo = disc(c, lay.cx, cy, 0.2)
    if halo is not None:
        (sy, sx), a = halo
        c.paint(((sy, sx), a * 0.35), colour)
    c.paint(disc(c, lay.cx, cy, 0.075), colour)


def _ground(c, rng, lay, colour):
    tex = 1.0 + 0.08 * waves(c, rng, 3, (4, 10))
    c.paint(below(c, lay.horizon_y(c)), np.asarray(colour)[None, None, :] * tex[..., None])


def bg_sky(c, rng, lay, accent):
    lay.horizon = max(lay.horizon, 0.55 * c.H) if lay.composition != "third" else lay.horizon
    _sky(c, rng, lay)
    if accent:
        _accent_sun(c, rng, lay)
    _ground(c, rng, lay, jitter(rng, (0.2, 0.3, 0.15)))


def bg_dusk(c, rng, lay, accent):
    _sky(c, rng, lay, dusk=True, clouds=False)
    if accent:
        _accent_sun(c, rng, lay, (1.0, 0.6, 0.3))
    _ground(c, rng, lay, (0.05, 0.04, 0.05))


def bg_sea(c, rng, lay, accent):
    _sky(c, rng, lay)
    hy = lay.horizon_y(c)
    depth = np.clip(c.y - hy, 0.0, None)
    ripples = 0.06 * np.sin(TAU * (18.0 * depth + 0.6 * np.sin(TAU * (2.5 * c.x + rng.uniform(0, 1)))))
    water = mix(jitter(rng, (0.45, 0.62, 0.75)), jitter(rng, (0.05, 0.22, 0.42)), depth / 0.6)
    c.paint(below(c, hy), water + ripples[..., None] * np.sqrt(depth)[..., None] * 2.0)
    if accent:  # a rocky islet on the horizon
        c.paint(disc(c, lay.cx, lay.horizon + lay.tilt * (lay.cx - c.W / 2), 0.18, 0.06), (0.18, 0.16, 0.14))


def bg_water(c, rng, lay, accent):
    base = mix(jitter(rng, (0.1, 0.45, 0.6)), jitter(rng, (0.02, 0.2, 0.35)), c.y / c.H * np.ones((1, c.w)))
    d = np.sqrt((c.x - lay.cx) ** 2 + (c.y - lay.cy) ** 2)
    rings = np.sin(TAU * 9.0 * d) * np.exp(-d * 2.2) * 0.22
    bands = 0.05 * waves(c, rng, 3, (6, 12), stretch=(0.3, 1.0))
    c.bg[...] = np.clip(base + (rings + bands)[..., None], 0, 1)


def bg_hills(c, rng, lay, accent):
    _sky(c, rng, lay)
    far, near = jitter(rng, (0.45, 0.55, 0.68)), jitter(rng, (0.25, 0.45, 0.15))
    hy = lay.horizon_y(c)
    for k, t in enumerate((0.0, 0.5, 1.0)):
        base = hy + k * 0.08
        ridge = base - rng.uniform(0.04, 0.14) * (0.5 + 0.5 * np.sin(TAU * rng.uniform(0.4, 1.2) * c.x
                                                                      + rng.uniform(0, TAU)))
        colour = far + t * (near - far)
        tex = 1.0 + 0.07 * waves(c, rng, 2, (5, 12))
        c.paint(below(c, ridge), colour[None, None, :] * tex[..., None])
    if accent:  # a lone tree
        ty = lay.horizon + lay.tilt * (lay.cx - c.W / 2) + 0.12
        c.paint(box(c, lay.cx - 0.012, ty - 0.12, lay.cx + 0.012, ty), (0.2, 0.13, 0.08))
        c.paint(disc(c, lay.cx, ty - 0.15, 0.07, 0.08), (0.1, 0.25, 0.08))


def bg_fields(c, rng, lay, accent):
    _sky(c, rng, lay)
    hy = lay.horizon_y(c)
    depth = np.clip(c.y - hy, 0.01, None)
    stripes = np.sin(TAU * 1.2 * (c.x - c.W / 2) / depth) > 0
    colour = np.where(stripes[..., None], jitter(rng, (0.55, 0.62, 0.2)), jitter(rng, (0.3, 0.5, 0.15)))
    c.paint(below(c, hy), colour)


def bg_foliage(c, rng, lay, accent):
    t = waves(c, rng, 5, (3, 9))
    c.bg[...] = mix(jitter(rng, (0.05, 0.18, 0.06)), jitter(rng, (0.4, 0.62, 0.2)), 0.5 + 0.25 * t)
    for _ in range(10):
        c.paint(disc(c, rng.uniform(0, c.W), rng.uniform(0, c.H), rng.uniform(0.05, 0.15),
                     rng.uniform(0.03, 0.08), rng.uniform(0, np.pi)),
                jitter(rng, (0.15, 0.4, 0.12), 0.1))
    if accent:  # sunlight through the leaves
        m = disc(c, lay.cx, lay.cy, 0.18)
        if m is not None:
            c.paint((m[0], m[1] * 0.6), (0.95, 0.95, 0.7))


def bg_meadow(c, rng, lay, accent, trees=False):
    _sky(c, rng, lay)
    hy = lay.horizon_y(c)
    if trees:
        for _ in range(int(rng.integers(2, 6))):
            x = rng.uniform(0, c.W)
            c.paint(disc(c, x, lay.horizon - 0.06, rng.uniform(0.06, 0.12), rng.uniform(0.08, 0.14)),
                    jitter(rng, (0.12, 0.3, 0.1)))
    grass = 0.5 + 0.25 * np.sin(TAU * (60.0 * c.x + 1.5 * waves(c, rng, 2, (2, 5))))
    c.paint(below(c, hy), mix(jitter(rng, (0.2, 0.45, 0.1)), jitter(rng, (0.45, 0.65, 0.2)), grass))


def bg_park(c, rng, lay, accent):
    bg_meadow(c, rng, lay, accent, trees=True)


def bg_city(c, rng, lay, accent):
    _sky(c, rng, lay, dusk=True, clouds=False)
    hy = lay.horizon
    heights = np.zeros((1, c.w))
    x = 0.0
    while x < c.W:
        bw = rng.uniform(0.06, 0.18)
        j0, j1 = int(x * c.s), int(min(x + bw, c.W) * c.s) + 1
        heights[0, j0:j1] = rng.uniform(0.08, 0.45)
        x += bw
    if accent:
        j0, j1 = int((lay.cx - 0.04) * c.s), int((lay.cx + 0.04) * c.s) + 1
        heights[0, max(j0, 0):max(j1, 0)] = min(0.85 * hy, 0.7)
    top = hy - heights
    mask = _aa((c.y - top) * c.s) * np.ones((1, c.w))
    windows = ((np.sin(TAU * 40.0 * c.x) > 0.3) & (np.sin(TAU * 45.0 * c.y) > 0.2)
               & (waves(c, rng, 3, (4, 12)) > -0.2))
    colour = np.where(windows[..., None], jitter(rng, (0.95, 0.8, 0.4)), jitter(rng, (0.08, 0.08, 0.12), 0.03))
    c.paint((c.full(), mask), colour)
    c.paint(below(c, hy), (0.05, 0.05, 0.07))


def bg_street(c, rng, lay, accent):
    vx, vy = lay.cx, lay.horizon
    dx, dy = c.x - vx, c.y - vy
    adx = np.abs(dx) + 1e-3
    c.bg[...] = vgrad(c, jitter(rng, (0.5, 0.65, 0.85)), jitter(rng, (0.8, 0.85, 0.9)))
    wall_col = jitter(rng, pick(rng, ((0.55, 0.35, 0.28), (0.5, 0.5, 0.52), (0.7, 0.62, 0.5))))
    wall = _aa((adx - np.abs(dy) * 0.9 - 0.02) * c.s)
    win = (np.sin(TAU * 0.5 / adx) > 0.2) & (np.sin(TAU * 3.0 * dy / adx) > 0.0)
    shade = np.where(win[..., None], (0.15, 0.2, 0.3), wall_col * (0.75 + 0.25 * np.sign(dx))[..., None])
    c.paint((c.full(), wall), shade)
    road = _aa((dy - adx * 0.9) * c.s) * (dy > 0)
    c.paint((c.full(), road), jitter(rng, (0.3, 0.3, 0.32), 0.03))
    dash = (np.abs(dx) < 0.012 * dy / 0.5) & (np.sin(TAU * 0.6 / np.maximum(dy, 1e-3)) > 0) & (dy > 0.01)
    c.paint(full_mask(c, dash.astype(np.float64)), (0.95, 0.95, 0.9))


def bg_road(c, rng, lay, accent):
    _sky(c, rng, lay)
    ground = jitter(rng, (0.35, 0.5, 0.2))
    c.paint(below(c, lay.horizon), ground)
    top, bottom = lay.cy + lay.r * 0.45, lay.cy + lay.r * 1.1
    c.paint(box(c, -1, top, c.W + 1, bottom), jitter(rng, (0.28, 0.28, 0.3), 0.03))
    mid = 0.5 * (top + bottom)
    dash = (np.sin(TAU * 4.0 * c.x) > 0.3).astype(np.float64) * np.ones((c.h, 1))
    m = box(c, -1, mid - 0.008, c.W + 1, mid + 0.008)
    if m is not None:
        c.paint((m[0], m[1] * dash[m[0]]), (0.95, 0.9, 0.6))


def bg_facade(c, rng, lay, accent):
    c.bg[...] = vgrad(c, jitter(rng, (0.3, 0.5, 0.85)), jitter(rng, (0.75, 0.85, 0.95)))
    bw = min(0.8 * c.W, max(0.6, 0.55 * c.W))
    x0, x1, top = lay.cx - bw / 2, lay.cx + bw / 2, 0.12 * c.H
    wall = jitter(rng, pick(rng, ((0.85, 0.8, 0.7), (0.65, 0.35, 0.28), (0.6, 0.6, 0.62))))
    c.paint(box(c, x0, top, x1, c.H + 1), wall)
    nx, ny = rng.uniform(7, 12), rng.uniform(6, 10)
    fx, fy = np.mod((c.x - x0) * nx, 1.0), np.mod((c.y - top) * ny, 1.0)
    glass = ((fx > 0.25) & (fx < 0.75) & (fy > 0.3) & (fy < 0.8) & (c.x > x0 + 0.03) & (c.x < x1 - 0.03)
             & (c.y > top + 0.05) & (c.y < c.H - 0.12)).astype(np.float64)
    c.paint(full_mask(c, glass), vgrad(c, (0.55, 0.7, 0.9), (0.1, 0.15, 0.25)))
    c.paint(box(c, x0 - 0.02, top - 0.02, x1 + 0.02, top + 0.02), wall * 0.6)
    c.paint(box(c, lay.cx - 0.05, c.H - 0.16, lay.cx + 0.05, c.H + 1), (0.2, 0.12, 0.08))


def bg_interior(c, rng, lay, accent):
    ceil, wall = jitter(rng, (0.9, 0.88, 0.82)), jitter(rng, pick(rng, ((0.8, 0.7, 0.55), (0.6, 0.7, 0.75))))
    c.bg[...] = ceil
    bx0, bx1 = lay.cx - 0.28 * c.W, lay.cx + 0.28 * c.W
    by0, by1 = lay.cy - 0.25 * c.H, lay.cy + 0.22 * c.H
    c.paint(polygon(c, [(0, 0), (bx0, by0), (bx0, by1), (0, c.H)]), wall * 0.8)
    c.paint(polygon(c, [(c.W, 0), (c.W, c.H), (bx1, by1), (bx1, by0)]), wall * 0.7)
    c.paint(polygon(c, [(0, c.H), (bx0, by1), (bx1, by1), (c.W, c.H)]), jitter(rng, (0.5, 0.32, 0.18)))
    c.paint(box(c, bx0, by0, bx1, by1), wall)
    c.paint(box(c, lay.cx - 0.1, by0 + 0.06, lay.cx + 0.1, by0 + 0.25), (0.95, 0.97, 1.0))


def bg_seamless(c, rng, lay, accent):
    base = jitter(rng, pick(rng, ((0.85, 0.85, 0.85), (0.25, 0.25, 0.28), (0.9, 0.85, 0.78), (0.6, 0.75, 0.85))))
    d2 = (c.x - lay.cx) ** 2 + (c.y - lay.cy + 0.1) ** 2
    c.bg[...] = base[None, None, :] * (0.65 + 0.45 * np.exp(-d2 / 0.35))[..., None]


def bg_bokeh(c, rng, lay, accent):
    c.bg[...] = vgrad(c, jitter(rng, (0.35, 0.5, 0.3), 0.15), jitter(rng, (0.25, 0.3, 0.2), 0.15))
    for _ in range(14):
        m = disc(c, rng.uniform(0, c.W), rng.uniform(0, c.H), rng.uniform(0.04, 0.12))
        if m is not None:
            c.paint((m[0], m[1] * 0.45), jitter(rng, (0.9, 0.85, 0.6), 0.15))


def bg_clutter(c, rng, lay, accent):
    c.bg[...] = jitter(rng, (0.6, 0.55, 0.5), 0.15)
    for _ in range(int(rng.integers(10, 18))):
        x, y = rng.uniform(0, c.W), rng.uniform(0, c.H)
        col = jitter(rng, pick(rng, VIVID), 0.2) * rng.uniform(0.5, 1.0)
        if rng.random() < 0.5:
            c.paint(box(c, x, y, x + rng.uniform(0.05, 0.3), y + rng.uniform(0.05, 0.3)), col)
        else:
            c.paint(disc(c, x, y, rng.uniform(0.03, 0.12)), col)


def bg_sunburst(c, rng, lay, accent):
    a, b = jitter(rng, pick(rng, VIVID)), jitter(rng, pick(rng, VIVID))
    theta = np.arctan2(c.y - lay.cy, c.x - lay.cx)
    c.bg[...] = mix(a, b, (np.sin(int(rng.integers(8, 16)) * theta) > 0).astype(np.float64))


def bg_pitch(c, rng, lay, accent):
    stripes = (np.sin(TAU * 3.0 * c.x + 0.5 * c.y) > 0).astype(np.float64) * np.ones((c.h, 1))
    c.bg[...] = mix(jitter(rng, (0.2, 0.55, 0.2)), jitter(rng, (0.25, 0.65, 0.25)), stripes)
    line_y = lay.horizon + 0.3 * (c.H - lay.horizon)
    c.paint(box(c, -1, line_y - 0.008, c.W + 1, line_y + 0.008), (0.95, 0.95, 0.95))
    crowd_h = 0.18 * c.H
    sy = slice(0, max(int(crowd_h * c.s), 1))
    dots = rng.uniform(0.1, 0.9, (sy.stop, c.w, 3))
    c.bg[sy] = 0.5 * dots + 0.5 * c.bg[sy] * 0.4


def bg_stage(c, rng, lay, accent):
    c.bg[...] = 0.03
    for _ in range(int(rng.integers(2, 4))):
        x = rng.uniform(0.1, c.W - 0.1)
        cone = polygon(c, [(x - 0.03, -0.01), (x + 0.03, -0.01), (x + 0.3, c.H), (x - 0.3, c.H)])
        if cone is not None:
            c.paint((cone[0], cone[1] * 0.45), jitter(rng, pick(rng, VIVID), 0.1))
    c.paint(box(c, -1, 0.82 * c.H, c.W + 1, c.H + 1), (0.2, 0.12, 0.08))


def bg_table(c, rng, lay, accent):
    c.bg[...] = vgrad(c, jitter(rng, (0.25, 0.2, 0.18), 0.12), jitter(rng, (0.45, 0.38, 0.3), 0.12))
    top = float(np.clip(lay.cy + lay.r * 0.6, 0.3 * c.H, 0.9 * c.H))
    grain = 0.85 + 0.15 * np.sin(TAU * (25.0 * c.y + 0.8 * waves(c, rng, 2, (2, 4))))
    wood = jitter(rng, (0.55, 0.35, 0.2))[None, None, :] * grain[..., None]
    c.paint(below(c, top), wood)


def bg_stars(c, rng, lay, accent):
    c.bg[...] = vgrad(c, (0.0, 0.0, 0.03), jitter(rng, (0.05, 0.08, 0.2), 0.03))
    band = np.exp(-((c.y - c.H / 2 - 0.4 * (c.x - c.W / 2)) ** 2) / 0.02) * (0.5 + 0.3 * waves(c, rng, 3, (3, 8)))
    c.paint(full_mask(c, np.clip(band, 0, 1) * 0.35), (0.7, 0.7, 0.85))
    n = int(0.004 * c.h * c.w) + 10
    ys, xs = rng.integers(0, c.h, n), rng.integers(0, c.w, n)
    c.bg[ys, xs] = rng.uniform(0.6, 1.0, (n, 1))
    if accent:
        c.paint(disc(c, lay.cx, lay.cy, 0.07), (0.95, 0.95, 0.88))
    _ground(c, rng, lay, (0.02, 0.02, 0.03))


def bg_texture(c, rng, lay, accent):
    base = jitter(rng, pick(rng, ((0.6, 0.45, 0.3), (0.55, 0.55, 0.55), (0.7, 0.3, 0.25))))
    t = waves(c, rng, 6, (4, 14))
    if rng.random() < 0.5:  # bricks
        row = np.floor(c.y * 12.0)
        mortar = (np.mod(c.y * 12.0, 1.0) < 0.12) | (np.mod(c.x * 6.0 + 0.5 * row, 1.0) < 0.06)
        t = np.where(mortar, -2.5, t * 0.3)
    c.bg[...] = np.clip(base[None, None, :] * (1.0 + 0.18 * t)[..., None], 0, 1)


def bg_abstract(c, rng, lay, accent):
    c.bg[...] = jitter(rng, pick(rng, VIVID), 0.2) * rng.uniform(0.3, 1.0)
    for _ in range(int(rng.integers(3, 7))):
        col, x, y = jitter(rng, pick(rng, VIVID), 0.1), rng.uniform(0, c.W), rng.uniform(0, c.H)
        kind = int(rng.integers(3))
        if kind == 0:
            c.paint(disc(c, x, y, rng.uniform(0.05, 0.25)), col)
        elif kind == 1:
            c.paint(box(c, x, y, x + rng.uniform(0.05, 0.5), y + rng.uniform(0.02, 0.4)), col)
        else:
            c.paint(polygon(c, [(x, y), (x + rng.uniform(-0.4, 0.4), y + rng.uniform(0.1, 0.4)),
                                (x + rng.uniform(-0.4, 0.4), y + rng.uniform(-0.4, -0.1))]), col)
    c.paint(disc(c, lay.cx, lay.cy, 0.22), jitter(rng, pick(rng, VIVID), 0.1))


def bg_generic(c, rng, lay, accent):
    base = np.stack([0.5 + 0.2 * waves(c, rng, 2, (0.3, 1.2)) for _ in range(3)], axis=-1)
    c.bg[...] = np.clip(base, 0, 1)
    if rng.random() < 0.5:
        _ground(c, rng, lay, jitter(rng, (0.4, 0.4, 0.35), 0.2))
    for _ in range(int(rng.integers(1, 3))):
        c.paint(disc(c, rng.uniform(0, c.W), rng.uniform(0, c.H), rng.uniform(0.05, 0.2)),
                jitter(rng, (0.5, 0.5, 0.5), 0.35))
    if accent:
        c.paint(disc(c, lay.cx, lay.cy, 0.12), jitter(rng, pick(rng, VIVID), 0.15))


BACKGROUNDS = {
    "sky": bg_sky, "dusk": bg_dusk, "sea": bg_sea, "water": bg_water, "hills": bg_hills,
    "fields": bg_fields, "foliage": bg_foliage, "meadow": bg_meadow, "park": bg_park, "city": bg_city,
    "street": bg_street, "road": bg_road, "facade": bg_facade, "interior": bg_interior,
    "seamless": bg_seamless, "bokeh": bg_bokeh, "clutter": bg_clutter, "sunburst": bg_sunburst,
    "pitch": bg_pitch, "stage": bg_stage, "table": bg_table, "stars": bg_stars, "texture": bg_texture,
    "abstract": bg_abstract, "generic": bg_generic,
}

# --------------------------------------------------------------------------------- subjects


def subj_face(c, rng, cx, cy, r, *, profile=False, shirt=None):
    skin, hair = jitter(rng, pick(rng, SKIN), 0.03), jitter(rng, pick(rng, HAIR), 0.04)
    shirt = jitter(rng, pick(rng, VIVID), 0.15) if shirt is None else shirt
    side = pick(rng, (-1.0, 1.0))
    c.put(disc(c, cx, cy + 1.55 * r, 1.45 * r, 0.75 * r), shirt)
    c.put(box(c, cx - 0.22 * r, cy + 0.6 * r, cx + 0.22 * r, cy + 1.1 * r), skin * 0.85)
    c.put(disc(c, cx, cy - 0.12 * r, 0.84 * r, 0.95 * r), hair)
    c.put(disc(c, cx, cy, 0.7 * r, 0.92 * r), skin)
    c.put(disc(c, cx, cy - 0.62 * r, 0.68 * r, 0.32 * r), hair)
    if r * c.s < 5:
        return
    eyes = (side * 0.3,) if profile else (-0.28, 0.28)
    for ex in eyes:
        c.put(disc(c, cx + (ex + (0.15 * side if profile else 0)) * r, cy - 0.08 * r, 0.12 * r, 0.075 * r),
              (0.95, 0.95, 0.95))
        c.put(disc(c, cx + (ex + (0.15 * side if profile else 0)) * r, cy - 0.08 * r, 0.055 * r), (0.1, 0.07, 0.05))
    if profile:
        c.put(disc(c, cx + side * 0.72 * r, cy + 0.08 * r, 0.14 * r, 0.1 * r), skin * 0.95)
    c.put(disc(c, cx + (0.2 * side if profile else 0) * r, cy + 0.45 * r, 0.2 * r, 0.06 * r), (0.6, 0.2, 0.2))


def subj_profile(c, rng, cx, cy, r):
    subj_face(c, rng, cx, cy, r, profile=True)


def subj_group(c, rng, cx, cy, r):
    n = int(rng.integers(2, 5))
    sizes = r * rng.uniform(0.6, 1.0, n)
    xs = np.cumsum(1.45 * sizes) - 0.72 * sizes
    xs = xs - xs.mean() + cx
    for x, s in zip(xs, sizes):
        subj_face(c, rng, x, cy + rng.uniform(-0.1, 0.2) * r, s)


def subj_child(c, rng, cx, cy, r):
    shirt = jitter(rng, pick(rng, VIVID))
    c.put(box(c, cx + 0.9 * r, cy - 2.0 * r, cx + 0.92 * r, cy + 0.5 * r), (0.3, 0.3, 0.3))
    c.put(disc(c, cx + 0.91 * r, cy - 2.3 * r, 0.35 * r, 0.42 * r), jitter(rng, pick(rng, VIVID)))
    subj_face(c, rng, cx, cy, r, shirt=shirt)


def subj_figure(c, rng, cx, cy, r, *, colour=None, skin=None):
    colour = jitter(rng, pick(rng, VIVID), 0.15) if colour is None else colour
    skin = jitter(rng, pick(rng, SKIN), 0.03) if skin is None else skin
    legs = colour * 0.5
    c.put(box(c, cx - 0.2 * r, cy + 0.1 * r, cx - 0.05 * r, cy + 1.3 * r), legs)
    c.put(box(c, cx + 0.05 * r, cy + 0.1 * r, cx + 0.2 * r, cy + 1.3 * r), legs)
    c.put(disc(c, cx - 0.38 * r, cy - 0.3 * r, 0.09 * r, 0.45 * r, 0.35), colour * 0.85)
    c.put(disc(c, cx + 0.38 * r, cy - 0.3 * r, 0.09 * r, 0.45 * r, -0.35), colour * 0.85)
    c.put(disc(c, cx, cy - 0.35 * r, 0.3 * r, 0.55 * r), colour)
    c.put(disc(c, cx, cy - 1.08 * r, 0.22 * r, 0.26 * r), skin)


def subj_silhouette(c, rng, cx, cy, r):
    subj_figure(c, rng, cx, cy, r, colour=np.array([0.03, 0.03, 0.04]), skin=np.array([0.04, 0.03, 0.03]))


def subj_cartoon(c, rng, cx, cy, r):
    c.put(disc(c, cx, cy, r), jitter(rng, (0.98, 0.85, 0.1), 0.04))
    look = rng.uniform(-0.06, 0.06, 2) * r
    for ex in (-0.35, 0.35):
        c.put(disc(c, cx + ex * r, cy - 0.25 * r, 0.24 * r, 0.3 * r), (1.0, 1.0, 1.0))
        c.put(disc(c, cx + ex * r + look[0], cy - 0.22 * r + look[1], 0.1 * r), (0.05, 0.05, 0.05))
    m = disc(c, cx, cy + 0.3 * r, 0.5 * r, 0.38 * r)
    if m is not None:
        (sy, sx), a = m
        c.put(((sy, sx), a * _aa((c.y[sy, :] - (cy + 0.3 * r)) * c.s)), (0.45, 0.05, 0.08))


def subj_ball(c, rng, cx, cy, r):
    c.put(disc(c, cx, cy + 0.95 * r, 0.9 * r, 0.15 * r), (0.05, 0.15, 0.05))
    c.put(disc(c, cx, cy, 0.8 * r), (0.96, 0.96, 0.94))
    for k in range(5):
        ang = TAU * k / 5 + rng.uniform(0, 1)
        c.put(disc(c, cx + 0.45 * r * np.cos(ang), cy + 0.45 * r * np.sin(ang), 0.17 * r), (0.08, 0.08, 0.08))
    c.put(disc(c, cx, cy, 0.17 * r), (0.08, 0.08, 0.08))


def subj_animal(c, rng, cx, cy, r):
    fur = jitter(rng, pick(rng, ((0.55, 0.35, 0.18), (0.45, 0.45, 0.45), (0.15, 0.12, 0.1), (0.85, 0.55, 0.25))))
    side = pick(rng, (-1.0, 1.0))
    for lx in (-0.75, -0.45, 0.45, 0.75):
        c.put(box(c, cx + lx * r - 0.08 * r, cy + 0.2 * r, cx + lx * r + 0.08 * r, cy + 1.05 * r), fur * 0.8)
    c.put(disc(c, cx - side * 1.15 * r, cy - 0.25 * r, 0.35 * r, 0.07 * r, side * 0.6), fur * 0.8)
    c.put(disc(c, cx, cy, 1.1 * r, 0.58 * r), fur)
    hx, hy = cx + side * 1.05 * r, cy - 0.5 * r
    c.put(polygon(c, [(hx - 0.35 * r, hy - 0.1 * r), (hx - 0.2 * r, hy - 0.65 * r), (hx - 0.02 * r, hy - 0.2 * r)]),
          fur * 0.7)
    c.put(polygon(c, [(hx + 0.35 * r, hy - 0.1 * r), (hx + 0.2 * r, hy - 0.65 * r), (hx + 0.02 * r, hy - 0.2 * r)]),
          fur * 0.7)
    c.put(disc(c, hx, hy, 0.42 * r, 0.38 * r), fur)
    c.put(disc(c, hx + side * 0.3 * r, hy + 0.1 * r, 0.09 * r), (0.05, 0.05, 0.05))
    c.put(disc(c, hx + side * 0.08 * r, hy - 0.08 * r, 0.06 * r), (0.05, 0.05, 0.05))


def subj_bird(c, rng, cx, cy, r):
    body = jitter(rng, pick(rng, ((0.2, 0.3, 0.6), (0.6, 0.2, 0.15), (0.35, 0.3, 0.25), (0.9, 0.75, 0.2))))
    c.put(polygon(c, [(cx + 1.0 * r, cy - 0.5 * r), (cx + 1.45 * r, cy - 0.4 * r), (cx + 1.0 * r, cy - 0.3 * r)]),
          (0.95, 0.6, 0.1))
    c.put(disc(c, cx - 0.9 * r, cy + 0.2 * r, 0.4 * r, 0.12 * r, -0.3), body * 0.7)
    c.put(disc(c, cx, cy, 0.85 * r, 0.5 * r, -0.2), body)
    c.put(disc(c, cx + 0.75 * r, cy - 0.4 * r, 0.32 * r), body)
    c.put(disc(c, cx - 0.1 * r, cy - 0.05 * r, 0.55 * r, 0.25 * r, -0.4), body * 0.6)
    c.put(disc(c, cx + 0.85 * r, cy - 0.48 * r, 0.06 * r), (0.02, 0.02, 0.02))


def subj_insect(c, rng, cx, cy, r):
    c.put(disc(c, cx - 0.2 * r, cy + 0.5 * r, 2.2 * r, 0.75 * r, 0.25), jitter(rng, (0.25, 0.55, 0.15)))
    if rng.random() < 0.5:  # ladybird
        c.put(disc(c, cx + 0.95 * r, cy, 0.35 * r), (0.05, 0.05, 0.05))
        c.put(disc(c, cx, cy, r, 0.85 * r), jitter(rng, (0.85, 0.1, 0.08), 0.04))
        c.put(box(c, cx - r, cy - 0.03 * r, cx + r, cy + 0.03 * r), (0.05, 0.05, 0.05))
        for _ in range(6):
            a = rng.uniform(0, TAU)
            c.put(disc(c, cx + 0.55 * r * np.cos(a), cy + 0.5 * r * np.sin(a), 0.15 * r), (0.05, 0.05, 0.05))
    else:  # bee
        c.put(disc(c, cx, cy - 0.5 * r, 0.6 * r, 0.3 * r, -0.4), (0.85, 0.9, 0.95))
        c.put(disc(c, cx, cy, r, 0.6 * r), (0.95, 0.75, 0.1))
        for k in (-0.5, 0.0, 0.5):
            m = disc(c, cx, cy, r, 0.6 * r)
            if m is not None:
                (sy, sx), a = m
                band = _aa((0.12 * r - np.abs(c.x[:, sx] - (cx + k * r))) * c.s)
                c.put(((sy, sx), a * band), (0.08, 0.06, 0.04))
        c.put(disc(c, cx + 1.1 * r, cy, 0.35 * r), (0.08, 0.06, 0.04))


def subj_flower(c, rng, cx, cy, r):
    petal = jitter(rng, pick(rng, ((0.9, 0.2, 0.4), (0.95, 0.85, 0.2), (0.6, 0.25, 0.8), (0.95, 0.5, 0.1),
                                   (0.98, 0.95, 0.95), (0.85, 0.1, 0.1))), 0.05)
    c.put(box(c, cx - 0.05 * r, cy, cx + 0.05 * r, c.H + 1), (0.2, 0.5, 0.15))
    c.put(disc(c, cx + 0.45 * r, cy + 1.6 * r, 0.45 * r, 0.15 * r, -0.5), (0.25, 0.55, 0.18))
    win = c.window(cx - r, cy - r, cx + r, cy + r)
    if win is not None:
        dx, dy = c.x[:, win[1]] - cx, c.y[win[0], :] - cy
        d, th = np.sqrt(dx * dx + dy * dy), np.arctan2(dy, dx)
        k = int(rng.integers(5, 9))
        radius = r * (0.35 + 0.65 * np.abs(np.cos(0.5 * k * (th + rng.uniform(0, 1)))) ** 0.7)
        a = _aa((radius - d) * c.s)
        shade = (0.7 + 0.3 * np.clip(d / r, 0, 1))[..., None]
        colour = np.zeros((c.h, c.w, 3))
        colour[win] = petal * shade
        c.put((win, a), colour)
    c.put(disc(c, cx, cy, 0.22 * r), jitter(rng, (0.85, 0.65, 0.1), 0.05))


def subj_landmark(c, rng, cx, cy, r):
    stone = jitter(rng, (0.8, 0.68, 0.45), 0.08)
    base = cy + r
    if rng.random() < 0.5:  # pyramid
        c.put(polygon(c, [(cx - 1.1 * r, base), (cx, base - 1.3 * r), (cx + 1.1 * r, base)]), stone)
        c.put(polygon(c, [(cx, base), (cx, base - 1.3 * r), (cx + 1.1 * r, base)]), stone * 0.75)
    else:  # tower
        c.put(polygon(c, [(cx - 0.3 * r, base), (cx - 0.1 * r, base - 2.2 * r), (cx + 0.1 * r, base - 2.2 * r),
                          (cx + 0.3 * r, base)]), stone * 0.6)
        c.put(box(c, cx - 0.2 * r, base - 1.5 * r, cx + 0.2 * r, base - 1.4 * r), stone * 0.4)
        c.put(polygon(c, [(cx - 0.1 * r, base - 2.2 * r), (cx, base - 2.7 * r), (cx + 0.1 * r, base - 2.2 * r)]),
              stone * 0.5)


def subj_barn(c, rng, cx, cy, r):
    red = jitter(rng, (0.65, 0.12, 0.1), 0.05)
    c.put(box(c, cx - 0.9 * r, cy - 0.2 * r, cx + 0.9 * r, cy + 0.8 * r), red)
    c.put(polygon(c, [(cx - r, cy - 0.2 * r), (cx, cy - 0.85 * r), (cx + r, cy - 0.2 * r)]), (0.3, 0.28, 0.28))
    c.put(box(c, cx - 0.3 * r, cy + 0.15 * r, cx + 0.3 * r, cy + 0.8 * r), (0.95, 0.95, 0.9))
    c.put(box(c, cx - 0.24 * r, cy + 0.21 * r, cx + 0.24 * r, cy + 0.8 * r), red * 0.8)


def subj_car(c, rng, cx, cy, r):
    paint = jitter(rng, pick(rng, VIVID), 0.1)
    c.put(polygon(c, [(cx - 0.7 * r, cy - 0.1 * r), (cx - 0.45 * r, cy - 0.55 * r), (cx + 0.4 * r, cy - 0.55 * r),
                      (cx + 0.7 * r, cy - 0.1 * r)]), paint * 0.9)
    c.put(polygon(c, [(cx - 0.6 * r, cy - 0.12 * r), (cx - 0.4 * r, cy - 0.48 * r), (cx + 0.35 * r, cy - 0.48 * r),
                      (cx + 0.6 * r, cy - 0.12 * r)]), (0.6, 0.75, 0.9))
    c.put(box(c, cx - 1.2 * r, cy - 0.12 * r, cx + 1.2 * r, cy + 0.35 * r), paint)
    for wx in (-0.72, 0.72):
        c.put(disc(c, cx + wx * r, cy + 0.38 * r, 0.28 * r), (0.05, 0.05, 0.05))
        c.put(disc(c, cx + wx * r, cy + 0.38 * r, 0.12 * r), (0.7, 0.7, 0.72))
    c.put(disc(c, cx + 1.12 * r, cy, 0.07 * r), (1.0, 0.95, 0.7))


def subj_product(c, rng, cx, cy, r):
    body, label = jitter(rng, pick(rng, VIVID), 0.05), jitter(rng, pick(rng, VIVID), 0.05)
    c.put(box(c, cx - 0.12 * r, cy - 1.0 * r, cx + 0.12 * r, cy - 0.5 * r), body * 0.8)
    c.put(box(c, cx - 0.15 * r, cy - 1.15 * r, cx + 0.15 * r, cy - 0.95 * r), (0.9, 0.85, 0.3))
    c.put(disc(c, cx, cy - 0.35 * r, 0.38 * r, 0.25 * r), body)
    c.put(box(c, cx - 0.38 * r, cy - 0.35 * r, cx + 0.38 * r, cy + 1.0 * r), body)
    c.put(box(c, cx - 0.38 * r, cy + 0.05 * r, cx + 0.38 * r, cy + 0.55 * r), label)
    c.put(box(c, cx - 0.25 * r, cy - 0.3 * r, cx - 0.17 * r, cy + 0.9 * r), np.minimum(body + 0.35, 1.0))
    for k in range(3):
        y = cy - 0.4 * r + 0.3 * k * r
        c.put(box(c, cx + 0.7 * r, y, cx + (1.6 - 0.3 * k) * r, y + 0.1 * r), (0.1, 0.1, 0.12))


def subj_plate(c, rng, cx, cy, r):
    c.put(disc(c, cx, cy, 1.15 * r, 0.65 * r), (0.85, 0.85, 0.82))
    c.put(disc(c, cx, cy, 0.95 * r, 0.52 * r), (0.97, 0.97, 0.95))
    for _ in range(int(rng.integers(4, 8))):
        a, d = rng.uniform(0, TAU), rng.uniform(0, 0.55)
        food = jitter(rng, pick(rng, ((0.85, 0.15, 0.1), (0.3, 0.6, 0.15), (0.55, 0.3, 0.12), (0.95, 0.8, 0.2))))
        c.put(disc(c, cx + d * r * np.cos(a), cy + 0.5 * d * r * np.sin(a), rng.uniform(0.12, 0.25) * r,
                   rng.uniform(0.08, 0.15) * r), food)
    c.put(box(c, cx + 1.3 * r, cy - 0.6 * r, cx + 1.37 * r, cy + 0.6 * r), (0.75, 0.75, 0.78))


def subj_objects(c, rng, cx, cy, r):
    glaze = jitter(rng, pick(rng, ((0.2, 0.3, 0.6), (0.85, 0.85, 0.8), (0.5, 0.2, 0.15))), 0.05)
    c.put(box(c, cx - 0.15 * r, cy - 1.3 * r, cx + 0.15 * r, cy - 0.5 * r), glaze * 0.9)
    c.put(disc(c, cx, cy - 0.1 * r, 0.5 * r, 0.6 * r), glaze)
    c.put(disc(c, cx - 0.18 * r, cy - 0.3 * r, 0.08 * r, 0.16 * r), np.minimum(glaze + 0.4, 1.0))
    for k, fx in enumerate((-0.9, 0.85, 0.45)[: int(rng.integers(2, 4))]):
        fruit = jitter(rng, pick(rng, ((0.85, 0.15, 0.1), (0.95, 0.6, 0.1), (0.5, 0.75, 0.15), (0.95, 0.85, 0.2))))
        fy = cy + 0.3 * r + 0.05 * k * r
        c.put(disc(c, cx + fx * r, fy, 0.3 * r), fruit)
        c.put(disc(c, cx + (fx - 0.1) * r, fy - 0.1 * r, 0.07 * r), np.minimum(fruit + 0.5, 1.0))


SUBJECTS = {
    "face": subj_face, "profile": subj_profile, "group": subj_group, "child": subj_child,
    "figure": subj_figure, "silhouette": subj_silhouette, "cartoon": subj_cartoon, "ball": subj_ball,
    "animal": subj_animal, "bird": subj_bird, "insect": subj_insect, "flower": subj_flower,
    "landmark": subj_landmark, "barn": subj_barn, "car": subj_car, "product": subj_product,
    "plate": subj_plate, "objects": subj_objects,
}

# -------------------------------------------------------------------------------- modifiers


def _apply_modifiers(c: Canvas, rng, lay: Layout, mods: set[str]) -> None:
    if "sepia" in mods:
        tint = np.array([1.07, 0.9, 0.68])
        for layer in (c.bg, c.fg):
            lum = 0.299 * layer[..., 0] + 0.587 * layer[..., 1] + 0.114 * layer[..., 2]
            layer[...] = lum[..., None] * tint
    if "lowkey" in mods:
        c.bg *= 0.45
        c.fg *= 0.6
    if "flash" in mods:
        d2 = (c.x - lay.cx) ** 2 + (c.y - lay.cy) ** 2
        c.bg *= (0.45 + 0.75 * np.exp(-d2 / 0.15))[..., None]
        c.fg *= 1.25
    if "vignette" in mods:
        d2 = ((c.x - c.W / 2) / c.W) ** 2 + ((c.y - c.H / 2) / c.H) ** 2
        v = (1.0 - 1.1 * d2)[..., None]
        c.bg *= v
        c.fg *= v
    if "motion" in mods:
        size = max(int(0.12 * c.s), 3)
        c.fg[...] = ndimage.uniform_filter1d(c.fg, size=size, axis=1, mode="constant")
        c.alpha[...] = ndimage.uniform_filter1d(c.alpha, size=size, axis=1, mode="constant")
    if "diptych" in mods:
        half = c.w // 2
        for layer, perm in ((c.bg, [1, 2, 0]), (c.fg, [1, 2, 0])):
            layer[:, half:] = layer[:, : c.w - half][:, ::-1][..., perm]
        c.alpha[:, half:] = c.alpha[:, : c.w - half][:, ::-1]
        g = max(int(0.015 * c.w), 1)
        c.bg[:, half - g: half + g] = 0.97
        c.fg[:, half - g: half + g] = 0.0
        c.alpha[:, half - g: half + g] = 0.0


def render_scene(tags: tuple[int, ...], composition: str, rng: np.random.Generator,
                 height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Render the content of one image: ``(bg, fg, alpha, info)`` (see the module docstring).

    ``info`` names the motifs used: ``background``, ``subjects`` and ``modifiers``.
    """
    styles = styles_for(tags)
    background = next((s.background for s in styles if s.background), "generic")
    subjects = [s for s in styles if s.subject]
    mods = {m for s in styles for m in s.modifiers}
    scale = 1.8 if "macro" in mods else 1.0
    c = Canvas(height, width)
    size = subjects[0].size * scale if subjects else 0.12
    lay = make_layout(c, rng, composition, size, bool(subjects))
    BACKGROUNDS[background](c, rng, lay, not subjects)
    names = []
    if subjects:
        if len(subjects) > 1 and subjects[1].subject != subjects[0].subject:
            if composition == "centre":
                x2 = lay.cx + pick(rng, (-1.0, 1.0)) * 0.3 * c.W
            else:
                x2 = c.W - lay.cx if abs(c.W - 2 * lay.cx) > 0.3 else lay.cx + 0.35 * c.W * pick(rng, (-1, 1))
            SUBJECTS[subjects[1].subject](c, rng, x2, lay.cy, 0.65 * subjects[1].size * scale)
            names.append(subjects[1].subject)
        SUBJECTS[subjects[0].subject](c, rng, lay.cx, lay.cy, lay.r)
        names.insert(0, subjects[0].subject)
    _apply_modifiers(c, rng, lay, mods)
    np.clip(c.bg, 0.0, 1.0, out=c.bg)
    np.clip(c.fg, 0.0, None, out=c.fg)
    np.minimum(c.fg, c.alpha[..., None], out=c.fg)
    info = {"background": background, "subjects": names, "modifiers": sorted(mods)}
    return c.bg, c.fg, np.clip(c.alpha, 0.0, 1.0), info
