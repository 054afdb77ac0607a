"""NIMA baseline (Talebi & Milanfar 2018): backbone → global average pooling → dropout →
Linear → 10 logits; softmax gives the score distribution, trained with the EMD loss
(:func:`iaalib.losses.emd_loss`). The reference point of SAF's comparison tables."""
from __future__ import annotations

import os

import torch
from torch import nn

from iaalib.models.backbones import build_backbone
from iaalib.models.stems import backbone_above

NUM_BINS = 10


class NIMA(nn.Module):
    def __init__(self, features: nn.Module, channels: int, num_bins: int = NUM_BINS,
                 dropout: float = 0.75):
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_bins)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.pool(self.features(x)).flatten(1)
        return {"dist_logits": self.fc(self.dropout(pooled)), "embedding": pooled}


def nima(backbone: str, *, weights: str | os.PathLike | None = None, width_mult: float = 1.0,
         dropout: float = 0.75, num_bins: int = NUM_BINS, allow_download: bool = False,
         stem: str | None = None) -> NIMA:
    """NIMA with any :func:`~iaalib.models.backbones.build_backbone` backbone (paper: dropout 0.75);
    above a frozen ``stem``, the backbone's part above the cut
    (:func:`iaalib.models.stems.backbone_above`).

    Output: ``{"dist_logits": [B, 10], "embedding": [B, channels]}``.
    """
    if stem is not None:
        features, channels = backbone_above(backbone, stem, weights=weights, width_mult=width_mult)
    else:
        features, channels = build_backbone(backbone, weights=weights, width_mult=width_mult,
                                            allow_download=allow_download)
    return NIMA(features, channels, num_bins, dropout)
