"""Where to cut a frozen ImageNet stem for the demo book, and what the papers' heads learn above it.

The demo book trains tiny networks from scratch on SynthAVA and, in two epochs, learns nothing. This
benchmark measures the alternative: a **frozen EfficientNet-Lite0** (ImageNet weights, the only ones
available offline) run **once** over every image, its activations **cached in memory** as one float
tensor per cut point, and the papers' architectures trained above it (minibatches by index, Adam,
no DataLoader).

Data: SynthAVA (``generate_synth_ava(n, seed=0, short_edge=112)``, the demo's; also n=5000).
Labels: aesthetic class = mean > 5; 10-bin distribution = votes normalised; tags = tag ids (tag1/tag2)
with more than ``round(3000·N/255530)`` images (Kao's filter scaled, 29 tags) as a multi-hot vector.
Split: 500 random test images (``--split-seed``), every other image trains (all images, also those
without a kept tag). Each configuration is trained for ``--seeds`` seeds (init + batch order); λ runs
with the same seed share init and batch order, so the multi-task gain is paired per seed.

Stem inputs: ``squash`` — the whole image resized to 112×112 (aspect not kept; Kao resizes to
256×256); ``crop`` — short edge 112, centre crop 112×112. Decode and stem forward time are reported.
Cut points (Lite0 stage ends): ``s4`` after block 2 (24×28×28), ``s8`` after block 4 (40×14×14),
``s16`` after block 10 (112×7×7), ``s32`` after block 15 (320×4×4); the 1280-channel head conv is
used only by the linear references.

Models (all trained above the frozen cut; BatchNorm, ReLU; ``--threads`` torch threads, default 1):

* ``kao`` — Kao et al. MTCNN #1 above the cut. Kao's trunk is AlexNet-like (conv1 11×11/4 + pool
  [stride 8], conv2 5×5 + pool [16], conv3, conv4 + pool [32], fc5, fc6, W = [W_a | W_s]). The stem
  replaces what lies below the cut's stride: above s4 pool1 + conv2.. are trained, above s8 conv2..,
  above s16 conv3.., above s32 only fc5, fc6, W. Narrow widths (``width`` convs, ``fc`` units,
  dropout 0.5 on fc5/fc6 as AlexNet). Loss = Kao Eq. 7 (``iaalib.losses.kao_multitask_loss``):
  softmax CE + λ·Σ_m BCE_m, λ ∈ {0, 1/M, 1}. Metrics: accuracy (and the majority-class rate of the
  test set), SRCC of p(high) with the mean score, tag mAP (macro AP over tags,
  ``iaalib.metrics.semantic_average_precision``), the multi-task gain (λ=1/M minus λ=0 SRCC, paired
  per seed).
* ``emd`` — SAF/NIMA-like: two 3×3 conv blocks (the first with stride 2 when the map is ≥14 px),
  global average pooling (or SPP 1,2,4 max), dropout 0.2, linear → softmax over 10 bins, EMD loss
  r=2 (``iaalib.losses.emd_loss``). Metrics: SRCC and PLCC of the predicted mean Σ i·p_i with the
  true mean, accuracy of predicted mean > 5.
* references (no training loop): RidgeCV on MLSP-style features (mean and SD over space of every
  Lite0 stage, 4192 values) and on each cut alone → SRCC of the mean; logistic regression on the
  pooled 1280-d head features → tag mAP.

Every run records the test metrics after every epoch (the learning curve; constant learning rate,
so epoch k of a long run is what a k-epoch run would give) and its training seconds (evaluation
excluded). Optional horizontal flips act on the cached activation maps (an approximation of flipping
the image: the stem is not exactly flip-equivariant).

    python -m benchmarks.bench_stem [--quick] [--resume] [--only SECTION,...] [--out PATH] [--table]

Sections, in run order: ``reference``; ``kao_screen`` (4 cuts × λ ∈ {0, 1/M, 1}, 30 epochs) and
``emd_screen`` (4 cuts, 40 epochs) on the squashed input; ``input`` (centre crop at s16 and s32);
``levers`` (at s16: flips, widths 32/128, and for EMD weight decay and SPP); ``split`` (a second
test split); ``large`` (n=5000); ``demo`` (demo candidates: flips with lr 3e-3 or dropout 0.2, s32
with flips, flips on the second split, EMD with flips + SPP on both splits). ``--table`` prints the
result table (mean ± SD over seeds) of an existing report; ``multitask_gain`` in the report holds
the paired λ=1/M − λ=0 (and λ=1 − λ=0) SRCC differences, per seed and after every epoch.

``--quick`` (n=800, 1 seed, 3 epochs, a few configurations) checks that the script runs and writes
``benchmarks/results/stem_study_quick.json``. The full study writes
``benchmarks/results/stem_study.json`` after every configuration; ``--resume`` keeps the
configurations already in that file (same settings) and runs only the missing ones. Timings depend
on the machine and its load (recorded in ``machine``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._report import machine_info, write_report  # noqa: E402

#: Lite0 block index ending each cut (stage ends at strides 4, 8, 16, 32).
CUTS = {"s4": 2, "s8": 4, "s16": 10, "s32": 15}
#: Last block of each of Lite0's 7 stages (MLSP features: stem, these, and the head conv).
STAGE_ENDS = (0, 2, 4, 7, 10, 14, 15)
INPUTS = ("squash", "crop")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------------- data
@dataclasses.dataclass
class Data:
    n: int
    dir: str
    image_ids: np.ndarray
    mean: np.ndarray          # [N] mean score
    cls: np.ndarray           # [N] int64, mean > 5
    dist: np.ndarray          # [N, 10] float32
    tags: np.ndarray          # [N, M] float32 multi-hot
    kept_tags: list
    threshold: int


def load_labels(n: int, short_edge: int, seed: int) -> Data:
    from iaalib.datasets import scaled_protocol_size, synth_ava_dir
    from iaalib.data.ava import read_ava_txt
    from iaalib.synth.ava import generate_synth_ava

    d = synth_ava_dir(n, short_edge, seed)
    generate_synth_ava(d, n=n, seed=seed, short_edge=short_edge, workers=1)
    lab = read_ava_txt(d / "AVA.txt")
    threshold = scaled_protocol_size(3000, len(lab))
    t1, t2 = lab.tag1.to_numpy(), lab.tag2.to_numpy()
    ids, counts = np.unique(np.concatenate([t1[t1 > 0], t2[(t2 > 0) & (t2 != t1)]]), return_counts=True)
    kept = sorted(int(t) for t, c in zip(ids, counts) if c > threshold)
    tags = np.stack([(t1 == t) | (t2 == t) for t in kept], axis=1).astype(np.float32)
    votes = lab[[f"vote_{k}" for k in range(1, 11)]].to_numpy(np.float64)
    return Data(n=len(lab), dir=str(d), image_ids=lab.image_id.to_numpy(), mean=lab["mean"].to_numpy(),
                cls=(lab["mean"].to_numpy() > 5).astype(np.int64),
                dist=(votes / votes.sum(1, keepdims=True)).astype(np.float32), tags=tags,
                kept_tags=kept, threshold=threshold)


def load_images(image_dir: Path, ids, size: int, mode: str) -> np.ndarray:
    """uint8 [N, 3, size, size]: ``squash`` resizes the whole image, ``crop`` resizes the short edge
    to ``size`` and takes the centre square."""
    from PIL import Image

    out = np.empty((len(ids), 3, size, size), np.uint8)
    for k, i in enumerate(ids):
        with Image.open(image_dir / f"{int(i)}.jpg") as im:
            im = im.convert("RGB")
            if mode == "squash":
                im = im.resize((size, size), Image.BILINEAR)
            else:
                w, h = im.size
                s = size / min(w, h)
                if s != 1:
                    im = im.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
                w, h = im.size
                left, top = (w - size) // 2, (h - size) // 2
                im = im.crop((left, top, left + size, top + size))
            out[k] = np.asarray(im).transpose(2, 0, 1)
    return out


# ------------------------------------------------------------------------------------------- stem
def stem_features(images: np.ndarray, batch: int = 25) -> dict:
    """Run the frozen Lite0 once: ``{"cuts": {cut: float32 tensor [N, C, H, W]}, "mlsp": [N, 4192],
    "pooled": [N, 1280] (numpy), "seconds": the whole pass, "seconds_to_cut": {cut: seconds of the
    layers up to that cut}}``. **Choice:** batches of 25 (on one thread Lite0's wide early maps make
    batches of 100 about twice as slow per image)."""
    import torch

    from iaalib.models.backbones import build_backbone

    stem, _ = build_backbone("efficientnet_lite0", weights="imagenet")
    stem.eval()
    net = stem.net
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    cuts: dict = {c: [] for c in CUTS}
    mlsp, pooled = [], []
    drop = net._global_params.drop_connect_rate or 0.0
    n_blocks = len(net._blocks)
    layer_seconds = np.zeros(n_blocks + 2)  # stem conv, blocks, head conv

    def stats(h):
        return [h.mean((2, 3)), h.flatten(2).std(2)]

    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(images), batch):
            x = (torch.from_numpy(images[s:s + batch]).float() / 255.0 - mean) / std
            tl = time.perf_counter()
            h = net._swish(net._bn0(net._conv_stem(stem.to_tf_input(x))))
            layer_seconds[0] += time.perf_counter() - tl
            feats = stats(h)
            for idx, block in enumerate(net._blocks):
                tl = time.perf_counter()
                h = block(h, drop_connect_rate=drop * idx / n_blocks)  # as extract_features (eval: off)
                layer_seconds[idx + 1] += time.perf_counter() - tl
                for c, b in CUTS.items():
                    if idx == b:
                        cuts[c].append(h.clone())
                if idx in STAGE_ENDS:
                    feats += stats(h)
            tl = time.perf_counter()
            h = net._swish(net._bn1(net._conv_head(h)))
            layer_seconds[-1] += time.perf_counter() - tl
            feats += stats(h)
            pooled.append(h.mean((2, 3)))
            mlsp.append(torch.cat(feats, 1))
            if s == 0:  # the manual pass is the backbone's own forward
                assert torch.allclose(stem(x), h, atol=1e-4), "manual Lite0 pass differs from extract_features"
    seconds = time.perf_counter() - t0
    cum = np.cumsum(layer_seconds)
    return {"cuts": {c: torch.cat(v) for c, v in cuts.items()}, "mlsp": torch.cat(mlsp).numpy(),
            "pooled": torch.cat(pooled).numpy(), "seconds": seconds,
            "seconds_to_cut": {**{c: float(cum[b + 1]) for c, b in CUTS.items()}, "head1280": float(cum[-1])}}


def mlsp_slices() -> dict:
    """Column ranges of each layer's [mean | SD] in the MLSP vector (stem, the 7 stage ends, head)."""
    channels = [("stem", 32)] + [(f"block{b}", c) for b, c in zip(STAGE_ENDS, (16, 24, 40, 80, 112, 192, 320))] \
        + [("head1280", 1280)]
    out, start = {}, 0
    for name, c in channels:
        out[name] = (start, start + 2 * c)
        start += 2 * c
    return out


