"""SAF auto-encoder, SPP, group average pooling, split regressor; the NIMA baseline."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import models as tvm

from iaalib.losses import emd_loss, saf_loss
from iaalib.models import nima, saf
from iaalib.models.spp import SpatialPyramidPooling, spatial_pyramid_pool

SMALL = dict(width_mult=0.125, group_size=4)


# --- SPP -------------------------------------------------------------------------------------------

def test_spp_hand_computed_on_a_4x4_map():
    x = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    y = spatial_pyramid_pool(x, (1, 2, 4), "max")[0, 0]
    assert y.shape == (21,)
    assert y[0] == 15                                          # level 1: global max
    assert y[1:5].tolist() == [5, 7, 13, 15]                   # level 2: quadrant maxima
    assert y[5:].tolist() == list(range(16))                   # level 4: every cell
    avg = spatial_pyramid_pool(x, (1, 2), "avg")[0, 0]
    assert avg.tolist() == [7.5, 2.5, 4.5, 10.5, 12.5]


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (7, 7), (13, 9), (40, 23)])
def test_spp_length_is_constant(hw):
    spp = SpatialPyramidPooling((1, 2, 4))
    assert spp.bins == 21
    assert spp(torch.randn(2, 6, *hw)).shape == (2, 6 * 21)


def test_spp_rejects_bad_settings():
    with pytest.raises(ValueError, match="mode"):
        spatial_pyramid_pool(torch.randn(1, 1, 4, 4), (1,), "median")
    with pytest.raises(ValueError, match="levels"):
        SpatialPyramidPooling((0, 2))


# --- group average pooling and regressors ---------------------------------------------------------

def test_group_average_pool_matches_numpy():
    f = torch.randn(3, 10 * 4, 5, 6, dtype=torch.float64)
    expected = f.numpy().reshape(3, 10, 4, 5, 6).mean(axis=(2, 3, 4))
    np.testing.assert_allclose(saf.group_average_pool(f, 10).numpy(), expected, rtol=1e-12)
    # group 0 is channels 0..3
    assert saf.group_average_pool(f, 10)[0, 0].item() == pytest.approx(f[0, :4].mean().item())
    with pytest.raises(ValueError, match="groups"):
        saf.group_average_pool(f[:, :39], 10)


def test_split_regressor_logit_m_sees_only_group_m():
    torch.manual_seed(0)
    reg = saf.SplitRegressor(num_groups=10, group_size=3, bins=21, hidden=8).eval()
    x = torch.randn(1, 30, 21)
    jac = torch.autograd.functional.jacobian(reg, x)[0].reshape(10, 10, 3 * 21)  # [out m, group k, ·]
    block_norm = jac.abs().sum(-1)
    off_diag = block_norm - torch.diag(torch.diagonal(block_norm))
    assert torch.all(off_diag == 0)
    assert torch.all(torch.diagonal(block_norm) > 0)


def test_split_regressor_equals_m_separate_linear_layers():
    torch.manual_seed(0)
    reg = saf.SplitRegressor(num_groups=4, group_size=2, bins=5)
    conv = reg.net[-1]
    x = torch.randn(3, 8, 5)
    for m in range(4):
        linear = nn.Linear(10, 1)
        linear.weight.data = conv.weight[m].view(1, 10)
        linear.bias.data = conv.bias[m:m + 1]
        torch.testing.assert_close(reg(x)[:, m], linear(x[:, 2 * m:2 * m + 2].flatten(1))[:, 0])


def test_joint_regressor_mixes_all_groups():
    torch.manual_seed(0)
    reg = saf.JointRegressor(30 * 21, 10)
    jac = torch.autograd.functional.jacobian(reg, torch.randn(1, 30, 21))[0]
    assert torch.all(jac.reshape(10, 10, 63).abs().sum(-1) > 0)


# --- the SAF model ---------------------------------------------------------------------------------

@pytest.mark.parametrize("hw", [(96, 96), (96, 128), (128, 96), (112, 200), (97, 131), (64, 64)])
def test_saf_shapes_for_sizes_and_aspect_ratios(hw):
    model = saf.saf_vgg16(**SMALL)
    x = torch.randn(2, 3, *hw)
    out = model(x)
    assert out["dist_logits"].shape == (2, 10)
    assert out["group_pooled"].shape == (2, 10)
    assert out["recon"].shape == x.shape
    assert out["features"].shape[:2] == (2, 40)
    assert model.spp(out["features"]).flatten(1).shape == (2, 40 * 21)


def test_saf_default_is_paper_sized():
    model = saf.saf_vgg16()
    assert model.bottleneck[0].out_channels == 10 * 32
    # decoder with batch norm, one upsampling stage per encoder max-pool (4: last pool dropped)
    assert sum(isinstance(m, (nn.Upsample, nn.ConvTranspose2d)) for m in model.decoder) == 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.decoder.modules()) == 3
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.encoder.modules()) == 4
    with_pool = saf.saf_vgg16(**SMALL, encoder_last_pool=True)
    assert with_pool(torch.randn(1, 3, 128, 128))["features"].shape[-2:] == (4, 4)
    assert with_pool(torch.randn(1, 3, 128, 128))["recon"].shape == (1, 3, 128, 128)


def test_saf_encoder_parameters_equal_torchvision_vgg16(tmp_path):
    torch.manual_seed(0)
    reference = tvm.vgg16(weights=None)
    path = tmp_path / "vgg16_features.pth"
    torch.save({f"features.{k}": v for k, v in reference.features.state_dict().items()}, path)
    model = saf.saf_vgg16(weights=path)
    ours = dict(model.encoder.named_parameters())
    theirs = dict(reference.features.named_parameters())
    assert ours.keys() == theirs.keys() and len(ours) == 26  # 13 conv layers
    for k in ours:
        assert torch.equal(ours[k], theirs[k]), k
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():  # the encoder is torchvision's features without the last max-pool
        torch.testing.assert_close(model.encoder(x), reference.features[:-1](x))


def _unreached(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]


@pytest.mark.parametrize("kwargs", [dict(), dict(fusion="fc"), dict(split_regressor=False),
                                    dict(regressor_hidden=16, dropout=0.1), dict(decoder=False)])
def test_full_loss_reaches_every_parameter(kwargs):
    torch.manual_seed(0)
    model = saf.saf_vgg16(**SMALL, **kwargs)
    x = torch.randn(4, 3, 96, 112)
    dist = torch.softmax(torch.randn(4, 10), 1)
    alpha = 0.1 if kwargs.get("decoder", True) else 0.0
    loss = saf_loss(model(x), dist, x, alpha=alpha, beta=0.1)["total"]
    assert _unreached(model, loss) == []


def test_without_activation_loss_fc_fusion_gets_no_gradient():
    """β = 0 ("w/o Act"): nothing pulls the pooled values; the FC fusing layer is untrained."""
    torch.manual_seed(0)
    model = saf.saf_vgg16(**SMALL, fusion="fc")
    x = torch.randn(2, 3, 96, 96)
    loss = saf_loss(model(x), torch.softmax(torch.randn(2, 10), 1), x, alpha=0.1, beta=0.0)
    assert {n.split(".")[0] for n in _unreached(model, loss["total"])} == {"fusion_fc"}


def test_vanilla_autoencoder_has_no_fusion_and_a_joint_regressor():
    model = saf.vanilla_autoencoder_vgg16(**SMALL)
    x = torch.randn(2, 3, 96, 96)
    out = model(x)
    assert "group_pooled" not in out and out["recon"].shape == x.shape
    assert isinstance(model.regressor, saf.JointRegressor)
    dist = torch.softmax(torch.randn(2, 10), 1)
    with pytest.raises(ValueError, match="beta"):
        saf_loss(out, dist, x, alpha=0.1, beta=0.1)
    assert torch.isfinite(saf_loss(out, dist, x, alpha=0.1, beta=0.0)["total"])


def test_bad_fusion_name():
    with pytest.raises(ValueError, match="fusion"):
        saf.saf_vgg16(**SMALL, fusion="attention")


@pytest.mark.slow
def test_demo_size_saf_fits_a_fixed_batch():
    """The demo-size model learns: all three terms fall on a fixed batch of smooth images."""
    torch.manual_seed(0)
    model = saf.saf_vgg16(**SMALL)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = nn.functional.interpolate(torch.randn(4, 3, 8, 8, generator=g), size=(64, 64),
                                  mode="bilinear")
    x = x / x.std()
    dist = torch.softmax(2 * torch.randn(4, 10, generator=g), 1)
    history = []
    for _ in range(40):
        terms = saf_loss(model(x), dist, x, alpha=0.1, beta=0.1)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        history.append({k: v.item() for k, v in terms.items()})
    first, last = history[0], history[-1]
    assert last["emd"] < 0.5 * first["emd"]
    assert last["recon"] < 0.6 * first["recon"]
    assert last["act"] < 0.8 * first["act"]


# --- NIMA ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", ["vgg16", "resnet18", "efficientnet_lite0"])
def test_nima_outputs_a_10_bin_distribution(backbone):
    model = nima.nima(backbone, width_mult=0.25 if backbone != "efficientnet_lite0" else 1.0)
    model.eval()
    out = model(torch.randn(2, 3, 96, 128))
    assert out["dist_logits"].shape == (2, 10)
    p = torch.softmax(out["dist_logits"], 1)
    torch.testing.assert_close(p.sum(1), torch.ones(2))


def test_nima_trains_with_emd_and_reaches_every_parameter():
    torch.manual_seed(0)
    model = nima.nima("resnet18", width_mult=0.25, dropout=0.75)
    assert model.dropout.p == 0.75
    x = torch.randn(4, 3, 96, 96)
    loss = emd_loss(torch.softmax(model(x)["dist_logits"], 1), torch.softmax(torch.randn(4, 10), 1))
    assert _unreached(model, loss) == []


def test_nima_pretrained_efficientnet_offline():
    model = nima.nima("efficientnet_lite0", weights="imagenet")
    assert model.fc.in_features == 1280


def test_saf_with_batch_norm_encoder_is_vgg16_bn_and_takes_any_size():
    """batch_norm=True: the encoder has vgg16_bn's layer sequence (minus the last pool)."""
    model = saf.saf_vgg16(width_mult=0.125, group_size=2, batch_norm=True)
    reference = tvm.vgg16_bn(weights=None).features[:-1]
    assert [type(m) for m in model.encoder] == [type(m) for m in reference]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.encoder) == 13
    for h, w in [(64, 64), (64, 150)]:
        out = model(torch.randn(2, 3, h, w))
        assert out["dist_logits"].shape == (2, 10) and out["recon"].shape == (2, 3, h, w)
