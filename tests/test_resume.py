"""Resume equivalence: a run interrupted mid-epoch (exception, or SIGKILL of a separate process)
and resumed ends with exactly the metrics, predictions and history of an uninterrupted run
(CPU, deterministic mode; the model has dropout so the RNG state must be restored too)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import iaalib.engine.trainer as T
from engine_helpers import make_tiny_dataset, tiny_config
from iaalib._io import read_json
from iaalib.engine.checkpoint import load_checkpoint
from iaalib.engine.runrecord import read_history

TIMING_KEYS = ("seconds", "images_per_s")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"), n=96)  # 48 train: 6 steps/epoch


def _config(data, variant="mtcnn1", num_workers=0):
    # dropout 0.5: the torch RNG state must be restored exactly for the results to match
    kao_model = {"family": "mtcnn1", "width_mult": 0.125, "fc_dim": 32, "dropout": 0.5}
    if variant == "mtcnn1":
        cfg = tiny_config(data, family="mtcnn1", epochs=3, checkpoint_every=1, model=kao_model)
    elif variant == "mtrl":  # Ω updates every 2 steps, λ → 0 after epoch 2, step lr schedule
        cfg = tiny_config(data, family="mtcnn1", epochs=3, checkpoint_every=1, model=kao_model,
                          loss={"lam": 1, "mtrl": {"enabled": True, "update_unit": "step",
                                                   "update_every": 2},
                                "semantic_early_stop": {"enabled": True, "min_delta": 1.0}},
                          optim={"schedule": "step", "step_size": 1, "gamma": 0.5})
    elif variant == "ema":  # the averaged weights and their step count are resume state too
        cfg = tiny_config(data, family="mtcnn1", epochs=3, checkpoint_every=1, model=kao_model,
                          optim={"ema_epochs": 0.5})
    else:  # SAF: aspect-ratio buckets, batch norm in the decoder
        cfg = tiny_config(data, family="saf", epochs=3, checkpoint_every=1)
    return cfg.with_overrides({"data.num_workers": num_workers})


@pytest.fixture(scope="module")
def references(data, tmp_path_factory):
    cache = {}

    def get(variant):
        if variant not in cache:
            cache[variant] = T.train(_config(data, variant),
                                     out=tmp_path_factory.mktemp("ref") / variant)
        return cache[variant]
    return get


@pytest.fixture(scope="module")
def reference(references):
    return references("mtcnn1")


def _assert_same_results(run_dir: Path, ref_dir: Path) -> None:
    assert read_json(run_dir / "metrics.json") == read_json(ref_dir / "metrics.json")
    assert (run_dir / "predictions.csv").read_bytes() == (ref_dir / "predictions.csv").read_bytes()
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]
    assert strip(read_history(run_dir)) == strip(read_history(ref_dir))
    a = load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(ref_dir / "checkpoints" / "last.pt")["model"]
    assert all((a[k] == b[k]).all() for k in b)


@pytest.mark.parametrize("variant, num_workers", [("mtcnn1", 0), ("mtcnn1", 2), ("mtrl", 0),
                                                   ("ema", 0), ("saf", 0)])
def test_interrupted_then_resumed_equals_uninterrupted(data, references, tmp_path, monkeypatch,
                                                       variant, num_workers):
    # with 2 loader workers too: augmentation is a function of (seed, epoch, index), so the
    # reference (no workers; num_workers is not part of the config hash) is matched exactly
    reference = references(variant)
    real_save = T.save_checkpoint

    def save_then_die(path, state):
        real_save(path, state)
        if state["epoch"] == 1 and state["batch"] == 2:
            raise KeyboardInterrupt("simulated interruption after a mid-epoch checkpoint")

    monkeypatch.setattr(T, "save_checkpoint", save_then_die)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        T.train(_config(data, variant, num_workers), out=out)
    assert read_json(out / "run.json")["status"] == "failed"
    monkeypatch.setattr(T, "save_checkpoint", real_save)
    resumed = T.train(_config(data, variant, num_workers), out=out)
    rec = resumed.record
    assert rec["status"] == "finished"
    assert [(r["epoch"], r["batch"], r["step"]) for r in rec["resumed"]] == [(1, 2, 8)]
    _assert_same_results(out, reference.dir)
    if variant == "mtrl":
        np.testing.assert_array_equal(resumed.omega(), reference.omega())
        assert [h["lam"] for h in resumed.history] == [1.0, 1.0, 0.0]


def test_interrupted_after_the_last_epoch_repeats_it_exactly(data, reference, tmp_path,
                                                             monkeypatch):
    """The last epoch writes no resume state (finish() replaces last.pt at once): a run stopped
    between its last epoch and finishing resumes from its last checkpoint and ends the same."""
    def stop(self):
        raise KeyboardInterrupt("simulated interruption before finishing")

    monkeypatch.setattr(T.Trainer, "finish", stop)
    out = tmp_path / "run"
    cfg = _config(data)
    with pytest.raises(KeyboardInterrupt):
        T.train(cfg, out=out)
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (ckpt["epoch"], ckpt["batch"]) == (cfg.epochs - 1, 5)  # the last mid-epoch checkpoint
    assert len(read_history(out)) == cfg.epochs                   # the epoch itself was recorded
    monkeypatch.undo()
    resumed = T.train(cfg, out=out)
    assert [(r["epoch"], r["batch"]) for r in resumed.record["resumed"]] == [(2, 5)]
    _assert_same_results(out, reference.dir)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(data, reference, tmp_path):
    cfg = _config(data)
    cfg_file = tmp_path / "cfg.yaml"
    cfg.save(cfg_file)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "iaalib.cli", "-v", "train", "--config",
                             str(cfg_file),
                             "--out", str(out)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)
    killed_after = None
    deadline = time.monotonic() + 300
    try:
        for line in proc.stderr:
            if "checkpoint saved: epoch=1 batch=2" in line:  # mid-epoch, second epoch
                proc.send_signal(signal.SIGKILL)
                killed_after = line.strip()
                break
            assert time.monotonic() < deadline, "training subprocess too slow"
    finally:
        proc.kill()
        proc.wait()
    assert killed_after is not None, "the subprocess ended before its mid-epoch checkpoint"
    assert proc.returncode == -signal.SIGKILL
    rec = read_json(out / "run.json")
    assert rec["status"] == "running"  # SIGKILL leaves no chance to record anything
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")  # atomic: always loadable
    assert ckpt["epoch"] < cfg.epochs
    resumed = T.train(cfg, out=out)
    where = resumed.record["resumed"]
    assert len(where) == 1 and (where[0]["epoch"], where[0]["batch"]) == (ckpt["epoch"],
                                                                          ckpt["batch"])
    assert ckpt["batch"] > 0, "expected to resume mid-epoch"
    _assert_same_results(out, reference.dir)
