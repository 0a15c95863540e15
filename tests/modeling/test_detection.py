"""The torchvision-style detection builders: signatures, outputs on a tiny Res2Net, what each argument
reaches, and the two kinds of weights."""
import inspect
import typing

import pytest
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.ops import FrozenBatchNorm2d, MultiScaleRoIAlign, roi_align

import res2net_det
from res2net_det.modeling import detection
from res2net_det.modeling.deform import DeformableConv2d
from res2net_det.modeling.detection import (
    Res2NetFPN,
    fasterrcnn_res2net_fpn,
    maskrcnn_res2net_fpn,
    res2net_fpn_backbone,
    retinanet_res2net_fpn,
)
from res2net_det.modeling.weights import CheckpointError

BUILDERS = {fasterrcnn_res2net_fpn: FasterRCNN, maskrcnn_res2net_fpn: MaskRCNN, retinanet_res2net_fpn: RetinaNet}
# Res2Net-50's blocks at width 4, cut after res3 (res4 for RetinaNet's P6/P7), with small heads and
# 64-pixel inputs: the builders' whole code path in well under a second per model.
TINY = dict(backbone_kwargs={"base_width": 4}, fpn_channels=16, min_size=64, max_size=96)
TINY_RCNN = dict(TINY, out_features=("res2", "res3"), box_head_fc_dims=(32,))
TINY_RETINA = dict(TINY, out_features=("res3", "res4"))


def _tiny(builder, **kwargs):
    torch.manual_seed(0)
    if builder is retinanet_res2net_fpn:
        return builder(num_classes=3, **TINY_RETINA, **kwargs)
    extra = {"mask_head_conv_dims": (8,), "mask_predictor_dim": 8} if builder is maskrcnn_res2net_fpn else {}
    return builder(num_classes=4, **TINY_RCNN, **extra, **kwargs)


def _images_and_targets(masks=False):
    images = [torch.rand(3, 64, 80), torch.rand(3, 72, 64)]
    targets = []
    for img in images:
        h, w = img.shape[1:]
        t = {"boxes": torch.tensor([[4.0, 6.0, 40.0, 30.0], [20.0, 20.0, 60.0, 60.0]]), "labels": torch.tensor([1, 2])}
        if masks:
            m = torch.zeros(2, h, w, dtype=torch.uint8)
            m[0, 6:30, 4:40] = 1
            m[1, 20:60, 20:60] = 1
            t["masks"] = m
        targets.append(t)
    return images, targets


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_signature_is_torchvision_style(builder):
    params = inspect.signature(builder).parameters
    names = list(params)
    assert names[0] == "variant" and params["variant"].default == "res2net50_26w_4s"
    assert params["variant"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(params[n].kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD) for n in names[1:])
    assert names[-1] == "kwargs"
    defaults = {n: params[n].default for n in
                ("num_classes", "weights", "weights_backbone", "trainable_backbone_layers", "norm")}
    assert defaults == {"num_classes": 91, "weights": None, "weights_backbone": None,
                        "trainable_backbone_layers": 3, "norm": "FrozenBN"}
    hints = typing.get_type_hints(builder)
    assert hints["return"] is BUILDERS[builder]
    assert hints["variant"] is str and hints["num_classes"] is int
    for name in names[1:-1]:  # every argument is documented
        assert name in builder.__doc__, name
    with pytest.raises(TypeError):
        builder("res2net50_26w_4s", 5)  # keyword-only after the variant


def test_builders_are_exported_from_the_package():
    for name in ("fasterrcnn_res2net_fpn", "maskrcnn_res2net_fpn", "retinanet_res2net_fpn"):
        assert getattr(res2net_det, name) is getattr(detection, name)
        assert name in res2net_det.__all__


