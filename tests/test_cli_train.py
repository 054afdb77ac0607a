"""`iaa train / eval / score` round trips on a tiny SynthAVA (300 images at short edge 64),
made and filtered with the `iaa data` commands, and the exit codes of failures."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iaalib._io import read_json
from iaalib.cli import build_parser, main
from iaalib.synth.ava import kao_threshold


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    ava = root / "ava"
    assert main(["data", "synth", "--out", str(ava), "--n", "300", "--short-edge", "64",
                 "--workers", "2"]) == 0
    manifests = root / "manifests"
    assert main(["data", "filter", "--ava-txt", str(ava / "AVA.txt"), "--tags-txt",
                 str(ava / "tags.txt"), "--protocol", "kao",
                 "--min-tag-count", str(int(kao_threshold(300))), "--test-size", "40",
                 "--val-size", "30", "--out", str(manifests)]) == 0
    cfg = root / "saf.yaml"
    cfg.write_text(
        "name: cli-saf\n"
        "data:\n  train: manifests/train.csv\n  val: manifests/val.csv\n"
        "  test: manifests/test.csv\n  image_dir: ava/images\n  transform: saf\n"
        "  short_edge: 64\n"
        "model:\n  family: saf\n  width_mult: 0.0625\n  group_size: 2\n"
        "epochs: 1\nbatch_size: 16\ndevice: cpu\nnum_threads: 1\n")
    return {"root": root, "ava": ava, "manifests": manifests, "config": cfg}


@pytest.fixture(scope="module")
def trained(synth):
    run = synth["root"] / "run"
    assert main(["train", "--config", str(synth["config"]), "--out", str(run), "--quiet"]) == 0
    return run


@pytest.mark.slow
def test_train_writes_a_finished_run_and_reuses_it(synth, trained, capsys):
    rec = read_json(trained / "run.json")
    assert rec["status"] == "finished"
    n_train = len(pd.read_csv(synth["manifests"] / "train.csv"))
    hist = [json.loads(line) for line in (trained / "history.jsonl").read_text().splitlines()]
    assert len(hist) == 1 and hist[0]["n_images"] == n_train
    assert main(["train", "--config", str(synth["config"]), "--out", str(trained)]) == 0
    assert read_json(trained / "run.json") == rec  # checkpoint-or-train: nothing retrained
    assert f"run: {trained}" in capsys.readouterr().out


@pytest.mark.slow
def test_eval_reports_the_paper_metrics(synth, trained, tmp_path):
    out = tmp_path / "metrics.json"
    assert main(["eval", "--run", str(trained), "--out", str(out)]) == 0
    m = read_json(out)
    assert {"srcc_mean", "plcc_mean", "srcc_sd", "plcc_sd", "acc", "emd", "n_images",
            "n_skipped"} <= set(m)
    assert m["n_images"] == len(pd.read_csv(synth["manifests"] / "test.csv"))
    run_metrics = read_json(trained / "metrics.json")
    for key in ("srcc_mean", "plcc_mean", "srcc_sd", "plcc_sd", "acc", "emd"):
        assert m[key] == pytest.approx(run_metrics[key])
    val = tmp_path / "val.json"
    assert main(["eval", "--run", str(trained), "--manifest", str(synth["manifests"] / "val.csv"),
                 "--images", str(synth["ava"] / "images"), "--checkpoint", "last",
                 "--out", str(val)]) == 0
    assert read_json(val)["n_images"] == 30


@pytest.mark.slow
def test_score_ranks_a_folder_with_a_corrupt_file_and_a_png_with_alpha(synth, trained, tmp_path,
                                                                        capsys):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for k, src in enumerate(sorted((synth["ava"] / "images").glob("*.jpg"))[:6]):
        (folder / ("sub" if k % 2 else "") / src.name).write_bytes(src.read_bytes())
    rgba = np.full((64, 96, 4), 120, np.uint8)
    rgba[..., 3] = 0
    rgba[20:40, 30:60, 3] = 255
    Image.fromarray(rgba, "RGBA").save(folder / "logo.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff" + bytes(100))
    out = tmp_path / "scores.csv"
    assert main(["score", str(folder), "--checkpoint", str(trained / "checkpoints" / "best.pt"),
                 "--out", str(out), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out)
    assert list(table.columns[:13]) == ["path", "mean", "sd", *[f"p{i}" for i in range(1, 11)]]
    assert len(table) == 7 and table["mean"].is_monotonic_decreasing
    assert table["path"].str.endswith("logo.png").any()
    assert not table["path"].str.endswith("broken.jpg").any()
    np.testing.assert_allclose(table[[f"p{i}" for i in range(1, 11)]].sum(axis=1), 1, atol=1e-5)
    assert "skipped 1 unreadable" in printed
    assert sum(line.strip().startswith(("1 ", "2 ", "3 ")) for line in printed.splitlines()) == 3


def test_failures_exit_non_zero_with_a_clear_message(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  family: mtcnn1\n  colour: red\n")
    good = tmp_path / "good.yaml"
    good.write_text("data:\n  train: train.csv\n")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (80, 64), (10, 200, 30)).save(photos / "a.jpg")
    cases = [
        (["train", "--config", str(tmp_path / "missing.yaml")], "config file not found"),
        (["train", "--config", str(bad)], f"{bad}:3: unknown key 'model.colour'"),
        (["train", "--config", str(good), "--out", str(tmp_path / "new"), "--resume"],
         "nothing to resume"),
        (["eval", "--run", str(tmp_path)], "checkpoint not found"),
        (["score", str(photos), "--checkpoint", str(garbage)], "not a readable iaalib checkpoint"),
        (["score", str(tmp_path / "nowhere"), "--checkpoint", str(garbage)], "not a directory"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("iaa: error:") and fragment in err, (argv, err)


@pytest.mark.parametrize("command, options", [
    ("train", ["--config", "--out", "--resume", "--force", "--quiet"]),
    ("eval", ["--run", "--manifest", "--images", "--tid", "--checkpoint", "--batch-size",
              "--device", "--out"]),
    ("score", ["directory", "--checkpoint", "--out", "--top", "--batch-size", "--workers",
               "--device"]),
])
def test_help_is_complete(command, options, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text
