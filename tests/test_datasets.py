"""Where a profile's data lives (iaalib.datasets): SynthAVA/SynthTID folders, manifests, real AVA."""
from __future__ import annotations

import re

import pytest

from iaalib import datasets
from iaalib.errors import IaaError


def test_scaled_protocol_size_by_hand():
    assert datasets.scaled_protocol_size(3000, 2500) == 29      # 3000 * 2500 / 255530 = 29.35
    assert datasets.scaled_protocol_size(20000, 2500) == 196    # 195.67
    assert datasets.scaled_protocol_size(20000, 300) == 23      # 23.48
    assert datasets.scaled_protocol_size(3000, 255_530) == 3000
    assert datasets.scaled_protocol_size(3000, 10) == 1         # never 0
    with pytest.raises(ValueError):
        datasets.scaled_protocol_size(3000, 0)


def test_synth_paths_depend_on_every_generator_argument(monkeypatch, tmp_path):
    monkeypatch.setenv("IAA_HOME", str(tmp_path))
    a = datasets.synth_ava_dir(300, 56, 0)
    assert a.parent == tmp_path.resolve() / "data"
    assert len({a, datasets.synth_ava_dir(301, 56, 0), datasets.synth_ava_dir(300, 64, 0),
                datasets.synth_ava_dir(300, 56, 1)}) == 4
    assert datasets.manifest_dir("demo", "kao-delta0") == \
        tmp_path.resolve() / "data/manifests/demo/kao-delta0"
    assert datasets.manifest_dir("demo", "std", tmp_path / "m") == tmp_path / "m/demo/std"


def test_resolve_dataset_errors_name_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("IAA_HOME", str(tmp_path))
    with pytest.raises(IaaError, match=r"SynthAVA not generated yet.*iaa data synth"):
        datasets.resolve_dataset(synth_n=10)
    with pytest.raises(IaaError, match=re.escape(str(tmp_path / "AVA.txt"))):
        datasets.resolve_dataset(ava_txt=str(tmp_path / "AVA.txt"))
    made = datasets.profile_dataset({"ava_txt": "", "synth_n": 40, "synth_short_edge": 32,
                                     "synth_seed": 2}, generate=True)
    assert made.synthetic and made.ava_txt == datasets.synth_ava_dir(40, 32, 2) / "AVA.txt"
    assert len(made.ava_txt.read_text().splitlines()) == 40 and made.image_dir.is_dir()
    (tmp_path / "AVA.txt").write_text("")
    (tmp_path / "tags.txt").write_text("")
    d = datasets.resolve_dataset(ava_txt=str(tmp_path / "AVA.txt"))
    assert (d.synthetic, d.tags_txt, d.image_dir) == (False, tmp_path / "tags.txt", None)


def test_tid_root_is_the_real_folder_or_the_profiles_synthtid(monkeypatch, tmp_path):
    monkeypatch.setenv("IAA_HOME", str(tmp_path))
    assert datasets.tid_root({"tid_root": str(tmp_path / "TID")}) == tmp_path / "TID"
    with pytest.raises(IaaError, match="needs tid_root"):
        datasets.tid_root({"tid_root": "", "ava_txt": "/a/AVA.txt"})
    s = {"tid_root": "", "ava_txt": "", "synth_n": 40, "synth_short_edge": 32, "synth_seed": 0,
         "synth_tid_refs": 2}
    folder = datasets.tid_root(s, generate=True)
    assert folder == datasets.synth_tid_dir(40, 32, 0, 2) and (folder / "mos_with_names.txt").is_file()


def test_image_cache_short_edge_reads_the_resized_copy_built_once(monkeypatch, tmp_path):
    """The profile's images resized to short edge 40 (aspect ratio kept, PIL reads the sizes back);
    without the built cache the error names the command that builds it."""
    from PIL import Image

    monkeypatch.setenv("IAA_HOME", str(tmp_path))
    settings = {"ava_txt": "", "synth_n": 12, "synth_short_edge": 64, "synth_seed": 0,
                "image_cache_short_edge": 40}
    datasets.profile_dataset({**settings, "image_cache_short_edge": 0}, generate=True)
    with pytest.raises(IaaError, match="not built yet.*iaa data cache"):
        datasets.profile_dataset(settings, generate=False)
    paths = datasets.profile_dataset(settings, generate=True)
    originals = datasets.synth_ava_dir(12, 64, 0) / "images"
    assert paths.image_dir != originals and paths.image_dir.parent == tmp_path / "data"
    for source in sorted(originals.glob("*.jpg")):
        w, h = Image.open(source).size
        cw, ch = Image.open(paths.image_dir / source.name).size
        assert min(cw, ch) == 40 and abs(cw / ch - w / h) < 0.05
    assert datasets.profile_dataset(settings).image_dir == paths.image_dir  # built: found again
