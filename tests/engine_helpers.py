"""Small datasets and configs for the engine tests (iaalib.engine.trainer / evaluate / CLI).

``make_tiny_dataset`` writes a few JPEGs (64-80 px, three aspect ratios) and manifests in the
DEVELOPING.md format, with a mean score that depends on brightness and 3 tag columns — enough
for a tiny model to fit something in one or two epochs, in a second or two.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from iaalib.engine.config import ExperimentConfig

TAG_IDS = (1, 15, 21)
SIZES = ((80, 64), (64, 80), (64, 64))  # (width, height)


def make_tiny_dataset(root: Path, *, n: int = 48, seed: int = 0, splits=(0.5, 0.25, 0.25)) -> dict:
    root = Path(root)
    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        image_id = 1000 + i
        w, h = SIZES[i % len(SIZES)]
        brightness = rng.uniform(0.15, 0.85)
        tags = (rng.random(len(TAG_IDS)) < 0.4).astype(int)
        pixels = np.clip(brightness * 255 + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        if tags[0]:
            pixels[: h // 2, :, 2] = 220  # "sky" motif for the first tag
        Image.fromarray(pixels).save(img_dir / f"{image_id}.jpg", quality=90)
        centre = 3.0 + 5.0 * brightness
        p = np.exp(-0.5 * ((np.arange(1, 11) - centre) / 1.4) ** 2)
        votes = rng.multinomial(100, p / p.sum())
        mean = float((np.arange(1, 11) * votes).sum() / votes.sum())
        sd = float(np.sqrt(((np.arange(1, 11) - mean) ** 2 * votes).sum() / votes.sum()))
        present = [t for t, z in zip(TAG_IDS, tags) if z]
        row = {"image_id": image_id, **{f"vote_{k + 1}": int(v) for k, v in enumerate(votes)},
               "n_votes": int(votes.sum()), "mean": mean, "sd": sd, "label": int(mean > 5),
               "tag1": present[0] if present else 0,
               "tag2": present[1] if len(present) > 1 else 0, "challenge_id": 1}
        row.update({f"tag_{t}": int(z) for t, z in zip(TAG_IDS, tags)})
        rows.append(row)
    df = pd.DataFrame(rows)
    n_train, n_val = int(n * splits[0]), int(n * splits[1])
    parts = {"train": df.iloc[:n_train], "val": df.iloc[n_train:n_train + n_val],
             "test": df.iloc[n_train + n_val:]}
    paths = {}
    for name, part in parts.items():
        paths[name] = root / f"{name}.csv"
        part.to_csv(paths[name], index=False)
    paths["images"] = img_dir
    return paths


def tiny_config(paths: dict, *, family: str = "mtcnn1", val: bool = True, **top) -> ExperimentConfig:
    """A config that trains in seconds on 2 CPU cores."""
    if family.startswith("mtcnn"):
        data = {"transform": "kao", "resize": 72, "crop": 64}
        model = {"family": family, "width_mult": 0.125, "fc_dim": 32, "dropout": 0.0}
        if family == "mtcnn_finetune":
            model.update(backbone="resnet18", fc_dim=16)
    else:
        data = {"transform": "saf", "short_edge": 64}
        model = {"family": family, "width_mult": 0.0625, "backbone": "resnet18"}
        if family == "saf":
            model["group_size"] = 2
    d = {"name": f"tiny-{family}",
         "data": {"train": str(paths["train"]), "val": str(paths["val"]) if val else None,
                  "test": str(paths["test"]), "image_dir": str(paths["images"]), **data},
         "model": model,
         "optim": {"lr": 0.01},
         "epochs": 2, "batch_size": 8, "device": "cpu", "num_threads": 1, "quiet": True}
    d.update(top)
    return ExperimentConfig.from_dict(d)


# ------------------------------------------------------------------ loader workers in a spawned run
_PARENT_STATE: dict[str, float] = {}


class ParentStateDataset:
    """Two samples whose ``mean`` is 1.0 when the loader worker shares its parent's memory (a fork)
    and 0.0 when it imported this module afresh (a spawn)."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> dict:
        import torch
        return {"image": torch.zeros(3, 2, 2), "dist": torch.zeros(10), "label": 0,
                "tags": torch.zeros(0), "mean": _PARENT_STATE.get("mark", 0.0), "index": i,
                "image_id": i}


def loader_workers_share_the_parent_state(through_make_loader: bool) -> list[float]:
    """Run in a spawned process (as a grid's run is): set a mark, read it back through two loader
    workers of ``make_loader`` (or of a plain DataLoader, the platform's default start)."""
    from torch.utils.data import DataLoader

    from iaalib.data.images import collate_batch
    from iaalib.engine.loaders import make_loader

    _PARENT_STATE["mark"] = 1.0
    batches = [[0], [1]]
    loader = (make_loader(ParentStateDataset(), batches, num_workers=2) if through_make_loader
              else DataLoader(ParentStateDataset(), batch_sampler=batches, num_workers=2,
                              collate_fn=collate_batch))
    return [float(b["mean"][0]) for b in loader]
