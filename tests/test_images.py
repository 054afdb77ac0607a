"""iaalib.data.images: decoding, bad-image policy, transforms, Dataset, collate, resized cache.

References are independent of the code under test: hand-computed pixel values (alpha blending,
16-bit scaling), Pillow called directly (full decode + resize/crop), and the paper's sizes.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageFile

from iaalib.data import images as im
from iaalib.errors import BadImageError, DataFormatError

MEAN = torch.tensor(im.IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(im.IMAGENET_STD).view(3, 1, 1)


def photo(width, height, seed=0):
    """Photo-like RGB array: smooth gradients + texture + noise (no two crops alike)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 200, (x + y) / (width + height) * 255], -1)
    texture = 30 * np.sin(x[..., None] / 7.0 + np.array([0, 1, 2])) * np.cos(y[..., None] / 11.0)
    noise = rng.normal(0, 6, (height, width, 3))
    return np.clip(base + texture + noise + 20, 0, 255).astype(np.uint8)


def save_jpeg(path, width, height, seed=0, quality=95):
    Image.fromarray(photo(width, height, seed)).save(path, "JPEG", quality=quality)
    return path


def to_tensor01(pil):
    return torch.from_numpy(np.asarray(pil.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


GREY_LEVEL = 1 / 255 + 1e-6


def assert_within_one_grey_level(out, reference):
    """The transforms resize the uint8 tensor (torchvision) instead of the PIL image (Pillow): the two
    antialiased bilinear kernels differ only in rounding: never by more than one grey level."""
    diff = ((out - reference) * STD).abs()  # back to [0, 1] units
    assert diff.max() <= GREY_LEVEL, diff.max()
    assert diff.mean() < 0.5 / 255  # most pixels identical


def manifest(ids, tags=None):
    rng = np.random.default_rng(1)
    votes = rng.integers(0, 40, (len(ids), 10))
    votes[:, 4] += 1  # never all zero
    frame = pd.DataFrame(votes, columns=[f"vote_{i}" for i in range(1, 11)])
    frame.insert(0, "image_id", np.asarray(ids, dtype=np.int64))
    dist = votes / votes.sum(1, keepdims=True)
    frame["n_votes"] = votes.sum(1)
    frame["mean"] = dist @ np.arange(1, 11)
    frame["sd"] = np.sqrt(dist @ np.arange(1, 11) ** 2 - frame["mean"] ** 2)
    frame["label"] = (frame["mean"] > 5).astype(np.int64)
    frame["tag1"], frame["tag2"], frame["challenge_id"] = 0, 0, 1
    for tag_id, column in (tags or {}).items():
        frame[f"tag_{tag_id}"] = column
    return frame


# ------------------------------------------------------------------------------------------ decoding
def test_jpeg_draft_keeps_short_edge_and_matches_full_decode(tmp_path):
    path = save_jpeg(tmp_path / "a.jpg", 800, 600)
    assert im.load_image(path).size == (800, 600)
    # libjpeg scales 1/1, 1/2, 1/4, 1/8: the largest with both sides >= s.
    for s, expected in [(256, (400, 300)), (300, (400, 300)), (301, (800, 600)), (100, (200, 150)),
                        (75, (100, 75)), (74, (100, 75))]:
        out = im.load_image(path, short_edge=s)
        assert out.mode == "RGB" and out.size == expected, s
        assert min(out.size) >= s
    reference = Image.open(path).convert("RGB").resize((400, 300), Image.Resampling.BOX)
    drafted = im.load_image(path, short_edge=256)
    diff = np.abs(np.asarray(drafted, np.float32) - np.asarray(reference, np.float32))
    assert diff.mean() < 3.0


def test_non_jpeg_is_reduced_by_integer_factor(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(photo(1000, 800)).save(path)
    out = im.load_image(path, short_edge=256)
    assert out.size == (334, 267)  # factor 800 // 256 = 3, ceil(1000/3), ceil(800/3)
    assert im.load_image(path, short_edge=500).size == (1000, 800)


def test_cmyk_jpeg_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    cmyk = np.zeros((80, 80, 4), np.uint8)
    cmyk[:, :40] = (0, 255, 255, 0)  # pure red in CMYK
    cmyk[:, 40:] = (0, 0, 0, 255)    # full black
    Image.fromarray(cmyk, mode="CMYK").save(path, "JPEG", quality=100)
    assert Image.open(path).mode == "CMYK"
    out = np.asarray(im.load_image(path), np.int16)
    assert out.shape == (80, 80, 3)
    assert np.abs(out[40, 10] - (255, 0, 0)).max() <= 3
    assert np.abs(out[40, 70] - (0, 0, 0)).max() <= 3


def test_greyscale_to_rgb(tmp_path):
    grey = photo(96, 80)[..., 0]
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    out = np.asarray(im.load_image(tmp_path / "g.png"))
    assert out.shape == (80, 96, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_rgba_and_la_composited_on_white(tmp_path):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[:, :20] = (255, 0, 0, 0)      # fully transparent red → white
    rgba[:, 20:40] = (0, 0, 255, 255)  # opaque blue stays blue
    rgba[:, 40:] = (0, 0, 0, 128)      # half-transparent black → 255 * (1 - 128/255) = 127
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = np.asarray(im.load_image(tmp_path / "rgba.png"), np.int16)
    np.testing.assert_array_equal(out[5, 5], (255, 255, 255))
    np.testing.assert_array_equal(out[5, 30], (0, 0, 255))
    assert np.abs(out[5, 50] - 127).max() <= 1

    la = np.zeros((64, 64, 2), np.uint8)
    la[:, :32] = (0, 0)      # transparent black → white
    la[:, 32:] = (90, 255)   # opaque grey
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    out = np.asarray(im.load_image(tmp_path / "la.png"))
    np.testing.assert_array_equal(out[3, 3], (255, 255, 255))
    np.testing.assert_array_equal(out[3, 40], (90, 90, 90))


def test_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (64, 64), 0)
    pal.putpalette([10, 200, 30] + [250, 0, 0] + [0] * (254 * 3))
    pal.paste(1, (0, 0, 32, 64))
    pal.save(tmp_path / "p.png")
    out = np.asarray(im.load_image(tmp_path / "p.png"))
    np.testing.assert_array_equal(out[0, 0], (250, 0, 0))
    np.testing.assert_array_equal(out[0, 40], (10, 200, 30))

    pal.info["transparency"] = 1
    pal.save(tmp_path / "pt.png", transparency=1)
    assert "transparency" in Image.open(tmp_path / "pt.png").info
    out = np.asarray(im.load_image(tmp_path / "pt.png"))
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))  # transparent index → white
    np.testing.assert_array_equal(out[0, 40], (10, 200, 30))


def test_16bit_png_scaled_not_clipped(tmp_path):
    values = np.full((64, 64), 32768, np.uint16)
    values[0, :3] = (0, 65535, 257 * 200)
    Image.fromarray(values).save(tmp_path / "g16.png")
    opened = Image.open(tmp_path / "g16.png")
    assert opened.mode.startswith("I")
    assert opened.convert("RGB").getpixel((10, 10)) == (255, 255, 255)  # Pillow's plain convert clips
    out = np.asarray(im.load_image(tmp_path / "g16.png"))
    np.testing.assert_array_equal(out[10, 10], (128, 128, 128))  # 32768 / 257 = 127.5 → 128
    np.testing.assert_array_equal(out[0, 0], (0, 0, 0))
    np.testing.assert_array_equal(out[0, 1], (255, 255, 255))
    np.testing.assert_array_equal(out[0, 2], (200, 200, 200))


# ---------------------------------------------------------------------------------- bad-image policy
def _truncated(tmp_path):
    data = save_jpeg(tmp_path / "full.jpg", 400, 300).read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) * 6 // 10])
    return tmp_path / "trunc.jpg"


