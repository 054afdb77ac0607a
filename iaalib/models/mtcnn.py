"""Kao, He & Huang: multi-task CNNs for aesthetic classification + semantic tag recognition.

Every model maps an image to ``{"aesthetic_logits": [B, C], "tag_logits": [B, M]}`` (enhanced
MTCNN adds ``"aux_aesthetic_logits": [B, C]``). Softmax over ``aesthetic_logits`` gives
p(y | x) (Eq. 5); a sigmoid per ``tag_logits`` column gives p(z_m = 1 | x) (Eq. 6).

Class order: column 0 = low aesthetic quality (label 0), column 1 = high (label 1, mean > 5).

Architectures (Sec. III-D, Fig. 3):

* ``mtcnn1`` — conv1–4 + fc5–6 shared (Θ), then the task-specific layer W = [W_a, W_s].
* ``mtcnn2`` — conv1–4 shared; fc5, fc6 and the output layer separate per task.
* ``mtcnn3`` — conv1–2 shared; semantic branch conv3–4 + fc5–6 + output (4 conv + 3 FC in
  total); aesthetic branch one FC + output (2 conv + 2 FC in total).
* ``mtcnn_enhanced`` — ``mtcnn1`` plus an extra aesthetic head W'_a on conv1–2 (Θ1), Eq. 12.
* ``mtcnn_finetune`` — ``mtcnn1`` with layers 1–6 replaced by an (ImageNet) backbone (Sec. III-E).

**Choice:** Fig. 2's layer sizes are not in the text. The trunk is AlexNet-like (the 227×227 crop
is AlexNet's): conv1 96@11×11/4, max-pool 3/2; conv2 256@5×5, max-pool; conv3 384@3×3; conv4
256@3×3, max-pool; adaptive average pooling to ``pool_size``×``pool_size`` (6×6 at 227², so other
input sizes work); fc5, fc6 with ``fc_dim`` units, ReLU and dropout 0.5. No LRN;
``batch_norm=True`` adds BN after each conv (useful when training small nets from scratch).
``width_mult`` scales the conv widths.

``stem`` (e.g. ``"efficientnet_lite0:8"``, :mod:`iaalib.models.stems`): the network reads the
activations of a frozen ImageNet stem instead of pixels, and the stem replaces the layers its
stride covers — **Choice:** a stride-8 stem replaces conv1 + its max-pool (also stride 8), a
stride-16 stem conv1–2. The split points of MTCNN #1–#3 and the enhanced MTCNN stay where the paper
puts them (after conv2, after conv4, at the output layer); above a stride-16 stem Θ1 (conv1–2) is
the stem itself.
"""
from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from iaalib.models.backbones import build_backbone, freeze_depthwise, scaled_channels
from iaalib.models import stem_channels, stem_stride
from iaalib.models.stems import backbone_above

#: (out_channels, kernel, stride, padding, max-pool after) of Kao's conv1..conv4 (**Choice**).
KAO_CONV_LAYERS = ((96, 11, 4, 0, True), (256, 5, 1, 2, True), (384, 3, 1, 1, False),
                   (256, 3, 1, 1, True))


