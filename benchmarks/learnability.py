"""Is SynthAVA learnable, and do its tags help? (A benchmark, not a test.)

Trains a small CNN for a few minutes on CPU on SynthAVA's Kao split (tags with more than the scaled
3000 images, images with a kept tag) and reports on held-out images:

* ``single``: aesthetics only — a 10-bin softmax trained with the EMD loss (SAF/NIMA style);
* ``multi``:  the same network with a second head for the kept tags (mean binary cross-entropy,
  weight ``--tag-weight``), i.e. a small analogue of Kao's MTCNN;

each for ``--seeds`` seeds, plus two reference points that need no CNN: ridge regression of the mean
score on the *measured* image properties in ``synth.json`` (luminance, RMS contrast,
colourfulness, sharpness) and on the tags alone (one-hot), and the ceiling set by the votes
(SRCC of the latent mean against the realised vote mean).

    python benchmarks/learnability.py [--data DIR] [--n 3000] [--short-edge 128]
                                      [--epochs 30] [--seeds 2] [--input 64] [--out benchmarks/results/learnability.json]

Without ``--data`` the SynthAVA of ``--n/--short-edge/--seed`` is generated (or reused) under
``IAA_HOME/data``. Timings depend on the machine and its load; the lead re-measures.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from iaalib.datasets import scaled_protocol_size, synth_ava_dir  # noqa: E402
from iaalib.data.ava import read_ava_txt  # noqa: E402
from iaalib.data.protocols import kao_protocol, tag_image_counts  # noqa: E402
from iaalib.synth.ava import generate_synth_ava, read_synth_latents  # noqa: E402
from benchmarks._report import machine_info, write_report  # noqa: E402


def load_images(image_dir: Path, ids, size: int) -> np.ndarray:
    """uint8 [N, 3, size, size]: each image resized (squashed) to size×size, like Kao's 256×256."""
    from PIL import Image

    out = np.empty((len(ids), 3, size, size), np.uint8)
    for k, i in enumerate(ids):
        with Image.open(image_dir / f"{int(i)}.jpg") as im:
            out[k] = np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR)).transpose(2, 0, 1)
    return out


