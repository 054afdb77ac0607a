"""Checkpoints: written atomically, read with ``torch.load(..., weights_only=True)`` only.

A checkpoint is a plain dict of tensors and Python primitives with a format marker::

    {"format": "iaalib-checkpoint", "format_version": 1, "config": {...}, "config_hash": str,
     "model": state_dict, "tag_columns": [...], "epoch": int, "batch": int, "step": int, ...}

``epoch``/``batch`` are the sampler position to continue from (batches of ``epoch`` already done).
The trainer adds optimiser, scheduler, RNG states, MTRL Ω and early-stopping state.
"""
from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write, sha256_file
from ..errors import CheckpointError

FORMAT = "iaalib-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (plus the format marker) to ``path`` atomically (tmp file + os.replace)."""
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    with atomic_write(path, "wb") as fh:
        torch.save(state, fh)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read one of our checkpoints on the CPU; anything else raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4" on files that are not ours
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load's weights-only unpickler raises many types on foreign data
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable iaalib checkpoint ({first})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an iaalib checkpoint (no '{FORMAT}' format marker); "
                              "pass a file written by `iaa train` (RUN/checkpoints/best.pt)")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {state['format_version']} is newer than "
                              f"this iaalib understands ({FORMAT_VERSION})")
    return state


def rng_state() -> dict[str, Any]:
    """torch, numpy and Python RNG states as weights_only-loadable values."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def init_weights_from(model: torch.nn.Module, source: str | os.PathLike) -> dict[str, Any]:
    """Copy into ``model`` every parameter/buffer of another run whose name and shape match.

    ``source`` is a checkpoint file or a run directory (its ``checkpoints/best.pt``). Used to
    fine-tune an AVA-trained network on another dataset (Kao et al. Sec. III-E, Table V). Returns
    ``{"checkpoint", "sha256", "copied": [...], "skipped": [...]}``; raises CheckpointError when
    nothing matches (a wrong source must not silently train from scratch).
    """

    path = Path(source)
    if path.is_dir():
        path = path / "checkpoints" / "best.pt"
    state = load_checkpoint(path)["model"]
    own = model.state_dict()
    copied = [k for k, v in state.items() if k in own and own[k].shape == v.shape]
    if not copied:
        raise CheckpointError(f"{path}: no parameter matches the model by name and shape; "
                              "is it a checkpoint of the same model family?")
    own.update({k: state[k] for k in copied})
    model.load_state_dict(own)
    skipped = sorted(set(own) - set(copied))
    return {"checkpoint": os.fspath(path), "sha256": sha256_file(path), "copied": len(copied),
            "skipped": skipped}
