"""Spatial pyramid pooling (He et al. 2015; SAF "Prediction Module", Fig. 6).

Each pyramid level n pools the feature map into an n×n grid of bins, so levels (1, 2, 4) give
1 + 4 + 16 = 21 values per channel whatever the input size or aspect ratio.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def spatial_pyramid_pool(x: torch.Tensor, levels: Sequence[int] = (1, 2, 4),
                         mode: str = "max") -> torch.Tensor:
    """[B, C, H, W] → [B, C, Σ n²]: bins of level n are ``adaptive_{max,avg}_pool2d(x, n)``.

    Bins are ordered level by level, row-major within a level. Maps smaller than n×n are
    pooled over overlapping/repeated cells (adaptive pooling), so the length never changes.
    """
    if mode == "max":
        pool = F.adaptive_max_pool2d
    elif mode == "avg":
        pool = F.adaptive_avg_pool2d
    else:
        raise ValueError(f"SPP mode must be 'max' or 'avg', got {mode!r}")
    if x.dim() != 4:
        raise ValueError(f"SPP expects [B, C, H, W], got shape {tuple(x.shape)}")
    return torch.cat([pool(x, n).flatten(2) for n in levels], dim=2)


class SpatialPyramidPooling(nn.Module):
    """Module form of :func:`spatial_pyramid_pool`; output [B, C, bins] (``flatten=False``) or
    [B, C·bins] with each channel's bins contiguous.

    **Choice:** max pooling (as in He et al.'s SPP-net); ``mode="avg"`` is the alternative.
    """

    def __init__(self, levels: Sequence[int] = (1, 2, 4), mode: str = "max", flatten: bool = True):
        super().__init__()
        if not levels or any(int(n) < 1 for n in levels):
            raise ValueError(f"SPP levels must be positive grid sizes, got {levels!r}")
        self.levels = tuple(int(n) for n in levels)
        self.mode = mode
        self.flatten = flatten

    @property
    def bins(self) -> int:
        """Values per channel, Σ n² (21 for levels 1, 2, 4)."""
        return sum(n * n for n in self.levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = spatial_pyramid_pool(x, self.levels, self.mode)
        return y.flatten(1) if self.flatten else y

    def extra_repr(self) -> str:
        return f"levels={self.levels}, mode={self.mode!r}"