def _bad_files(tmp_path):
    (tmp_path / "corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    (tmp_path / "empty.jpg").write_bytes(b"")
    save_jpeg(tmp_path / "small.jpg", 40, 30)
    save_jpeg(tmp_path / "bomb.jpg", 300, 200)
    Image.new("F", (80, 80), 0.5).save(tmp_path / "float.tif")
    return [  # (reason, path, load_image keyword arguments)
        ("missing", tmp_path / "nope.jpg", {}),
        ("truncated", _truncated(tmp_path), {}),
        ("corrupt", tmp_path / "corrupt.jpg", {}),
        ("corrupt", tmp_path / "empty.jpg", {}),
        ("too_small", tmp_path / "small.jpg", {"min_side": 64}),
        ("decompression_bomb", tmp_path / "bomb.jpg", {"max_pixels": 300 * 200 - 1}),
        ("unsupported", tmp_path / "float.tif", {}),
    ]


def test_each_bad_input_raises_its_reason(tmp_path):
    for reason, path, kwargs in _bad_files(tmp_path):
        with pytest.raises(BadImageError) as info:
            im.load_image(path, short_edge=128, **kwargs)
        assert info.value.reason == reason, (reason, info.value)
        assert str(path) in str(info.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # never switched on globally


def test_limits_are_parameters(tmp_path):
    save_jpeg(tmp_path / "small.jpg", 40, 30)
    assert im.load_image(tmp_path / "small.jpg", min_side=30).size == (40, 30)
    save_jpeg(tmp_path / "big.jpg", 300, 200)
    assert im.load_image(tmp_path / "big.jpg", max_pixels=300 * 200).size == (300, 200)


def test_pillow_decompression_bomb_error_is_a_skip_reason(tmp_path, monkeypatch):
    save_jpeg(tmp_path / "a.jpg", 300, 200)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow itself raises above 2× this
    with pytest.raises(BadImageError) as info:
        im.load_image(tmp_path / "a.jpg", max_pixels=10**9)
    assert info.value.reason == "decompression_bomb"


def test_dataset_skips_counts_and_logs_bad_images(tmp_path, caplog):
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    # Dataset images are <image_id>.jpg: copy each bad file (default limits) under an id.
    reasons = {}
    for image_id, (reason, path, _) in enumerate(_bad_files(tmp_path), start=1):
        if reason in ("decompression_bomb", "unsupported"):
            continue
        if path.exists():
            (image_dir / f"{image_id}.jpg").write_bytes(path.read_bytes())
        reasons[image_id] = reason
    save_jpeg(image_dir / "100.jpg", 120, 90)
    ids = [*reasons, 100]
    ds = im.AvaImageDataset(manifest(ids), image_dir, im.kao_transform(False))
    with caplog.at_level(logging.WARNING, logger="iaalib.data.images"):
        samples = [ds[i] for i in range(len(ds))]
    assert [s is None for s in samples] == [True] * len(reasons) + [False]
    assert ds.skipped == {"missing": 1, "truncated": 1, "corrupt": 2, "too_small": 1}
    assert len(caplog.records) == len(reasons)
    assert str(image_dir / "1.jpg") in caplog.records[0].getMessage()
    # small but above min_side: upscaled to the crop by the transform
    assert samples[-1]["image"].shape == (3, 227, 227)

    batch = im.collate_batch(samples)
    assert batch["n_skipped"] == len(reasons) and batch["image"].shape == (1, 3, 227, 227)
    strict = im.AvaImageDataset(manifest(ids), image_dir, im.kao_transform(False), strict=True)
    with pytest.raises(BadImageError) as info:
        strict[0]
    assert info.value.reason == "missing"


# ---------------------------------------------------------------------------------------- transforms
def test_kao_eval_is_resize_then_centre_crop(tmp_path):
    pil = Image.fromarray(photo(500, 330))
    out = im.kao_transform(False)(pil)
    assert out.shape == (3, 227, 227) and out.dtype == torch.float32
    resized = pil.resize((256, 256), Image.Resampling.BILINEAR)  # Pillow bilinear, antialiased
    reference = (to_tensor01(resized.crop((14, 14, 241, 241))) - MEAN) / STD  # (256-227)/2 = 14.5 → 14
    assert_within_one_grey_level(out, reference)
    raw = im.kao_transform(False, mean=None)(pil)
    assert raw.min() >= 0 and raw.max() <= 1
    assert im.kao_transform(False, resize=128, crop=112)(pil).shape == (3, 112, 112)
    with pytest.raises(ValueError):
        im.kao_transform(True, resize=200, crop=227)


def test_kao_train_crop_is_a_window_of_the_resized_image():
    pil = Image.fromarray(photo(400, 300))
    full = to_tensor01(pil.resize((256, 256), Image.Resampling.BILINEAR))
    offsets = set()
    for seed in range(8):
        torch.manual_seed(seed)
        out = im.kao_transform(True, mean=None)(pil)
        hits = [(top, left) for top in range(30) for left in range(30)
                if torch.allclose(full[:, top:top + 4, left:left + 4], out[:, :4, :4], atol=GREY_LEVEL)
                and torch.allclose(full[:, top:top + 227, left:left + 227], out, atol=GREY_LEVEL)]
        assert len(hits) == 1
        offsets.add(hits[0])
    assert len(offsets) > 1  # random crops


@pytest.mark.parametrize("width,height", [(800, 600), (600, 800), (512, 512), (799, 333), (300, 1000)])
def test_saf_keeps_aspect_ratio_and_whole_image(width, height):
    pil = Image.fromarray(photo(width, height))
    out = im.saf_transform(False)(pil)
    h, w = out.shape[1:]
    assert min(h, w) == 256
    assert abs((w / h) / (width / height) - 1) < 0.01
    reference = (to_tensor01(pil.resize((w, h), Image.Resampling.BILINEAR)) - MEAN) / STD  # whole image
    assert_within_one_grey_level(out, reference)


def test_saf_train_flip_and_long_edge_cap():
    pil = Image.fromarray(photo(640, 480))
    plain = im.saf_transform(False)(pil)
    flipped = 0
    for seed in range(12):
        torch.manual_seed(seed)
        out = im.saf_transform(True)(pil)
        if torch.equal(out, plain.flip(-1)):
            flipped += 1
        else:
            assert torch.equal(out, plain)
    assert 0 < flipped < 12
    panorama = Image.fromarray(photo(1200, 200))
    capped = im.saf_transform(False, max_long_edge=800)(panorama)
    assert capped.shape[2] == 800 and abs(capped.shape[2] / capped.shape[1] - 6) < 0.06


# ------------------------------------------------------------------------------------------- dataset
@pytest.fixture()
def image_set(tmp_path):
    sizes = {11: (320, 240), 12: (240, 320), 13: (300, 300), 14: (330, 220), 15: (320, 240), 16: (250, 250)}
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    for image_id, (w, h) in sizes.items():
        save_jpeg(image_dir / f"{image_id}.jpg", w, h, seed=image_id)
    return image_dir, sizes


def test_dataset_sample_contents(image_set, tmp_path):
    image_dir, sizes = image_set
    ids = list(sizes)
    frame = manifest(ids, tags={7: [1, 0, 0, 1, 0, 1], 15: [0, 0, 1, 1, 0, 0]})
    ds = im.AvaImageDataset(frame, image_dir, im.saf_transform(False))
    assert len(ds) == 6 and ds.tag_columns == ["tag_7", "tag_15"] and ds.short_edge == 256
    votes = frame[[f"vote_{i}" for i in range(1, 11)]].to_numpy(np.float64)
    for i in range(len(ds)):
        s = ds[i]
        assert s["index"] == i and s["image_id"] == ids[i]
        np.testing.assert_allclose(s["dist"].numpy(), votes[i] / votes[i].sum(), rtol=1e-6)
        assert s["label"].dtype == torch.int64 and int(s["label"]) == int(frame["label"][i])
        assert s["tags"].tolist() == [frame["tag_7"][i], frame["tag_15"][i]]
        assert s["mean"] == pytest.approx(frame["mean"][i])
        w, h = sizes[ids[i]]
        assert s["image"].shape[1:] == ((256, round(256 * w / h)) if w >= h else (round(256 * h / w), 256))
    # From a CSV path; no tag columns → M = 0
    path = tmp_path / "train.csv"
    manifest(ids).to_csv(path, index=False)
    ds = im.AvaImageDataset(path, image_dir, im.kao_transform(True))
    assert ds[0]["tags"].shape == (0,) and ds[0]["image"].shape == (3, 227, 227)


def test_bad_manifest_names_file_and_line(tmp_path, image_set):
    image_dir, sizes = image_set
    path = tmp_path / "bad.csv"
    manifest(list(sizes)).drop(columns=["label"]).to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"bad\.csv:1: .*label"):
        im.AvaImageDataset(path, image_dir, im.kao_transform(False))
    frame = manifest(list(sizes))
    frame["vote_2"] = frame["vote_2"].astype(object)
    frame.loc[3, "vote_2"] = "x"
    frame.to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"bad\.csv:5: "):
        im.AvaImageDataset(path, image_dir, im.kao_transform(False))


