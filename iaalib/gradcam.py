"""Grad-CAM for the score-distribution models (SAF "Visualization", Grad-CAM figure).

The heatmaps come from the ``grad-cam`` package (``pytorch_grad_cam.GradCAM``, Selvaraju et al.
2017); this module only adapts our models to it:

* :class:`DistributionLogits` wraps a model whose ``forward`` returns a dict so that it returns the
  ``dist_logits`` tensor the package expects;
* :class:`MeanScoreTarget` is the scalar whose gradient Grad-CAM follows: the predicted mean score
  Σ i·p_i with p = softmax(dist_logits) (the quantity the SAF paper evaluates);
* :func:`default_target_layer` picks the layer whose activations are weighted.

**Choice:** the target layer is the SAF bottleneck ``model.bottleneck`` — the features F (after
its ReLU) that the fusing module pools and the regressor reads, i.e. the encoder's last conv
followed by the 1×1 conv to M·P maps; for NIMA it is the backbone's output ``model.features``.
The paper names neither the layer nor the target; the mean score is the single number both models
are judged by, so the maps show which regions raise the predicted score.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from torch import nn

NUM_BINS = 10


class DistributionLogits(nn.Module):
    """``model(x)["dist_logits"]``: the tensor output ``pytorch_grad_cam`` works with."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)["dist_logits"]


class MeanScoreTarget:
    """Grad-CAM target: the predicted mean score Σ_i i·softmax(logits)_i, i = 1..10.

    Called by ``pytorch_grad_cam`` with one image's output (logits [10]) or a batch ([B, 10]).
    """

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits, dim=-1)
        scores = torch.arange(1, p.shape[-1] + 1, dtype=p.dtype, device=p.device)
        return (p * scores).sum(dim=-1)


def default_target_layer(model: nn.Module) -> nn.Module:
    """SAF: ``model.bottleneck`` (F, after its ReLU); NIMA: ``model.features`` (the backbone)."""
    for name in ("bottleneck", "features"):
        layer = getattr(model, name, None)
        if isinstance(layer, nn.Module):
            return layer
    raise ValueError(f"{type(model).__name__} has neither a 'bottleneck' nor a 'features' module; "
                     "pass target_layer explicitly")


def mean_score_cam(model: nn.Module, images: torch.Tensor | Sequence[torch.Tensor], *,
                   target_layer: nn.Module | None = None) -> list[np.ndarray]:
    """Grad-CAM maps of the predicted mean score for each image.

    ``images``: ImageNet-normalised tensors [3, H, W] (a list, sizes may differ — SAF keeps each
    image's aspect ratio) or a batch [B, 3, H, W]. Returns one float array [H, W] per image, in
    [0, 1] (the package's ReLU and per-image min–max scaling) at the image's own size.
    The model is put in eval mode and left there.
    """
    if isinstance(images, torch.Tensor) and images.dim() == 3:
        images = [images]
    batch = list(images)
    model.eval()
    layer = target_layer if target_layer is not None else default_target_layer(model)
    maps: list[np.ndarray] = []
    with GradCAM(model=DistributionLogits(model), target_layers=[layer]) as cam:
        for x in batch:
            if x.dim() != 3 or x.shape[0] != 3:
                raise ValueError(f"mean_score_cam expects [3, H, W] images, got {tuple(x.shape)}")
            out = cam(input_tensor=x.unsqueeze(0), targets=[MeanScoreTarget()])
            maps.append(np.asarray(out[0], dtype=np.float64))
    return maps


def denormalise(image: torch.Tensor, mean: Sequence[float] = (0.485, 0.456, 0.406),
                std: Sequence[float] = (0.229, 0.224, 0.225)) -> np.ndarray:
    """An ImageNet-normalised [3, H, W] tensor → an [H, W, 3] array in [0, 1] for display."""
    m = torch.tensor(mean, dtype=image.dtype).view(3, 1, 1)
    s = torch.tensor(std, dtype=image.dtype).view(3, 1, 1)
    return (image.detach().cpu() * s + m).clamp(0, 1).permute(1, 2, 0).numpy()