def build_cnn(num_tags: int, width: int = 32):
    import torch.nn as nn

    def block(cin, cout, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class TinyCNN(nn.Module):
        def __init__(self):
            super().__init__()
            w = width
            self.features = nn.Sequential(block(3, w, 2), block(w, 2 * w, 2), block(2 * w, 2 * w, 1),
                                          block(2 * w, 4 * w, 2), block(4 * w, 4 * w, 2), nn.AdaptiveAvgPool2d(1),
                                          nn.Flatten(), nn.Dropout(0.2))
            self.aesthetic = nn.Linear(4 * w, 10)
            self.tags = nn.Linear(4 * w, num_tags) if num_tags else None

        def forward(self, x):
            h = self.features(x)
            return self.aesthetic(h), (self.tags(h) if self.tags is not None else None)

    return TinyCNN()


def train_and_test(x_train, d_train, t_train, x_test, *, tag_weight: float, epochs: int, seed: int,
                   batch: int = 64, lr: float = 2e-3, verbose: bool = True) -> tuple[np.ndarray, np.ndarray | None, float]:
    import torch
    import torch.nn.functional as F

    from iaalib.losses import emd_loss

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_cnn(t_train.shape[1] if tag_weight > 0 else 0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(x_train) / batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def prep(xb):
        return (torch.from_numpy(xb).float() / 255.0 - mean) / std

    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total = 0.0
        order = rng.permutation(len(x_train))
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            xb = prep(x_train[idx])
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            xb[flip] = xb[flip].flip(-1)
            logits, tag_logits = model(xb)
            loss = emd_loss(F.softmax(logits, dim=1), torch.from_numpy(d_train[idx]).float())
            if tag_logits is not None:
                loss = loss + tag_weight * F.binary_cross_entropy_with_logits(
                    tag_logits, torch.from_numpy(t_train[idx]).float())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if verbose:
            print(f"    epoch {epoch + 1}/{epochs}: loss {total / len(order):.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    seconds = time.perf_counter() - t0
    model.eval()
    probs, tag_probs = [], []
    with torch.no_grad():
        for s in range(0, len(x_test), 256):
            logits, tag_logits = model(prep(x_test[s:s + 256]))
            probs.append(F.softmax(logits, 1).numpy())
            if tag_logits is not None:
                tag_probs.append(torch.sigmoid(tag_logits).numpy())
    return np.concatenate(probs), (np.concatenate(tag_probs) if tag_probs else None), seconds


def ridge_srcc(train_x, train_y, test_x, test_y) -> float:
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    from iaalib.metrics import srcc

    model = make_pipeline(StandardScaler(), PolynomialFeatures(2), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    model.fit(train_x, train_y)
    return srcc(model.predict(test_x), test_y)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="an existing SynthAVA directory")
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--short-edge", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="SynthAVA seed")
    p.add_argument("--input", type=int, default=64, help="network input size (images squashed to it)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=2, help="training seeds per model")
    p.add_argument("--tag-weight", type=float, default=1.0)
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "learnability.json"))
    args = p.parse_args(argv)

    import torch

    from iaalib.metrics import binary_accuracy, mean_score, plcc, semantic_average_precision, srcc

    torch.set_num_threads(args.threads)
    data = Path(args.data) if args.data else synth_ava_dir(args.n, args.short_edge, args.seed)
    if not args.data:
        generate_synth_ava(data, n=args.n, seed=args.seed, short_edge=args.short_edge)
    labels = read_ava_txt(data / "AVA.txt")
    n = len(labels)
    threshold = scaled_protocol_size(3000, n)
    kept = [t for t, c in tag_image_counts(labels).items() if c > threshold]
    n_kept_images = int((labels.tag1.isin(kept) | labels.tag2.isin(kept)).sum())
    split = kao_protocol(labels, min_tag_count=threshold, test_size=int(args.test_fraction * n_kept_images),
                         seed=args.seed)
    train, test = split.train, split.test
    tag_cols = [c for c in train.columns if c.startswith("tag_")]
    print(f"SynthAVA {data}: {n} images; Kao filter (> {threshold}) keeps {len(tag_cols)} tags, "
          f"{len(train)} train / {len(test)} test images")

    t0 = time.perf_counter()
    x_train = load_images(data / "images", train.image_id, args.input)
    x_test = load_images(data / "images", test.image_id, args.input)
    load_seconds = time.perf_counter() - t0
    vote_cols = [f"vote_{k}" for k in range(1, 11)]
    d_train = (train[vote_cols].to_numpy() / train[vote_cols].to_numpy().sum(1, keepdims=True)).astype(np.float32)
    t_train, t_test = train[tag_cols].to_numpy(np.float32), test[tag_cols].to_numpy(np.float32)
    y_test = test["mean"].to_numpy()

    results: dict = {"single": [], "multi": []}
    for name, weight in (("single", 0.0), ("multi", args.tag_weight)):
        for s in range(args.seeds):
            probs, tag_probs, secs = train_and_test(x_train, d_train, t_train, x_test, tag_weight=weight,
                                                    epochs=args.epochs, seed=s)
            pred = mean_score(probs)
            r = {"seed": s, "srcc": srcc(pred, y_test), "plcc": plcc(pred, y_test),
                 "accuracy": binary_accuracy(pred, y_test), "train_seconds": round(secs, 1)}
            if tag_probs is not None:
                r["tag_mAP"] = float(semantic_average_precision(tag_probs, t_test))
            results[name].append(r)
            print(f"  {name:6s} seed {s}: SRCC {r['srcc']:.3f}  PLCC {r['plcc']:.3f}  acc {r['accuracy']:.3f}"
                  + (f"  tag mAP {r['tag_mAP']:.3f}" if "tag_mAP" in r else "") + f"  ({secs:.0f} s)")

    lat = read_synth_latents(data).set_index("image_id")
    props = ["luminance", "rms_contrast", "colourfulness", "sharpness"]
    ref = {
        "ridge_on_measured_properties": ridge_srcc(lat.loc[train.image_id, props], train["mean"],
                                                   lat.loc[test.image_id, props], y_test),
        "ridge_on_tags_only": ridge_srcc(t_train, train["mean"], t_test, y_test),
        "latent_mean_vs_vote_mean": srcc(lat.loc[test.image_id, "latent_mean"], y_test),
    }
    summary = {k: {m: float(np.mean([r[m] for r in v])) for m in v[0] if m != "seed"} for k, v in results.items()}
    report = {
        "benchmark": "learnability", "dataset": str(data), "n_images": n, "min_tag_count": threshold,
        "n_kept_tags": len(tag_cols), "n_train": len(train), "n_test": len(test), "input": args.input,
        "epochs": args.epochs, "seeds": args.seeds, "tag_weight": args.tag_weight,
        "image_load_seconds": round(load_seconds, 1), "runs": results, "mean": summary, "reference": ref,
        "multi_minus_single_srcc": summary["multi"]["srcc"] - summary["single"]["srcc"],
        "machine": machine_info(threads=args.threads),
    }
    print(f"  mean SRCC single {summary['single']['srcc']:.3f}, multi {summary['multi']['srcc']:.3f}; "
          f"ridge on measured properties {ref['ridge_on_measured_properties']:.3f}, on tags "
          f"{ref['ridge_on_tags_only']:.3f}; vote ceiling {ref['latent_mean_vs_vote_mean']:.3f}")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