class MTCNN(nn.Module):
    """x → ``low`` (conv1–2, Θ1) → ``shared`` (Θ2) → per-task branch → task-specific layer.

    ``num_tags=0`` gives Kao's single-task STCNN (= MTCNN with λ = 0 and no semantic outputs).

    ``aesthetic_head`` (W_a) and ``semantic_head`` (W_s) are the task-specific layer of Eq. 10/11;
    ``aux_branch``/``aux_head`` (W'_a, Eq. 12) read the output of ``low``.
    """

    def __init__(self, low: nn.Module, shared: nn.Module, aesthetic_branch: nn.Module,
                 semantic_branch: nn.Module, feature_dim: int, num_classes: int, num_tags: int,
                 aux_branch: nn.Module | None = None):
        super().__init__()
        self.low = low
        self.shared = shared
        self.aesthetic_branch = aesthetic_branch
        self.semantic_branch = semantic_branch
        self.aesthetic_head = nn.Linear(feature_dim, num_classes)
        with warnings.catch_warnings():  # num_tags=0 (the single-task STCNN): an empty layer
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            self.semantic_head = nn.Linear(feature_dim, num_tags)
        self.aux_branch = aux_branch
        self.aux_head = nn.Linear(feature_dim, num_classes) if aux_branch is not None else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h1 = self.low(x)
        h = self.shared(h1)
        out = {"aesthetic_logits": self.aesthetic_head(self.aesthetic_branch(h)),
               "tag_logits": self.semantic_head(self.semantic_branch(h))}
        if self.aux_branch is not None:
            out["aux_aesthetic_logits"] = self.aux_head(self.aux_branch(h1))
        return out

    def shared_parameters(self) -> int:
        """Trained parameters both tasks back-propagate into (``low`` and ``shared``): where the
        network is split decides how much the semantic task can shape the aesthetic features."""
        return sum(p.numel() for m in (self.low, self.shared) for p in m.parameters()
                   if p.requires_grad)

    def task_weights(self) -> torch.Tensor:
        """W = [W_a | W_s], shape [d, C + M] (Eq. 10/11): one column per sub-task.

        Columns: low aesthetic, high aesthetic, then the M tags in manifest order. Differentiable
        (used in the trace regulariser). **Choice:** biases are not part of W; the enhanced net's
        W'_a is left out (the MTRL prior is over the main task-specific layer).
        """
        return torch.cat([self.aesthetic_head.weight, self.semantic_head.weight], dim=0).t()


def _conv_layers(specs, in_channels: int, width_mult: float, batch_norm: bool) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for out_channels, kernel, stride, padding, pool in specs:
        out_channels = scaled_channels(out_channels, width_mult)
        layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride, padding))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
        if pool:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True))
        in_channels = out_channels
    return nn.Sequential(*layers), in_channels


#: conv layers of KAO_CONV_LAYERS a stem of each output stride replaces
STEM_REPLACES = {8: 1, 16: 2}


def _trunk(width_mult: float, batch_norm: bool, stem: str | None):
    """(low = conv1–2, its channels, high = conv3–4, its channels), the first layers replaced by
    ``stem`` when one is given."""
    skip, channels = 0, 3
    if stem is not None:
        if stem_stride(stem) not in STEM_REPLACES:
            raise ValueError(f"Kao's networks sit above a stride-8 or stride-16 stem, not {stem!r}")
        skip, channels = STEM_REPLACES[stem_stride(stem)], stem_channels(stem)
    low, c_low = _conv_layers(KAO_CONV_LAYERS[skip:2], channels, width_mult, batch_norm)
    high, c_high = _conv_layers(KAO_CONV_LAYERS[2:], c_low, width_mult, batch_norm)
    return low, c_low, high, c_high


def _fc_layers(in_channels: int, pool_size: int, fc_dim: int, n_layers: int,
               dropout: float) -> nn.Sequential:
    """Adaptive average pooling to pool_size² (**Choice**), flatten, ``n_layers`` × (FC, ReLU, dropout)."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(pool_size), nn.Flatten()]
    in_features = in_channels * pool_size * pool_size
    for _ in range(n_layers):
        layers += [nn.Linear(in_features, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        in_features = fc_dim
    return nn.Sequential(*layers)


def mtcnn1(num_tags: int = 29, num_classes: int = 2, width_mult: float = 1.0, *,
           fc_dim: int = 4096, pool_size: int = 6, dropout: float = 0.5,
           batch_norm: bool = False, stem: str | None = None) -> MTCNN:
    """MTCNN #1 (Fig. 2): conv1–4 + fc5–6 shared, split only at the task-specific layer."""
    low, c_low, high, c_high = _trunk(width_mult, batch_norm, stem)
    shared = nn.Sequential(high, _fc_layers(c_high, pool_size, fc_dim, 2, dropout))
    return MTCNN(low, shared, nn.Identity(), nn.Identity(), fc_dim, num_classes, num_tags)


