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


def _runs(tmp: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp / "home" / "runs").glob("*/run.json"))]


def test_every_notebook_runs_with_the_ava_networks(rehearsal_book):
    record = json.loads((rehearsal_book / "build" / "book-run.json").read_text())
    statuses = {nb["name"]: nb["status"] for nb in record["notebooks"]}
    assert len(statuses) == 10 and set(statuses.values()) == {"ok"}, statuses


def test_every_run_is_full_width_at_paper_size_and_stops_after_two_steps(rehearsal_book):
    runs = _runs(rehearsal_book)
    assert len(runs) >= 30
    for run in runs:
        assert run["status"] in ("finished", "diverged"), run["name"]
        cfg = (rehearsal_book / "home" / "runs").glob(f"{run['name']}-*/config.yaml")
        text = next(cfg).read_text()
        assert "width_mult: 1.0" in text and "stem: null" in text, run["name"]
        assert "max_steps: 2" in text, run["name"]
        if run["status"] == "finished":
            assert run["steps"] <= 2, run["name"]
    families = {r["name"].split("-")[0] for r in runs}
    assert {"mtcnn1", "saf", "nima"} <= families, families