def test_augmentation_is_a_pure_function_of_seed_epoch_index(image_set):
    image_dir, sizes = image_set
    ds = im.AvaImageDataset(manifest(list(sizes)), image_dir, im.kao_transform(True), seed=3)
    rng_state = torch.get_rng_state()
    first = [ds[i]["image"] for i in range(len(ds))]
    assert torch.equal(torch.get_rng_state(), rng_state)  # global RNG untouched
    torch.manual_seed(12345)  # unrelated global seeding changes nothing
    assert all(torch.equal(ds[i]["image"], first[i]) for i in reversed(range(len(ds))))
    ds.set_epoch(1)
    assert not all(torch.equal(ds[i]["image"], first[i]) for i in range(len(ds)))
    ds.set_epoch(0)
    assert torch.equal(ds[2]["image"], first[2])
    other_seed = im.AvaImageDataset(manifest(list(sizes)), image_dir, im.kao_transform(True), seed=4)
    assert not all(torch.equal(other_seed[i]["image"], first[i]) for i in range(len(ds)))
    assert im.augmentation_seed(3, 0, 1) != im.augmentation_seed(3, 1, 0)


def test_aspect_ratios_from_headers_cached(image_set, tmp_path, monkeypatch):
    image_dir, sizes = image_set
    ids = [*sizes, 999]  # 999 is missing
    ds = im.AvaImageDataset(manifest(ids), image_dir, im.saf_transform(False), cache_dir=tmp_path / "c")
    expected = [w / h for w, h in sizes.values()] + [1.0]
    np.testing.assert_allclose(ds.aspect_ratios(), expected)
    assert len(list((tmp_path / "c").glob("aspect_sizes-*.npy"))) == 1

    # Second call: served from the cache; only the missing image is probed again.
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
    save_jpeg(image_dir / "999.jpg", 100, 200)
    np.testing.assert_allclose(ds.aspect_ratios(), expected[:-1] + [0.5])
    assert [str(p) for p in opened] == [str(image_dir / "999.jpg")]
    opened.clear()
    np.testing.assert_allclose(ds.aspect_ratios(), expected[:-1] + [0.5])
    assert opened == []
    # A different manifest gets its own cache entry.
    im.AvaImageDataset(manifest(ids[:3]), image_dir, im.saf_transform(False),
                       cache_dir=tmp_path / "c").aspect_ratios()
    assert len(list((tmp_path / "c").glob("aspect_sizes-*.npy"))) == 2


