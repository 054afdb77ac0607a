"""iaalib.gradcam: Grad-CAM of the predicted mean score through the `grad-cam` package, checked
against a hand-written Grad-CAM and on toy models whose score depends on one image region."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from iaalib import gradcam, metrics
from iaalib.models.saf import saf_vgg16


class RegionFeatures(nn.Module):
    """Two feature maps: the image's luminance inside the top-left quadrant, and outside it."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(()))  # makes the features part of the autograd graph

    def forward(self, x):
        h, w = x.shape[-2:]
        mask = torch.zeros(1, 1, h, w)
        mask[..., : h // 2, : w // 2] = 1.0
        lum = x.mean(dim=1, keepdim=True).relu() * self.gain
        return torch.cat([lum * mask, lum * (1 - mask)], dim=1)


class RegionModel(nn.Module):
    """Score depends only on the image's top-left quadrant: the logits read the first map only."""

    def __init__(self):
        super().__init__()
        self.bottleneck = RegionFeatures()
        self.head = nn.Linear(1, 10)
        with torch.no_grad():
            self.head.weight.copy_(torch.linspace(-1, 1, 10).view(10, 1))  # brighter -> higher score
            self.head.bias.zero_()

    def forward(self, x):
        feats = self.bottleneck(x)
        return {"dist_logits": self.head(feats[:, :1].mean(dim=(2, 3)))}


def test_mean_score_target_is_the_mean_of_the_softmax():
    logits = torch.randn(5, 10)
    target = gradcam.MeanScoreTarget()
    expected = metrics.mean_score(torch.softmax(logits, 1).numpy())
    np.testing.assert_allclose(target(logits).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(target(logits[0]).item(), expected[0], rtol=1e-6)


def test_cam_peaks_in_the_region_the_score_depends_on():
    torch.manual_seed(0)
    image = torch.rand(3, 40, 60) + 0.1  # uniform statistics everywhere
    (cam,) = gradcam.mean_score_cam(RegionModel(), [image])
    assert cam.shape == (40, 60) and cam.min() >= 0 and cam.max() <= 1
    inside, outside = cam[:20, :30], np.concatenate([cam[20:].ravel(), cam[:20, 30:].ravel()])
    assert inside.mean() > 0.3 and outside.max() == 0.0
    assert np.unravel_index(cam.argmax(), cam.shape)[0] < 20


def test_package_cam_equals_a_hand_written_grad_cam():
    """Grad-CAM (Selvaraju et al. Eq. 1-2): channel weights = spatial mean of d score / d A,
    CAM = ReLU(sum_c w_c A_c), then min-max scaled (the package's output convention)."""
    torch.manual_seed(1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.bottleneck = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
            self.head = nn.Linear(6, 10)

        def forward(self, x):
            return {"dist_logits": self.head(self.bottleneck(x).amax(dim=(2, 3)))}

    net = Net()
    x = torch.randn(3, 16, 20)
    (cam,) = gradcam.mean_score_cam(net, x)

    a = net.bottleneck(x.unsqueeze(0))
    a.retain_grad()
    gradcam.MeanScoreTarget()(net.head(a.amax(dim=(2, 3))))[0].backward()
    weights = a.grad.mean(dim=(2, 3), keepdim=True)
    ref = torch.relu((weights * a).sum(dim=1))[0].detach().numpy()
    ref = (ref - ref.min()) / (ref.max() - ref.min())
    np.testing.assert_allclose(cam, ref, atol=1e-5)


def test_saf_model_cams_have_each_images_size():
    torch.manual_seed(0)
    model = saf_vgg16(width_mult=0.0625, group_size=2)
    images = [torch.randn(3, 64, 80), torch.randn(3, 96, 64)]
    cams = gradcam.mean_score_cam(model, images)
    assert [c.shape for c in cams] == [(64, 80), (96, 64)]
    assert all(c.min() >= 0 and c.max() <= 1 for c in cams)
    assert gradcam.default_target_layer(model) is model.bottleneck
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        gradcam.mean_score_cam(model, [torch.randn(1, 64, 64)])
    with pytest.raises(ValueError, match="neither"):
        gradcam.default_target_layer(nn.Linear(2, 2))


def test_denormalise_inverts_imagenet_normalisation():
    rgb = torch.rand(3, 5, 7)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    out = gradcam.denormalise((rgb - mean) / std)
    assert out.shape == (5, 7, 3)
    np.testing.assert_allclose(out, rgb.permute(1, 2, 0).numpy(), atol=1e-6)
