"""The GPU data path (iaalib.data.on_device), run on the CPU: the same crops, flips and labels as
the CPU path, undecodable files dropped and counted, resident images decoded once, and a whole
training run through it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

import iaalib.engine.trainer as T
from engine_helpers import make_tiny_dataset, tiny_config
from iaalib.data import images, on_device
from iaalib.engine import loaders


@pytest.fixture()
def data(tmp_path):
    return make_tiny_dataset(tmp_path / "tiny", n=24, splits=(0.5, 0.25, 0.25))


def _both(data, transform):
    cpu = images.AvaImageDataset(data["train"], data["images"], transform, seed=3)
    dev = on_device.EncodedImageDataset(data["train"], data["images"], transform, seed=3,
                                        device="cpu")
    return cpu, dev


def test_split_transform_keeps_the_resize_and_leaves_the_random_steps():
    prefix, rest = on_device.split_transform(images.kao_transform(True, resize=72, crop=64))
    assert isinstance(prefix.transforms[-1], v2.Resize)
    assert isinstance(rest.transforms[0], v2.RandomCrop)
    x = torch.randint(0, 255, (3, 80, 100), dtype=torch.uint8)
    assert prefix(x).shape == (3, 72, 72) and rest(prefix(x)).shape == (3, 64, 64)


@pytest.mark.parametrize("kind", ["kao", "saf"])
def test_decoded_on_the_device_equals_the_cpu_path(data, kind):
    """Same images (libjpeg both ways, no reduced-scale decode at these sizes), same per-image
    crops and flips, same labels: the tensors agree to within JPEG decoder rounding."""
    transform = images.kao_transform(True, resize=72, crop=64, hflip=True) if kind == "kao" \
        else images.saf_transform(True, short_edge=64)
    cpu, dev = _both(data, transform)
    cpu.set_epoch(2)
    dev.set_epoch(2)
    rows = [0, 1, 2, 5] if kind == "kao" else [2, 5, 8]          # saf: one aspect ratio
    ref = images.collate_batch([cpu[i] for i in rows])
    out = dev.decode_batch(on_device.collate_encoded([dev[i] for i in rows]))
    assert out["image"].shape == ref["image"].shape and out["n_skipped"] == 0
    assert (out["image"] - ref["image"]).abs().mean() < 0.02
    for field in ("dist", "label", "tags", "mean", "index", "image_id"):
        torch.testing.assert_close(out[field], ref[field])


def test_an_undecodable_or_missing_file_is_dropped_and_counted(data):
    cpu, dev = _both(data, images.kao_transform(False, resize=72, crop=64))
    path = dev.image_path(1)
    path.write_bytes(path.read_bytes()[:200])                      # truncated
    dev.image_path(2).unlink()                                     # missing
    out = dev.decode_batch(on_device.collate_encoded([dev[i] for i in range(4)]))
    assert out["index"].tolist() == [0, 3] and out["n_skipped"] == 2
    assert dev.skipped == {"missing": 1, "corrupt": 1}


def test_resident_images_are_decoded_once_and_augmented_each_epoch(data):
    transform = images.kao_transform(True, resize=72, crop=48, hflip=True)
    dev = on_device.EncodedImageDataset(data["train"], data["images"], transform, seed=0,
                                        device="cpu", resident=True)
    rows = list(range(6))
    first = dev.decode_batch(on_device.collate_encoded([dev[i] for i in rows]))
    assert set(dev.store) == set(rows) and dev.resident_bytes() == 6 * 3 * 72 * 72
    for i in rows:
        dev.image_path(i).unlink()                                 # no file is read again
    dev.set_epoch(1)
    second = dev.decode_batch(on_device.collate_encoded([dev[i] for i in rows]))
    assert second["n_skipped"] == 0 and second["image"].shape == first["image"].shape
    assert not torch.equal(first["image"], second["image"])        # new crops and flips
    state = dev.__getstate__()                                     # what a worker receives
    assert state["store"] == {} and state["_resident_rows"] == frozenset(rows)


def test_a_run_trains_through_the_device_path(data, tmp_path, monkeypatch):
    """decode_device "cuda", with the device swapped for the CPU: the run trains on every image
    and scores the test set like the CPU path's run (same seeds, same crops)."""
    monkeypatch.setattr(on_device, "decode_device",
                        lambda name, local_rank=None: None if name == "cpu" else torch.device("cpu"))
    cfg = tiny_config(data, family="mtcnn1", val=False, epochs=2)
    dev_cfg = tiny_config(data, family="mtcnn1", val=False, epochs=2,
                          data={**cfg.data.__dict__, "decode_device": "cuda", "resident": True})
    assert dev_cfg.config_hash() != cfg.config_hash()
    assert isinstance(loaders.build_dataset(dev_cfg, dev_cfg.data.train, train=True),
                      on_device.EncodedImageDataset)
    ref = T.train(cfg, out=tmp_path / "cpu")
    run = T.train(dev_cfg, out=tmp_path / "dev")
    assert [h["n_images"] for h in run.history] == [h["n_images"] for h in ref.history] == [12, 12]
    assert run.metrics["n_images"] == ref.metrics["n_images"] == 6
    np.testing.assert_allclose(run.predictions["p_high"], ref.predictions["p_high"], atol=0.05)


def test_decode_device_resolves_every_setting(monkeypatch):
    """One place turns data.decode_device into a device: None keeps decoding in the workers."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert on_device.decode_device("cpu") is None and on_device.decode_device("auto") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert on_device.decode_device("auto") == torch.device("cuda", 1)   # torchrun's rank
    assert on_device.decode_device("cuda", local_rank=0) == torch.device("cuda", 0)
    assert on_device.decode_device("cuda:3") == torch.device("cuda", 3)
    assert on_device.decode_device("cpu") is None


def test_resident_needs_a_device_path():
    from iaalib.engine.config import ExperimentConfig
    from iaalib.errors import DataFormatError

    with pytest.raises(DataFormatError, match="resident"):
        ExperimentConfig.from_dict({"data": {"resident": True}})
    with pytest.raises(DataFormatError, match="decode_device"):
        ExperimentConfig.from_dict({"data": {"decode_device": "gpu"}})