def mtcnn2(num_tags: int = 29, num_classes: int = 2, width_mult: float = 1.0, *,
           fc_dim: int = 4096, pool_size: int = 6, dropout: float = 0.5,
           batch_norm: bool = False, stem: str | None = None) -> MTCNN:
    """MTCNN #2: conv1–4 shared; layers 5, 6, 7 separate per task."""
    low, c_low, high, c_high = _trunk(width_mult, batch_norm, stem)
    return MTCNN(low, high,
                 _fc_layers(c_high, pool_size, fc_dim, 2, dropout),
                 _fc_layers(c_high, pool_size, fc_dim, 2, dropout),
                 fc_dim, num_classes, num_tags)


def mtcnn3(num_tags: int = 29, num_classes: int = 2, width_mult: float = 1.0, *,
           fc_dim: int = 4096, pool_size: int = 6, dropout: float = 0.5,
           batch_norm: bool = False, stem: str | None = None) -> MTCNN:
    """MTCNN #3: conv1–2 shared; semantic branch conv3–4 + fc5–6 (+ output: 4 conv, 3 FC);
    aesthetic branch one FC (+ output: 2 conv, 2 FC)."""
    low, c_low, high, c_high = _trunk(width_mult, batch_norm, stem)
    semantic = nn.Sequential(high, _fc_layers(c_high, pool_size, fc_dim, 2, dropout))
    aesthetic = _fc_layers(c_low, pool_size, fc_dim, 1, dropout)
    return MTCNN(low, nn.Identity(), aesthetic, semantic, fc_dim, num_classes, num_tags)


def mtcnn_enhanced(num_tags: int = 29, num_classes: int = 2, width_mult: float = 1.0, *,
                   fc_dim: int = 4096, pool_size: int = 6, dropout: float = 0.5,
                   batch_norm: bool = False, stem: str | None = None) -> MTCNN:
    """Enhanced MTCNN (Eq. 12): MTCNN #1 + extra aesthetic supervision W'_a on conv1–2.

    **Choice:** the extra head is MTCNN #3's aesthetic branch (one FC + output) on conv1–2.
    """
    low, c_low, high, c_high = _trunk(width_mult, batch_norm, stem)
    shared = nn.Sequential(high, _fc_layers(c_high, pool_size, fc_dim, 2, dropout))
    aux = _fc_layers(c_low, pool_size, fc_dim, 1, dropout)
    return MTCNN(low, shared, nn.Identity(), nn.Identity(), fc_dim, num_classes, num_tags,
                 aux_branch=aux)


def mtcnn_finetune(backbone: str, *, weights: str | os.PathLike | None, num_tags: int = 29,
                   num_classes: int = 2, width_mult: float = 1.0, fc_dim: int | None = 512,
                   dropout: float = 0.5, allow_download: bool = False,
                   stem: str | None = None, train_depthwise: bool = True) -> MTCNN:
    """MTCNN #1 with layers 1–6 replaced by ``backbone`` (AlexNet/VGG/ResNet FT, Sec. III-E).

    **Choice:** backbone conv features → global average pooling → one new FC layer with
    ``fc_dim`` units (ReLU, dropout) → W = [W_a, W_s]. The ImageNet classifier layers are not
    reused, so all backbones get the same head. ``fc_dim=None`` puts W directly on the pooled
    features (d = backbone channels). Above a frozen ``stem`` the backbone is its part above the
    cut, fine-tuned from its ImageNet weights (:func:`iaalib.models.stems.backbone_above`).
    ``train_depthwise=False`` keeps the backbone's depthwise kernels at their ImageNet values
    (:func:`iaalib.models.backbones.freeze_depthwise`, a CPU Choice of the demo).
    """
    if stem is not None:
        features, channels = backbone_above(backbone, stem, weights=weights, width_mult=width_mult)
    else:
        features, channels = build_backbone(backbone, weights=weights, width_mult=width_mult,
                                            allow_download=allow_download)
    if not train_depthwise:
        freeze_depthwise(features)
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if fc_dim is not None:
        head += [nn.Linear(channels, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    shared = nn.Sequential(*head)
    return MTCNN(features, shared, nn.Identity(), nn.Identity(), fc_dim or channels,
                 num_classes, num_tags)
