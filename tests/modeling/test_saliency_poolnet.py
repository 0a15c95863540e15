"""Our PoolNet against the Res2Net authors' (Res2Net/Res2Net-PoolNet): parts, sizes, checkpoint layout.

The authors' module tree is written out below from their code (networks/poolnet_res2net.py,
networks/deeplab_res2net.py; PoolNet's networks/deeplab_resnet.py for the ResNet-50), independently
of our mapping, so that the mapping is checked against it rather than against itself. The map-level
comparison with their running code is a script outside the repository (see the README, SOD).
"""
import re

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.config.saliency import build_saliency_model
from res2net_det.modeling.res2net import Res2Net, build_res2net
from res2net_det.modeling.saliency import (
    LAYOUT_RES2NET_POOLNET,
    LAYOUT_RESNET_POOLNET,
    FeatureAggregation,
    detect_poolnet_layout,
    official_layout_conflicts,
    official_poolnet_to_ours,
    ours_to_official_poolnet,
)
from res2net_det.modeling.weights import CheckpointError
from tests.helpers import REPO, tiny_sod_cfg

SOD = REPO / "configs" / "sod"


def _cfg(name):
    return merge_config_file(get_cfg(), str(SOD / name))


def _meta_model(cfg):
    with torch.device("meta"):  # shapes only: the full-size model without its memory
        return build_saliency_model(cfg)


def authors_poolnet_shapes(backbone_state, convert_in=(64, 256, 512, 1024, 2048),
                           convert_out=(128, 256, 256, 512, 512), resnet=False):
    """Key -> shape of the authors' ``PoolNet`` state dict, written from their code: ``base`` is
    ``Res2Net_locate`` (``resnet`` + ``ppms_pre``, ``ppms``, ``ppm_cat``, ``infos``), then
    ``convert.convert0``, ``deep_pool`` (their ``config_resnet``) and ``score.score``."""
    shapes = {}
    for k, v in backbone_state.items():
        if resnet:
            if k.startswith("fc."):
                continue  # their ResNet has no classifier
            k = re.sub(r"\.convs\.0\.", ".conv2.", re.sub(r"\.bns\.0\.", ".bn2.", k))
        shapes["base.resnet." + k] = tuple(v.shape)
    in_planes = convert_out[-1]
    out_planes = list(convert_out[::-1][1:])  # [512, 256, 256, 128]
    shapes["base.ppms_pre.weight"] = (in_planes, convert_in[-1], 1, 1)
    for i in range(3):
        shapes[f"base.ppms.{i}.1.weight"] = (in_planes, in_planes, 1, 1)
    shapes["base.ppm_cat.0.weight"] = (in_planes, in_planes * 4, 3, 3)
    for i, c in enumerate(out_planes):
        shapes[f"base.infos.{i}.0.weight"] = (c, in_planes, 3, 3)
    for i, (cin, cout) in enumerate(zip(convert_in, convert_out)):
        shapes[f"convert.convert0.{i}.0.weight"] = (cout, cin, 1, 1)
    k = list(convert_out[::-1])  # config_resnet['deep_pool'][0]: [512, 512, 256, 256, 128]
    k_out = k[1:] + k[-1:]  # [512, 256, 256, 128, 128]
    for i, (ki, ko) in enumerate(zip(k, k_out)):
        for j in range(3):
            shapes[f"deep_pool.{i}.convs.{j}.weight"] = (ki, ki, 3, 3)
        shapes[f"deep_pool.{i}.conv_sum.weight"] = (ko, ki, 3, 3)
        if i < len(k) - 1:
            shapes[f"deep_pool.{i}.conv_sum_c.weight"] = (ko, ko, 3, 3)
    shapes["score.score.weight"] = (1, k_out[-1], 1, 1)
    shapes["score.score.bias"] = (1,)
    return shapes


def _their_backbone_state(**kwargs):
    with torch.device("meta"):
        return Res2Net((3, 4, 6, 3), num_classes=1000, norm="BN", **kwargs).state_dict()