# ------------------------------------------------------------------------------------------- collate
def _sample(h, w, index, m=2):
    image = torch.arange(3 * h * w, dtype=torch.float32).view(3, h, w)
    return {"image": image, "dist": torch.full((10,), 0.1), "label": torch.tensor(index % 2),
            "tags": torch.zeros(m), "mean": 5.0 + index, "index": index, "image_id": 100 + index}


def test_collate_centre_crops_to_common_size():
    samples = [_sample(256, 341, 0), None, _sample(256, 345, 1), _sample(259, 341, 2)]
    batch = im.collate_batch(samples)
    assert batch["image"].shape == (3, 3, 256, 341)
    assert batch["n_skipped"] == 1
    # hand-computed windows: width 345 → 341 drops 2 columns left, 2 right; height 259 → 256:
    # (259-256)/2 = 1.5, rounded half to even → 2 rows off the top.
    torch.testing.assert_close(batch["image"][0], samples[0]["image"])
    torch.testing.assert_close(batch["image"][1], samples[2]["image"][:, :, 2:343])
    torch.testing.assert_close(batch["image"][2], samples[3]["image"][:, 2:258, :])
    assert batch["index"].tolist() == [0, 1, 2] and batch["image_id"].tolist() == [100, 101, 102]
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [0, 1, 0]
    assert batch["mean"].tolist() == [5.0, 6.0, 7.0] and batch["tags"].shape == (3, 2)
    assert batch["dist"].shape == (3, 10)


