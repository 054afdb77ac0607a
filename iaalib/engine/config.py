"""One experiment = one plain config object (nested dataclasses, YAML/JSON round trip).

``ExperimentConfig.config_hash()`` is the checkpoint-or-train key: a sha256 over the resolved
config without the presentation-only fields (:data:`PRESENTATION_FIELDS`), so two configs that
train the same model hash the same. The network of a :class:`ModelConfig` is built by
:func:`iaalib.models.factory.build_model`; how it is trained (loss, hooks) by
:func:`iaalib.tasks.build_task`.

This module does not import torch.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from .._io import atomic_write, yaml_key_lines
from ..errors import DataFormatError, IaaError
from ..models import FAMILIES, KAO_FAMILIES, parse_stem

TRANSFORMS = ("kao", "saf")
BEST_METRICS = ("auto", "acc", "srcc_mean", "plcc_mean", "srcc_sd", "plcc_sd", "emd",
                "srcc_p_high", "semantic_ap")

#: Dotted fields that change how a run is shown or scheduled but not what it computes; they are
#: left out of :meth:`ExperimentConfig.config_hash`. Augmentation is a pure function of
#: (seed, epoch, index), so the number of loader workers does not change the result either.
PRESENTATION_FIELDS = ("name", "quiet", "data.num_workers", "checkpoint_every")
#: Fields added after the first release, left out of the hash while at these values, so a config
#: that does not use them keeps the hash (and the run directory) it had before they existed.
LATER_FIELDS = {"model.stem": None, "data.stem_size": 112, "data.stem_flip": True,
                "data.stem_shift": 0,
                "monitor_test": False, "max_steps": 0, "data.decode_device": "cpu",
                "data.resident": False, "optim.pretrained_lr_mult": 1.0, "optim.ema_epochs": 0.0,
                "monitor_every": 1,
                "cpu_amp": False}


@dataclass
class DataConfig:
    """Manifests (CSV, see ``iaalib.data.protocols``) and the image transform.

    ``transform="kao"``: Resize(resize×resize) then a crop×crop patch (Kao et al. Sec. III-D:
    227 from 256). ``transform="saf"``: short edge ``short_edge``, aspect ratio kept (SAF,
    "Image Preprocessing"). Relative paths are resolved against the config file's folder.

    With a frozen stem (``model.stem``) the network reads cached stem activations instead
    (:mod:`iaalib.data.activations`). **Choice:** the stem sees the whole image resized to
    ``stem_size``×``stem_size`` (aspect ratio not kept, as Kao et al. resize to 256×256, so the
    whole composition is in view); ``stem_flip`` augments training with the activations of the
    horizontally flipped image (both are cached); ``stem_shift`` > 0 moves each training sample's
    maps by up to that many cells each way, zeros moving in (the zero-padded random crop,
    :func:`iaalib.data.activations.shift_maps`; 0: no shift).

    ``decode_device``: "cpu" decodes in the DataLoader workers; "cuda" reads only the files' bytes
    there and decodes and transforms each batch on the GPU (:mod:`iaalib.data.on_device`), where
    ``resident`` keeps every resized image in GPU memory after its first decode; "auto" is "cuda"
    where a GPU is available, else "cpu".
    """
    train: str | None = None
    val: str | None = None
    test: str | None = None
    image_dir: str | None = None
    transform: str = "kao"
    resize: int = 256
    crop: int = 227
    short_edge: int = 256
    max_long_edge: int | None = None
    num_workers: int = 0
    strict_images: bool = False
    stem_size: int = 112
    stem_flip: bool = True
    stem_shift: int = 0
    decode_device: str = "cpu"
    resident: bool = False


@dataclass
class ModelConfig:
    """Which network and its switches (see ``iaalib.models``).

    ``num_tags=None`` takes M from the training manifest's ``tag_<id>`` columns. ``options`` are
    extra keyword arguments for the family's builder (explicit, printed in config.yaml).

    ``init_from`` (a checkpoint file or a run directory, whose best checkpoint is used) starts
    training from another run's weights: Kao et al. Sec. III-E / Table V fine-tune an AVA-trained
    (multi-task or single-task) network on a dataset with aesthetic labels only. **Choice:** every
    parameter whose name and shape match is copied; the others (e.g. the 29-tag head when the
    target has no tags) keep their fresh initialisation, and the run record lists them.

    ``stem`` (e.g. ``"efficientnet_lite0:8"``): the network is trained above a frozen ImageNet stem
    whose activations are cached (:mod:`iaalib.models.stems`); None trains end to end on pixels.
    """
    family: str = "mtcnn1"
    backbone: str | None = None
    weights: str | None = None
    width_mult: float = 1.0
    num_tags: int | None = None
    num_classes: int = 2
    fc_dim: int | None = None
    group_size: int | None = None
    split_regressor: bool = True
    fusion: str = "gap"
    decoder: bool = True
    dropout: float | None = None
    options: dict = field(default_factory=dict)
    init_from: str | None = None
    stem: str | None = None


@dataclass
class MTRLConfig:
    """Kao et al. Eq. (11): alternate SGD on Θ, W with the closed-form Ω update (Sec. III-C).

    **Choice:** Ω starts as I/(C+M) (trace 1, tasks independent) and is updated every
    ``update_every`` epochs (``update_unit="epoch"``) or steps; the paper says only "repeat until
    convergence". ``weight`` multiplies tr(W Ω⁻¹ Wᵀ) in the batch-mean loss; None = 1/N with N the
    training images, which is Eq. 11's weight (its data terms are sums over the N images).
    """
    enabled: bool = False
    weight: float | None = None
    update_every: int = 1
    update_unit: str = "epoch"
    eps: float = 1e-8


@dataclass
class SemanticEarlyStopConfig:
    """Table I's "λ = 1 with early stopping": λ = ``loss.lam`` until the semantic loss plateaus,
    then λ = 0 for the rest of training.

    **Choice:** plateau = the epoch-mean training semantic loss has not improved by more than
    ``min_delta`` (relative) for ``patience`` epochs; the paper gives no criterion.
    """
    enabled: bool = False
    patience: int = 1
    min_delta: float = 0.01


@dataclass
class LossConfig:
    """Loss weights. Kao: total = CE + λ·BCE (Eq. 7/12), ``lam`` a number or "1/M", "2/M".
    SAF: total = EMD + α·reconstruction + β·activation (``activation`` "l1" | "kl" | "js").

    **Choice:** α = β = 0.1 (the SAF text lost its values; as ``iaalib.losses.SAF_ALPHA/BETA``).
    Without a decoder α must be 0, without a fusing module (``fusion: none``) β must be 0.
    """
    lam: float | str = "1/M"
    alpha: float = 0.1
    beta: float = 0.1
    activation: str = "l1"
    mtrl: MTRLConfig = field(default_factory=MTRLConfig)
    semantic_early_stop: SemanticEarlyStopConfig = field(default_factory=SemanticEarlyStopConfig)


@dataclass
class OptimConfig:
    """SGD with momentum 0.9 as both papers; Adam optional.

    **Choice:** lr 0.01, weight decay 5e-4 (Kao's Gaussian priors ΘᵀΘ + WᵀW as L2 decay), and a
    constant schedule; "step" multiplies the lr by ``gamma`` every ``step_size`` epochs, "cosine"
    anneals to 0 over the run (both stepped once per epoch).

    ``pretrained_lr_mult``: the pretrained part of a network (an ImageNet backbone being fine-tuned,
    :func:`iaalib.models.factory.pretrained_part`) learns at ``lr × pretrained_lr_mult``, the new
    layers at ``lr``. **Choice:** 1 (one rate for all, as neither paper says otherwise); Caffe's
    fine-tuning convention of the papers' time gave new layers 10× the rate of pretrained ones,
    i.e. 0.1 here.

    ``ema_epochs`` > 0: the run's result is an exponential moving average of its weights (and
    batch-norm statistics) with a time constant of that many epochs: updated after every optimiser
    step with decay d = 1 − 1 / (ema_epochs × steps per epoch), without start-up bias
    (:class:`torch.optim.swa_utils.AveragedModel` with :func:`iaalib.engine.trainer.debiased_ema`);
    evaluation, learning curves, ``best.pt`` and fine-tuning read the averaged weights.
    **Choice:** 0 (the last weights, as both papers).
    """
    name: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "constant"
    step_size: int = 10
    gamma: float = 0.1
    pretrained_lr_mult: float = 1.0
    ema_epochs: float = 0.0


@dataclass
class ExperimentConfig:
    """A whole experiment. ``batch_size`` is the global batch per optimiser step: each of the
    ``world_size × grad_accumulation`` micro-batches holds ``batch_size / (world_size ×
    grad_accumulation)`` images, and the step uses the mean of their mean-loss gradients (so one
    process with ``grad_accumulation=2`` and two DDP ranks take the same steps).

    ``device="auto"``: CUDA, then MPS, then CPU. ``amp``: bf16 autocast for training and
    evaluation on CUDA; ``cpu_amp``: also for training on a CPU with native bf16 (see below).
    ``deterministic``: deterministic kernels (exact resume on CPU). ``checkpoint_every``:
    also checkpoint every N optimiser steps (0 = at epoch ends only). ``best_metric``: validation
    metric that selects ``best.pt`` ("auto": acc for Kao's classifiers, srcc_mean otherwise).
    ``monitor_test``: also evaluate the test manifest after every epoch and record its metrics as
    ``test_<metric>`` in ``history.jsonl`` (learning curves; never used to pick a checkpoint);
    ``monitor_every``: only after every that many epochs, and after the last (whose evaluation
    is then the run's final one, not repeated when the last weights are the run's result).
    ``max_steps``: end the run after this many optimiser steps in all (0: the whole schedule). The
    epoch in progress is closed as usual (evaluation, checkpoint, history), so a capped run goes
    through every code path of a full one: the rehearsal profile rehearses the ``ava`` runs so.

    **Choice:** ``channels_last`` (on by default) keeps the model and its 4-d inputs in the
    channels-last memory format on every device, not only under CUDA's autocast: the same
    arithmetic with faster kernels. On two CPU cores, one thread per run, the demo's networks train
    11–24 % faster per image (the fine-tuned EfficientNet-Lite0 blocks 24 %,
    ``benchmarks/results/cpu_kernels.json``). It is part of the config hash: the last digits of
    the numbers differ from a contiguous run's.

    **Choice:** ``cpu_amp`` (off by default; on in the demo profile for the papers' networks above
    the stem) trains under bf16 autocast on a CPU that computes bf16 in hardware (AVX-512 BF16 or
    AMX; elsewhere fp32, with a warning, and ``run.json`` records ``amp: false``). The weights,
    the optimiser and the losses stay fp32; the test metrics are computed in fp32. On two CPU
    cores, one thread per run, a training step of the demo's 27 trunk, SAF and NIMA run families
    took 3–31 % less time per image (median 19 %); over the 66 seed-averaged test metrics of a
    whole demo build, bf16 moved 9 by more than one seed standard deviation (about 15 would by
    chance: a difference of two 3-seed means has an SD of 0.8 seed SDs). The fine-tuned
    EfficientNet-Lite0 blocks, whose depthwise convolutions have no fast bf16 kernel, took 1.7–1.8
    times as long, so they keep fp32
    (``benchmarks/results/cpu_bf16.json``). It is part of the config hash.
    """
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 1
    batch_size: int = 32
    grad_accumulation: int = 1
    eval_batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    cpu_amp: bool = False
    channels_last: bool = True
    deterministic: bool = True
    checkpoint_every: int = 0
    best_metric: str = "auto"
    num_threads: int | None = None
    quiet: bool = False
    monitor_test: bool = False
    monitor_every: int = 1
    max_steps: int = 0

    # ------------------------------------------------------------------ dict / file round trip
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, *, base_dir: str | os.PathLike | None = None,
                  source: str | None = None, lines: dict | None = None) -> "ExperimentConfig":
        """Build and validate a config. Unknown keys and wrong types raise
        :class:`DataFormatError` naming ``source`` (and the line, when ``lines`` maps dotted keys
        to 1-based lines). Data paths become absolute: relative ones are resolved against
        ``base_dir`` (the config file's folder) or else the current directory."""
        cfg = _build(cls, d, "", source, lines or {})
        for name in ("train", "val", "test", "image_dir"):
            v = getattr(cfg.data, name)
            if v:
                v = os.path.expanduser(v)
                if not os.path.isabs(v):
                    v = os.path.join(base_dir if base_dir is not None else os.getcwd(), v)
                setattr(cfg.data, name, os.path.normpath(v))
        if cfg.model.init_from:
            v = os.path.expanduser(cfg.model.init_from)
            if not os.path.isabs(v):
                v = os.path.join(base_dir if base_dir is not None else os.getcwd(), v)
            cfg.model.init_from = os.path.normpath(v)
        cfg.validate(source=source, lines=lines or {})
        return cfg

    def save(self, path: str | os.PathLike) -> None:
        """Write YAML (``.yaml``/``.yml``) or JSON (anything else), atomically."""
        path = Path(path)
        with atomic_write(path, "w", encoding="utf-8") as fh:
            if path.suffix in (".yaml", ".yml"):
                yaml.safe_dump(self.to_dict(), fh, sort_keys=False)
            else:
                json.dump(self.to_dict(), fh, indent=2)
                fh.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ExperimentConfig":
        path = Path(path)
        if not path.is_file():
            raise IaaError(f"{path}: config file not found")
        text = path.read_text(encoding="utf-8")
        lines: dict[str, int] = {}
        try:
            if path.suffix == ".json":
                d = json.loads(text)
            else:
                d = yaml.safe_load(text)
                lines = yaml_key_lines(text)
        except Exception as e:  # yaml.YAMLError / json.JSONDecodeError carry a position
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            line = line + 1 if line is not None else getattr(e, "lineno", None)
            raise DataFormatError(path, line, f"not valid YAML/JSON: {e}") from None
        if not isinstance(d, dict):
            raise DataFormatError(path, None, "a config must be a mapping of sections")
        return cls.from_dict(d, base_dir=path.parent, source=str(path), lines=lines)

    # ------------------------------------------------------------------ derived values
    def config_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of the config without :data:`PRESENTATION_FIELDS`."""
        d = self.to_dict()
        for dotted in (*PRESENTATION_FIELDS, *LATER_FIELDS):
            *parents, last = dotted.split(".")
            node = d
            for p in parents:
                node = node[p]
            if dotted not in LATER_FIELDS or node.get(last) == LATER_FIELDS[dotted]:
                node.pop(last, None)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def with_overrides(self, overrides: dict[str, Any]) -> "ExperimentConfig":
        """A copy with dotted keys replaced, e.g. ``{"model.family": "mtcnn2", "loss.lam": 0}``."""
        d = self.to_dict()
        for dotted, value in overrides.items():
            *parents, last = dotted.split(".")
            node = d
            for p in parents:
                if p not in node or not isinstance(node[p], dict):
                    raise IaaError(f"override {dotted!r}: no section {p!r}")
                node = node[p]
            if last not in node:
                raise IaaError(f"override {dotted!r}: unknown field {last!r}")
            node[last] = value
        return type(self).from_dict(d)

    def validate(self, *, source: str | None = None, lines: dict | None = None) -> None:
        lines = lines or {}

        def bad(key: str, msg: str) -> DataFormatError:
            return DataFormatError(source or "<config>", lines.get(key), f"{key}: {msg}")

        checks = [
            ("model.family", self.model.family in FAMILIES, f"one of {', '.join(FAMILIES)}"),
            ("data.transform", self.data.transform in TRANSFORMS, "'kao' or 'saf'"),
            ("optim.name", self.optim.name in ("sgd", "adam"), "'sgd' or 'adam'"),
            ("optim.schedule", self.optim.schedule in ("constant", "step", "cosine"),
             "'constant', 'step' or 'cosine'"),
            ("loss.activation", self.loss.activation in ("l1", "kl", "js"), "'l1', 'kl' or 'js'"),
            ("loss.mtrl.update_unit", self.loss.mtrl.update_unit in ("epoch", "step"),
             "'epoch' or 'step'"),
            ("loss.mtrl.update_every", self.loss.mtrl.update_every >= 1, "at least 1"),
            ("optim.pretrained_lr_mult", self.optim.pretrained_lr_mult > 0, "positive"),
            ("optim.ema_epochs", self.optim.ema_epochs >= 0, "0 (off) or more epochs"),
            ("epochs", self.epochs >= 1, "at least 1"),
            ("monitor_every", self.monitor_every >= 1, "at least 1"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("grad_accumulation", self.grad_accumulation >= 1, "at least 1"),
            ("checkpoint_every", self.checkpoint_every >= 0, "0 or more"),
            ("max_steps", self.max_steps >= 0, "0 (no limit) or more"),
            ("data.stem_shift", self.data.stem_shift >= 0, "0 (no shift) or more cells"),
            ("data.decode_device", re.fullmatch(r"cpu|auto|cuda(:\d+)?", self.data.decode_device)
             is not None, "'cpu', 'auto' or 'cuda[:N]'"),
            ("data.resident", not self.data.resident or self.data.decode_device != "cpu",
             "false with decode_device 'cpu' (images stay resident on the decoding device)"),
            ("best_metric", self.best_metric in BEST_METRICS, f"one of {', '.join(BEST_METRICS)}"),
            ("device", self.device == "auto" or re.fullmatch(r"cpu|mps|cuda(:\d+)?", self.device)
             is not None, "'auto', 'cpu', 'mps' or 'cuda[:N]'"),
        ]
        for key, ok, expected in checks:
            if not ok:
                raise bad(key, f"must be {expected}")
        try:
            resolve_lambda(self.loss.lam, 29)
        except ValueError as e:
            raise bad("loss.lam", str(e)) from None
        if self.loss.mtrl.enabled and self.model.family not in KAO_FAMILIES:
            raise bad("loss.mtrl.enabled", "MTRL applies to Kao's multi-task families only")
        if self.data.stem_shift and self.model.stem is None:
            raise bad("data.stem_shift", "must be 0 without model.stem (it moves cached stem maps; "
                      "on pixels the transform crops)")
        if self.model.stem is not None:
            try:
                parse_stem(self.model.stem)
            except ValueError as e:
                raise bad("model.stem", str(e)) from None
        if self.model.family == "saf":
            if self.model.fusion not in ("gap", "fc", "none"):
                raise bad("model.fusion", "must be 'gap', 'fc' or 'none'")
            if not self.model.decoder and self.loss.alpha:
                raise bad("loss.alpha", "must be 0 when model.decoder is false (no reconstruction)")
            if self.model.fusion == "none" and self.loss.beta:
                raise bad("loss.beta", "must be 0 when model.fusion is 'none' (no pooled groups)")


def resolve_lambda(lam: float | int | str, num_tags: int) -> float:
    """λ of Kao et al. Eq. (7): a number, a fraction "1/29", or "k/M" with M = ``num_tags``."""
    if isinstance(lam, bool):
        raise ValueError(f"λ must be a number or 'k/M', not {lam!r}")
    if isinstance(lam, (int, float)):
        return float(lam)
    s = str(lam).replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)?/M", s)
    if m:
        if num_tags <= 0:
            raise ValueError(f"λ={lam!r} needs M > 0 semantic tags, but the training manifest has "
                             "no tag_<id> columns (aesthetic-only data: set loss.lam: 0)")
        return float(m.group(1) or 1) / num_tags
    try:
        return float(Fraction(s))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"λ must be a number, a fraction or 'k/M', not {lam!r}") from None


# ---------------------------------------------------------------------- helpers
def _build(cls: type, d: Any, prefix: str, source: str | None, lines: dict):
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(d, dict):
        raise DataFormatError(source or "<config>", lines.get(prefix.rstrip(".")),
                              f"{where}: expected a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        key = prefix + str(unknown[0])
        raise DataFormatError(source or "<config>", lines.get(key),
                              f"unknown key {key!r} (known in {where}: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in d.items():
        key = prefix + name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value if value is not None else {}, key + ".", source, lines)
        else:
            kwargs[name] = _check_type(value, tp, key, source, lines)
    return cls(**kwargs)


def _check_type(value: Any, tp: Any, key: str, source: str | None, lines: dict) -> Any:
    options = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    for t in options:
        if t is type(None) and value is None:
            return None
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t in (str, bool, dict) and isinstance(value, t):
            return value
    names = " or ".join(getattr(t, "__name__", str(t)) for t in options)
    raise DataFormatError(source or "<config>", lines.get(key),
                          f"{key}: expected {names}, got {value!r}")


