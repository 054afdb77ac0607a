"""The one model factory (like ``torchvision.models.get_model``): a model config → a network.

``build_model(model_cfg, num_tags=M)`` dispatches explicitly over the families of both papers;
``model_cfg`` is any object with the fields of :class:`iaalib.engine.config.ModelConfig` (the
factory reads them, it does not import the engine).
"""
from __future__ import annotations

from torch import nn

from iaalib.errors import IaaError
from iaalib.models import FAMILIES, KAO_FAMILIES, mtcnn, nima, saf


def build_model(model_cfg, *, num_tags: int | None = None) -> nn.Module:
    """The network for ``model_cfg`` (explicit dispatch over the families of both papers).

    ``num_tags`` (M) overrides ``model_cfg.num_tags``; Kao's families need it. ``fc_dim`` is the
    width of Kao's fc5/fc6 (or the fine-tuned head) and the SAF regressor's hidden layer;
    ``dropout`` goes to every family's builder.
    """
    m = model_cfg
    opts = dict(m.options)
    if getattr(m, "stem", None):
        opts["stem"] = m.stem
    tags = num_tags if num_tags is not None else m.num_tags
    if m.dropout is not None:
        opts["dropout"] = m.dropout
    if m.fc_dim is not None:
        if m.family == "nima":
            raise IaaError("model.fc_dim: NIMA has no hidden FC layer (leave it null)")
        opts["regressor_hidden" if m.family == "saf" else "fc_dim"] = m.fc_dim
    if m.family in KAO_FAMILIES and tags is None:
        raise IaaError(f"model {m.family!r} needs M, the number of semantic tags (manifest "
                       "tag_<id> columns; M = 0 is the single-task STCNN on aesthetic-only data)")
    if m.family == "mtcnn1":
        return mtcnn.mtcnn1(num_tags=tags, num_classes=m.num_classes, width_mult=m.width_mult, **opts)
    elif m.family == "mtcnn2":
        return mtcnn.mtcnn2(num_tags=tags, num_classes=m.num_classes, width_mult=m.width_mult, **opts)
    elif m.family == "mtcnn3":
        return mtcnn.mtcnn3(num_tags=tags, num_classes=m.num_classes, width_mult=m.width_mult, **opts)
    elif m.family == "mtcnn_enhanced":
        return mtcnn.mtcnn_enhanced(num_tags=tags, num_classes=m.num_classes,
                                    width_mult=m.width_mult, **opts)
    elif m.family == "mtcnn_finetune":
        return mtcnn.mtcnn_finetune(m.backbone or "alexnet", weights=m.weights, num_tags=tags,
                                    num_classes=m.num_classes, width_mult=m.width_mult, **opts)
    elif m.family == "saf":
        if m.group_size is not None:
            opts["group_size"] = m.group_size
        return saf.saf_vgg16(num_bins=10, width_mult=m.width_mult, weights=m.weights,
                             split_regressor=m.split_regressor, fusion=m.fusion, decoder=m.decoder,
                             **opts)
    elif m.family == "nima":
        return nima.nima(m.backbone or "resnet18", weights=m.weights, width_mult=m.width_mult, **opts)
    raise IaaError(f"unknown model family {m.family!r}; expected one of {', '.join(FAMILIES)}")


def pretrained_part(model: nn.Module, model_cfg) -> nn.Module | None:
    """The part of ``model`` that starts from ``model_cfg.weights`` (a fine-tuned ImageNet
    backbone): the fine-tuned MTCNN's layers 1–6 (``low``), SAF's VGG16 encoder, NIMA's features;
    None when the network starts from scratch."""
    if not model_cfg.weights:
        return None
    if model_cfg.family == "mtcnn_finetune":
        return model.low
    if model_cfg.family == "saf":
        return model.encoder
    if model_cfg.family == "nima":
        return model.features
    return None
