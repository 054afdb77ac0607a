"""The frozen stem and its activation cache (iaalib.models.stems, iaalib.data.activations): the stem
and the rest of the network are the whole EfficientNet-Lite0; the cache is keyed by images, stem and
transform, never serves a stale entry, rebuilds a corrupt one, and trains the papers' networks."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from engine_helpers import make_tiny_dataset, tiny_config
from iaalib.data import activations as A
from iaalib.data.images import kao_transform, load_image
from iaalib.engine.trainer import train
from iaalib.errors import IaaError
from iaalib.models.backbones import build_backbone
from iaalib.models.stems import FrozenStem, StemmedModel, StemTop, stem_identity

SPEC = "efficientnet_lite0:8"


class CountingStem(torch.nn.Module):
    """A stand-in stem (mean-pool 4×4, two channels) that counts the batches it sees."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        pooled = torch.nn.functional.avg_pool2d(x, 4)
        return torch.cat([pooled[:, :1], pooled[:, 1:].mean(1, keepdim=True)], dim=1)


@pytest.fixture()
def folder(tmp_path):
    return make_tiny_dataset(tmp_path / "d", n=12)


def test_stem_and_top_are_the_whole_imagenet_network():
    full, _ = build_backbone("efficientnet_lite0", weights="imagenet")
    full.eval()
    x = torch.randn(2, 3, 64, 64)
    for spec in ("efficientnet_lite0:8", "efficientnet_lite0:16"):
        stem, top = FrozenStem(spec), StemTop(spec).eval()
        with torch.no_grad():
            torch.testing.assert_close(top(stem(x)), full(x))
    stem = FrozenStem(SPEC)
    stem.train()
    assert not stem.training and not any(p.requires_grad for p in stem.parameters())
    assert "imagenet-sha256=" in stem_identity(SPEC)


def test_cache_holds_each_image_and_its_mirror_and_is_reused(folder, tmp_path):
    made = []

    def factory():
        made.append(CountingStem())
        return made[-1]

    acts = A.load_activations(folder["images"], stem=factory, stem_id="counting", size=32,
                              cache_root=tmp_path / "c", batch_size=5)
    assert len(made) == 1 and made[0].calls == 1      # traced once; the frozen graph ran the batches
    assert acts.values.shape == (2, 12, 2, 8, 8) and acts.ids.tolist() == sorted(acts.ids)
    i = int(acts.ids[3])
    x = kao_transform(False, resize=32, crop=32)(load_image(folder["images"] / f"{i}.jpg",
                                                            short_edge=32))[None]
    stem = CountingStem()
    torch.testing.assert_close(acts.values[0, 3], stem(x)[0])
    torch.testing.assert_close(acts.values[1, 3], stem(torch.flip(x, dims=[3]))[0])
    A._LOADED.clear()                                                 # a new process: from disk
    again = A.load_activations(folder["images"], stem=factory, stem_id="counting", size=32,
                               cache_root=tmp_path / "c")
    assert len(made) == 1 and torch.equal(again.values, acts.values)


def test_the_cache_is_built_on_stem_threads_whatever_the_process_has(folder, tmp_path):
    """Two threads sum a convolution in another order than one: a cache built by a kernel with
    two threads and one built beside other chapters (one thread) differed by 3.5e-5, so the
    stem runs on STEM_THREADS, and the process gets its own threads back."""
    seen = []

    class ThreadRecordingStem(CountingStem):
        def forward(self, x):
            seen.append(torch.get_num_threads())
            return super().forward(x)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        A.load_activations(folder["images"], stem=ThreadRecordingStem, stem_id="threads",
                           size=32, cache_root=tmp_path / "c")
        assert seen and set(seen) == {A.STEM_THREADS}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_workers_split_the_images_and_the_cache_is_the_same_bit_for_bit(folder, tmp_path):
    """A process with two threads builds the cache with two workers, each taking whole batches;
    the ImageNet stem's activations then equal a one-worker build exactly, and each image's
    equal the stem applied to it alone (to float rounding). An unreadable image is left out and
    counted the same way."""
    bad = sorted(folder["images"].glob("*.jpg"))[6]
    bad.write_bytes(bad.read_bytes()[:40])
    before, built = torch.get_num_threads(), {}
    try:
        for workers in (1, 2):
            torch.set_num_threads(workers)
            A._LOADED.clear()
            built[workers] = A.load_activations(
                folder["images"], stem=lambda: FrozenStem(SPEC), stem_id=f"w{workers}", size=32,
                cache_root=tmp_path / f"c{workers}", batch_size=5)
    finally:
        torch.set_num_threads(before)
    one, two = built[1], built[2]
    assert torch.equal(one.values, two.values) and one.values.shape[1] == 11
    assert one.ids.tolist() == two.ids.tolist() and int(bad.stem) not in two.row
    assert one.skipped == two.skipped and sum(two.skipped.values()) == 1
    i = int(two.ids[7])
    x = kao_transform(False, resize=32, crop=32)(load_image(folder["images"] / f"{i}.jpg",
                                                            short_edge=32))[None]
    with torch.no_grad():
        torch.testing.assert_close(two.values[0, 7], FrozenStem(SPEC)(x)[0], rtol=1e-4,
                                   atol=1e-4)