# ----------------------------------------------------------------------------------------- models
def _conv(cin, cout, k, stride=1):
    from torch import nn
    return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def kao_head(cut: str, in_shape, num_tags: int, width: int = 64, fc: int = 128, dropout: float = 0.5):
    """Kao MTCNN #1 from the cut's stride upwards (module docstring)."""
    import torch
    from torch import nn

    c = in_shape[0]
    layers: list = []
    if cut == "s4":
        layers += [nn.MaxPool2d(3, 2)]                                    # pool1
    if cut in ("s4", "s8"):
        layers += _conv(c, width, 5) + [nn.MaxPool2d(3, 2)]               # conv2 + pool2
        c = width
    if cut in ("s4", "s8", "s16"):
        layers += _conv(c, width, 3) + _conv(width, width, 3) + [nn.MaxPool2d(3, 2)]  # conv3, conv4 + pool
        c = width
    trunk = nn.Sequential(*layers)
    with torch.no_grad():
        trunk.eval()
        d = trunk(torch.zeros(1, *in_shape)).numel()
        trunk.train()

    class KaoHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = trunk
            self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(d, fc), nn.ReLU(inplace=True),
                                    nn.Dropout(dropout), nn.Linear(fc, fc), nn.ReLU(inplace=True))  # fc5, fc6
            self.w = nn.Linear(fc, 2 + num_tags)                          # W = [W_a | W_s]

        def forward(self, x):
            z = self.w(self.fc(self.trunk(x)))
            return {"aesthetic_logits": z[:, :2], "tag_logits": z[:, 2:]}

    return KaoHead()


