"""The inference fast path (BN folded into convs, channels-last) gives the reference outputs."""
import copy

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

import res2net_det
from res2net_det.modeling.res2net import Bottle2neck
from tests.helpers import randomize_norm_


def _fused_pair(name, **kwargs):
    torch.manual_seed(0)
    reference = randomize_norm_(res2net_det.create_model(name, **kwargs)).eval()
    return reference, copy.deepcopy(reference).fuse_for_inference()


def _max_diff(a, b):
    if isinstance(a, dict):
        assert list(a) == list(b)
        return max(_max_diff(a[k], b[k]) for k in a)
    assert a.shape == b.shape
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name, kwargs", [
    ("res2net50_26w_4s", {}),
    ("res2net50_v1b_26w_4s", {}),  # deep stem and average-pool shortcuts
    ("res2next50", {}),  # grouped 3x3
    ("resnet50", {}),  # scale 1
    ("res2net50_14w_8s", {"num_classes": 0, "dilate_last_stage": True}),
    ("res2net50_26w_4s", {"num_classes": 0, "freeze_at": 2}),  # FrozenBN and BN mixed
    ("res2net50_26w_4s", {"num_classes": 0, "norm": "FrozenBN", "out_features": ("res3", "res4")}),
])
def test_fused_matches_reference(name, kwargs):
    reference, fused = _fused_pair(name, **kwargs)
    assert not any(isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d)) for m in fused.modules())
    with torch.no_grad():
        for x in (torch.randn(2, 3, 64, 64), torch.randn(1, 3, 72, 104)):
            assert _max_diff(fused(x), reference(x)) <= 1e-4
            assert _max_diff(fused.forward_features(x), reference.forward_features(x)) <= 1e-4


def test_fused_stage_blocks_run_one_grouped_conv():
    reference, fused = _fused_pair("res2net50_26w_4s", num_classes=0)
    stage_blocks = [layer[0] for layer in (fused.layer1, fused.layer2, fused.layer3, fused.layer4)]
    assert all(b.grouped_convs is not None and len(b.convs) == 0 for b in stage_blocks)
    assert stage_blocks[1].grouped_convs.groups == 3 and stage_blocks[1].grouped_convs.stride == (2, 2)
    assert all(b.grouped_convs is None and len(b.convs) == 3 for b in fused.layer3[1:])  # hierarchical
    with torch.no_grad():  # a stage block alone, so a wrong slice or group order can't hide
        x = torch.randn(2, 256, 20, 20)
        assert _max_diff(fused.layer2[0](x), reference.layer2[0](x)) <= 1e-4


def test_fused_without_channels_last_and_with_group_norm():
    torch.manual_seed(0)
    reference = res2net_det.create_model("res2net50_26w_4s", num_classes=0, norm="GN").eval()
    for m in reference.modules():  # random affine, so a wrongly folded GN would show
        if isinstance(m, nn.GroupNorm):
            nn.init.uniform_(m.weight, 0.25, 0.75)
            nn.init.normal_(m.bias, 0.0, 0.1)
    fused = copy.deepcopy(reference).fuse_for_inference(channels_last=False)
    assert sum(isinstance(m, nn.GroupNorm) for m in fused.modules()) == sum(
        isinstance(m, nn.GroupNorm) for m in reference.modules())  # GN can't be folded: kept
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = fused(x)
        assert _max_diff(out, reference(x)) <= 1e-4
    assert out["res5"].is_contiguous()


def test_fused_outputs_are_channels_last():
    _, fused = _fused_pair("res2net50_26w_4s", num_classes=0)
    with torch.no_grad():
        out = fused(torch.randn(1, 3, 64, 64))
    assert out["res4"].is_contiguous(memory_format=torch.channels_last)


def test_fused_model_refuses_training():
    _, fused = _fused_pair("res2net50_26w_4s")
    with pytest.raises(RuntimeError, match="fused for inference"):
        fused.train()
    fused.eval()  # still allowed


def test_fusing_leaves_the_reference_model_alone():
    reference, _ = _fused_pair("res2net50_26w_4s")
    keys = set(res2net_det.create_model("res2net50_26w_4s").state_dict())
    assert set(reference.state_dict()) == keys
    reference.train()  # still trainable


def _grads(model, x):
    model.zero_grad(set_to_none=True)
    feats = model.forward_features(x)
    sum((f * torch.linspace(-1, 1, f.numel()).view_as(f)).sum() for f in feats.values()).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, feats


@pytest.mark.parametrize("kwargs", [
    {"norm": "FrozenBN"},
    {"norm": "GN", "freeze_at": 2},  # frozen stem and res2 run without checkpointing
])
def test_checkpointed_activations_give_the_reference_gradients(kwargs):
    torch.manual_seed(0)
    reference = randomize_norm_(res2net_det.create_model(
        "res2net50_26w_4s", num_classes=0, base_width=6, **kwargs)).train()
    checkpointed = copy.deepcopy(reference)
    checkpointed.checkpoint_activations = True
    x = torch.randn(2, 3, 64, 64)
    ref_grads, ref_feats = _grads(reference, x)
    ckpt_grads, ckpt_feats = _grads(checkpointed, x)
    assert _max_diff(ref_feats, ckpt_feats) < 1e-5
    assert ref_grads.keys() == ckpt_grads.keys() and ref_grads
    assert max((ref_grads[k] - ckpt_grads[k]).abs().max().item() for k in ref_grads) < 1e-4


