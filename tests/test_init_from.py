"""Fine-tuning from another run (Kao et al. Sec. III-E, Table V): matching weights are copied."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from iaalib.engine.checkpoint import init_weights_from
from iaalib.errors import CheckpointError
from iaalib.engine.evaluate import load_model
from iaalib.engine.trainer import train

from engine_helpers import make_tiny_dataset, tiny_config


def test_finetune_copies_trunk_and_reinitialises_the_missing_tag_head(tmp_path):
    paths = make_tiny_dataset(tmp_path / "data")
    source = train(tiny_config(paths, epochs=1), out=tmp_path / "source", quiet=True)

    # an aesthetic-only target (no tag columns), like Photo.net
    target = {}
    for split in ("train", "val", "test"):
        df = pd.read_csv(paths[split])
        df = df.drop(columns=[c for c in df.columns if c.startswith("tag_")])
        target[split] = tmp_path / f"target_{split}.csv"
        df.to_csv(target[split], index=False)
    target["images"] = paths["images"]

    cfg = tiny_config(target, epochs=1)
    cfg = cfg.with_overrides({"model.init_from": str(source.dir), "loss.lam": 0, "optim.lr": 0.0,
                              "optim.weight_decay": 0.0})
    run = train(cfg, out=tmp_path / "ft", quiet=True)

    src_model, _, _ = load_model(source.dir)
    ft_model, _, _ = load_model(run.dir)
    src, ft = src_model.state_dict(), ft_model.state_dict()
    shared = [k for k in ft if k in src and src[k].shape == ft[k].shape]
    assert shared, "nothing shared"
    # lr = 0 and no weight decay: every copied tensor is unchanged by the fine-tuning run
    for k in shared:
        if ft[k].is_floating_point():
            assert torch.equal(src[k], ft[k]), k
    record = run.record["init_from"]
    assert record["copied"] == len(shared)
    assert any("tag" in k or "semantic" in k for k in record["skipped"]), record["skipped"]


def test_init_from_a_foreign_model_is_an_error(tmp_path):
    paths = make_tiny_dataset(tmp_path / "data", n=24)
    source = train(tiny_config(paths, epochs=1), out=tmp_path / "source", quiet=True)
    unrelated = torch.nn.Linear(3, 2)
    with pytest.raises(CheckpointError, match="no parameter matches"):
        init_weights_from(unrelated, source.dir)
