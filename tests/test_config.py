"""ExperimentConfig: YAML/JSON round trip, the checkpoint-or-train hash, validation, λ, build_model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from iaalib.engine.config import ExperimentConfig, ModelConfig, resolve_lambda
from iaalib.models import FAMILIES
from iaalib.models.factory import build_model
from iaalib.errors import DataFormatError, IaaError


def _custom() -> ExperimentConfig:
    return ExperimentConfig.from_dict({
        "name": "round-trip",
        "data": {"train": "/d/train.csv", "test": "/d/test.csv", "image_dir": "/d/img",
                 "transform": "saf", "short_edge": 96, "max_long_edge": 300},
        "model": {"family": "saf", "group_size": 4, "split_regressor": False, "fusion": "fc",
                  "width_mult": 0.25, "options": {"spp_levels": [1, 2]}},
        "loss": {"alpha": 0.5, "beta": 0.0, "activation": "kl",
                 "semantic_early_stop": {"enabled": True, "patience": 2}},
        "optim": {"name": "adam", "lr": 1e-4, "schedule": "cosine"},
        "epochs": 3, "batch_size": 6, "seed": 7, "quiet": True})


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_preserves_every_field_and_the_hash(tmp_path, suffix):
    cfg = _custom()
    path = tmp_path / f"cfg{suffix}"
    cfg.save(path)
    back = ExperimentConfig.load(path)
    assert back == cfg
    assert back.to_dict() == cfg.to_dict()
    assert back.config_hash() == cfg.config_hash()
    if suffix == ".json":
        assert json.loads(path.read_text())["model"]["options"] == {"spp_levels": [1, 2]}


def test_hash_ignores_presentation_fields_only():
    cfg = _custom()
    h = cfg.config_hash()
    assert len(h) == 64
    assert cfg.with_overrides({"quiet": False, "name": "other", "data.num_workers": 4,
                               "checkpoint_every": 5}).config_hash() == h
    for change in ({"optim.lr": 2e-4}, {"seed": 8}, {"model.group_size": 8},
                   {"loss.semantic_early_stop.patience": 3}, {"data.test": "/d/other.csv"}):
        assert cfg.with_overrides(change).config_hash() != h, change


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "exp.yaml"
    path.write_text("data:\n  train: manifests/train.csv\n  image_dir: ../images\n")
    cfg = ExperimentConfig.load(path)
    assert cfg.data.train == str(tmp_path / "sub" / "manifests" / "train.csv")
    assert cfg.data.image_dir == str(tmp_path / "images")


def test_unknown_key_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmodel:\n  family: mtcnn1\n  widht_mult: 0.5\n")
    with pytest.raises(DataFormatError) as e:
        ExperimentConfig.load(path)
    assert f"{path}:4:" in str(e.value) and "model.widht_mult" in str(e.value)


@pytest.mark.parametrize("text, line, fragment", [
    ("epochs: two\n", 1, "epochs: expected int"),
    ("seed: 1\nmodel:\n  family: mtcnn9\n", 3, "model.family: must be one of"),
    ("loss:\n  lam: 1/Q\n", 2, "loss.lam"),
    ("batch_size: true\n", 1, "batch_size: expected int"),
    ("model:\n  family: saf\n  decoder: false\n", None, "loss.alpha: must be 0"),
    ("data: [1, 2]\n", 1, "data: expected a mapping"),
    ("data:\n  stem_shift: -1\n", None, "data.stem_shift: must be 0 (no shift) or more"),
    ("data:\n  stem_shift: 1\n", None, "data.stem_shift: must be 0 without model.stem"),
])
def test_bad_values_are_clear_errors(tmp_path, text, line, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(DataFormatError) as e:
        ExperimentConfig.load(path)
    where = f"{path}:{line}:" if line else f"{path}:"
    assert str(e.value).startswith(where) and fragment in str(e.value), str(e.value)


def test_broken_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nmodel: {family: [\n")
    with pytest.raises(DataFormatError, match=r"broken\.yaml:\d+: not valid YAML"):
        ExperimentConfig.load(path)
    with pytest.raises(IaaError, match="config file not found"):
        ExperimentConfig.load(tmp_path / "nope.yaml")


def test_lambda_strategies_of_table_one():
    # Kao et al. Table I: λ = 1/29 and 2/29 with M = 29 tags.
    assert resolve_lambda("1/M", 29) == pytest.approx(1 / 29)
    assert resolve_lambda("2/M", 29) == pytest.approx(2 / 29)
    assert resolve_lambda("1/29", 5) == pytest.approx(1 / 29)
    assert resolve_lambda(0, 29) == 0.0 and resolve_lambda(1, 29) == 1.0
    with pytest.raises(ValueError):
        resolve_lambda("half", 29)
    with pytest.raises(ValueError):
        resolve_lambda("1/M", 0)


def test_with_overrides_rejects_unknown_fields():
    with pytest.raises(IaaError, match="unknown field"):
        ExperimentConfig().with_overrides({"optim.learning_rate": 1})


@pytest.mark.parametrize("family", FAMILIES)
def test_build_model_every_family_returns_the_contract_outputs(family):
    torch.manual_seed(0)
    cfg = ModelConfig(family=family, width_mult=0.0625, fc_dim=None if family == "nima" else 16,
                      group_size=2,
                      backbone="resnet18" if family != "mtcnn_finetune" else "alexnet")
    model = build_model(cfg, num_tags=3).eval()
    size = 67 if family.startswith("mtcnn") else 64
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size + 16))
    if family in ("saf", "nima"):
        assert out["dist_logits"].shape == (2, 10)
    else:
        assert out["aesthetic_logits"].shape == (2, 2) and out["tag_logits"].shape == (2, 3)
        assert model.task_weights().shape[1] == 2 + 3
        assert ("aux_aesthetic_logits" in out) == (family == "mtcnn_enhanced")


def test_kao_models_need_m_but_m_zero_is_the_stcnn():
    with pytest.raises(IaaError, match="semantic tags"):
        build_model(ModelConfig(family="mtcnn1"))  # M unknown
    stcnn = build_model(ModelConfig(family="mtcnn1", width_mult=0.125, fc_dim=8), num_tags=0)
    assert stcnn.task_weights().shape == (8, 2)  # only the aesthetic columns W_a
    with pytest.raises(ValueError, match="set loss.lam: 0"):
        resolve_lambda("1/M", 0)


def test_relative_paths_in_a_dict_resolve_against_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = ExperimentConfig.from_dict({"data": {"train": "m/train.csv", "image_dir": "~/img"}})
    assert cfg.data.train == str(tmp_path / "m" / "train.csv")
    assert cfg.data.image_dir == str(Path.home() / "img")
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg  # absolute paths are a fixed point
