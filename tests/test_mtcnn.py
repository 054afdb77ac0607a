"""Kao et al.'s MTCNNs: shapes, the sharing structure of Sec. III-D, task weights W, gradients."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from iaalib.losses import kao_multitask_loss
from iaalib.models import mtcnn

SMALL = dict(width_mult=0.25, fc_dim=64)
BUILDERS = [mtcnn.mtcnn1, mtcnn.mtcnn2, mtcnn.mtcnn3, mtcnn.mtcnn_enhanced]


def _batch(b=4, m=29, hw=(96, 96), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 3, *hw, generator=g)
    label = torch.randint(0, 2, (b,), generator=g)
    tags = (torch.rand(b, m, generator=g) < 0.2).float()
    return x, label, tags


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("hw", [(227, 227), (96, 96), (96, 144), (150, 100)])
def test_output_shapes_for_several_sizes(builder, hw):
    model = builder(num_tags=29, **SMALL)
    out = model(torch.randn(2, 3, *hw))
    assert out["aesthetic_logits"].shape == (2, 2)
    assert out["tag_logits"].shape == (2, 29)
    assert ("aux_aesthetic_logits" in out) == (builder is mtcnn.mtcnn_enhanced)
    if "aux_aesthetic_logits" in out:
        assert out["aux_aesthetic_logits"].shape == (2, 2)


def test_paper_size_trunk_reaches_6x6_at_227():
    """At 227×227 (Sec. III-D) the conv trunk ends at AlexNet's 6×6 map, so the adaptive pooling
    that lets other sizes work is the identity at the paper's size."""
    model = mtcnn.mtcnn1()
    convs = model.shared[0]
    h = convs(model.low(torch.randn(1, 3, 227, 227)))
    assert h.shape == (1, 256, 6, 6)
    assert model.task_weights().shape == (4096, 31)


def _count(module, kind):
    return sum(isinstance(m, kind) for m in module.modules())


def test_layer_counts_follow_the_text():
    m1 = mtcnn.mtcnn1(**SMALL)
    # "four convolutional layers and two fully-connected layers with parameters Θ"
    shared = nn.ModuleList([m1.low, m1.shared])
    assert (_count(shared, nn.Conv2d), _count(shared, nn.Linear)) == (4, 2)
    m2 = mtcnn.mtcnn2(**SMALL)
    shared = nn.ModuleList([m2.low, m2.shared])
    assert (_count(shared, nn.Conv2d), _count(shared, nn.Linear)) == (4, 0)
    for branch in (m2.aesthetic_branch, m2.semantic_branch):  # layers 5, 6 (+ 7 = head) per task
        assert _count(branch, nn.Linear) == 2
    m3 = mtcnn.mtcnn3(**SMALL)
    assert _count(nn.ModuleList([m3.low, m3.shared]), nn.Conv2d) == 2
    semantic_path = nn.ModuleList([m3.low, m3.semantic_branch, m3.semantic_head])
    aesthetic_path = nn.ModuleList([m3.low, m3.aesthetic_branch, m3.aesthetic_head])
    assert (_count(semantic_path, nn.Conv2d), _count(semantic_path, nn.Linear)) == (4, 3)
    assert (_count(aesthetic_path, nn.Conv2d), _count(aesthetic_path, nn.Linear)) == (2, 2)
    me = mtcnn.mtcnn_enhanced(**SMALL)
    assert _count(me.low, nn.Conv2d) == 2 and me.aux_head is not None