def test_the_frozen_graph_computes_the_stems_activations(caplog):
    """The cache's frozen graph (batch norm folded into the convolutions) against the eager
    ImageNet stem, on a batch of another size than the one it was traced on (a folder's last,
    partial batch); a module that cannot be traced runs eagerly, with a warning."""
    stem = FrozenStem("efficientnet_lite0:16").to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 3, 112, 112, generator=g).contiguous(memory_format=torch.channels_last)
    graph = A.frozen_graph(stem, x)
    assert graph is not stem
    with torch.inference_mode():
        for batch in (x, x[:5]):
            torch.testing.assert_close(graph(batch), stem(batch), rtol=1e-4, atol=1e-4)

    class Untraceable(torch.nn.Module):
        def forward(self, x):
            return {"x": x, "note": "not a tensor"}

    module = Untraceable()
    with caplog.at_level(logging.WARNING):
        assert A.frozen_graph(module, x) is module
    assert "running it eagerly" in caplog.text


def test_the_key_follows_images_stem_and_transform(folder):
    key = A.cache_key(folder["images"], "stem-a", 32)
    assert key == A.cache_key(folder["images"], "stem-a", 32)
    assert A.cache_key(folder["images"], "stem-b", 32) != key
    assert A.cache_key(folder["images"], "stem-a", 48) != key
    first = sorted(folder["images"].glob("*.jpg"))[0]
    Image.new("RGB", (64, 64), (10, 200, 30)).save(first)              # an image changes
    assert A.cache_key(folder["images"], "stem-a", 32) != key          # a stale cache is never read


def test_image_digest_is_the_content_hash_and_rehashes_a_rewritten_file(folder):
    """The digest against hashlib over the files' bytes; the per-process memo must not serve it
    after a file is rewritten, even with the same size and modification time."""
    import hashlib
    import os

    ids = A.folder_ids(folder["images"])

    def reference():
        h = hashlib.sha256()
        for i in ids:
            data = (folder["images"] / f"{i}.jpg").read_bytes()
            h.update(f"{i}:{hashlib.sha256(data).hexdigest()}\n".encode())
        return h.hexdigest()

    assert A.image_digest(folder["images"], ids) == reference()
    path = folder["images"] / f"{ids[0]}.jpg"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF                                        # same size, other content
    tmp = path.with_suffix(".new")
    tmp.write_bytes(bytes(data))
    os.replace(tmp, path)                                   # as an atomic rewrite does
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))     # same modification time
    assert A.image_digest(folder["images"], ids) == reference()