def emd_head(in_shape, width: int = 64, pool: str = "gap", dropout: float = 0.2):
    """Two VGG-like conv blocks, GAP or SPP(1,2,4), linear → 10 bins (module docstring)."""
    from torch import nn

    from iaalib.models.spp import SpatialPyramidPooling

    c, h = in_shape[0], in_shape[1]
    stride = 2 if h >= 14 else 1
    if pool == "gap":
        p, d = [nn.AdaptiveAvgPool2d(1), nn.Flatten()], width
    else:
        p, d = [SpatialPyramidPooling((1, 2, 4), mode="max")], width * 21
    return nn.Sequential(*_conv(c, width, 3, stride), *_conv(width, width, 3), *p, nn.Dropout(dropout),
                         nn.Linear(d, 10))


# -------------------------------------------------------------------------------------- training
def _spearman(a, b) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


def _pearson(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def train_run(kind: str, feats, data: Data, train_idx, test_idx, *, cut: str, seed: int, epochs: int,
              lam: float = 0.0, width: int = 64, fc: int = 128, pool: str = "gap", lr: float = 1e-3,
              wd: float = 0.0, batch: int = 64, flip: bool = False, dropout: float | None = None) -> dict:
    """Train one head above the cached activations ``feats`` [N, C, H, W]; test after every epoch."""
    import torch
    import torch.nn.functional as F

    from iaalib.losses import emd_loss, kao_multitask_loss
    from iaalib.metrics import semantic_average_precision

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    in_shape = tuple(feats.shape[1:])
    m = data.tags.shape[1]
    if kind == "kao":
        model = kao_head(cut, in_shape, m, width, fc, 0.5 if dropout is None else dropout)
    else:
        model = emd_head(in_shape, width, pool, 0.2 if dropout is None else dropout)
    opt = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd) if wd
           else torch.optim.Adam(model.parameters(), lr=lr))
    x_train, x_test = feats[torch.from_numpy(train_idx)], feats[torch.from_numpy(test_idx)]
    y_cls = torch.from_numpy(data.cls[train_idx])
    y_tags = torch.from_numpy(data.tags[train_idx])
    y_dist = torch.from_numpy(data.dist[train_idx])
    mean_test, cls_test, tags_test = data.mean[test_idx], data.cls[test_idx], data.tags[test_idx]
    bins = np.arange(1, 11)

    def evaluate() -> dict:
        model.eval()
        with torch.no_grad():
            outs = [model(x_test[s:s + 250]) for s in range(0, len(x_test), 250)]
        model.train()
        if kind == "kao":
            logits = torch.cat([o["aesthetic_logits"] for o in outs])
            p_high = F.softmax(logits, 1)[:, 1].numpy()
            r = {"srcc": _spearman(p_high, mean_test),
                 "accuracy": float((logits.argmax(1).numpy() == cls_test).mean())}
            if lam > 0:
                tag_scores = torch.cat([o["tag_logits"] for o in outs]).numpy()
                r["tag_mAP"] = float(semantic_average_precision(tag_scores, tags_test))
        else:
            p = F.softmax(torch.cat(outs), 1).numpy()
            pred = p @ bins
            r = {"srcc": _spearman(pred, mean_test), "plcc": _pearson(pred, mean_test),
                 "accuracy": float(((pred > 5) == (mean_test > 5)).mean())}
        return {k: round(v, 4) for k, v in r.items()}

    curve, eval_seconds = [], 0.0
    t0 = time.perf_counter()
    n = len(train_idx)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(n))
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            if len(idx) < 2:
                continue
            xb = x_train[idx]
            if flip:
                f = torch.from_numpy(rng.random(len(idx)) < 0.5)
                xb[f] = xb[f].flip(-1)
            if kind == "kao":
                loss = kao_multitask_loss(model(xb), y_cls[idx], y_tags[idx], lam)["total"]
            else:
                loss = emd_loss(F.softmax(model(xb), 1), y_dist[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        te = time.perf_counter()
        curve.append(evaluate())
        eval_seconds += time.perf_counter() - te
    seconds = time.perf_counter() - t0 - eval_seconds
    return {"seed": seed, **curve[-1], "train_seconds": round(seconds, 2),
            "eval_seconds": round(eval_seconds, 2), "curve": curve}


# ------------------------------------------------------------------------------------ references
def references(feats: dict, data: Data, train_idx, test_idx, cs=(0.01, 0.1, 1.0)) -> dict:
    """Ridge (MLSP, each layer's mean+SD, pooled head) → SRCC/PLCC/accuracy of the mean score;
    logistic regression on the pooled 1280-d head → tag mAP for each C (all reported, none chosen)."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from iaalib.metrics import semantic_average_precision

    y_tr, y_te = data.mean[train_idx], data.mean[test_idx]

    def ridge(x):
        t0 = time.perf_counter()
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 13)))
        model.fit(x[train_idx], y_tr)
        pred = model.predict(x[test_idx])
        return {"srcc": round(_spearman(pred, y_te), 4), "plcc": round(_pearson(pred, y_te), 4),
                "accuracy": round(float(((pred > 5) == (y_te > 5)).mean()), 4),
                "alpha": float(model[-1].alpha_), "dims": int(x.shape[1]),
                "seconds": round(time.perf_counter() - t0, 2)}

    mlsp = feats["mlsp"]
    out: dict = {"ridge_mlsp_all_stages": ridge(mlsp)}
    for name, (a, b) in mlsp_slices().items():
        out[f"ridge_mean_sd_{name}"] = ridge(mlsp[:, a:b])
    pooled = feats["pooled"]
    scaler = StandardScaler().fit(pooled[train_idx])
    p_tr, p_te = scaler.transform(pooled[train_idx]), scaler.transform(pooled[test_idx])
    for c in cs:
        t0 = time.perf_counter()
        scores = np.zeros((len(test_idx), data.tags.shape[1]))
        for m in range(data.tags.shape[1]):
            clf = LogisticRegression(C=c, max_iter=300).fit(p_tr, data.tags[train_idx, m])
            scores[:, m] = clf.decision_function(p_te)
        out[f"logistic_pooled1280_tags_C{c:g}"] = {
            "tag_mAP": round(float(semantic_average_precision(scores, data.tags[test_idx])), 4),
            "seconds": round(time.perf_counter() - t0, 2)}
    return out


# ------------------------------------------------------------------------------------------ plan
LAMBDAS = ("0", "1/M", "1")


def lam_value(label: str, m: int) -> float:
    return {"0": 0.0, "1/M": 1.0 / m, "1": 1.0}[label]


def config_key(c: dict) -> str:
    return "|".join(f"{k}={c[k]}" for k in sorted(c))


def make_plan(args) -> list[tuple[str, dict]]:
    """``(section, config)`` pairs in run order (each config is trained for ``args.seeds`` seeds)."""
    base = {"n": args.n, "split": 0, "input": "squash", "width": 64, "flip": False, "wd": 0.0}
    kao = {**base, "kind": "kao", "fc": 128, "epochs": args.kao_epochs}
    emd = {**base, "kind": "emd", "pool": "gap", "epochs": args.emd_epochs}
    focus_k, focus_e = args.focus_cut_kao, args.focus_cut_emd
    plan: list = []
    for cut in CUTS:                                                      # 1. cut screen
        plan += [("kao_screen", {**kao, "cut": cut, "lam": lam}) for lam in LAMBDAS]
    plan += [("emd_screen", {**emd, "cut": cut}) for cut in CUTS]
    if args.quick:
        return plan
    for cut in args.input_cuts.split(","):                                # 2. input (b)
        plan += [("input", {**kao, "cut": cut, "lam": lam, "input": "crop"}) for lam in LAMBDAS]
        plan += [("input", {**emd, "cut": cut, "input": "crop"})]
    plan += [("levers", {**kao, "cut": focus_k, "lam": lam, "flip": True}) for lam in ("0", "1/M")]   # 3.
    for w, fc in ((32, 64), (128, 256)):
        plan += [("levers", {**kao, "cut": focus_k, "lam": lam, "width": w, "fc": fc}) for lam in ("0", "1/M")]
    plan += [("levers", {**emd, "cut": focus_e, **lever}) for lever in
             ({"flip": True}, {"width": 32}, {"width": 128}, {"wd": 0.05}, {"pool": "spp"})]
    plan += [("split", {**kao, "cut": focus_k, "lam": lam, "split": 1}) for lam in LAMBDAS]        # 4.
    plan += [("split", {**emd, "cut": focus_e, "split": 1})]
    if args.n_large:                                                      # 5. more images
        plan += [("large", {**kao, "cut": focus_k, "lam": lam, "n": args.n_large}) for lam in LAMBDAS]
        plan += [("large", {**emd, "cut": focus_e, "n": args.n_large})]
    # 6. demo candidates (after the above: flip helps): faster/less regularised Kao heads, s32 with flip,
    # the flip gain on the second split, and the best EMD levers combined on both splits
    kf = {**kao, "cut": focus_k, "flip": True}
    plan += [("demo", {**kf, "lam": lam, "epochs": 20, "lr": 3e-3}) for lam in LAMBDAS]
    plan += [("demo", {**kf, "lam": lam, "epochs": 20, "dropout": 0.2}) for lam in LAMBDAS]
    plan += [("demo", {**kao, "cut": "s32", "flip": True, "lam": lam}) for lam in LAMBDAS]
    plan += [("demo", {**kf, "lam": lam, "split": 1}) for lam in ("0", "1/M")]
    plan += [("demo", {**emd, "cut": focus_e, "flip": True, "pool": "spp", "split": s}) for s in (0, 1)]
    return plan


# --------------------------------------------------------------------------------------- summary
def summarise(runs: list[dict]) -> dict:
    out: dict = {"seeds": len(runs)}
    for m in ("srcc", "plcc", "accuracy", "tag_mAP", "train_seconds"):
        if m in runs[0]:
            v = np.array([r[m] for r in runs], float)
            out[m] = round(float(v.mean()), 4)
            out[m + "_sd"] = round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 4)
    curves = {m: np.mean([[e[m] for e in r["curve"]] for r in runs], axis=0)
              for m in ("srcc", "tag_mAP") if m in runs[0]["curve"][0]}
    out["mean_curve"] = {m: [round(float(x), 4) for x in c] for m, c in curves.items()}
    # levelling off: first epoch whose seed-mean test value is within 0.01 of the best epoch's
    out["epochs_to_within_0.01_of_best"] = {m: int(np.argmax(c >= c.max() - 0.01)) + 1 for m, c in curves.items()}
    return out


def multitask_gains(configs: dict) -> dict:
    """λ=1/M (and λ=1) minus λ=0 SRCC, paired per seed, for every Kao group having both."""
    groups: dict = {}
    for entry in configs.values():
        c = entry["config"]
        if c["kind"] == "kao":
            g = config_key({k: v for k, v in c.items() if k != "lam"})
            groups.setdefault(g, {})[c["lam"]] = entry["runs"]
    out = {}
    for g, by_lam in groups.items():
        if "0" not in by_lam:
            continue
        base = {r["seed"]: r["srcc"] for r in by_lam["0"]}
        sd0 = float(np.std(list(base.values()), ddof=1)) if len(base) > 1 else 0.0
        row: dict = {"srcc_lam0": round(float(np.mean(list(base.values()))), 4), "srcc_lam0_seed_sd": round(sd0, 4)}
        for lam in ("1/M", "1"):
            if lam in by_lam:
                d = np.array([r["srcc"] - base[r["seed"]] for r in by_lam[lam] if r["seed"] in base])
                row[f"gain_{lam}"] = round(float(d.mean()), 4)
                row[f"gain_{lam}_sd"] = round(float(d.std(ddof=1)) if len(d) > 1 else 0.0, 4)
                row[f"gain_{lam}_per_seed"] = [round(float(x), 4) for x in d]
                row[f"gain_{lam}_all_seeds_positive"] = bool((d > 0).all())
                # the same paired difference after every epoch (constant LR: = a shorter run's)
                base_c = {r["seed"]: [e["srcc"] for e in r["curve"]] for r in by_lam["0"]}
                dc = np.array([[a - b for a, b in zip((e["srcc"] for e in r["curve"]), base_c[r["seed"]])]
                               for r in by_lam[lam] if r["seed"] in base_c])
                row[f"gain_{lam}_per_epoch_mean"] = [round(float(x), 4) for x in dc.mean(0)]
                row[f"gain_{lam}_per_epoch_sd"] = [round(float(x), 4) for x in dc.std(0, ddof=1)] if len(dc) > 1 else []
        out[g] = row
    return out


def table(report: dict) -> str:
    """Markdown table of every configuration (mean ± SD over seeds)."""
    def pm(s, m):
        return f"{s[m]:.3f} ± {s[m + '_sd']:.3f}" if m in s else "–"
    gains = report.get("multitask_gain", {})
    rows = ["| section | n | split | input | cut | model | λ / lever | SRCC | PLCC | acc | tag mAP | MT gain (1/M − 0) | s/run | epochs to ≤0.01 of best |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    sections = ["kao_screen", "emd_screen", "input", "levers", "split", "large", "demo"]
    cut_order = list(CUTS)

    def order(item):
        c = item[1]["config"]
        return (sections.index(item[1]["section"]), c["kind"], c["n"], c["split"], c["input"],
                cut_order.index(c["cut"]), config_key(c))
    for key, e in sorted(report["configs"].items(), key=order):
        c, s = e["config"], e["summary"]
        lever = [f"w{c['width']}"] + (["flip"] if c["flip"] else []) + ([f"wd{c['wd']}"] if c["wd"] else [])
        lever += [f"e{c['epochs']}"] + ([c["pool"]] if c.get("pool", "gap") != "gap" else [])
        lever += [f"{k}{c[k]:g}" for k in ("lr", "dropout") if k in c]
        gain = ""
        if c["kind"] == "kao" and c["lam"] == "1/M":
            g = gains.get(config_key({k: v for k, v in c.items() if k != "lam"}), {})
            if "gain_1/M" in g:
                gain = f"{g['gain_1/M']:+.3f} ± {g['gain_1/M_sd']:.3f} (λ=0 seed SD {g['srcc_lam0_seed_sd']:.3f})"
        lam = f"λ={c['lam']} " if c["kind"] == "kao" else ""
        lev = s["epochs_to_within_0.01_of_best"]
        rows.append(f"| {e['section']} | {c['n']} | {c['split']} | {c['input']} | {c['cut']} | {c['kind']} | "
                    f"{lam}{' '.join(lever)} | {pm(s, 'srcc')} | {pm(s, 'plcc')} | {pm(s, 'accuracy')} | "
                    f"{pm(s, 'tag_mAP')} | {gain} | {s['train_seconds']:.1f} | "
                    + ", ".join(f"{m} {v}" for m, v in lev.items()) + " |")
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small smoke run (n=800, 1 seed, 3 epochs)")
    p.add_argument("--n", type=int, default=2500)
    p.add_argument("--n-large", type=int, default=5000, help="second dataset size (0: skip)")
    p.add_argument("--short-edge", type=int, default=112)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--size", type=int, default=112, help="stem input S×S")
    p.add_argument("--test-size", type=int, default=500)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--kao-epochs", type=int, default=30)
    p.add_argument("--emd-epochs", type=int, default=40)
    p.add_argument("--focus-cut-kao", default="s16", help="cut for the Kao levers/split/large runs")
    p.add_argument("--focus-cut-emd", default="s16", help="cut for the EMD levers/split/large runs")
    p.add_argument("--input-cuts", default="s16,s32", help="cuts where input (b) crop is compared")
    p.add_argument("--only", default="", help="comma-separated sections to run (default: all)")
    p.add_argument("--resume", action="store_true", help="keep configurations already in --out")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    p.add_argument("--table", action="store_true", help="print the table of --out and exit")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.n_large, args.test_size, args.seeds = 800, 0, 200, 1
        args.kao_epochs = args.emd_epochs = 3
    out = Path(args.out or REPO / "benchmarks" / "results" / ("stem_study_quick.json" if args.quick else "stem_study.json"))
    if args.table:
        print(table(json.loads(out.read_text())))
        return 0

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy/scipy/sklearn BLAS too
    report: dict = {}
    if args.resume and out.is_file():
        report = json.loads(out.read_text())
    report.update({"benchmark": "stem_study", "description": __doc__.splitlines()[0],
                   "settings": {k: v for k, v in vars(args).items() if k not in ("out", "resume", "only")}})
    # the machine (and its load) of every invocation; ``machine`` stays that of the first one
    report.setdefault("invocations", []).append(
        {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "only": args.only, "resume": args.resume,
         "machine": machine_info(threads=args.threads)})
    report.setdefault("machine", report["invocations"][-1]["machine"])
    for k in ("datasets", "stem", "splits", "reference", "configs"):
        report.setdefault(k, {})
    only = set(filter(None, args.only.split(",")))
    datasets: dict = {}
    features: dict = {}

    def dataset(n: int) -> Data:
        if n not in datasets:
            t0 = time.perf_counter()
            datasets[n] = d = load_labels(n, args.short_edge, args.data_seed)
            report["datasets"][str(n)] = {
                "dir": d.dir, "n_images": d.n, "min_tag_count": d.threshold, "n_kept_tags": len(d.kept_tags),
                "kept_tags": d.kept_tags, "share_high": round(float(d.cls.mean()), 4),
                "share_with_kept_tag": round(float((d.tags.sum(1) > 0).mean()), 4),
                "generate_or_check_seconds": round(time.perf_counter() - t0, 2)}
        return datasets[n]

    def split(n: int, s: int):
        d = dataset(n)
        perm = np.random.default_rng([s, 1234]).permutation(d.n)
        test, train = np.sort(perm[:args.test_size]), np.sort(perm[args.test_size:])
        report["splits"][f"n{n}/split{s}"] = {
            "n_train": len(train), "n_test": len(test),
            "majority_rate_test": round(float(max(d.cls[test].mean(), 1 - d.cls[test].mean())), 4),
            "share_high_test": round(float(d.cls[test].mean()), 4),
            # a random scorer's expected tag AP is the tag's prevalence: the chance level of tag mAP
            "chance_tag_mAP_test": round(float(d.tags[test].mean(0)[d.tags[test].sum(0) > 0].mean()), 4)}
        return train, test

    def feats(n: int, inp: str) -> dict:
        key = f"n{n}/{inp}"
        if key not in features:
            for k in [k for k in features if not k.startswith(f"n{n}/")]:
                del features[k]  # one dataset size in memory at a time
            d = dataset(n)
            t0 = time.perf_counter()
            images = load_images(Path(d.dir) / "images", d.image_ids, args.size, inp)
            decode = time.perf_counter() - t0
            f = stem_features(images)
            features[key] = f
            report["stem"][key] = {
                "n_images": d.n, "decode_resize_seconds": round(decode, 2), "forward_seconds": round(f["seconds"], 2),
                "forward_ms_per_image": round(1000 * f["seconds"] / d.n, 2),
                "forward_seconds_to_cut": {c: round(v, 2) for c, v in f["seconds_to_cut"].items()},
                "cuts": {c: {"channels": int(t.shape[1]), "spatial": list(t.shape[2:]),
                             "values_per_image": int(t[0].numel()), "cache_MB": round(t.numel() * 4 / 2 ** 20, 1)}
                         for c, t in f["cuts"].items()},
                "mlsp_dims": int(f["mlsp"].shape[1])}
            print(f"stem {key}: decode {decode:.1f} s, forward {f['seconds']:.1f} s", flush=True)
        return features[key]

    def save():
        report["multitask_gain"] = multitask_gains(report["configs"])
        write_report(out, report)

    # references: cheap, for the main dataset and both inputs
    if not only or "reference" in only:
        for inp in INPUTS:
            key = f"n{args.n}/split0/{inp}"
            if key in report["reference"] and args.resume:
                continue
            tr, te = split(args.n, 0)
            report["reference"][key] = references(feats(args.n, inp), dataset(args.n), tr, te)
            print(f"reference {key}: {json.dumps(report['reference'][key])}", flush=True)
            save()

    for section, cfg in make_plan(args):
        if only and section not in only:
            continue
        key = config_key(cfg)
        if args.resume and key in report["configs"] and len(report["configs"][key]["runs"]) >= args.seeds:
            continue
        d = dataset(cfg["n"])
        tr, te = split(cfg["n"], cfg["split"])
        f = feats(cfg["n"], cfg["input"])["cuts"][cfg["cut"]]
        lam = lam_value(cfg["lam"], d.tags.shape[1]) if cfg["kind"] == "kao" else 0.0
        runs = []
        for seed in range(args.seeds):
            kw = {k: cfg[k] for k in ("epochs", "width", "flip", "wd", "lr", "dropout") if k in cfg}
            kw.update({"fc": cfg["fc"]} if cfg["kind"] == "kao" else {"pool": cfg["pool"]})
            r = train_run(cfg["kind"], f, d, tr, te, cut=cfg["cut"], seed=seed, lam=lam, **kw)
            runs.append(r)
            print(f"  [{section}] {key} seed {seed}: " + ", ".join(f"{k} {r[k]}" for k in
                  ("srcc", "plcc", "accuracy", "tag_mAP", "train_seconds") if k in r), flush=True)
        report["configs"][key] = {"section": section, "config": cfg, "runs": runs, "summary": summarise(runs)}
        save()
    for n, s in sorted({(e["config"]["n"], e["config"]["split"]) for e in report["configs"].values()}):
        split(n, s)  # the split table covers every configuration in the report (also resumed ones)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
