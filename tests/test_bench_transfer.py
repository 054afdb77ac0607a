"""benchmarks.bench_transfer.spread: a claim's per-seed differences, from its runs' predictions."""
import numpy as np
import pandas as pd
import pytest

from benchmarks import bench_transfer


def _run(tmp_path, name, correct):
    d = tmp_path / name
    d.mkdir()
    gt = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    pred = np.where(np.asarray(correct, bool), gt, 1 - gt)
    pd.DataFrame({"image_id": np.arange(10), "pred_label": pred, "gt_label": gt}).to_csv(
        d / "predictions.csv", index=False)
    return {"run_dir": str(d)}


def test_spread_by_hand(tmp_path):
    # better arm: 8/10 and 9/10 correct; worse arm: 6/10 and 6/10 -> 20 and 30 points.
    better = [_run(tmp_path, "b0", [1] * 8 + [0] * 2), _run(tmp_path, "b1", [1] * 9 + [0])]
    worse = [_run(tmp_path, "w0", [1] * 6 + [0] * 4), _run(tmp_path, "w1", [0] * 4 + [1] * 6)]
    claim = {"metric": "acc", "confidence": 0.95, "provenance": better + worse}
    out = bench_transfer.spread(claim)
    assert out["per_seed_difference"] == pytest.approx([20.0, 30.0])
    assert out["seed_sd"] == pytest.approx(np.std([20.0, 30.0], ddof=1), abs=1e-3)
    assert out["n_images"] == 10 and len(out["image_only_width"]) == 2
    assert all(w > 0 for w in out["image_only_width"])
    (tmp_path / "w1" / "predictions.csv").unlink()  # a run gone from disk: no spread
    assert bench_transfer.spread(claim) is None
