"""SAF: auto-encoder with a semantic–aesthetic fusing bottleneck ("Our Proposal").

Pipeline (Fig. 3): VGG16 encoder → bottleneck F with c = M·P channels in M groups of P maps
(M = 10 score bins) → three consumers:

* decoder (with batch norm) → reconstruction of the input (auto-encoder module, reconstruction loss);
* SAF module: group average pooling (GAP) of F → M values, pulled towards the ground-truth score
  distribution by the activation loss ("pre-activation"); or the fully-connected alternative;
* prediction module: SPP (1, 4, 16 bins) on F → split multi-way regressor (group m → logit m) or a
  conventional joint regressor → softmax → predicted score distribution (EMD loss).

Outputs: ``{"dist_logits": [B, M], "group_pooled": [B, M], "recon": [B, 3, H, W],
"features": F}`` (``recon`` absent with ``decoder=False``; ``group_pooled`` absent with
``fusion="none"``). The losses are in :mod:`iaalib.losses` (``saf_loss``).

The text lost its equations and tables; every number below that the text does not state is a
**Choice** exposed as a parameter.
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from iaalib.models.backbones import build_backbone, scaled_channels
from iaalib.models.spp import SpatialPyramidPooling
from iaalib.models import stem_channels, stem_stride
from iaalib.models.stems import backbone_above

NUM_BINS = 10
VGG16_BLOCK_WIDTHS = (64, 128, 256, 512, 512)  # channels of VGG16's five conv blocks


def group_average_pool(features: torch.Tensor, num_groups: int) -> torch.Tensor:
    """GAP (Fig. 5): F [B, M·P, h, w] → [B, M], the mean of group m's P maps over space.

    Group m is the contiguous channel block [m·P, (m+1)·P) (Fig. 4's split).
    """
    b, c, h, w = features.shape
    if c % num_groups:
        raise ValueError(f"{c} channels cannot be split into {num_groups} equal groups")
    return features.reshape(b, num_groups, c // num_groups * h * w).mean(dim=2)


class SplitRegressor(nn.Module):
    """Separated multi-way regressor (Fig. 7): group m's SPP features → logit m only.

    Input [B, M·P, bins] (channel-major, as :class:`SpatialPyramidPooling` with ``flatten=False``);
    implemented as grouped 1×1 convolutions, i.e. M independent linear layers.
    **Choice:** ``hidden=None`` is one linear layer per group; ``hidden=k`` adds a k-unit ReLU
    layer (and ``dropout``) per group.
    """

    def __init__(self, num_groups: int, group_size: int, bins: int, hidden: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.num_groups = num_groups
        in_per_group = group_size * bins
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        if hidden:
            layers += [nn.Conv1d(num_groups * in_per_group, num_groups * hidden, 1, groups=num_groups),
                       nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_per_group = hidden
        layers.append(nn.Conv1d(num_groups * in_per_group, num_groups, 1, groups=num_groups))
        self.net = nn.Sequential(*layers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled.flatten(1).unsqueeze(2)).squeeze(2)


class JointRegressor(nn.Module):
    """Conventional multi-way regressor: all SPP features → M logits (the "w/o Split" ablation)."""

    def __init__(self, in_features: int, num_bins: int, hidden: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout else []
        if hidden:
            layers += [nn.Linear(in_features, hidden), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout(dropout))
            in_features = hidden
        layers.append(nn.Linear(in_features, num_bins))
        self.net = nn.Sequential(*layers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled.flatten(1))


class FCFusion(nn.Module):
    """The fully-connected alternative to GAP: per-channel spatial mean of F → Linear(c, M).

    **Choice:** the spatial mean first keeps it independent of the input size.
    """

    def __init__(self, channels: int, num_groups: int):
        super().__init__()
        self.fc = nn.Linear(channels, num_groups)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features.mean(dim=(2, 3)))


def vgg16_decoder(in_channels: int, num_upsamplings: int, width_mult: float = 1.0, *,
                  out_channels: int = 3) -> nn.Sequential:
    """Decoder mirroring VGG16's pooling stages (Fig. "Architecture of decoder").

    **Choice:** one 2× upsampling stage per encoder max-pool, from deep to shallow: nearest
    upsampling, a 3×3 conv to the width VGG16 has at that resolution (512, 256, 128 …), batch norm,
    ReLU; the last stage (back to full resolution, where VGG16's first conv reads the 3 colour
    channels) is a 2×2 stride-2 transposed conv to 3 channels with no activation (targets are
    normalised pixels). A 3×3 conv at full resolution instead would cost more than the rest of
    the decoder on a CPU. Above a frozen stem the decoder reconstructs the stem's activations
    (``out_channels`` maps at the stem's stride; ``num_upsamplings`` 0: a 1×1 conv).
    """
    # VGG16's width at resolution 1/2^s, s = 0..4: 64, 128, 256, 512, 512
    by_scale = [scaled_channels(c, width_mult) for c in VGG16_BLOCK_WIDTHS]
    layers: list[nn.Module] = []
    c = in_channels
    for s in reversed(range(1, num_upsamplings)):
        out = by_scale[min(s, 4)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                   nn.Conv2d(c, out, kernel_size=3, padding=1, bias=False),
                   nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        c = out
    if num_upsamplings == 0:
        layers.append(nn.Conv2d(c, out_channels, kernel_size=1))
    else:
        layers.append(nn.ConvTranspose2d(c, out_channels, kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class SAF(nn.Module):
    """Encoder → bottleneck F (M groups × P maps) → {decoder, GAP/FC fusion, SPP + regressor}."""

    def __init__(self, encoder: nn.Module, encoder_channels: int, *, num_bins: int,
                 group_size: int, fusion: str, split_regressor: bool, decoder: nn.Module | None,
                 spp_levels: Sequence[int], spp_mode: str, regressor_hidden: int | None,
                 dropout: float):
        super().__init__()
        if fusion not in ("gap", "fc", "none"):
            raise ValueError(f"fusion must be 'gap', 'fc' or 'none', got {fusion!r}")
        self.num_bins = num_bins
        self.group_size = group_size
        self.fusion = fusion
        channels = num_bins * group_size
        self.encoder = encoder
        # Choice: 1×1 conv + ReLU from the encoder's channels to c = M·P.
        self.bottleneck = nn.Sequential(nn.Conv2d(encoder_channels, channels, kernel_size=1),
                                        nn.ReLU(inplace=True))
        self.fusion_fc = FCFusion(channels, num_bins) if fusion == "fc" else None
        self.decoder = decoder
        self.spp = SpatialPyramidPooling(spp_levels, spp_mode, flatten=False)
        if split_regressor:
            self.regressor: nn.Module = SplitRegressor(num_bins, group_size, self.spp.bins,
                                                       regressor_hidden, dropout)
        else:
            self.regressor = JointRegressor(channels * self.spp.bins, num_bins, regressor_hidden,
                                            dropout)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.bottleneck(self.encoder(x))
        out = {"dist_logits": self.regressor(self.spp(features)), "features": features}
        if self.fusion == "gap":
            out["group_pooled"] = group_average_pool(features, self.num_bins)
        elif self.fusion == "fc":
            out["group_pooled"] = self.fusion_fc(features)
        if self.decoder is not None:
            recon = self.decoder(features)
            if recon.shape[-2:] != x.shape[-2:]:  # odd sizes: pooling floors, upsampling doubles
                recon = F.interpolate(recon, size=x.shape[-2:], mode="bilinear", align_corners=False)
            out["recon"] = recon
        return out


def saf_vgg16(num_bins: int = NUM_BINS, group_size: int = 32, width_mult: float = 1.0,
              weights: str | os.PathLike | None = None, split_regressor: bool = True,
              fusion: str = "gap", decoder: bool = True, spp_levels: Sequence[int] = (1, 2, 4), *,
              spp_mode: str = "max", encoder_last_pool: bool = False,
              regressor_hidden: int | None = None, dropout: float = 0.0,
              batch_norm: bool = False, allow_download: bool = False,
              stem: str | None = None) -> SAF:
    """The SAF model with a VGG16 encoder ("Backbone": VGG16 for comparison with NIMA).

    Args:
        num_bins: M, score bins = groups (10 for AVA).
        group_size: P maps per group, c = M·P (**Choice**: 32, c = 320 < 512 encoder channels).
        width_mult: VGG16/decoder channel multiplier (**Choice**, CPU demos; weights need 1.0).
        weights: encoder weights, None | "imagenet" | path (see :func:`build_backbone`).
        split_regressor: the separated multi-way regressor; False = joint ("w/o Split").
        fusion: "gap" (group average pooling), "fc" (the FC alternative) or "none" (a vanilla
            auto-encoder: no pooled output, train with β = 0).
        decoder: False drops the auto-encoder branch (a plain SPP regressor).
        spp_levels: pyramid grid sizes; (1, 2, 4) = 1, 4, 16 bins.
        spp_mode: "max" (**Choice**) or "avg".
        encoder_last_pool: keep VGG16's fifth max-pool. **Choice:** False — F at stride 16 keeps
            ≥ 4×4 cells for the 16-bin SPP level down to 64-px inputs; the decoder then has 4 stages.
        regressor_hidden: hidden units of the regressor (**Choice**: None = one linear layer).
        dropout: dropout before the regressor layers (**Choice**: 0).
        batch_norm: VGG16 with batch norm (torchvision's ``vgg16_bn``) as the encoder. **Choice:**
            False — the paper's VGG16; True helps narrow encoders trained from scratch (the CPU
            demo), which otherwise barely leave the average distribution in a few epochs.
        stem: a frozen ImageNet stem below the encoder (:mod:`iaalib.models.stems`): the encoder is
            VGG16's blocks above the stem's stride and the decoder reconstructs the stem's
            activations. **Choice** of the demo (the paper trains VGG16 from its ImageNet weights
            on 255,000 images): the groups, GAP with the activation loss, SPP, the split regressor
            and the reconstruction branch keep their structure above the stem.
    """
    name = "vgg16_bn" if batch_norm else "vgg16"
    if stem is not None:
        encoder, channels = backbone_above(name, stem, weights=weights, width_mult=width_mult)
        n_pools, target = 5 - {8: 3, 16: 4}[stem_stride(stem)], stem_channels(stem)
    else:
        encoder, channels = build_backbone(name, weights=weights, width_mult=width_mult,
                                           allow_download=allow_download)
        n_pools, target = 5, 3
    if not encoder_last_pool:
        encoder = encoder[:-1]  # drop the final MaxPool2d; indices (state-dict keys) unchanged
        n_pools -= 1
    dec = vgg16_decoder(num_bins * group_size, n_pools, width_mult, out_channels=target) \
        if decoder else None
    return SAF(encoder, channels, num_bins=num_bins, group_size=group_size, fusion=fusion,
               split_regressor=split_regressor, decoder=dec, spp_levels=spp_levels,
               spp_mode=spp_mode, regressor_hidden=regressor_hidden, dropout=dropout)


def vanilla_autoencoder_vgg16(**kwargs) -> SAF:
    """The "vanilla Auto-Encoder" of the Grad-CAM comparison: no fusing module (no pooled output,
    train with β = 0) and a joint regressor; same encoder, bottleneck, decoder and SPP as SAF."""
    kwargs.setdefault("fusion", "none")
    kwargs.setdefault("split_regressor", False)
    return saf_vgg16(**kwargs)