def _not_ours(key):
    return key.startswith("base.resnet.fc.") or key.endswith("num_batches_tracked")


def test_default_config_has_the_authors_parameter_counts_per_part():
    model = _meta_model(_cfg("poolnet_r2_50_duts.yaml"))

    def count(module):
        return sum(p.numel() for p in module.parameters())

    # the issue's table, "theirs" column
    assert count(model.convert) == 1_777_664  # 1x1 reductions of stem, res2..res5
    assert count(model.aggregate) == 26_394_624  # feature aggregation (FAM)
    assert count(model.score) == 129
    assert count(model.guidance) == 16_580_608  # PPM with its own 1x1 reduction + per-level 3x3 after upsampling
    b = model.backbone
    assert b.maxpool.ceil_mode and b.dilate_last_stage and not b.stride_in_1x1
    assert official_layout_conflicts(model, LAYOUT_RES2NET_POOLNET) == []


@pytest.mark.parametrize("resnet", [False, True])
def test_layout_round_trip_theirs_ours_theirs(resnet):
    name = "poolnet_r_50_released.yaml" if resnet else "poolnet_r2_50_duts.yaml"
    ours = _meta_model(_cfg(name)).state_dict()
    backbone = _their_backbone_state(base_width=64 if resnet else 26, scale=1 if resnet else 4)
    theirs = authors_poolnet_shapes(backbone, resnet=resnet)
    their_state = {k: torch.empty(s, device="meta") for k, s in theirs.items()}

    assert detect_poolnet_layout(their_state) == (LAYOUT_RESNET_POOLNET if resnet else LAYOUT_RES2NET_POOLNET)
    mapped = official_poolnet_to_ours(their_state)
    # every tensor of ours comes from theirs, with its shape; only fc and step counters stay behind
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    back = ours_to_official_poolnet(mapped, resnet_layout=resnet)
    assert {k: tuple(v.shape) for k, v in back.items()} == {k: s for k, s in theirs.items() if not _not_ours(k)}
    assert {k: tuple(v.shape) for k, v in ours_to_official_poolnet(ours, resnet).items()} == {
        k: s for k, s in theirs.items() if not _not_ours(k)}
    dropped = set(theirs) - set(back)
    assert dropped and all(_not_ours(k) for k in dropped)


def test_named_parts_map_where_the_issue_says():
    their = {k: torch.zeros(1) for k in [
        "base.resnet.layer1.0.convs.0.weight", "base.ppms_pre.weight", "base.ppms.2.1.weight",
        "base.ppm_cat.0.weight", "base.infos.3.0.weight", "convert.convert0.4.0.weight",
        "deep_pool.0.conv_sum_c.weight", "deep_pool.4.convs.2.weight", "score.score.bias"]}
    assert sorted(official_poolnet_to_ours(their)) == sorted([
        "backbone.layer1.0.convs.0.weight", "guidance.reduce.weight", "guidance.branches.2.1.weight",
        "guidance.fuse.0.weight", "guidance.guides.3.0.weight", "convert.4.0.weight",
        "aggregate.0.conv_fuse.weight", "aggregate.4.convs.2.weight", "score.bias"])