def _grad_reach(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


@pytest.mark.parametrize("builder, semantic_reaches, semantic_misses", [
    (mtcnn.mtcnn1, ["low.", "shared."], ["aesthetic_head."]),
    (mtcnn.mtcnn2, ["low.", "shared.", "semantic_branch."], ["aesthetic_branch.", "aesthetic_head."]),
    (mtcnn.mtcnn3, ["low.", "semantic_branch."], ["aesthetic_branch.", "aesthetic_head."]),
])
def test_semantic_loss_reaches_exactly_the_shared_layers(builder, semantic_reaches, semantic_misses):
    torch.manual_seed(0)
    model = builder(**SMALL)
    x, label, tags = _batch()
    reached = _grad_reach(model, kao_multitask_loss(model(x), label, tags, lam=1.0)["semantic"])
    for prefix in semantic_reaches:
        assert any(n.startswith(prefix) for n in reached), prefix
    for prefix in semantic_misses:
        assert not any(n.startswith(prefix) for n in reached), prefix


def test_enhanced_aux_supervision_only_trains_conv1_2_and_its_head():
    torch.manual_seed(0)
    model = mtcnn.mtcnn_enhanced(**SMALL)
    x, label, tags = _batch()
    reached = _grad_reach(model, kao_multitask_loss(model(x), label, tags, lam=2 / 29)["aux"])
    assert {n.split(".")[0] for n in reached} == {"low", "aux_branch", "aux_head"}
    conv_weights = [n for n in reached if n.startswith("low.") and n.endswith("weight")]
    assert len(conv_weights) == 2  # conv1, conv2 (Θ1)


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("builder", BUILDERS)
def test_full_loss_reaches_every_parameter(builder, batch_norm):
    torch.manual_seed(0)
    model = builder(batch_norm=batch_norm, **SMALL)
    x, label, tags = _batch(b=8)
    reached = _grad_reach(model, kao_multitask_loss(model(x), label, tags, lam=1 / 29)["total"])
    missing = [n for n, _ in model.named_parameters() if n not in reached]
    assert missing == []


def test_task_weights_are_the_task_specific_layer():
    """W = [W_a | W_s]: logits = hᵀW + b with h the layer-6 representation (Eq. 5, 6)."""
    torch.manual_seed(0)
    model = mtcnn.mtcnn1(num_tags=5, **SMALL).eval()
    x = torch.randn(3, 3, 96, 96)
    W = model.task_weights()
    assert W.shape == (64, 2 + 5)
    with torch.no_grad():
        h = model.shared(model.low(x))
        out = model(x)
        bias = torch.cat([model.aesthetic_head.bias, model.semantic_head.bias])
        torch.testing.assert_close(torch.cat([out["aesthetic_logits"], out["tag_logits"]], 1),
                                   h @ W + bias)
    # differentiable: the MTRL trace term must train W
    (W ** 2).sum().backward()
    assert model.aesthetic_head.weight.grad is not None and model.semantic_head.weight.grad is not None


@pytest.mark.parametrize("builder", BUILDERS)
def test_every_model_exposes_a_consistent_W(builder):
    model = builder(num_tags=7, **SMALL)
    assert model.task_weights().shape == (64, 9)


def test_no_tags_is_the_single_task_stcnn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = mtcnn.mtcnn1(num_tags=0, **SMALL)
    x, label, _ = _batch(b=4, m=0)
    out = model(x)
    assert out["tag_logits"].shape == (4, 0) and model.task_weights().shape == (64, 2)
    terms = kao_multitask_loss(out, label, torch.zeros(4, 0), lam=1 / 29)
    assert terms["semantic"].item() == 0.0
    torch.testing.assert_close(terms["total"], nn.functional.cross_entropy(out["aesthetic_logits"], label))


def test_finetune_replaces_layers_1_to_6_with_the_backbone(tmp_path):
    from torchvision import models as tvm

    torch.manual_seed(0)
    reference = tvm.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = mtcnn.mtcnn_finetune("resnet18", weights=path, num_tags=29, fc_dim=32)
    torch.testing.assert_close(model.low.conv1.weight, reference.conv1.weight)
    out = model(torch.randn(2, 3, 112, 160))
    assert out["aesthetic_logits"].shape == (2, 2) and out["tag_logits"].shape == (2, 29)
    assert model.task_weights().shape == (32, 31)
    direct = mtcnn.mtcnn_finetune("alexnet", weights=None, width_mult=0.25, fc_dim=None)
    assert direct.task_weights().shape == (64, 31)  # W on the pooled conv features
    with pytest.raises(TypeError):
        mtcnn.mtcnn_finetune("vgg16")  # weights is an explicit, required choice


def test_finetune_can_keep_the_depthwise_kernels_frozen():
    """train_depthwise=False: exactly EfficientNet-Lite0's depthwise kernels above the stride-16
    stem stay fixed (by hand from its blocks: one 5x5 over 672 channels, three 5x5 and one 3x3
    over 1,152: 672*25 + 3*1152*25 + 1152*9 = 113,568 weights); every other weight trains, and
    the optimiser's groups leave the frozen ones out."""
    from iaalib.engine.trainer import parameter_groups

    kwargs = dict(weights=None, num_tags=3, fc_dim=8, stem="efficientnet_lite0:16", dropout=0.0)
    frozen = mtcnn.mtcnn_finetune("efficientnet_lite0", train_depthwise=False, **kwargs)
    trained = mtcnn.mtcnn_finetune("efficientnet_lite0", **kwargs)
    fixed = {n for n, p in frozen.named_parameters() if not p.requires_grad}
    assert sum(p.numel() for n, p in frozen.named_parameters() if n in fixed) == 113_568
    assert all(p.requires_grad for p in trained.parameters())
    depthwise = {f"{n}.weight" for n, m in frozen.named_modules()
                 if isinstance(m, torch.nn.Conv2d) and m.groups == m.in_channels > 1}
    assert fixed == depthwise and len(depthwise) == 5
    before = {n: p.detach().clone() for n, p in frozen.named_parameters()}
    cfg = SimpleNamespace(model=SimpleNamespace(family="mtcnn_finetune", weights=None),
                          optim=SimpleNamespace(pretrained_lr_mult=1.0, lr=0.1))
    groups = parameter_groups(frozen, cfg)
    assert sum(len(g["params"]) for g in groups) == len(list(frozen.parameters())) - len(fixed)
    opt = torch.optim.SGD(groups, lr=0.1)
    out = frozen.train()(torch.randn(2, 112, 7, 7))
    (out["aesthetic_logits"].sum() + out["tag_logits"].sum()).backward()
    opt.step()
    for n, p in frozen.named_parameters():
        assert torch.equal(p, before[n]) == (n in fixed) or p.grad is not None and not p.grad.any()


def test_demo_size_model_fits_a_fixed_batch():
    """Both tasks learn: on a fixed batch the aesthetic CE and the tag BCE fall (no dropout)."""
    torch.manual_seed(0)
    model = mtcnn.mtcnn1(width_mult=0.25, fc_dim=128, batch_norm=True, dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, label, tags = _batch(b=8, hw=(96, 96))
    history = []
    for _ in range(12):
        terms = kao_multitask_loss(model(x), label, tags, lam=1 / 29)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        history.append({k: v.item() for k, v in terms.items()})
    assert history[-1]["aesthetic"] < 0.2 * history[0]["aesthetic"]
    assert history[-1]["semantic"] < 0.85 * history[0]["semantic"]
