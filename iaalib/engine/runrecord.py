"""The run directory: what a training run leaves behind for the book to trust.

::

    RUN/config.yaml        resolved ExperimentConfig
    RUN/run.json           status (running | finished | failed), reason, config hash, seed,
                           manifest sha256s, git revision (+ dirty), package versions, host, times
    RUN/history.jsonl      one JSON object per epoch (losses, λ, validation metrics, img/s)
    RUN/metrics.json       final metrics on the test manifest (iaalib.engine.evaluate.compute_metrics)
    RUN/predictions.csv    one row per test image (iaalib.engine.evaluate.predict)
    RUN/omega.npy          MTRL: Ω after each update, shape [K, C+M, C+M] (+ omega_steps.json)
    RUN/checkpoints/{last,best}.pt
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import numpy as np

from .. import __version__
from .._io import atomic_write, read_json, sha256_file, write_json
from ..errors import IaaError
from ..paths import code_revision
from .config import ExperimentConfig

VERSIONED_PACKAGES = ("torch", "torchvision", "numpy", "scipy", "scikit-learn", "pandas", "pillow")


class Run:
    """A run directory. ``metrics``/``predictions``/``history`` are read from disk on access."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        if not (self.dir / "run.json").is_file():
            raise IaaError(f"{self.dir}: not a run directory (no run.json)")

    def __repr__(self) -> str:
        return f"Run({str(self.dir)!r}, status={self.status!r})"

    @property
    def record(self) -> dict:
        return read_json(self.dir / "run.json")

    @property
    def status(self) -> str:
        return self.record.get("status", "unknown")

    @functools.cached_property
    def config(self) -> ExperimentConfig:
        return ExperimentConfig.load(self.dir / "config.yaml")

    @property
    def metrics(self) -> dict:
        p = self.dir / "metrics.json"
        return read_json(p) if p.is_file() else {}

    @property
    def predictions(self) -> pd.DataFrame:
        return pd.read_csv(self.dir / "predictions.csv")

    @property
    def history(self) -> list[dict]:
        return read_history(self.dir)

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in ("best", "last"):
            raise IaaError(f"checkpoint must be 'best' or 'last', not {which!r}")
        return self.dir / "checkpoints" / f"{which}.pt"

    def load_model(self, which: str = "best", *, pixels: bool = False):
        """The trained network (eval mode, CPU) from ``checkpoints/<which>.pt``; ``pixels=True``:
        composed with its frozen stem, if it has one (it then reads images, not activations)."""
        from .evaluate import load_model  # here, so reading run records never imports torch

        return load_model(self.checkpoint_path(which), pixels=pixels)[0]

    def omega(self):
        """MTRL Ω history [K, T, T] (numpy) or None."""
        p = self.dir / "omega.npy"
        return np.load(p) if p.is_file() else None


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    p = Path(run_dir) / "history.jsonl"
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line]


def write_history(run_dir: str | os.PathLike, history: list[dict]) -> None:
    """Rewrite history.jsonl atomically from the full list (kept in the checkpoint, so a resumed
    run never duplicates or loses an epoch)."""
    with atomic_write(Path(run_dir) / "history.jsonl", "w", encoding="utf-8") as fh:
        for row in history:
            fh.write(json.dumps(row, sort_keys=True, default=_plain) + "\n")


def manifest_checksums(cfg: ExperimentConfig) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for split in ("train", "val", "test"):
        p = getattr(cfg.data, split)
        out[split] = sha256_file(p) if p and os.path.isfile(p) else None
    return out


def new_record(cfg: ExperimentConfig, *, world_size: int = 1) -> dict[str, Any]:
    return {
        "status": "running",
        "name": cfg.name,
        "config_hash": cfg.config_hash(),
        "seed": cfg.seed,
        "manifest_sha256": manifest_checksums(cfg),
        "code": code_revision(),
        "versions": package_versions(),
        "host": {"hostname": socket.gethostname(), "platform": platform.platform(),
                 "python": platform.python_version(), "cpu_count": os.cpu_count(),
                 "world_size": world_size},
        "started": now(),
        "finished": None,
        "reason": None,
        "resumed": [],
    }


def update_record(run_dir: str | os.PathLike, **changes: Any) -> dict:
    p = Path(run_dir) / "run.json"
    rec = read_json(p) if p.is_file() else {}
    rec.update(changes)
    write_json(p, rec)
    return rec


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "iaalib": __version__}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _plain(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