def test_collate_all_skipped_gives_empty_batch():
    batch = im.collate_batch([None, None])
    assert batch["n_skipped"] == 2 and batch["image"].shape[0] == 0 and batch["label"].numel() == 0


# ------------------------------------------------------------------------------------- resized cache
def test_build_resized_cache_is_resumable(image_set, tmp_path):
    image_dir, sizes = image_set
    (image_dir / "17.jpg").write_bytes(b"not a jpeg")
    ids = [*sizes, 17, 18]  # 17 corrupt, 18 missing
    report = im.build_resized_cache(manifest(ids), image_dir, tmp_path / "r", short_edge=128)
    assert report["n_written"] == 6 and report["skipped"] == {"corrupt": 1, "missing": 1}
    for image_id, (w, h) in sizes.items():
        cached = Image.open(tmp_path / "r" / f"{image_id}.jpg")
        assert min(cached.size) == 128
        assert abs(cached.size[0] / cached.size[1] / (w / h) - 1) < 0.01
    again = im.build_resized_cache(manifest(ids), image_dir, tmp_path / "r", short_edge=128)
    assert again["n_written"] == 0 and again["n_existing"] == 6
    assert again["skipped"] == {"corrupt": 1, "missing": 1}
    # Complete for these ids: the next call reads cache.json and touches no image, so a file that
    # appeared since (18) is not tried; another id set is checked image by image again.
    Image.new("RGB", (300, 200)).save(image_dir / "18.jpg")
    again = im.build_resized_cache(manifest(ids), image_dir, tmp_path / "r", short_edge=128)
    assert again["skipped"] == {"corrupt": 1, "missing": 1} and not (tmp_path / "r" / "18.jpg").exists()
    more = im.build_resized_cache(manifest([*ids, 19]), image_dir, tmp_path / "r", short_edge=128)
    assert more["n_written"] == 1 and more["skipped"] == {"corrupt": 1, "missing": 1}
    assert (tmp_path / "r" / "18.jpg").exists()
    with pytest.raises(ValueError, match="cache.json"):
        im.build_resized_cache(manifest(ids), image_dir, tmp_path / "r", short_edge=256)
    # The cached copy feeds the same pipeline: SAF output equals resizing the original directly.
    ds = im.AvaImageDataset(manifest(ids[:1]), tmp_path / "r", im.saf_transform(False, short_edge=128))
    direct = im.saf_transform(False, short_edge=128)(Image.open(image_dir / "11.jpg").convert("RGB"))
    assert ds[0]["image"].shape == direct.shape
    assert (ds[0]["image"] - direct).abs().mean() < 0.05