def test_foreign_keys_in_their_layout_are_named():
    state = {"base.resnet.layer1.0.convs.0.weight": torch.zeros(1), "base.ppms_pre.weight": torch.zeros(1),
             "edge.conv.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"final\.pth.*edge\.conv\.weight"):
        official_poolnet_to_ours(state, "final.pth")
    assert detect_poolnet_layout({"backbone.conv1.weight": torch.zeros(1)}) is None


def test_conflicting_settings_are_listed():
    cfg = _cfg("poolnet_r2_50_duts.yaml")
    cfg.MODEL.RES2NET.MAXPOOL_CEIL_MODE = False
    cfg.INPUT.FORMAT = "BGR"
    conflicts = official_layout_conflicts(_meta_model(cfg), LAYOUT_RES2NET_POOLNET)
    assert any("MAXPOOL_CEIL_MODE" in c for c in conflicts) and any("INPUT.FORMAT" in c for c in conflicts)
    released = _meta_model(_cfg("poolnet_r_50_released.yaml"))
    assert official_layout_conflicts(released, LAYOUT_RESNET_POOLNET) == []
    assert any("STRIDE_IN_1X1" in c for c in official_layout_conflicts(released, LAYOUT_RES2NET_POOLNET))


@pytest.mark.parametrize("size", [(45, 67), (64, 64), (33, 97)])
def test_map_keeps_an_odd_image_size(size):
    torch.manual_seed(0)
    model = build_saliency_model(tiny_sod_cfg()).eval()
    image = torch.randint(0, 256, (3, *size), dtype=torch.uint8)
    with torch.no_grad():
        out = model([{"image": image}])[0]["saliency"]
    assert tuple(out.shape) == size and 0 <= float(out.min()) <= float(out.max()) <= 1


def test_feature_aggregation_pools_like_avgpool2d_and_survives_small_maps():
    torch.manual_seed(0)
    fam = FeatureAggregation(4, 4, (2, 4, 8), fuse=False)
    x = torch.randn(1, 4, 19, 23)  # odd sizes: AvgPool2d(k, k) drops the last rows/columns
    reference = x.clone()
    for k, conv in zip(fam.pool_sizes, fam.convs):
        y = conv(torch.nn.AvgPool2d(k, k)(x))
        reference = reference + torch.nn.functional.interpolate(y, x.shape[-2:], mode="bilinear", align_corners=True)
    assert torch.allclose(fam(x), fam.conv_sum(torch.relu(reference)), atol=1e-6)
    assert fam(torch.randn(1, 4, 5, 3)).shape == (1, 4, 5, 3)  # smaller than the pool of 8


def test_backbone_options_keep_the_defaults():
    default = build_res2net(base_width=4, num_classes=0)
    assert not default.maxpool.ceil_mode and default.layer2[0].conv1.stride == (1, 1)
    assert default.layer2[0].convs[0].stride == (2, 2)
    caffe = build_res2net(base_width=64, scale=1, num_classes=0, stride_in_1x1=True, maxpool_ceil_mode=True)
    assert caffe.layer2[0].conv1.stride == (2, 2) and caffe.layer2[0].convs[0].stride == (1, 1)
    x = torch.randn(1, 3, 64, 64)  # even stem map (32): ceil mode pools it to 17, not 16
    assert caffe.eval().forward_features(x)["res2"].shape[-1] == 17
    assert default.eval().forward_features(x)["res2"].shape[-1] == 16
    with pytest.raises(ValueError, match="scale 1"):
        build_res2net(base_width=26, scale=4, num_classes=0, stride_in_1x1=True)
    # res5 dilated in every block, the stage block (and its stride-1 pool) included, as theirs
    dilated = build_res2net(base_width=26, num_classes=0, dilate_last_stage=True)
    assert all(conv.dilation == (2, 2) and conv.stride == (1, 1) for blk in dilated.layer4 for conv in blk.convs)
    assert dilated.layer4[0].pool.stride == 1 and dilated.layer4[0].downsample[0].stride == (1, 1)


@pytest.mark.parametrize("size", [(19, 23), (5, 3), (8, 16), (1, 9)])
def test_export_form_of_the_fam_pooling_equals_the_eager_one(size, monkeypatch):
    """Under ONNX tracing the FAM pools with two averaging matmuls; same windows as eager."""
    from res2net_det.modeling import poolnet_modules

    x = torch.randn(2, 3, *size)
    expected = [poolnet_modules._avg_pool(x, k) for k in (2, 4, 8)]
    monkeypatch.setattr(torch.jit, "is_tracing", lambda: True)  # as inside torch.onnx.export
    for k, e in zip((2, 4, 8), expected):
        got = poolnet_modules._avg_pool(x, k)
        assert got.shape == e.shape and torch.allclose(got, e, atol=1e-6)
