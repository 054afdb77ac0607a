"""The rehearsal book: every notebook with the ava profile's networks and pipeline, at AVA sizes.

`iaa book --profile rehearsal` in a fresh IAA_HOME, pointed at an AVA-format dataset whose image
folder has truncated and missing JPEGs (benchmarks/bench_rehearsal.py builds it), with
torchvision's ImageNet checkpoint files replaced by random weights of the same networks (there is
no network here), so the "imagenet" loading path runs as it will on a GPU machine.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.bench_rehearsal import DAMAGED, build_rehearsal

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rehearsal_book(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rehearsal")
    built = build_rehearsal(tmp)
    assert built["exit_code"] == 0, built["stderr"][-6000:]
    (tmp / "book.log").write_text(built["stderr"])
    return tmp


def test_every_notebook_runs_with_the_ava_networks(rehearsal_book):
    record = json.loads((rehearsal_book / "build" / "book-run.json").read_text())
    statuses = {nb["name"]: nb["status"] for nb in record["notebooks"]}
    assert len(statuses) == 10 and set(statuses.values()) == {"ok"}, statuses


def test_damaged_jpegs_are_skipped_and_counted_not_fatal(rehearsal_book):
    """The resized cache skips the 2 truncated and 1 missing JPEGs, counted by reason; training
    then meets them as missing files and counts them (never an error, never silent)."""
    record = json.loads((rehearsal_book / "build" / "book-run.json").read_text())
    cache = record["data"]["resized_images"]
    assert sum(cache["skipped"].values()) == len(DAMAGED["truncated"]) + len(DAMAGED["missing"])
    assert cache["skipped"].get("missing") == len(DAMAGED["missing"])
    assert cache["n_images"] == 240 and cache["n_written"] == 240 - 3


def test_every_run_is_the_ava_network_at_paper_size_stopped_after_two_steps(rehearsal_book):
    from iaalib.engine.config import ExperimentConfig

    runs = sorted((rehearsal_book / "home" / "runs").glob("*/run.json"))
    assert len(runs) >= 30
    families = set()
    for path in runs:
        run = json.loads(path.read_text())
        cfg = ExperimentConfig.load(path.parent / "config.yaml")
        families.add(cfg.model.family)
        assert run["status"] in ("finished", "diverged"), run["name"]
        assert cfg.model.stem is None and cfg.model.width_mult == 1.0 and cfg.max_steps == 2
        assert (cfg.data.crop, cfg.data.resize) == (227, 256) if cfg.data.transform == "kao" \
            else cfg.data.short_edge == 256
        if not run["name"].startswith("kao-target-"):  # AVA's images: their resized copy
            assert cfg.data.image_dir.split("/")[-1].startswith("resized-e256-"), run["name"]
        if run["status"] == "finished":
            assert run["steps"] <= 2 and run["peak_memory"]["mib"] > 0
        if cfg.model.family in ("mtcnn_finetune", "saf", "nima") and cfg.model.backbone != "vgg16_bn":
            assert cfg.model.weights == "imagenet" or cfg.model.init_from, run["name"]
    assert families >= {"mtcnn1", "mtcnn2", "mtcnn3", "mtcnn_enhanced", "mtcnn_finetune", "saf",
                        "nima"}, families