def test_cli_data_cache_from_manifests(image_set, tmp_path, capsys):
    from iaalib import cli

    image_dir, sizes = image_set
    ids = list(sizes)
    manifest(ids[:4] + [18]).to_csv(tmp_path / "train.csv", index=False)  # 18 is missing
    manifest(ids[3:]).to_csv(tmp_path / "test.csv", index=False)  # id 14 in both
    out = tmp_path / "cache"
    argv = ["data", "cache", "--manifest", str(tmp_path / "train.csv"), "--manifest",
            str(tmp_path / "test.csv"), "--images", str(image_dir), "--out", str(out),
            "--short-edge", "230", "--workers", "1"]
    assert cli.main(argv) == 0
    assert "7 images, 6 written, 0 already there, 1 skipped (missing: 1)" in capsys.readouterr().out
    assert sorted(int(f.stem) for f in out.glob("*.jpg")) == ids
    for image_id, (w, h) in sizes.items():
        cached = Image.open(out / f"{image_id}.jpg").size
        assert min(cached) == min(230, w, h)  # 14 (330x220) is kept, never upscaled
        assert abs(cached[0] / cached[1] / (w / h) - 1) < 0.01
    assert cli.main(argv) == 0
    assert "6 already there" in capsys.readouterr().out
    pd.DataFrame({"id": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    assert cli.main(["data", "cache", "--manifest", str(tmp_path / "bad.csv"), "--images", str(image_dir),
                     "--out", str(out)]) == 2
    assert "bad.csv" in capsys.readouterr().err