def test_compile_falls_back_to_eager_with_a_warning(monkeypatch):
    torch.manual_seed(0)
    model = res2net_det.create_model("res2net50_26w_4s", num_classes=0, base_width=6, norm="FrozenBN").eval()
    reference = copy.deepcopy(model)
    model.compile = True

    def broken_compile(fn, *args, **kwargs):
        def compiled(*a, **k):
            raise RuntimeError("no C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    x = torch.randn(1, 3, 64, 64)
    with pytest.warns(UserWarning, match="torch.compile of the Res2Net failed"):
        out = model.forward_features(x)
    assert _max_diff(out, reference.forward_features(x)) == 0
    assert model.compile is False


def _relative_diff(a, b):
    return max(((a[k] - b[k]).abs().max() / a[k].abs().max()).item() for k in a)


# BN: batch statistics in train mode, in float64: in float32 the two layouts' different summation
# orders, magnified by BN over res5's few pixels, already reach 1e-4 of the gradients.
@pytest.mark.parametrize("norm, dtype", [("FrozenBN", torch.float32), ("BN", torch.float64)])
def test_channels_last_gives_the_reference_outputs_and_gradients(norm, dtype):
    torch.manual_seed(0)
    reference = randomize_norm_(res2net_det.create_model(
        "res2net50_26w_4s", num_classes=0, base_width=6, freeze_at=2, norm=norm)).train().to(dtype)
    fast = res2net_det.create_model("res2net50_26w_4s", num_classes=0, base_width=6, freeze_at=2, norm=norm,
                                    channels_last=True).train().to(dtype)
    fast.load_state_dict(reference.state_dict())
    assert fast.layer4[0].convs[0].weight.is_contiguous(memory_format=torch.channels_last)  # kept by loading
    x = torch.randn(2, 3, 64, 64, dtype=dtype)
    ref_grads, ref_feats = _grads(reference, x)
    fast_grads, fast_feats = _grads(fast, x)
    assert fast_feats["res5"].is_contiguous(memory_format=torch.channels_last)
    assert _relative_diff(ref_feats, fast_feats) < 1e-4
    assert ref_grads.keys() == fast_grads.keys() and ref_grads
    assert _relative_diff(ref_grads, fast_grads) < 1e-4


def test_channels_last_classifier():
    classifier = res2net_det.create_model("res2net50_26w_4s", base_width=6, channels_last=True).eval()
    assert classifier(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def _without_split_fast_path(model):
    for m in model.modules():
        if isinstance(m, Bottle2neck):
            m.split_convs_fast_path = False
    return model


@pytest.mark.parametrize("kwargs", [
    {},
    {"channels_last": True},
    {"dilate_last_stage": True},  # res5 stage block at stride 1, dilated
    {"scale": 2, "base_width": 8},  # one split conv
    {"freeze_at": 2},  # frozen stem and res2: no input gradient wanted there
])
def test_split_convs_fast_path_gives_the_reference_gradients(kwargs):
    """With FrozenBN the split 3x3s run through SplitConvs (one output tensor, recomputed sums in
    backward); outputs and every parameter's gradient equal the reference block's, computed in float64
    (in float32 on one thread the reference's own rounding reached 2e-2 of res5's conv3 gradients with
    scale 2, where the fast path stayed within 1e-6)."""
    torch.manual_seed(0)
    fast = randomize_norm_(res2net_det.create_model(
        "res2net50_26w_4s", num_classes=0, norm="FrozenBN", **{"base_width": 6, **kwargs})).train()
    reference = _without_split_fast_path(copy.deepcopy(fast)).double()
    x = torch.randn(2, 3, 64, 64)
    ref_grads, ref_feats = _grads(reference, x.double())
    fast_grads, fast_feats = _grads(fast, x)
    assert _relative_diff(ref_feats, fast_feats) < 1e-4
    assert ref_grads.keys() == fast_grads.keys() and len(ref_grads) == sum(p.requires_grad for p in fast.parameters())
    assert _relative_diff(ref_grads, fast_grads) < 1e-4


def test_split_convs_fast_path_passes_gradcheck():
    torch.manual_seed(0)
    for stage_block in (True, False):
        block = Bottle2neck(8, 4, stride=2 if stage_block else 1, base_width=32, scale=3, is_stage_block=stage_block,
                            norm="FrozenBN", downsample=torch.nn.Conv2d(8, 16, 1, 2 if stage_block else 1)).double()
        randomize_norm_(block)
        assert block._frozen_split_norms() is not None  # the fast path is what gradcheck sees
        x = torch.randn(1, 8, 6, 6, dtype=torch.double, requires_grad=True)
        assert torch.autograd.gradcheck(block, (x,))


def test_split_convs_fast_path_is_not_used_for_train_mode_bn_or_export():
    block = Bottle2neck(8, 4, base_width=32, scale=3, norm="BN")
    assert block._frozen_split_norms() is None  # batch statistics: the reference path
    frozen = Bottle2neck(8, 4, base_width=32, scale=3, norm="FrozenBN", downsample=torch.nn.Conv2d(8, 16, 1))
    traced = torch.jit.trace(frozen.eval(), torch.randn(1, 8, 6, 6))
    assert "SplitConvs" not in str(traced.graph)  # a traced graph holds the plain ops
    x = torch.randn(1, 8, 5, 7)
    assert torch.allclose(traced(x), frozen(x), atol=1e-5)
