"""iaalib.data.manifests: recipes, label-file checksums, expected counts, manifest write/read."""
from __future__ import annotations

import hashlib
import io
import json
import logging

import numpy as np
import pandas as pd
import pytest

from iaalib.data.manifests import (RECIPE_DIR, check_expected, check_label_file, csv_bytes,
                                   load_recipe, read_manifest, write_manifest)
from iaalib.data.protocols import Split, kao_protocol
from iaalib.errors import ChecksumMismatchError, DataFormatError, IaaError


def make_labels(n=400, seed=0):
    """A small AVA-like label frame built independently of the parser (votes → mean by hand)."""
    rng = np.random.default_rng(seed)
    votes = rng.integers(0, 30, size=(n, 10))
    votes[:, 4] += 1
    scores = np.arange(1, 11)
    df = pd.DataFrame(votes, columns=[f"vote_{k}" for k in range(1, 11)])
    df.insert(0, "image_id", rng.permutation(10**6)[:n] + 1)
    df.insert(0, "index", np.arange(1, n + 1))
    df["tag1"] = rng.choice([0, 1, 2, 3, 9], size=n)
    df["tag2"] = rng.choice([0, 2, 5], size=n)
    df["challenge_id"] = 11
    df["n_votes"] = votes.sum(axis=1)
    df["mean"] = (votes * scores).sum(axis=1) / df["n_votes"]
    df["sd"] = np.sqrt(((scores - df["mean"].to_numpy()[:, None]) ** 2 * votes).sum(axis=1) / df["n_votes"])
    df.attrs.update(path="synthetic", sha256="0" * 64)
    return df


@pytest.fixture
def split():
    return kao_protocol(make_labels(), min_tag_count=50, test_size=60, val_size=40, delta=0.5)


# ------------------------------------------------------------------------------------- recipes
def test_shipped_recipes_hold_the_paper_parameters():
    kao = load_recipe("kao")
    assert kao["protocol"] == "kao" and kao["name"] == "kao"
    assert kao["parameters"]["min_tag_count"] == 3000 and kao["parameters"]["test_size"] == 20000
    assert kao["expected"] == {"n_rows": 255530, "n_kept_tags": 29, "n_images": 185751,
                               "n_test": 20000, "n_train_delta0": 165751}
    assert kao["reported"]["n_train_delta1"] == 38994
    assert kao["label_file"]["sha256"] is None  # the official AVA.txt is not available here

    std = load_recipe(RECIPE_DIR / "standard.yaml")
    assert std["protocol"] == "standard" and std["expected"]["n_test_list"] == 20000
    assert std["label_file"]["sha256"] is None


def test_standard_recipe_test_list_checksum_is_the_real_files():
    from tests.conftest import shared_file
    path = shared_file("ava", "official_info", "aesthetics_image_lists", "generic_test.jpgl")
    recipe = load_recipe("standard")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == recipe["test_list"]["sha256"]
    assert sum(1 for line in open(path) if line.strip()) == recipe["test_list"]["n_ids"]


def test_recipe_errors(tmp_path):
    with pytest.raises(IaaError, match="known: .*kao.*standard"):
        load_recipe("nonexistent")
    bad = tmp_path / "bad.yaml"
    bad.write_text("protocol: kao\nparameters: {}\n")
    with pytest.raises(DataFormatError, match="needs the keys"):
        load_recipe(bad)
    bad.write_text("protocol: kao\nparameters: [\n  oops\nlabel_file: x\n")
    with pytest.raises(DataFormatError, match="invalid YAML") as e:
        load_recipe(bad)
    assert str(e.value).startswith(str(bad))


def _recipe(tmp_path, sha, protocol="kao", expected=None, parameters=None):
    body = {"protocol": protocol, "parameters": parameters or {}, "expected": expected or {},
            "label_file": {"name": "AVA.txt", "sha256": sha}}
    p = tmp_path / "r.yaml"
    p.write_text(json.dumps(body))  # JSON is YAML
    return load_recipe(p)


def test_check_label_file(tmp_path, caplog):
    f = tmp_path / "AVA.txt"
    f.write_bytes(b"1 2 3\n")
    digest = hashlib.sha256(b"1 2 3\n").hexdigest()

    with caplog.at_level(logging.WARNING):
        assert check_label_file(f, _recipe(tmp_path, None)) is False
    assert "cannot be guaranteed" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert check_label_file(f, _recipe(tmp_path, digest)) is True
        assert check_label_file(f, _recipe(tmp_path, digest.upper())) is True
    assert caplog.text == ""
    with caplog.at_level(logging.WARNING):
        assert check_label_file(f, _recipe(tmp_path, "ab" * 32)) is False
    assert "differs" in caplog.text and str(f) in caplog.text
    with pytest.raises(ChecksumMismatchError, match="differs"):
        check_label_file(f, _recipe(tmp_path, "ab" * 32), strict=True)
    # an unknown checksum is a warning even in strict mode: nothing to compare against
    assert check_label_file(f, _recipe(tmp_path, None), strict=True) is False


def test_check_expected(tmp_path, split, caplog):
    s = split.summary
    good = {"n_rows": s["n_rows"], "n_kept_tags": len(s["kept_tags"]), "n_images": s["n_images"],
            "n_test": 60, "n_train_delta0": s["n_images"] - 60, "n_val": None}
    params = {"min_tag_count": 50, "test_size": 60}
    assert check_expected(s, _recipe(tmp_path, None, expected=good, parameters=params)) == []

    wrong = dict(good, n_images=s["n_images"] + 1)
    with caplog.at_level(logging.WARNING):
        out = check_expected(s, _recipe(tmp_path, None, expected=wrong, parameters=params))
    assert len(out) == 1 and out[0].startswith("n_images") and "counts differ" in caplog.text
    with pytest.raises(IaaError, match="n_images"):
        check_expected(s, _recipe(tmp_path, None, expected=wrong, parameters=params), strict=True)
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # other parameters: counts are not comparable
        assert check_expected(s, _recipe(tmp_path, None, expected=wrong,
                                         parameters={"min_tag_count": 3000})) == []
    assert "not checked" in caplog.text


