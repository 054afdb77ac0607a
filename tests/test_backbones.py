"""Backbones: shapes, torchvision equivalence, offline weight handling, EfficientNet-Lite0's real weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import models as tvm

from iaalib.errors import WeightsUnavailableError
from iaalib.models import backbones
from iaalib.models.backbones import BACKBONES, build_backbone, imagenet_checkpoint_path


@pytest.mark.parametrize("name", BACKBONES)
def test_output_channels_and_any_input_size(name):
    features, channels = build_backbone(name, width_mult=0.25)
    shapes = {}
    with torch.no_grad():
        for hw in [(96, 96), (96, 144), (160, 112)]:
            y = features(torch.randn(1, 3, *hw))
            assert y.shape[:2] == (1, channels) and min(y.shape[2:]) >= 1
            shapes[hw] = y.shape[2:]
    # no fixed-size layer inside: the map follows the input's aspect ratio
    assert shapes[(96, 144)][1] > shapes[(96, 144)][0]
    assert shapes[(160, 112)][0] > shapes[(160, 112)][1]


@pytest.mark.parametrize("name, expected", [("alexnet", 256), ("vgg16", 512), ("resnet18", 512),
                                            ("resnet50", 2048), ("efficientnet_lite0", 1280)])
def test_full_width_channels(name, expected):
    assert build_backbone(name)[1] == expected


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "resnet18"])
def test_width_mult_scales_channels_of_every_conv(name):
    full, _ = build_backbone(name)
    half, _ = build_backbone(name, width_mult=0.5)
    convs_full = [m for m in full.modules() if isinstance(m, torch.nn.Conv2d)]
    convs_half = [m for m in half.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs_full) == len(convs_half)  # same topology
    for a, b in zip(convs_full, convs_half):
        assert b.out_channels == round(a.out_channels / 2)
        assert (a.kernel_size, a.stride, a.padding) == (b.kernel_size, b.stride, b.padding)


def _torchvision_features(name, model):
    if name in ("alexnet", "vgg16"):
        return model.features
    return torch.nn.Sequential(*list(model.children())[:-2])  # ResNet without avgpool, fc


@pytest.mark.parametrize("name", ["alexnet", "resnet18"])
def test_torchvision_checkpoint_file_loads_and_matches_torchvision(name, tmp_path):
    """A full torchvision state dict (as downloaded) loads strictly; outputs equal torchvision's."""
    torch.manual_seed(0)
    reference = getattr(tvm, name)(weights=None).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    features, _ = build_backbone(name, weights=path)
    features.eval()
    x = torch.randn(2, 3, 112, 128)
    with torch.no_grad():
        torch.testing.assert_close(features(x), _torchvision_features(name, reference)(x))


def test_resnet50_features_are_torchvisions():
    torch.manual_seed(0)
    reference = tvm.resnet50(weights=None).eval()
    ours, channels = build_backbone("resnet50")
    ours.eval()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    ours.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), _torchvision_features("resnet50", reference)(x))
    assert channels == reference.fc.in_features


@pytest.mark.parametrize("name,builder", [("vgg16", tvm.vgg16), ("vgg16_bn", tvm.vgg16_bn)])
def test_vgg16_features_are_torchvisions(name, builder):
    reference = builder(weights=None).features.eval()
    ours, _ = build_backbone(name)
    ours.eval()
    assert [type(m) for m in ours] == [type(m) for m in reference]
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x))


def test_alexnet_same_seed_same_parameters():
    """torchvision's AlexNet keeps PyTorch's default init and builds its features first."""
    torch.manual_seed(123)
    reference = tvm.alexnet(weights=None).features
    torch.manual_seed(123)
    ours, _ = build_backbone("alexnet")
    for (k, a), (_, b) in zip(reference.state_dict().items(), ours.state_dict().items()):
        assert torch.equal(a, b), k


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    return home


@pytest.mark.parametrize("name, file", [("vgg16", "vgg16-397923af.pth"),
                                        ("vgg16_bn", "vgg16_bn-6c64b313.pth"),
                                        ("resnet18", "resnet18-f37072fd.pth"),
                                        ("alexnet", "alexnet-owt-7be5be79.pth")])
def test_imagenet_offline_raises_with_the_path_to_fill(empty_torch_home, name, file):
    expected = empty_torch_home / "hub" / "checkpoints" / file
    assert imagenet_checkpoint_path(name) == expected
    with pytest.raises(WeightsUnavailableError) as err:
        build_backbone(name, weights="imagenet")
    msg = str(err.value)
    assert str(expected) in msg and "weights=" in msg and "$TORCH_HOME/hub/checkpoints" in msg


def test_imagenet_reads_the_cached_checkpoint(empty_torch_home):
    torch.manual_seed(1)
    reference = tvm.resnet18(weights=None)
    path = empty_torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    features, _ = build_backbone("resnet18", weights="imagenet")
    expected = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    got = features.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_bad_weight_files_name_the_file(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsUnavailableError, match="nope.pth"):
        build_backbone("resnet18", weights=missing)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match="corrupt.pth"):
        build_backbone("resnet18", weights=corrupt)
    wrong = tmp_path / "alexnet.pth"
    torch.save(tvm.alexnet(weights=None).state_dict(), wrong)
    with pytest.raises(WeightsUnavailableError, match="not resnet18 weights"):
        build_backbone("resnet18", weights=wrong)


def test_weights_need_full_width_and_names_are_checked():
    with pytest.raises(ValueError, match="width_mult=1.0"):
        build_backbone("vgg16", weights="imagenet", width_mult=0.25)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg19")
    with pytest.raises(ValueError, match="width_mult"):
        build_backbone("vgg16", width_mult=0)


def test_efficientnet_lite0_loads_the_shipped_imagenet_weights():
    path = backbones.efficientnet_lite0_weights_path()
    assert path.is_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    features, channels = build_backbone("efficientnet_lite0", weights="imagenet")
    got = features.net.state_dict()
    expected = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    assert got.keys() == expected.keys() and len(expected) > 250
    for k, v in expected.items():
        assert torch.equal(got[k], v), k
    assert channels == 1280


def test_efficientnet_input_scaling_matches_the_weights_batchnorm_statistics():
    """The TF-converted weights expect (255·x − 127)/128 pixels: the stem BN's running means
    agree with the stem conv applied to ImageNet's mean colour in that scaling, not in the
    ImageNet-normalised one (where the mean colour is 0)."""
    features, _ = build_backbone("efficientnet_lite0", weights="imagenet")
    mean = torch.tensor([0.485, 0.456, 0.406])
    normalised_mean_image = torch.zeros(1, 3, 4, 4)  # ImageNet mean colour after Normalize
    tf_pixels = features.to_tf_input(normalised_mean_image)[0, :, 0, 0]
    torch.testing.assert_close(tf_pixels, (mean * 255 - 127) / 128)
    stem = features.net._conv_stem.weight.detach()
    predicted = (stem * tf_pixels.view(1, 3, 1, 1)).sum(dim=(1, 2, 3)).numpy()
    running = features.net._bn0.running_mean.numpy()
    assert np.corrcoef(predicted, running)[0, 1] > 0.9


def test_efficientnet_pretrained_features_are_finite_at_other_sizes():
    features, _ = build_backbone("efficientnet_lite0", weights="imagenet")
    features.eval()
    with torch.no_grad():
        y = features(torch.randn(1, 3, 128, 176))
    assert y.shape == (1, 1280, 4, 6) and torch.isfinite(y).all()
