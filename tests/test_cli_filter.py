"""`iaa data filter` end to end on a generated AVA.txt: manifests and summary against an independent
pure-Python computation, recipes/checksums, bad input, and no torch import."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from iaalib.cli import main

N = 1500
TAG_NAMES = {1: "Abstract", 2: "Cityscape", 3: "Family", 4: "Fashion", 5: "Humorous", 9: "Sports"}


@pytest.fixture(scope="module")
def ava(tmp_path_factory):
    """An AVA.txt-format file (some lines with a trailing space), its tags.txt, and the rows."""
    rng = np.random.default_rng(7)
    d = tmp_path_factory.mktemp("cli")
    rows = []
    for i, image_id in enumerate(rng.permutation(900_000)[:N] + 100, start=1):
        votes = rng.multinomial(rng.integers(80, 300), rng.dirichlet(np.full(10, 2.0))).tolist()
        votes[4] += 1
        t1 = int(rng.choice([0, 1, 2, 3, 4, 5, 9], p=[.1, .3, .2, .15, .1, .1, .05]))
        t2 = int(rng.choice([0, 1, 2, 5, 9]))
        rows.append([i, int(image_id), *votes, t1, t2, int(rng.integers(1, 50))])
    text = "".join(" ".join(map(str, r)) + (" " if r[0] % 5 == 0 else "") + "\n" for r in rows)
    (d / "AVA.txt").write_text(text)
    (d / "tags.txt").write_text("".join(f"{k} {v}\n" for k, v in TAG_NAMES.items()))
    test_ids = [r[1] for r in rows[::6]] + [5, 6, 7]  # 3 ids that are not in AVA.txt
    (d / "test.jpgl").write_text("".join(f"{i}\n" for i in test_ids))
    return d, rows, test_ids


def reference(rows):
    """Independent: per-image mean/sd from repeated scores; tag counts over either slot."""
    stats = {}
    for r in rows:
        scores = np.repeat(np.arange(1, 11), r[2:12])
        stats[r[1]] = (scores.mean(), scores.std())
    counts = Counter()
    for r in rows:
        counts.update({r[12], r[13]} - {0})
    return stats, counts


def run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_filter_kao_round_trip(ava, tmp_path, capsys):
    d, rows, _ = ava
    out = tmp_path / "kao"
    rc, stdout, _ = run(["data", "filter", "--ava-txt", str(d / "AVA.txt"), "--tags-txt", str(d / "tags.txt"),
                         "--protocol", "kao", "--min-tag-count", "200", "--test-size", "300",
                         "--delta", "1", "--seed", "5", "--out", str(out)], capsys)
    assert rc == 0
    stats, counts = reference(rows)
    kept = sorted(t for t, c in counts.items() if c > 200)
    tagged = {r[1]: {r[12], r[13]} for r in rows if {r[12], r[13]} & set(kept)}
    assert 2 <= len(kept) < len(counts)

    train, test = pd.read_csv(out / "train.csv"), pd.read_csv(out / "test.csv")
    summary = json.loads((out / "summary.json").read_text())
    for name in ("train.csv", "test.csv"):
        assert summary["files"][name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    assert summary["n_rows"] == N and summary["kept_tags"] == kept
    assert summary["kept_tag_names"] == [TAG_NAMES[t] for t in kept]
    assert summary["tag_counts"] == {str(t): c for t, c in sorted(counts.items())}
    assert summary["n_images"] == len(tagged) and summary["n_test"] == len(test) == 300
    assert summary["n_train"] == len(train) and summary["delta"] == 1.0 and summary["seed"] == 5
    assert summary["label_sha256"] == hashlib.sha256((d / "AVA.txt").read_bytes()).hexdigest()

    assert {"image_id", "mean", "sd", "label", *[f"tag_{t}" for t in kept]} <= set(train.columns)
    assert not set(train.image_id) & set(test.image_id)
    assert set(train.image_id) | set(test.image_id) <= set(tagged)
    assert summary["n_train_before_delta"] == len(tagged) - 300
    for part, margin in ((train, 1.0), (test, 0.0)):
        for r in part.itertuples(index=False):
            mean, sd = stats[r.image_id]
            assert r.mean == pytest.approx(mean, abs=1e-12) and r.sd == pytest.approx(sd, abs=1e-12)
            assert r.label == int(mean > 5)
            assert margin == 0 or abs(mean - 5) > margin
            assert {t for t in kept if getattr(r, f"tag_{t}")} == tagged[r.image_id] & set(kept)
    # the printed report carries the protocol's figures
    assert f"{summary['n_images']:,}" in stdout and f"{len(train):,} at delta=1" in stdout


def test_filter_standard_in_a_subprocess_without_torch(ava, tmp_path):
    d, rows, test_ids = ava
    out = tmp_path / "std"
    code = ("import sys; from iaalib.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'iaa data filter imported torch'; sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, "data", "filter", "--ava-txt", str(d / "AVA.txt"),
                        "--protocol", "standard", "--test-list", str(d / "test.jpgl"), "--val-size", "100",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    listed = set(test_ids)
    train, test, val = (pd.read_csv(out / f"{n}.csv") for n in ("train", "test", "val"))
    assert test.image_id.tolist() == [x[1] for x in rows if x[1] in listed]
    assert sorted(train.image_id.tolist() + val.image_id.tolist()) == sorted(x[1] for x in rows if x[1] not in listed)
    assert len(val) == 100 and not [c for c in test.columns if c.startswith("tag_")]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_test_missing"] == 3 and summary["n_test_list"] == len(test_ids)
    assert summary["test_list_sha256"] == hashlib.sha256((d / "test.jpgl").read_bytes()).hexdigest()
    assert set(summary["files"]) == {"train.csv", "test.csv", "val.csv"}


def test_filter_bad_line_is_a_clear_error_or_a_counted_drop(ava, tmp_path, capsys):
    d, rows, _ = ava
    lines = (d / "AVA.txt").read_text().splitlines()
    tokens = lines[41].split()
    tokens[4] = "1.5"  # vote_3 of line 42
    lines[41] = " ".join(tokens)
    bad = tmp_path / "AVA.txt"
    bad.write_text("\n".join(lines) + "\n")
    argv = ["data", "filter", "--ava-txt", str(bad), "--protocol", "kao", "--min-tag-count", "200",
            "--test-size", "300", "--out", str(tmp_path / "o")]
    rc, _, err = run(argv, capsys)
    assert rc == 2 and f"{bad}:42: " in err and "field 5 (vote_3) is not an integer" in err
    assert not (tmp_path / "o" / "summary.json").exists()

    rc, _, _ = run(argv + ["--on-bad", "drop"], capsys)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert rc == 0 and summary["n_rows"] == N - 1 and summary["label_n_dropped"] == 1


def test_filter_with_recipes(ava, tmp_path, capsys, caplog):
    d, rows, _ = ava
    base = ["data", "filter", "--ava-txt", str(d / "AVA.txt"), "--protocol", "kao", "--out", str(tmp_path / "o"),
            "--min-tag-count", "200", "--test-size", "300"]
    # shipped recipe: the official AVA.txt checksum is unknown → warning, still runs
    rc, _, _ = run(base + ["--recipe", "kao"], capsys)
    assert rc == 0 and "cannot be guaranteed" in caplog.text
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["recipe"] == "kao"

    digest = hashlib.sha256((d / "AVA.txt").read_bytes()).hexdigest()
    recipe = tmp_path / "mine.yaml"

    def write_recipe(sha, n_rows):
        recipe.write_text(f"protocol: kao\nparameters: {{min_tag_count: 200, test_size: 300}}\n"
                          f"label_file: {{name: AVA.txt, sha256: {sha}}}\nexpected: {{n_rows: {n_rows}}}\n")

    write_recipe("ab" * 32, N)
    rc, _, err = run(base + ["--recipe", str(recipe), "--strict-checksum"], capsys)
    assert rc == 2 and "differs" in err
    write_recipe(digest, N + 1)
    rc, _, err = run(base + ["--recipe", str(recipe), "--strict-checksum"], capsys)
    assert rc == 2 and "n_rows" in err
    write_recipe(digest, N)
    caplog.clear()
    rc, _, _ = run(base + ["--recipe", str(recipe), "--strict-checksum"], capsys)
    assert rc == 0 and "WARNING" not in caplog.text.upper()
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["recipe_mismatches"] == []


@pytest.mark.parametrize("extra,message", [
    (["--protocol", "standard"], "needs --test-list"),
    (["--protocol", "standard", "--test-list", "x", "--recipe", "kao"], "is for the kao protocol"),
    (["--protocol", "kao", "--test-size", "100000"], "leave no training images"),
    (["--protocol", "kao", "--recipe", "nope"], "no recipe 'nope'"),
])
def test_filter_usage_errors(ava, tmp_path, capsys, extra, message):
    d, _, _ = ava
    rc, _, err = run(["data", "filter", "--ava-txt", str(d / "AVA.txt"), "--out", str(tmp_path), *extra], capsys)
    assert rc == 2 and message in err
