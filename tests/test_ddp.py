"""DDP on the CPU (gloo, 2 processes via torchrun) against one process taking the same steps.

Two ranks with micro-batches of 4 (global batch 8) average their gradients; one process with
``grad_accumulation: 2`` and the same micro-batches averages the same two gradients. The bucket
sampler gives rank r the micro-batches r, r+2, ..., which are exactly the consecutive pairs the
single process accumulates, so both runs take the same optimiser steps. They differ only in the
floating-point order of the gradient sums (and the model has no dropout and no batch norm, whose
per-rank RNG / statistics would differ by design), so we require predictions within 1e-4 and the
same accuracy.

Stated tolerance: |Δ p_high| ≤ 1e-4 per test image, |Δ loss| ≤ 1e-5 per epoch, equal acc.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import iaalib.engine.trainer as T
from engine_helpers import make_tiny_dataset, tiny_config
from iaalib._io import read_json
from iaalib.engine.runrecord import Run

pytestmark = pytest.mark.slow


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


#: torchrun's single-machine launch, and the multi-node form (c10d rendezvous at an endpoint) on
#: one node: the command a cluster runs on every node, with --nnodes N.
LAUNCHERS = {
    "standalone": lambda: ["--standalone", "--nproc_per_node", "2"],
    "rendezvous": lambda: ["--nnodes", "1", "--nproc_per_node", "2", "--rdzv_backend", "c10d",
                           "--rdzv_endpoint", f"localhost:{_free_port()}", "--rdzv_id", "iaa-test"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_gloo_ranks_match_one_process_with_the_same_global_batch(tmp_path, launcher):
    data = make_tiny_dataset(tmp_path / "tiny")  # 24 train / 12 val / 12 test images
    base = {"model": {"family": "mtcnn1", "width_mult": 0.125, "fc_dim": 32, "dropout": 0.0},
            "epochs": 2, "batch_size": 8}
    single_cfg = tiny_config(data, family="mtcnn1", grad_accumulation=2, **base)
    ddp_cfg = tiny_config(data, family="mtcnn1", grad_accumulation=1, **base)
    single = T.train(single_cfg, out=tmp_path / "single")

    cfg_file = tmp_path / "ddp.yaml"
    ddp_cfg.save(cfg_file)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *LAUNCHERS[launcher](),
         "-m", "iaalib.cli", "train", "--config", str(cfg_file), "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = Run(tmp_path / "ddp")
    rec = read_json(ddp.dir / "run.json")
    assert rec["status"] == "finished" and rec["host"]["world_size"] == 2
    assert proc.stdout.count("run: ") == 1  # rank-0 logging only

    # the same optimiser steps, images and history
    hs, hd = single.history, ddp.history
    assert [h["step"] for h in hd] == [h["step"] for h in hs] == [3, 6]
    assert [h["n_images"] for h in hd] == [h["n_images"] for h in hs] == [24, 24]
    for a, b in zip(hs, hd):
        assert b["train_total"] == pytest.approx(a["train_total"], abs=1e-5)
        assert b["val_acc"] == a["val_acc"]

    # predictions gathered from both ranks: every test image once, in manifest order
    ps, pd_ = single.predictions, ddp.predictions
    assert pd_["image_id"].tolist() == ps["image_id"].tolist()
    np.testing.assert_allclose(pd_["p_high"], ps["p_high"], atol=1e-4)
    ms, md = single.metrics, ddp.metrics
    assert md["n_images"] == ms["n_images"] == 12 and md["n_skipped"] == 0
    assert md["acc"] == ms["acc"]
    assert md["srcc_p_high"] == pytest.approx(ms["srcc_p_high"], abs=1e-3)