@pytest.mark.parametrize("builder", list(BUILDERS))
def test_tiny_model_trains_and_predicts(builder):
    model = _tiny(builder)
    assert type(model) is BUILDERS[builder]
    masks = builder is maskrcnn_res2net_fpn
    images, targets = _images_and_targets(masks)
    model.train()
    losses = model(images, targets)
    expected = ({"classification", "bbox_regression"} if builder is retinanet_res2net_fpn else
                {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
                | ({"loss_mask"} if masks else set()))
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.bottom_up.layer2[0].conv1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2
    for img, det in zip(images, out):
        assert set(det) >= {"boxes", "scores", "labels"}
        assert det["boxes"].shape[1] == 4 and len(det["scores"]) == len(det["labels"])
        if len(det["boxes"]):  # torchvision maps boxes back to the input size
            assert det["boxes"][:, 2].max() <= img.shape[2] and det["boxes"][:, 3].max() <= img.shape[1]
        if masks:
            assert det["masks"].shape[1:] == (1, *img.shape[1:])


def test_default_feature_levels_anchors_and_roi_features():
    model = fasterrcnn_res2net_fpn(num_classes=5, backbone_kwargs={"base_width": 4}, fpn_channels=16,
                                   box_head_fc_dims=(32,))
    assert model.backbone.out_features == ["p2", "p3", "p4", "p5", "p6"]
    assert model.rpn.anchor_generator.sizes == ((32,), (64,), (128,), (256,), (512,))
    assert model.roi_heads.box_roi_pool.featmap_names == ["p2", "p3", "p4", "p5"]  # not the max-pooled p6
    assert model.roi_heads.box_predictor.cls_score.out_features == 5
    retina = retinanet_res2net_fpn(num_classes=7, backbone_kwargs={"base_width": 4}, fpn_channels=16)
    assert retina.backbone.out_features == ["p3", "p4", "p5", "p6", "p7"]
    assert retina.backbone.size_divisibility == 128
    # torchvision's retinanet_resnet50_fpn anchors: (x, x * 2^(1/3), x * 2^(2/3)) rounded down, x = 32 at p3
    assert retina.anchor_generator.sizes[0] == (32, 40, 50) and retina.anchor_generator.sizes[-1] == (512, 645, 812)
    assert retina.head.classification_head.num_classes == 7
    # P6 is convolved from res5 (2048 channels), as Detectron2's RetinaNet
    assert retina.backbone.fpn.extra_blocks.p6.in_channels == 2048


def test_keyword_arguments_reach_torchvision_and_the_heads():
    model = _tiny(fasterrcnn_res2net_fpn, rpn_nms_thresh=0.6, box_detections_per_img=33, box_score_thresh=0.2,
                  rpn_bbox_reg_weights=(2.0, 2.0, 1.0, 1.0), box_pooler_resolution=5, box_head_conv_dims=(8,),
                  anchor_sizes=((16, 24), (32, 48), (64, 96)), aspect_ratios=((1.0,),))
    assert model.rpn.nms_thresh == 0.6 and model.roi_heads.detections_per_img == 33
    assert model.roi_heads.score_thresh == 0.2
    assert model.rpn.box_coder.weights == (2.0, 2.0, 1.0, 1.0)
    assert model.roi_heads.box_roi_pool.output_size == (5, 5)
    assert model.rpn.anchor_generator.num_anchors_per_location() == [2, 2, 2]
    assert model.transform.min_size == (64,) and model.transform.max_size == 96
    retina = _tiny(retinanet_res2net_fpn, score_thresh=0.3, topk_candidates=50, prior_probability=0.05,
                   box_loss="giou")
    assert retina.score_thresh == 0.3 and retina.topk_candidates == 50
    assert retina.head.regression_head._loss_type == "giou"
    bias = retina.head.classification_head.cls_logits.bias
    assert torch.allclose(torch.sigmoid(bias), torch.full_like(bias, 0.05))


def test_trainable_backbone_layers_and_norm():
    def frozen_stages(model):
        bottom_up = model.backbone.bottom_up
        return [name for name, m in bottom_up.stages() if not any(p.requires_grad for p in m.parameters())]

    assert frozen_stages(_tiny(fasterrcnn_res2net_fpn)) == ["stem", "res2", "res4", "res5"]  # res4/5 never run
    kw = dict(num_classes=3, backbone_kwargs={"base_width": 4}, fpn_channels=16, box_head_fc_dims=(32,))
    assert frozen_stages(fasterrcnn_res2net_fpn(trainable_backbone_layers=5, **kw)) == []
    assert frozen_stages(fasterrcnn_res2net_fpn(trainable_backbone_layers=1, **kw)) == ["stem", "res2", "res3", "res4"]
    model = fasterrcnn_res2net_fpn(trainable_backbone_layers=5, norm="BN", **kw)
    assert isinstance(model.backbone.bottom_up.layer2[0].bn1, nn.BatchNorm2d)
    assert isinstance(_tiny(fasterrcnn_res2net_fpn).backbone.bottom_up.layer2[0].bn1, FrozenBatchNorm2d)
    with pytest.raises(ValueError, match="0..5"):
        _tiny(fasterrcnn_res2net_fpn, trainable_backbone_layers=6)


def test_backbone_options():
    model = _tiny(fasterrcnn_res2net_fpn, deformable_stages=("res3",), deform_modulated=True)
    bottom_up = model.backbone.bottom_up
    assert isinstance(bottom_up.layer2[0].convs[0], DeformableConv2d) and bottom_up.layer2[0].convs[0].modulated
    assert not isinstance(bottom_up.layer1[0].convs[0], DeformableConv2d)
    with pytest.raises(ValueError, match="res6"):
        _tiny(fasterrcnn_res2net_fpn, deformable_stages=("res6",))
    plain = res2net_fpn_backbone(out_features=("res4",), fpn=False, backbone_kwargs={"base_width": 4})
    assert not isinstance(plain, Res2NetFPN) and plain.out_features == ["res4"] and plain.out_channels == 1024
    single = fasterrcnn_res2net_fpn(num_classes=3, out_features=("res3",), fpn=False, backbone_kwargs={"base_width": 4},
                                    box_head_fc_dims=(32,))
    assert single.roi_heads.box_roi_pool.featmap_names == ["res3"]
    with pytest.raises(ValueError, match="exactly one"):
        res2net_fpn_backbone(fpn=False)


def test_resnet50_is_the_baseline():
    model = fasterrcnn_res2net_fpn("resnet50", num_classes=3)
    block = model.backbone.bottom_up.layer1[0]
    assert len(block.convs) == 1 and block.convs[0].weight.shape == (64, 64, 3, 3) and block.pool is None


def test_bad_anchor_count_names_the_argument():
    with pytest.raises(ValueError, match="anchor_sizes has 2 entries but the backbone has 3 feature levels"):
        _tiny(fasterrcnn_res2net_fpn, anchor_sizes=((16,), (32,)))


def test_weights_backbone_loads_before_freezing(tmp_path):
    torch.manual_seed(1)
    source = res2net_det.create_model("res2net50_26w_4s", base_width=4, norm="BN")  # with its ImageNet fc
    with torch.no_grad():
        for m in source.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    path = tmp_path / "res2net50_4w_4s.pth"
    torch.save(source.state_dict(), path)
    model = _tiny(fasterrcnn_res2net_fpn, weights_backbone=str(path))
    bottom_up = model.backbone.bottom_up
    assert torch.equal(bottom_up.layer1[0].convs[0].weight, source.layer1[0].convs[0].weight)
    # frozen BN holds the checkpoint's statistics, not fresh ones
    assert isinstance(bottom_up.layer1[0].bns[0], FrozenBatchNorm2d)
    assert torch.equal(bottom_up.layer1[0].bns[0].running_mean, source.layer1[0].bns[0].running_mean)
    detector_file = tmp_path / "detector.pth"
    torch.save(model.state_dict(), detector_file)
    # A whole detector is no backbone file: the one loader names the file and what it looks like.
    with pytest.raises(CheckpointError, match=r"no tensor of .*detector.pth fits the model.*at backbone.bottom_up"):
        _tiny(fasterrcnn_res2net_fpn, weights_backbone=str(detector_file))


def test_weights_restore_a_detector_and_must_fit(tmp_path):
    trained = _tiny(retinanet_res2net_fpn)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path / "retinanet.pth"
    torch.save({"model": trained.state_dict()}, path)  # a training checkpoint's layout
    restored = _tiny(retinanet_res2net_fpn, weights=str(path))
    own = restored.state_dict()
    assert all(torch.equal(own[k], v) for k, v in trained.state_dict().items())
    with pytest.raises(CheckpointError, match="cls_logits"):
        retinanet_res2net_fpn(num_classes=5, weights=str(path), **TINY_RETINA)


@pytest.mark.parametrize("builder", [fasterrcnn_res2net_fpn, maskrcnn_res2net_fpn])
def test_smooth_l1_betas_reach_the_box_losses(builder):
    """rpn_smooth_l1_beta / box_smooth_l1_beta (Detectron2's SMOOTH_L1_BETA; torchvision hard-codes 1/9):
    the same sampled anchors and RoIs, other box losses; L1 (beta 0) is never below smooth L1."""
    images, targets = _images_and_targets(masks=builder is maskrcnn_res2net_fpn)
    losses = {}
    for beta in (detection.TORCHVISION_SMOOTH_L1_BETA, 0.0):
        model = _tiny(builder, rpn_smooth_l1_beta=beta, box_smooth_l1_beta=beta)
        assert model.rpn.smooth_l1_beta == model.roi_heads.box_smooth_l1_beta == beta
        model.train()
        torch.manual_seed(1)  # the same anchor and RoI samples
        losses[beta] = {k: v.item() for k, v in model(images, targets).items()}
    smooth, l1 = losses[detection.TORCHVISION_SMOOTH_L1_BETA], losses[0.0]
    for name in ("loss_objectness", "loss_classifier") + (("loss_mask",) if "loss_mask" in l1 else ()):
        assert smooth[name] == pytest.approx(l1[name], rel=1e-6), name
    for name in ("loss_rpn_box_reg", "loss_box_reg"):
        assert l1[name] > smooth[name], name


def test_aligned_pooler_is_roi_align_with_the_half_pixel():
    features = {"p2": torch.randn(1, 4, 32, 32), "p3": torch.randn(1, 4, 16, 16)}
    boxes = [torch.tensor([[3.0, 5.0, 20.0, 30.0], [0.0, 0.0, 120.0, 110.0], [10.0, 10.0, 11.0, 11.5]])]
    shapes = [(128, 128)]
    plain = detection.AlignedMultiScaleRoIAlign(["p2", "p3"], 7, 2)
    assert torch.equal(plain(features, boxes, shapes),
                       MultiScaleRoIAlign(["p2", "p3"], 7, 2)(features, boxes, shapes))
    aligned = detection.AlignedMultiScaleRoIAlign(["p2", "p3"], 7, 2, aligned=True)
    out = aligned(features, boxes, shapes)
    levels = aligned.map_levels(boxes)
    assert levels.tolist() == [0, 1, 0]  # both levels are used
    for i, level in enumerate(levels.tolist()):
        name, scale = ("p2", 0.25) if level == 0 else ("p3", 0.125)
        rois = torch.cat([torch.zeros(1, 1), boxes[0][i:i + 1]], dim=1)
        expected = roi_align(features[name], rois, 7, spatial_scale=scale, sampling_ratio=2, aligned=True)
        assert torch.allclose(out[i:i + 1], expected)
    assert not torch.allclose(out, plain(features, boxes, shapes))


@pytest.mark.parametrize("builder", [fasterrcnn_res2net_fpn, maskrcnn_res2net_fpn])
def test_head_init_detectron2_draws_the_heads_as_detectron2_does(builder):
    """head_init="detectron2" (what the torchvision engine builds from a config): zero biases and
    Detectron2's spreads in the box head, predictors and mask logits; the backbone, FPN and RPN
    are drawn exactly as with torchvision's initialisation. (Against Detectron2 itself, tensor by
    tensor: tests/engines/detectron2/test_parity.py.)"""
    torchvision_init = _tiny(builder)
    detectron2_init = _tiny(builder, head_init="detectron2")
    heads = detectron2_init.roi_heads
    fc = heads.box_head[1]
    assert fc.weight.std().item() == pytest.approx((1 / fc.in_features) ** 0.5, rel=0.05)  # c2_xavier_fill
    assert heads.box_predictor.cls_score.weight.std().item() == pytest.approx(0.01, rel=0.25)
    assert heads.box_predictor.bbox_pred.weight.std().item() == pytest.approx(0.001, rel=0.15)
    biases = [fc.bias, heads.box_predictor.cls_score.bias,
              heads.box_predictor.bbox_pred.bias]
    if builder is maskrcnn_res2net_fpn:
        assert heads.mask_predictor.mask_fcn_logits.weight.std().item() == pytest.approx(0.001, rel=0.5)
        biases += [heads.mask_predictor.mask_fcn_logits.bias, heads.mask_predictor.conv5_mask.bias]
    assert all(not b.any() for b in biases)
    assert fc.weight.std().item() > 1.5 * torchvision_init.roi_heads.box_head[1].weight.std().item()
    same = {k: v for k, v in torchvision_init.state_dict().items() if not k.startswith("roi_heads.")}
    for key, value in same.items():
        assert torch.equal(value, detectron2_init.state_dict()[key]), key
    with pytest.raises(ValueError, match="head_init 'xavier' is not one of"):
        _tiny(builder, head_init="xavier")
