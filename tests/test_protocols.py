"""iaalib.data.protocols: Kao et al.'s tag filter / random split / δ and the standard split, checked on
real tagged AVA lines against independent pure-Python counts, and on hand-made boundary cases."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from iaalib.data.ava import read_ava_txt, read_id_list, read_tags
from iaalib.data.protocols import (MANIFEST_COLUMNS, delta_keep, format_summary, kao_protocol,
                                   standard_protocol)
from tests.conftest import shared_file

SUMMARY_KEYS = {"protocol", "n_rows", "n_images", "n_train", "n_test", "n_val", "kept_tags",
                "kept_tag_names", "tag_counts", "delta", "seed", "min_tag_count", "test_size",
                "n_train_before_delta", "n_dropped_no_kept_tag", "n_high_train", "n_low_train",
                "label_file", "label_sha256"}
MIN_TAGS = 150  # the real subset has 4,011 images: no tag reaches the paper's 3000


@pytest.fixture(scope="module")
def real_lines(tmp_path_factory):
    """Both real tagged subsets in one AVA.txt-format file (tmp, never in the repo)."""
    text = "".join(shared_file("ava", "subsets_with_tags", n).read_text().rstrip("\n") + "\n"
                   for n in ("jiazheng_AVA_first11.txt", "qiushiyang_small_test.txt"))
    path = tmp_path_factory.mktemp("ava") / "AVA.txt"
    path.write_text(text)
    rows = [[int(t) for t in line.split()] for line in text.splitlines() if line.strip()]
    return path, rows


@pytest.fixture(scope="module")
def labels(real_lines):
    return read_ava_txt(real_lines[0])


def py_mean(row):
    votes = row[2:12]
    return sum(k * c for k, c in zip(range(1, 11), votes)) / sum(votes)


def py_kao_reference(rows, min_tag_count):
    """Independent pure-Python Kao filter: tag counts over either slot, kept tags, kept images."""
    counts = Counter()
    for r in rows:
        counts.update({r[12], r[13]} - {0})
    kept = sorted(t for t, c in counts.items() if c > min_tag_count)
    images = {r[1]: {r[12], r[13]} & set(kept) for r in rows if {r[12], r[13]} & set(kept)}
    return counts, kept, images


# ------------------------------------------------------------------------------------- kao
def test_kao_tag_counts_and_filter_match_pure_python(labels, real_lines):
    counts, kept, images = py_kao_reference(real_lines[1], MIN_TAGS)
    split = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500)
    s = split.summary

    assert s["tag_counts"] == {str(t): c for t, c in counts.items()}
    assert s["kept_tags"] == kept and len(kept) >= 5
    assert s["n_images"] == len(images) and s["n_rows"] == len(real_lines[1])
    assert s["n_dropped_no_kept_tag"] == len(real_lines[1]) - len(images)
    both = pd.concat([split.train, split.test])
    assert sorted(both["image_id"]) == sorted(images)
    # multi-hot columns: ascending id order, exactly the image's kept tags
    tag_cols = [c for c in split.train.columns if c.startswith("tag_")]
    assert tag_cols == [f"tag_{t}" for t in kept]
    assert list(split.train.columns) == MANIFEST_COLUMNS + tag_cols
    for r in both.itertuples(index=False):
        hot = {t for t in kept if getattr(r, f"tag_{t}") == 1}
        assert hot == images[r.image_id]


def test_kao_boundary_is_strictly_more_than(labels, real_lines):
    counts, _, _ = py_kao_reference(real_lines[1], 0)
    t, c = counts.most_common(3)[2]
    at = kao_protocol(labels, min_tag_count=c, test_size=10).summary["kept_tags"]
    below = kao_protocol(labels, min_tag_count=c - 1, test_size=10).summary["kept_tags"]
    assert t not in at and t in below


def test_kao_split_sizes_and_order(labels):
    split = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500)
    s = split.summary
    assert len(split.test) == s["n_test"] == 500
    assert len(split.train) == s["n_train"] == s["n_train_before_delta"] == s["n_images"] - 500
    assert split.val is None and s["n_val"] == 0
    assert not set(split.train["image_id"]) & set(split.test["image_id"])
    # each split keeps file order
    position = {i: k for k, i in enumerate(labels["image_id"])}
    for part in (split.train, split.test):
        assert np.all(np.diff([position[i] for i in part["image_id"]]) > 0)
    assert SUMMARY_KEYS <= set(s)
    assert s["label_sha256"] == labels.attrs["sha256"] and s["label_file"] == labels.attrs["path"]


def test_kao_seeded_determinism(labels):
    a = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, seed=3)
    b = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, seed=3)
    c = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, seed=4)
    pd.testing.assert_frame_equal(a.test, b.test)
    pd.testing.assert_frame_equal(a.train, b.train)
    assert set(a.test["image_id"]) != set(c.test["image_id"])


def test_kao_delta_applies_to_training_rows_only(labels):
    d0 = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, delta=0)
    d1 = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, delta=1)
    pd.testing.assert_frame_equal(d0.test, d1.test)  # the test set always uses δ=0

    pool = d0.train  # δ=0 keeps every training image
    expected = [i for i, m in zip(pool["image_id"], pool["mean"]) if m > 6 or m < 4]
    assert d1.train["image_id"].tolist() == expected
    s = d1.summary
    assert s["n_train"] == len(expected) and s["n_train_before_delta"] == len(pool)
    assert s["n_high_train"] == sum(m > 6 for m in d1.train["mean"])
    assert s["n_low_train"] == sum(m < 4 for m in d1.train["mean"])
    assert s["n_high_train"] + s["n_low_train"] == s["n_train"]


def test_labels_are_mean_above_five_in_every_split(labels, real_lines):
    mean_by_id = {r[1]: py_mean(r) for r in real_lines[1]}
    split = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, delta=0.5, val_size=100)
    for part in (split.train, split.test, split.val):
        assert part["label"].tolist() == [int(mean_by_id[i] > 5) for i in part["image_id"]]
        np.testing.assert_allclose(part["mean"], [mean_by_id[i] for i in part["image_id"]], atol=1e-12)


def test_kao_validation_holdout(labels):
    plain = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, delta=1)
    held = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, delta=1, val_size=200)
    pd.testing.assert_frame_equal(plain.test, held.test)  # adding a validation set keeps the test set
    assert len(held.val) == held.summary["n_val"] == 200
    ids = [set(p["image_id"]) for p in (held.train, held.test, held.val)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    # validation uses δ=0 like the test set; train + val = plain's training pool
    assert (held.val["mean"].between(4, 6)).any()
    assert held.summary["n_train_before_delta"] + 200 == plain.summary["n_train_before_delta"]
    assert ids[0] <= set(plain.train["image_id"])


def test_kao_tag_names(labels):
    names = read_tags(shared_file("ava", "official_info", "tags.txt"))
    s = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, tag_names=names).summary
    assert s["kept_tag_names"] == [names[t] for t in s["kept_tags"]]
    assert kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500).summary["kept_tag_names"] is None


@pytest.mark.parametrize("kwargs", [dict(test_size=0), dict(test_size=10**6),
                                    dict(test_size=500, val_size=10**6),
                                    dict(test_size=500, min_tag_count=10**6)])
def test_kao_rejects_impossible_sizes(labels, kwargs):
    kwargs.setdefault("min_tag_count", MIN_TAGS)
    with pytest.raises(ValueError, match="kao protocol"):
        kao_protocol(labels, **kwargs)


def test_kao_rejects_negative_delta(labels):
    with pytest.raises(ValueError, match="delta"):
        kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, delta=-1)


# ------------------------------------------------------------------------------------- δ by hand
def _frame(votes_rows):
    from iaalib.data.ava import score_stats
    votes = np.array(votes_rows, dtype=np.int64)
    _, mean, sd = score_stats(votes)
    df = pd.DataFrame(votes, columns=[f"vote_{k}" for k in range(1, 11)])
    df.insert(0, "image_id", np.arange(1, len(votes) + 1))
    df.insert(0, "index", np.arange(1, len(votes) + 1))
    df["tag1"], df["tag2"], df["challenge_id"] = 1, 0, 7
    df["n_votes"], df["mean"], df["sd"] = votes.sum(1), mean, sd
    return df


def test_delta_boundaries_by_hand():
    e = np.eye(10, dtype=np.int64)
    rows = [e[4] * 3,              # mean exactly 5
            e[4] + e[6],           # mean exactly 6
            e[2] + e[4],           # mean exactly 4
            e[6] * 2 + e[7],       # 7.33
            e[0] + e[2],           # 2
            e[4] * 2 + e[5]]       # 5.33
    df = _frame(rows)
    np.testing.assert_array_equal(delta_keep(df["mean"], 0.0), [1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(delta_keep(df["mean"], 1.0), [0, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(delta_keep(df["mean"], 0.25), [0, 1, 1, 1, 1, 1])
    split = standard_protocol(df, test_ids=[], delta=0.0)
    assert split.train["label"].tolist() == [0, 1, 0, 1, 0, 1]  # mean == 5 is low


def test_tag_in_both_slots_counts_once_and_zero_is_no_tag():
    df = _frame([np.eye(10, dtype=np.int64)[5]] * 6)
    df["tag1"] = [3, 3, 0, 4, 4, 0]
    df["tag2"] = [3, 4, 4, 0, 0, 0]
    split = kao_protocol(df, min_tag_count=2, test_size=1)
    assert split.summary["tag_counts"] == {"3": 2, "4": 4}
    assert split.summary["kept_tags"] == [4]  # 3 has exactly 2 images: not more than 2
    assert split.summary["n_images"] == 4 and split.summary["n_dropped_no_kept_tag"] == 2


# ------------------------------------------------------------------------------------- standard
def test_standard_with_the_official_test_list(labels, real_lines):
    test_list = read_id_list(shared_file("ava", "official_info", "aesthetics_image_lists",
                                         "generic_test.jpgl"))
    listed = set(int(x) for x in test_list)
    in_test = [r[1] for r in real_lines[1] if r[1] in listed]  # independent intersection, file order
    rest = [r[1] for r in real_lines[1] if r[1] not in listed]

    split = standard_protocol(labels, test_ids=test_list)
    s = split.summary
    assert split.test["image_id"].tolist() == in_test and len(in_test) > 100
    assert split.train["image_id"].tolist() == rest
    assert s["n_test"] == len(in_test) and s["n_train"] == len(rest)
    assert s["n_test_list"] == 20_000 and s["n_test_missing"] == 20_000 - len(in_test)
    assert s["kept_tags"] == [] and SUMMARY_KEYS <= set(s)
    assert list(split.test.columns) == MANIFEST_COLUMNS  # no tag_<id> columns
    np.testing.assert_allclose(split.test[[f"vote_{k}" for k in range(1, 11)]].sum(axis=1), split.test["n_votes"])


def test_standard_validation_and_delta(labels):
    ids = labels["image_id"].to_numpy()[::10]
    a = standard_protocol(labels, test_ids=ids, val_size=300, seed=1, delta=1)
    b = standard_protocol(labels, test_ids=ids, val_size=300, seed=2, delta=1)
    assert len(a.val) == 300 and set(a.val["image_id"]) != set(b.val["image_id"])
    pd.testing.assert_frame_equal(a.test, b.test)
    assert ((a.train["mean"] > 6) | (a.train["mean"] < 4)).all()
    assert a.summary["n_train_before_delta"] == len(labels) - len(a.test) - 300
    with pytest.raises(ValueError, match="val_size"):
        standard_protocol(labels, test_ids=ids, val_size=len(labels))


def test_protocols_need_parsed_labels():
    with pytest.raises(ValueError, match="read_ava_txt"):
        kao_protocol(pd.DataFrame({"image_id": [1]}), test_size=1)


def test_format_summary_prints_the_paper_figures(labels):
    s = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500, delta=1).summary
    text = format_summary(s)
    for figure in (len(s["kept_tags"]), s["n_images"], s["n_test"], s["n_train_before_delta"], s["n_train"]):
        assert f"{figure:,}" in text


def test_format_summary_shows_the_recipe_counts(labels):
    from iaalib.data.manifests import load_recipe
    s = kao_protocol(labels, min_tag_count=MIN_TAGS, test_size=500).summary
    text = format_summary(s, load_recipe("kao"))
    assert "n_images 185,751" in text and "n_train_delta1 38,994" in text and "n_kept_tags 29" in text
