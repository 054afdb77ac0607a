"""Evaluation: metrics against scipy/sklearn, re-evaluating runs, and `iaa score` on a folder."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy import stats
from sklearn.metrics import average_precision_score

import iaalib.engine.trainer as T
from engine_helpers import make_tiny_dataset, tiny_config
from iaalib.data.images import load_image, saf_transform
from iaalib.errors import CheckpointError, IaaError
from iaalib.cli.engine import score_command
from iaalib.engine.evaluate import (compute_metrics, evaluate_run, load_model,
                             score_folder)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def saf_run(data, tmp_path_factory):
    return T.train(tiny_config(data, family="saf", epochs=1), out=tmp_path_factory.mktemp("r") / "saf")


@pytest.fixture(scope="module")
def kao_run(data, tmp_path_factory):
    return T.train(tiny_config(data, family="mtcnn1", epochs=1, val=False),
                   out=tmp_path_factory.mktemp("r") / "kao")


def _frame(n=40, seed=0, distribution=True):
    rng = np.random.default_rng(seed)
    gt = rng.dirichlet(np.ones(10) * 2, n)
    p = 0.5 * gt + 0.5 * rng.dirichlet(np.ones(10) * 2, n)
    i = np.arange(1, 11)
    gm, pm = gt @ i, p @ i
    df = pd.DataFrame({"index": np.arange(n), "image_id": 100 + np.arange(n)})
    if distribution:
        for k in range(10):
            df[f"p{k + 1}"] = p[:, k]
        df["mean"], df["sd"] = pm, np.sqrt(p @ i**2 - pm**2)
        df["p_high"] = p[:, 5:].sum(1)
    else:
        df["p_high"] = rng.random(n)
        df["pred_label"] = (df["p_high"] > 0.5).astype(int)
    df["gt_mean"], df["gt_sd"], df["gt_label"] = gm, np.sqrt(gt @ i**2 - gm**2), (gm > 5).astype(int)
    for k in range(10):
        df[f"gt_p{k + 1}"] = gt[:, k]
    tags = (rng.random((n, 2)) < 0.5).astype(float)
    for j, name in enumerate(("tag_3", "tag_7")):
        df[f"gt_{name}"] = tags[:, j]
        df[f"pred_{name}"] = np.clip(tags[:, j] * 0.3 + rng.random(n) * 0.7, 0, 1)
    return df, p, gt, tags


def test_distribution_metrics_equal_scipy_and_closed_forms():
    df, p, gt, tags = _frame()
    m = compute_metrics(df, n_total=43)
    i = np.arange(1, 11)
    pm, gm = p @ i, gt @ i
    ps, gs = np.sqrt(p @ i**2 - pm**2), np.sqrt(gt @ i**2 - gm**2)
    assert m["n_images"] == 40 and m["n_skipped"] == 3
    assert m["srcc_mean"] == pytest.approx(stats.spearmanr(pm, gm)[0])
    assert m["plcc_mean"] == pytest.approx(stats.pearsonr(pm, gm)[0])
    assert m["srcc_sd"] == pytest.approx(stats.spearmanr(ps, gs)[0])
    assert m["plcc_sd"] == pytest.approx(stats.pearsonr(ps, gs)[0])
    cdf = np.cumsum(p, 1) - np.cumsum(gt, 1)
    assert m["emd"] == pytest.approx(np.mean(np.sqrt(np.mean(cdf**2, 1))))
    assert m["acc"] == pytest.approx(np.mean((pm > 5) == (gm > 5)))
    assert m["srcc_p_high"] == pytest.approx(stats.spearmanr(p[:, 5:].sum(1), gm)[0])
    ap = np.mean([average_precision_score(tags[:, j], df[f"pred_tag_{t}"])
                  for j, t in enumerate((3, 7))])
    assert m["semantic_ap"] == pytest.approx(ap)
    correct = (pm > 5) == (gm > 5)
    assert m["per_tag_acc"]["tag_3"] == pytest.approx(correct[tags[:, 0] == 1].mean())


def test_classifier_metrics_report_what_applies():
    df, _, gt, _ = _frame(distribution=False)
    m = compute_metrics(df)
    gm = gt @ np.arange(1, 11)
    assert m["acc"] == pytest.approx(np.mean(df["pred_label"] == (gm > 5)))
    assert m["srcc_mean"] is m["plcc_sd"] is m["emd"] is None
    assert m["srcc_p_high"] == pytest.approx(stats.spearmanr(df["p_high"], gm)[0])
    one = compute_metrics(df.iloc[:1])
    assert one["n_images"] == 1 and one["srcc_p_high"] is None  # undefined, not an error


def test_evaluate_run_reproduces_the_runs_metrics(saf_run, kao_run):
    for run in (saf_run, kao_run):
        again = evaluate_run(run.dir)
        for key, value in run.metrics.items():
            if key in again and key not in ("checkpoint",):
                assert again[key] == pytest.approx(value), key


def test_evaluate_on_another_manifest_counts_skipped_images(saf_run, data, tmp_path):
    train = pd.read_csv(data["train"])
    images = tmp_path / "images"
    images.mkdir()
    for image_id in train["image_id"][:-1]:  # the last image is missing
        (images / f"{image_id}.jpg").write_bytes((data["images"] / f"{image_id}.jpg").read_bytes())
    m = evaluate_run(saf_run.dir, manifest=data["train"], images=images, checkpoint="last")
    assert m["n_images"] == len(train) - 1 and m["n_skipped"] == 1
    assert m["checkpoint"] == "last" and -1 <= m["srcc_mean"] <= 1
    from_file = evaluate_run(saf_run.dir / "checkpoints" / "last.pt", manifest=data["train"],
                             images=images)
    assert from_file["srcc_mean"] == m["srcc_mean"] and from_file["n_skipped"] == 1


@pytest.fixture
def photo_folder(data, tmp_path):
    root = tmp_path / "photos"
    (root / "nested").mkdir(parents=True)
    ids = pd.read_csv(data["test"])["image_id"].tolist()[:5]
    for k, image_id in enumerate(ids):
        target = (root / "nested" if k % 2 else root) / f"img{k}.jpg"
        target.write_bytes((data["images"] / f"{image_id}.jpg").read_bytes())
    rgba = np.zeros((70, 90, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.linspace(0, 255, 90).astype(np.uint8)[None, :]
    Image.fromarray(rgba, "RGBA").save(root / "alpha.PNG")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


def test_score_folder_ranks_every_readable_image(saf_run, photo_folder, caplog):
    table, skipped = score_folder(photo_folder, saf_run.dir, batch_size=4, return_skipped=True)
    assert skipped == 1 and "corrupt.jpg" in caplog.text
    assert list(table.columns) == ["path", "mean", "sd", *[f"p{i}" for i in range(1, 11)], "p_high"]
    assert len(table) == 6 and any(p.endswith("alpha.PNG") for p in table["path"])
    assert table["mean"].is_monotonic_decreasing
    # every row against an independent single-image forward pass (no batching, no bucketing)
    model, cfg, _ = load_model(saf_run.dir)
    transform = saf_transform(False, short_edge=cfg.data.short_edge)
    for row in table.itertuples(index=False):
        x = transform(load_image(row.path, short_edge=cfg.data.short_edge))[None]
        with torch.no_grad():
            p = torch.softmax(model(x)["dist_logits"], 1)[0].double().numpy()
        assert row.mean == pytest.approx(float(p @ np.arange(1, 11)), abs=1e-4)
        assert row.p1 == pytest.approx(p[0], abs=1e-5)


def test_score_kao_classifier_ranks_by_p_high(kao_run, photo_folder):
    table = score_folder(photo_folder, kao_run.dir / "checkpoints" / "best.pt")
    assert len(table) == 6 and table["mean"].isna().all()
    assert table["p_high"].is_monotonic_decreasing


def test_score_cli_writes_csv_and_prints_top(saf_run, photo_folder, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    args = argparse.Namespace(directory=str(photo_folder), checkpoint=str(saf_run.dir),
                              out=str(out), top=2, batch_size=3, workers=2,
                              device="cpu")
    assert score_command(args) == 0
    printed = capsys.readouterr().out
    assert "scored 6 image(s), skipped 1 unreadable" in printed
    csv = pd.read_csv(out)
    assert len(csv) == 6 and csv["mean"].is_monotonic_decreasing
    assert csv["path"][0] in printed and csv["path"][1] in printed


def test_score_errors(saf_run, tmp_path):
    with pytest.raises(IaaError, match="no image files"):
        score_folder(tmp_path, saf_run.dir)
    (tmp_path / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        score_folder(tmp_path, tmp_path / "x.jpg")


def test_cross_dataset_tid_mode_correlates_predicted_mean_with_mos(saf_run, tmp_path, capsys):
    from iaalib.cli import main
    root = tmp_path / "tid"
    (root / "distorted_images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines, mos = [], []
    for ref in (1, 2):
        for dist in (1, 8):
            for level in (1, 2, 3):
                name = f"i{ref:02d}_{dist:02d}_{level}.bmp"
                pixels = np.clip(rng.normal(60 * level, 30, (64, 96, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / "distorted_images" / name)
                mos.append(round(7.0 - level + rng.random(), 4))
                lines.append(f"{mos[-1]} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    from iaalib.engine.evaluate import evaluate_tid
    r = evaluate_tid(saf_run.dir, root, return_predictions=True)
    assert r["n_images"] == 12 and r["n_skipped"] == 0 and r["score"] == "mean"
    pred = r["predictions"]
    # independent reference: each file through the model alone, then scipy
    model, cfg, _ = load_model(saf_run.dir)
    transform = saf_transform(False, short_edge=cfg.data.short_edge)
    means = []
    for path in pred["path"]:
        with torch.no_grad():
            p = torch.softmax(model(transform(load_image(path))[None])["dist_logits"], 1)[0]
        means.append(float(p.double() @ torch.arange(1, 11, dtype=torch.float64)))
    np.testing.assert_allclose(pred["mean"], means, atol=1e-4)
    mos_by_name = dict(zip([ln.split()[1] for ln in lines], mos))
    truth = [mos_by_name[p.rsplit("/", 1)[1]] for p in pred["path"]]
    assert r["srcc_mean"] == pytest.approx(stats.spearmanr(means, truth)[0], abs=1e-6)
    assert r["plcc_mean"] == pytest.approx(stats.pearsonr(means, truth)[0], abs=1e-4)
    out = tmp_path / "tid.json"
    assert main(["eval", "--run", str(saf_run.dir), "--tid", str(root), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["srcc_mean"] == pytest.approx(r["srcc_mean"])
