"""Deformable split convs (res2net_det.modeling.deform, MODEL.RES2NET.DEFORM_*), no Detectron2 needed."""
import pytest
import torch

import res2net_det
from res2net_det.config import build_res2net_from_cfg, get_cfg
from res2net_det.modeling.deform import DeformableConv2d, make_stages_deformable

torch.set_num_threads(1)


def test_zero_offsets_give_the_plain_network():
    torch.manual_seed(0)
    model = res2net_det.create_model("res2next50", num_classes=0).eval()  # grouped 3x3 convs too
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain = model(x)
    keys = set(model.state_dict())
    make_stages_deformable(model, [False, True, True, True])
    assert isinstance(model.layer3[2].convs[1], DeformableConv2d)
    assert not isinstance(model.layer1[0].convs[0], DeformableConv2d)
    # the plain weights keep their keys (ImageNet weights load); offsets are the only new keys
    added = set(model.state_dict()) - keys
    assert keys <= set(model.state_dict()) and added and all(".conv_offset." in k for k in added)
    with torch.no_grad():
        deformable = model(x)
    for name in plain:
        assert torch.allclose(deformable[name], plain[name], atol=1e-4, rtol=1e-4), name


def test_offsets_get_gradients_and_frozen_stages_stay_frozen():
    torch.manual_seed(0)
    model = res2net_det.create_model("res2net50_14w_8s", num_classes=0, norm="BN", freeze_at=2)
    make_stages_deformable(model, [True, True, False, False], modulated=True, offset_groups=2)
    assert not model.layer1[0].convs[0].conv_offset.weight.requires_grad  # res2 is frozen
    offset = model.layer2[0].convs[0].conv_offset
    assert offset.weight.requires_grad and offset.out_channels == 2 * 9 * 3
    out = model(torch.randn(2, 3, 64, 64))
    sum(v.square().mean() for v in out.values()).backward()
    assert offset.weight.grad.abs().sum() > 0


def test_config_keys_build_deformable_stages():
    cfg = get_cfg()
    cfg.MODEL.RES2NET.DEFORM_ON_PER_STAGE = [False, False, True, True]
    model = build_res2net_from_cfg(cfg)
    assert isinstance(model.layer3[0].convs[0], DeformableConv2d)
    assert not isinstance(model.layer2[0].convs[0], DeformableConv2d)
    with pytest.raises(ValueError, match="one flag per stage"):
        make_stages_deformable(model, [True])


def test_batch_norm_folds_into_deformable_convs():
    torch.manual_seed(0)
    model = res2net_det.create_model("res2net50_26w_4s", num_classes=0).eval()
    make_stages_deformable(model, [False, False, True, True], modulated=True)
    for m in model.modules():  # offsets that move, and statistics that are not the identity
        if isinstance(m, DeformableConv2d):
            torch.nn.init.normal_(m.conv_offset.weight, std=0.01)
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        got = model.fuse_for_inference()(x)
    assert isinstance(model.layer4[0].convs[0], DeformableConv2d) and model.layer4[0].convs[0].bias is not None
    for name in expected:  # float rounding only: bilinear sampling sums in another order
        diff = (got[name] - expected[name]).abs().max().item()
        assert diff <= 1e-4 * expected[name].abs().max().item(), (name, diff)
