"""The Res2Net family against real reference code (timm, torchvision) and its detection options."""
import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

import res2net_det
from res2net_det.modeling.res2net import ALIASES, STAGE_NAMES, VARIANTS
from tests.helpers import randomize_norm_

timm = pytest.importorskip("timm", reason="timm is the reference implementation (pip install '.[test]')")

TIMM_VARIANTS = [
    "res2net50_26w_4s", "res2net50_48w_2s", "res2net50_14w_8s", "res2net50_26w_6s", "res2net50_26w_8s",
    "res2net101_26w_4s", "res2next50", "res2net50d", "res2net101d",
]
# Two sizes; the second is non-square with odd sizes at stride 16 and 32, which exercises
# padding of the split pools and ceil_mode of the v1b shortcuts.
SIZES = [(64, 64), (72, 104)]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def test_timm_knows_every_variant_we_test():
    assert set(TIMM_VARIANTS) <= set(timm.list_models("res2n*"))


@pytest.mark.parametrize("name", TIMM_VARIANTS)
def test_matches_timm(name, tmp_path):
    torch.manual_seed(0)
    reference = randomize_norm_(timm.create_model(name)).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)
    ours = res2net_det.create_model(name, weights=str(path)).eval()
    with torch.no_grad():
        for size in SIZES:
            x = torch.randn(1, 3, *size)
            ref_final, ref_feats = reference.forward_intermediates(x, indices=[1, 2, 3, 4])
            ref_logits = reference.forward_head(ref_final)
            feats = ours.forward_features(x)
            assert list(feats) == list(STAGE_NAMES)
            for stage, ref in zip(STAGE_NAMES, ref_feats):
                assert _max_diff(feats[stage], ref) <= 1e-4, (name, size, stage)
            assert _max_diff(ours(x), ref_logits) <= 1e-4, (name, size)
            assert _max_diff(ours.forward_head(feats["res5"]), ref_logits) <= 1e-4


def test_timm_parity_is_sensitive_to_a_wrong_tensor(tmp_path):
    """The comparison above can fail: one perturbed BN statistic moves the logits well past 1e-4."""
    torch.manual_seed(0)
    reference = randomize_norm_(timm.create_model("res2net50_26w_4s")).eval()
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    state["layer3.2.bns.1.running_mean"] += 0.5
    path = tmp_path / "perturbed.pth"
    torch.save(state, path)
    ours = res2net_det.create_model("res2net50_26w_4s", weights=str(path)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert _max_diff(ours(x), reference(x)) > 1e-3


def test_resnet50_variant_equals_torchvision(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = randomize_norm_(torchvision.models.resnet50()).eval()
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)  # torchvision's key names (conv2/bn2)
    ours = res2net_det.create_model("resnet50", weights=str(path)).eval()
    x = torch.randn(2, 3, 72, 104)
    with torch.no_grad():
        assert _max_diff(ours(x), reference(x)) <= 1e-4
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())


# Params (M) of the classifiers, from res2net-facts.md (timm / official table).
PUBLISHED_PARAMS = {
    "res2net50_26w_4s": 25.70, "res2net50_48w_2s": 25.29, "res2net50_14w_8s": 25.06,
    "res2net50_26w_6s": 37.05, "res2net50_26w_8s": 48.40, "res2net101_26w_4s": 45.21,
    "res2next50": 24.67, "res2net50_v1b_26w_4s": 25.72, "res2net101_v1b_26w_4s": 45.23,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_param_counts_match_published(name):
    params = sum(p.numel() for p in res2net_det.create_model(name).parameters())
    assert round(params / 1e6, 2) == PUBLISHED_PARAMS[name]


def test_res2net152_builds_and_runs():
    model = res2net_det.create_model("res2net152_v1b_26w_4s", num_classes=0).eval()
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 8, 36, 3]
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert feats["res5"].shape == (1, 2048, 2, 2)
    assert torch.isfinite(feats["res5"]).all()


def test_every_variant_and_alias_has_a_constructor():
    from res2net_det.modeling import res2net

    for name in list(VARIANTS) + list(ALIASES):
        assert res2net.resolve_name(name) in VARIANTS
    for name in ["res2net50_26w_4s", "res2net101_v1b_26w_4s", "res2net50d", "res2net101d"]:
        assert isinstance(getattr(res2net, name)(num_classes=0), res2net_det.Res2Net)


def test_v1b_key_layout():
    keys = res2net_det.create_model("res2net50_v1b_26w_4s").state_dict().keys()
    for key in ["conv1.0.weight", "conv1.1.running_var", "conv1.3.weight", "conv1.4.bias", "conv1.6.weight",
                "bn1.weight", "layer2.0.downsample.1.weight", "layer2.0.downsample.2.running_mean"]:
        assert key in keys
    assert "layer2.0.downsample.0.weight" not in keys


def test_stage_blocks_pool_their_last_split_even_in_layer1():
    model = res2net_det.create_model("res2net50_26w_4s", num_classes=0)
    for i in range(1, 5):
        layer = getattr(model, f"layer{i}")
        assert isinstance(layer[0].pool, nn.AvgPool2d) and layer[0].pool.stride == (1 if i == 1 else 2)
        assert layer[0].pool.kernel_size == 3 and layer[0].pool.padding == 1
        assert all(block.pool is None for block in layer[1:])
        assert layer[0].convs[0].stride == ((1, 1) if i == 1 else (2, 2))
        assert layer[0].conv1.stride == (1, 1)


