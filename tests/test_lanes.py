"""iaalib.book.lanes: 01 and 10 run alone, each paper's chapters in order in their own lane, the
lanes side by side with book_parallel > 1; a failure stops every lane after its notebook."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from iaalib.book import lanes

NAMES = ["01_dataset", "02_kao_mtcnn", "03_kao_mtrl", "04_kao_transfer", "05_saf_model",
         "06_saf_ablations", "07_saf_tsne", "10_summary"]


def _plans(tmp_path, names=NAMES):
    nbs = [tmp_path / f"{n}.ipynb" for n in names]
    return nbs, [(nb, {"n": i}) for i, nb in enumerate(nbs)]


def _stems(stage):
    return [[nb.stem[:2] for nb, _ in lane] for lane in stage]


def test_stages_are_barriers_and_one_lane_per_paper(tmp_path):
    nbs, plans = _plans(tmp_path)
    assert [_stems(s) for s in lanes.stages(plans, nbs)] == [
        [["01"]], [["02", "03", "04"], ["05", "06", "07"]], [["10"]]]
    nbs, plans = _plans(tmp_path, ["02_kao_mtcnn", "05_saf_model"])       # --only 2 5: no 01
    assert [_stems(s) for s in lanes.stages(plans, nbs)] == [[["02"]], [["05"]]]


def sleepy(nb: Path, params: dict) -> tuple[str, float, float]:
    """A stand-in notebook: sleeps, says when it ran (module level: it must pickle)."""
    start = time.time()
    time.sleep(0.5)
    if "fail" in nb.stem:
        return nb.stem, start, -1.0
    return nb.stem, start, time.time()


@pytest.mark.parametrize("parallel", [1, 2])
def test_run_stages_orders_each_lane_and_overlaps_the_lanes(tmp_path, parallel):
    nbs, plans = _plans(tmp_path, ["01_dataset", "02_kao_mtcnn", "03_kao_mtrl", "05_saf_model",
                                   "06_saf_ablations", "10_summary"])
    seen, announced = [], []
    lanes.run_stages(plans, nbs, parallel=parallel, execute=sleepy, announce=announced.append,
                     done=lambda nb, r: seen.append(r) or True)
    at = {stem: (start, end) for stem, start, end in seen}
    assert len(announced) == 6 and set(at) == {p.stem for p in nbs}
    assert at["02_kao_mtcnn"][1] <= at["03_kao_mtrl"][0]                # a lane is in order
    assert at["05_saf_model"][1] <= at["06_saf_ablations"][0]
    assert at["01_dataset"][1] <= min(at[s][0] for s in at if s != "01_dataset")
    assert at["10_summary"][0] >= max(at[s][1] for s in at if s != "10_summary")
    overlap = at["02_kao_mtcnn"][0] < at["05_saf_model"][1] and at["05_saf_model"][0] < at["02_kao_mtcnn"][1]
    assert overlap == (parallel == 2)


def test_a_failure_stops_the_lanes_and_the_later_stages(tmp_path):
    nbs, plans = _plans(tmp_path, ["01_dataset", "02_kao_fail", "03_kao_mtrl", "05_saf_model",
                                   "10_summary"])
    seen = []
    lanes.run_stages(plans, nbs, parallel=2, execute=sleepy,
                     done=lambda nb, r: seen.append(r[0]) or r[2] > 0)
    assert "02_kao_fail" in seen and "03_kao_mtrl" not in seen and "10_summary" not in seen