def test_a_corrupt_or_partial_cache_is_rebuilt_with_a_warning(folder, tmp_path, caplog):
    args = dict(stem=CountingStem, stem_id="counting", size=32, cache_root=tmp_path / "c")
    acts = A.load_activations(folder["images"], **args)
    entry = tmp_path / "c" / acts.key[:24]
    data = (entry / "activations.pt").read_bytes()
    (entry / "activations.pt").write_bytes(data[: len(data) // 2])     # a partial write
    A._LOADED.clear()
    with caplog.at_level(logging.WARNING, logger="iaalib.data.activations"):
        rebuilt = A.load_activations(folder["images"], **args)
    assert "unusable" in caplog.text and "sha256" in caplog.text
    assert torch.equal(rebuilt.values, acts.values)
    (entry / "meta.json").unlink()                                    # killed before meta.json
    A._LOADED.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="iaalib.data.activations"):
        assert torch.equal(A.load_activations(folder["images"], **args).values, acts.values)
    assert "unusable" in caplog.text


def test_a_failed_cache_write_names_the_file_and_the_free_space(folder, tmp_path, monkeypatch):
    """A full disk made torch.save fail mid-file with "unexpected pos 704 vs 598" (stop 23): the
    error names the cache file, its size and the disk's free space, and leaves no partial file."""
    import re

    def full_disk(obj, fh):
        fh.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(A.torch, "save", full_disk)
    message = (r"activations\.pt: cannot write the activation cache \([\d,]+ MiB; [\d,]+ MiB "
               r"free on its disk\): .*unexpected pos")
    with pytest.raises(IaaError, match=message):
        A.load_activations(folder["images"], stem=CountingStem, stem_id="counting", size=32,
                           cache_root=tmp_path / "c")
    assert not list((tmp_path / "c").rglob("activations.pt*"))        # nothing half-written
    assert not [p for p in (tmp_path / "c").rglob("*")
                if p.is_file() and re.search(r"\.tmp", p.name)]


def test_unreadable_images_are_left_out_and_counted(folder, tmp_path):
    bad = sorted(folder["images"].glob("*.jpg"))[2]
    bad.write_bytes(bad.read_bytes()[:40])
    acts = A.load_activations(folder["images"], stem=CountingStem, stem_id="counting", size=32,
                              cache_root=tmp_path / "c")
    assert int(bad.stem) not in acts.row and sum(acts.skipped.values()) == 1
    ds = A.ActivationDataset(folder["train"], acts, train=False)
    rows = [k for k, i in enumerate(ds.image_ids) if int(i) == int(bad.stem)]
    assert len(rows) == 1 and ds[rows[0]] is None and ds.batch(rows)["n_skipped"] == 1
    assert ds.skipped["unreadable"] == 1 and ds.skipped["missing"] == 0


def test_dataset_batches_equal_samples_and_flip_is_seeded(folder, tmp_path):
    acts = A.load_activations(folder["images"], stem=CountingStem, stem_id="counting", size=32,
                              cache_root=tmp_path / "c")
    ds = A.ActivationDataset(folder["train"], acts, train=True, seed=3)
    ds.set_epoch(2)
    batch = ds.batch([0, 1, 2, 3])
    for k in range(4):
        sample = ds[k]
        torch.testing.assert_close(batch["image"][k], sample["image"])
        assert batch["label"][k] == sample["label"] and batch["image_id"][k] == sample["image_id"]
    views = [int(torch.equal(ds[k]["image"], acts.values[1, acts.row[int(ds.image_ids[k])]]))
             for k in range(len(ds))]
    assert 0 < sum(views) < len(ds)                                   # some mirrored, some not
    test = A.ActivationDataset(folder["train"], acts, train=False, seed=3)
    assert all(torch.equal(test[k]["image"], acts.values[0, acts.row[int(test.image_ids[k])]])
               for k in range(len(test)))


def test_mirror_bits_are_the_samples_augmentation_seeds():
    """The memoised mirror choice equals augmentation_seed(seed, epoch, index) % 2 per sample."""
    from iaalib.data.images import augmentation_seed
    A.mirror_bits.cache_clear()
    bits = A.mirror_bits(3, 2, 50)
    assert bits.tolist() == [augmentation_seed(3, 2, i) % 2 for i in range(50)]
    assert A.mirror_bits(3, 2, 50) is bits                       # once per (seed, epoch, n)
    assert A.mirror_bits(3, 3, 50).tolist() != bits.tolist()      # another epoch, other flips
    with pytest.raises(ValueError):
        bits[0] = 1 - bits[0]                                     # the shared copy is read-only


def test_shift_maps_is_a_zero_padded_crop():
    """Hand-made 3x3 maps: offset (0, 0) moves the content one cell down and right, (2, 1) one
    cell up, (1, 1) not at all; the cells moved in are zeros."""
    x = torch.arange(27.).reshape(3, 1, 3, 3)
    out = A.shift_maps(x, torch.tensor([[0, 0], [2, 1], [1, 1]]), 1)
    assert out[0, 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 3, 4]]
    assert out[1, 0].tolist() == [[12, 13, 14], [15, 16, 17], [0, 0, 0]]
    torch.testing.assert_close(out[2], x[2])
    # a 3x4 map moved by two cells up and two left (shift 2, offset (4, 4)), by hand
    y = torch.arange(12.).reshape(1, 1, 3, 4)
    assert A.shift_maps(y, torch.tensor([[4, 4]]), 2)[0, 0].tolist() == \
        [[10, 11, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert A.shift_maps(y, torch.tensor([[0, 3]]), 2)[0, 0].tolist() == \
        [[0, 0, 0, 0], [0, 0, 0, 0], [1, 2, 3, 0]]


def test_shift_offsets_are_digits_of_the_augmentation_seed_independent_of_the_flip():
    from iaalib.data.images import augmentation_seed
    offsets = A.shift_offsets(3, 2, 40, 1)
    rest = [augmentation_seed(3, 2, i) >> 1 for i in range(40)]
    assert offsets.tolist() == [[r % 3, r // 3 % 3] for r in rest]
    many = A.shift_offsets(5, 0, 9000, 1)
    counts = np.bincount(many[:, 0] * 3 + many[:, 1], minlength=9)
    assert counts.min() > 850 and counts.max() < 1150        # each of 9 offsets ~1,000 times
    flips = A.mirror_bits(5, 0, 9000)
    assert abs(np.corrcoef(many[:, 0], flips)[0, 1]) < 0.05


def test_a_shifted_dataset_shifts_training_samples_only(folder, tmp_path):
    acts = A.load_activations(folder["images"], stem=CountingStem, stem_id="counting", size=32,
                              cache_root=tmp_path / "c")
    ds = A.ActivationDataset(folder["train"], acts, train=True, shift=1, seed=3)
    plain = A.ActivationDataset(folder["train"], acts, train=True, seed=3)
    ds.set_epoch(2), plain.set_epoch(2)
    idx = list(range(len(ds)))
    batch, flipped = ds.batch(idx)["image"], plain.batch(idx)["image"]
    offsets = torch.from_numpy(A.shift_offsets(3, 2, len(ds), 1).copy())
    torch.testing.assert_close(batch, A.shift_maps(flipped, offsets, 1))   # same flips, shifted
    torch.testing.assert_close(ds[1]["image"], batch[1])
    assert not torch.equal(batch, flipped)
    test = A.ActivationDataset(folder["train"], acts, train=False, shift=1, seed=3)
    assert torch.equal(test.batch(idx)["image"],
                       A.ActivationDataset(folder["train"], acts, train=False).batch(idx)["image"])
    # a batch in any order is its samples in that order
    some = ds.batch([5, 0, 3])["image"]
    torch.testing.assert_close(some, torch.stack([ds[5]["image"], ds[0]["image"], ds[3]["image"]]))
    for bad in (-1, 8):  # 8x8 maps: a shift of 8 cells would leave some samples all zeros
        with pytest.raises(ValueError, match="shift must be 0 to 7 cells"):
            A.ActivationDataset(folder["train"], acts, train=True, shift=bad)
    assert A.ActivationDataset(folder["train"], acts, train=True, shift=7).shift == 7


def test_a_network_above_the_stem_trains_and_scores_pixels(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_HOME", str(tmp_path / "home"))
    cfg = tiny_config(folder, family="saf", epochs=2, monitor_test=True, val=False)
    cfg = cfg.with_overrides({"model.stem": SPEC, "data.stem_size": 64})
    run = train(cfg)
    assert run.status == "finished" and "test_srcc_mean" in run.history[-1]
    assert run.history[-1]["test_srcc_mean"] == pytest.approx(run.metrics["srcc_mean"])
    model = run.load_model(pixels=True)
    assert isinstance(model, StemmedModel)
    # the cached path and the pixel path give the same prediction for a test image
    pred = run.predictions.set_index("image_id")
    i = int(pred.index[0])
    x = kao_transform(False, resize=64, crop=64)(load_image(folder["images"] / f"{i}.jpg",
                                                            short_edge=64))[None]
    with torch.no_grad():
        p = torch.softmax(model(x)["dist_logits"], 1)[0].numpy()
    np.testing.assert_allclose(p, pred.loc[i, [f"p{k}" for k in range(1, 11)]].to_numpy(float),
                               atol=1e-5)
    # the config keeps the hash of a config without the new fields (at their defaults)
    assert tiny_config(folder, family="saf").config_hash() == \
        tiny_config(folder, family="saf").with_overrides({"model.stem": None}).config_hash()
    assert cfg.config_hash() != cfg.with_overrides({"model.stem": None}).config_hash()
    assert cfg.with_overrides({"data.stem_shift": 0}).config_hash() == cfg.config_hash()
    assert cfg.with_overrides({"data.stem_shift": 1}).config_hash() != cfg.config_hash()