# ---------------------------------------------------------------------- detection options
def _frozen_status(model):
    """{part: (all params frozen, uses FrozenBatchNorm2d only, uses any FrozenBatchNorm2d)}."""
    out = {}
    for name, module in model.stages():
        norms = [m for m in module.modules() if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))]
        out[name] = (
            all(not p.requires_grad for p in module.parameters()),
            all(isinstance(m, FrozenBatchNorm2d) for m in norms),
            any(isinstance(m, FrozenBatchNorm2d) for m in norms),
        )
    return out


@pytest.mark.parametrize("freeze_at", [0, 1, 2, 3, 5])
def test_freeze_at_follows_detectron2(freeze_at):
    model = res2net_det.create_model("res2net50_v1b_26w_4s", num_classes=0, freeze_at=freeze_at)
    parts = ["stem", "res2", "res3", "res4", "res5"]
    status = _frozen_status(model)
    for idx, part in enumerate(parts, start=1):
        frozen = idx <= freeze_at
        assert status[part] == (frozen, frozen, frozen), (freeze_at, part, status[part])
    # the frozen parts stay frozen in train mode: no BN statistics change there
    if freeze_at >= 2:
        model.train()
        before = model.layer1[0].bn1.running_mean.clone()
        model(torch.randn(2, 3, 64, 64))
        assert torch.equal(model.layer1[0].bn1.running_mean, before)


def test_freeze_keeps_loaded_statistics(tmp_path):
    reference = randomize_norm_(res2net_det.create_model("res2net50_26w_4s")).eval()
    path = tmp_path / "w.pth"
    torch.save(reference.state_dict(), path)
    frozen = res2net_det.create_model("res2net50_26w_4s", weights=str(path), freeze_at=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert _max_diff(frozen(x), reference(x)) <= 1e-4


def test_train_mode_updates_bn_statistics():
    model = res2net_det.create_model("res2net50_26w_4s", num_classes=0).train()
    before = model.layer3[1].bns[0].running_mean.clone()
    model(torch.randn(2, 3, 64, 64))["res5"].sum().backward()
    assert not torch.equal(model.layer3[1].bns[0].running_mean, before)
    assert model.layer3[1].convs[0].weight.grad is not None


@pytest.mark.parametrize("norm, cls", [
    ("BN", nn.BatchNorm2d), ("FrozenBN", FrozenBatchNorm2d), ("SyncBN", nn.SyncBatchNorm), ("GN", nn.GroupNorm),
])
def test_norm_options_build_and_run(norm, cls):
    model = res2net_det.create_model("res2net50_26w_4s", num_classes=0, norm=norm).eval()
    norms = [m for m in model.modules()
             if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, FrozenBatchNorm2d))]
    assert norms and all(type(m) is cls for m in norms)
    with torch.no_grad():  # SyncBN runs as plain BN in eval mode without a process group
        feats = model(torch.randn(1, 3, 64, 64))
    assert all(torch.isfinite(f).all() for f in feats.values())


def test_unknown_norm_is_named():
    with pytest.raises(ValueError, match="'LN'"):
        res2net_det.create_model("res2net50_26w_4s", norm="LN")


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "res2net50d"])
def test_dilate_last_stage_gives_stride_16_with_the_same_parameters(name):
    plain = res2net_det.create_model(name, num_classes=0)
    dilated = res2net_det.create_model(name, num_classes=0, dilate_last_stage=True)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in dilated.state_dict().items()}
    dilated.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        a = plain.eval()(x)
        b = dilated.eval()(x)
    assert a["res5"].shape[-2:] == (2, 3) and b["res5"].shape[-2:] == (4, 6)
    assert dilated.output_shape()["res5"] == (2048, 16)
    assert all(conv.dilation == (2, 2) for block in dilated.layer4 for conv in block.convs)
    assert torch.equal(a["res4"], b["res4"])  # only res5 changes


def test_out_features_subset():
    model = res2net_det.create_model("res2net50_26w_4s", num_classes=0, out_features=("res3", "res5")).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert list(feats) == ["res3", "res5"]
    assert model.output_shape() == {"res3": (512, 8), "res5": (2048, 32)}
    with pytest.raises(ValueError, match="res6"):
        res2net_det.create_model("res2net50_26w_4s", out_features=("res6",))


def test_classifier_and_backbone_share_features():
    model = res2net_det.create_model("res2net50_26w_4s", num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert _max_diff(model(x), model.forward_head(model.forward_features(x)["res5"])) == 0.0
    with pytest.raises(RuntimeError, match="num_classes=0"):
        res2net_det.create_model("res2net50_26w_4s", num_classes=0).forward_head(torch.zeros(1, 2048, 2, 2))


# ---------------------------------------------------------------------- bad input
def test_unknown_model_name():
    with pytest.raises(KeyError, match="res2net51.*available.*res2net50_26w_4s"):
        res2net_det.create_model("res2net51")


@pytest.mark.parametrize("shape, hint", [
    ((64, 64), "4-D"), ((3, 64, 64), "batch dimension"), ((1, 1, 64, 64), "grayscale"), ((1, 4, 64, 64), "got shape"),
])
def test_bad_input_tensors(shape, hint):
    model = res2net_det.create_model("res2net50_26w_4s").eval()
    for fn in (model, model.forward_features):
        with pytest.raises(ValueError, match=hint):
            fn(torch.zeros(shape))


def test_non_tensor_input():
    with pytest.raises(TypeError, match="list"):
        res2net_det.create_model("res2net50_26w_4s")([1, 2, 3])