# ------------------------------------------------------------------------------------- write/read
def test_write_and_read_round_trip(tmp_path, split):
    out = tmp_path / "m"
    summary = write_manifest(split, out)
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "test.csv", "train.csv", "val.csv"]
    for name in ("train.csv", "test.csv", "val.csv"):
        assert summary["files"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary)) and on_disk["files"] == summary["files"]
    assert {k: v for k, v in on_disk.items() if k != "files"} == json.loads(json.dumps(split.summary))

    for name, frame in (("train.csv", split.train), ("test.csv", split.test), ("val.csv", split.val)):
        back = read_manifest(out / name)
        pd.testing.assert_frame_equal(back, frame, check_dtype=True)


def test_csv_bytes_reads_back_as_pandas_wrote_it():
    """pyarrow's writer against pandas' own to_csv as the reference: the same header and cells,
    floats (thirds, tiny, integral) read back bit for bit."""
    frame = pd.DataFrame({"image_id": [1, 22, 333], "mean": [5.0, 1 / 3, 1e-20],
                          "sd": [1.5297952273098514, 0.0, 2.5], "label": [1, 0, 1]})
    ours = csv_bytes(frame)
    assert ours.decode().splitlines()[0] == "image_id,mean,sd,label"
    assert b"\r" not in ours and b'"' not in ours
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(ours)),
                                  pd.read_csv(io.StringIO(frame.to_csv(index=False))))
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(ours)), frame)


def test_rewrite_without_val_removes_stale_val(tmp_path, split):
    write_manifest(split, tmp_path)
    again = write_manifest(Split(split.train, split.test, None, split.summary), tmp_path)
    assert not (tmp_path / "val.csv").exists() and "val.csv" not in again["files"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_read_manifest_warns_when_a_file_changed(tmp_path, split, caplog):
    write_manifest(split, tmp_path)
    df = pd.read_csv(tmp_path / "test.csv")
    df.iloc[::-1].to_csv(tmp_path / "test.csv", index=False)  # still valid, different bytes
    with caplog.at_level(logging.WARNING):
        read_manifest(tmp_path / "test.csv")
    assert "differs from the one recorded" in caplog.text


def _corrupt(tmp_path, split, edit):
    split.test.to_csv(tmp_path / "test.csv", index=False)
    lines = (tmp_path / "test.csv").read_text().splitlines()
    edit(lines)
    (tmp_path / "test.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "test.csv"


def _set_cell(column, value, data_row):
    def edit(lines):
        header = lines[0].split(",")
        cells = lines[data_row + 1].split(",")
        cells[header.index(column)] = value
        lines[data_row + 1] = ",".join(cells)
    return edit


@pytest.mark.parametrize("column,value,reason", [
    ("vote_3", "x", "vote_3 is not an integer"),
    ("vote_3", "", "vote_3 is not an integer"),
    ("vote_3", "2.5", "vote_3 is not an integer"),
    ("n_votes", "1", "n_votes is not the sum"),
    ("mean", "nan", "mean is not a finite number"),
    ("mean", "9.5", "mean does not match"),
    ("label", "2", "label is not (mean > 5)"),
    ("tag_2", "2", "tag_2 is not 0/1"),
])
def test_read_manifest_bad_cell_names_file_and_line(tmp_path, split, column, value, reason):
    p = _corrupt(tmp_path, split, _set_cell(column, value, data_row=4))
    with pytest.raises(DataFormatError) as e:
        read_manifest(p)
    assert str(e.value).startswith(f"{p}:6: ") and reason in str(e.value)


def test_read_manifest_negative_vote_and_label_flip(tmp_path, split):
    def flip(lines):  # a consistent-looking row whose label disagrees with its mean
        header = lines[0].split(",")
        cells = lines[3].split(",")
        k = header.index("label")
        cells[k] = str(1 - int(cells[k]))
        lines[3] = ",".join(cells)
    with pytest.raises(DataFormatError, match=r":4: label"):
        read_manifest(_corrupt(tmp_path, split, flip))
    with pytest.raises(DataFormatError, match=r":3: negative vote count"):
        read_manifest(_corrupt(tmp_path, split, _set_cell("vote_1", "-1", data_row=1)))


def test_read_manifest_structure_errors(tmp_path, split):
    p = tmp_path / "m.csv"
    split.test.drop(columns=["sd", "label"]).to_csv(p, index=False)
    with pytest.raises(DataFormatError, match=r"m\.csv:1: missing columns \['sd', 'label'\]"):
        read_manifest(p)
    p.write_text("")
    with pytest.raises(DataFormatError, match="empty file"):
        read_manifest(p)
    dup = pd.concat([split.test, split.test.iloc[[0]]])
    dup.to_csv(p, index=False)
    with pytest.raises(DataFormatError, match=rf"m\.csv:{len(dup) + 1}: duplicate image_id"):
        read_manifest(p)


def test_write_manifest_rejects_frames_without_manifest_columns(tmp_path, split):
    bad = Split(split.train.drop(columns=["label"]), split.test, None, split.summary)
    with pytest.raises(ValueError, match="label"):
        write_manifest(bad, tmp_path)
