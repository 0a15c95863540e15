"""The torchvision detection model built from every shipped detection config, and MODEL.WEIGHTS."""
import os

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.engines.torchvision.checkpoint import load_model_weights
from res2net_det.engines.torchvision.modeling import Res2NetFasterRCNN, Res2NetMaskRCNN, build_rcnn, build_retinanet
from res2net_det.engines.torchvision.support import check_torchvision_support
from res2net_det.modeling import build_res2net
from res2net_det.modeling.detection import fasterrcnn_res2net_fpn, maskrcnn_res2net_fpn, retinanet_res2net_fpn
from tests.helpers import REPO

CONFIGS = str(REPO / "configs")
DETECTION_CONFIGS = sorted(f for f in os.listdir(CONFIGS) if f.startswith(("faster_rcnn", "mask_rcnn", "quickstart")))


def _cfg(name, *opts):
    cfg = get_cfg()
    merge_config_file(cfg, os.path.join(CONFIGS, name))
    merge_config_list(cfg, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts])
    check_torchvision_support(cfg, name)
    return cfg


def _inputs(mask_on, h=64, w=80):
    inst = {"gt_boxes": torch.tensor([[4.0, 6.0, 40.0, 30.0], [30.0, 20.0, 70.0, 60.0]]),
            "gt_classes": torch.tensor([0, 1])}
    if mask_on:
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        masks[0, 6:30, 4:40] = 1
        masks[1, 20:60, 30:70] = 1
        inst["gt_masks"] = masks
    return [{"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8), "height": 2 * h, "width": 2 * w,
             "image_id": 1, "instances": inst}]


@pytest.mark.parametrize("name", DETECTION_CONFIGS)
def test_train_iteration_and_inference_from_each_config(name):
    torch.manual_seed(0)
    # tiny sampling sizes keep the test fast; the architecture is the config's
    cfg = _cfg(name, "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32", "MODEL.RPN.POST_NMS_TOPK_TRAIN", "64",
               "MODEL.RPN.POST_NMS_TOPK_TEST", "32", "MODEL.RPN.PRE_NMS_TOPK_TEST", "200")
    model = build_rcnn(cfg)
    assert isinstance(model, Res2NetMaskRCNN if cfg.MODEL.MASK_ON else Res2NetFasterRCNN)
    model.train()
    losses = model(_inputs(cfg.MODEL.MASK_ON))
    expected = ({"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}
                | ({"loss_mask"} if cfg.MODEL.MASK_ON else set()))
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    trainable = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("roi_heads.box_predictor")]
    assert all(p.grad is not None for p in trainable)
    model.eval()
    with torch.no_grad():
        out = model(_inputs(cfg.MODEL.MASK_ON))
    inst = out[0]["instances"]
    assert inst["pred_boxes"].shape[1] == 4 and len(inst["scores"]) == len(inst["pred_classes"])
    if len(inst["pred_boxes"]):  # outputs are in the original (2x) image size
        assert inst["pred_boxes"][:, 2].max() <= 160 and inst["pred_boxes"][:, 3].max() <= 128
    if cfg.MODEL.MASK_ON:
        assert inst["pred_masks"].shape[1:] == (128, 160)


def test_config_values_reach_the_model():
    cfg = _cfg("faster_rcnn_r2_50.yaml", "MODEL.ROI_HEADS.NUM_CLASSES", "7", "MODEL.RPN.NMS_THRESH", "0.6",
               "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "64", "TEST.DETECTIONS_PER_IMAGE", "33",
               "MODEL.FPN.OUT_CHANNELS", "128", "MODEL.RES2NET.SCALE", "8", "MODEL.RES2NET.WIDTH_PER_GROUP", "14")
    model = build_rcnn(cfg)
    assert model.roi_heads.box_predictor.cls_score.out_features == 8
    assert model.rpn.nms_thresh == 0.6
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 64
    assert model.roi_heads.detections_per_img == 33
    assert model.backbone.out_channels == 128
    assert len(model.backbone.bottom_up.layer1[0].convs) == 7
    assert model.backbone.out_features == ["p2", "p3", "p4", "p5", "p6"]
    assert model.rpn.anchor_generator.sizes == ((32,), (64,), (128,), (256,), (512,))
    assert model.transform.image_mean == [123.675, 116.28, 103.53]
    # FREEZE_AT 2: stem and res2 frozen
    assert not any(p.requires_grad for p in model.backbone.bottom_up.layer1.parameters())
    assert all(p.requires_grad for p in model.backbone.bottom_up.layer2.parameters())


def test_bad_feature_names_are_reported():
    with pytest.raises(ValueError, match="MODEL.RPN.IN_FEATURES"):
        build_rcnn(_cfg("faster_rcnn_r2_50.yaml", "MODEL.RPN.IN_FEATURES", "['p2']"))
    with pytest.raises(ValueError, match="MODEL.FPN.IN_FEATURES"):
        build_rcnn(_cfg("faster_rcnn_r2_50.yaml", "MODEL.RES2NET.OUT_FEATURES", "['res3', 'res4', 'res5']"))


def _small_cfg():
    return _cfg("quickstart.yaml")


def test_converted_checkpoint_loads_every_backbone_key(tmp_path):
    cfg = _small_cfg()
    source = build_res2net(depth=50, base_width=8, scale=4, num_classes=0, norm="BN")
    for p in source.parameters():
        torch.nn.init.normal_(p)
    # the contract with tools/convert_weights.py: {"model": {"backbone.bottom_up.<official key>": tensor}}
    path = tmp_path / "converted.pth"
    torch.save({"model": {f"backbone.bottom_up.{k}": v for k, v in source.state_dict().items()}}, path)
    model = build_rcnn(cfg)
    report = load_model_weights(model, str(path))
    assert not [k for k in report["missing"] if k.startswith("backbone.bottom_up.")]
    own = model.backbone.bottom_up.state_dict()
    assert all(torch.equal(own[k], v) for k, v in source.state_dict().items() if k in own)


def test_plain_res2net_checkpoint_goes_to_bottom_up(tmp_path):
    cfg = _small_cfg()
    source = build_res2net(depth=50, base_width=8, scale=4, num_classes=1000, norm="BN")
    path = tmp_path / "res2net50_8w_4s.pth"
    torch.save(source.state_dict(), path)  # official / timm layout, with a classifier
    model = build_rcnn(cfg)
    load_model_weights(model, str(path))
    assert torch.equal(model.backbone.bottom_up.conv1.weight, source.conv1.weight)


def test_missing_weights_file_says_how_to_convert(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"convert_weights.py.*MODEL.WEIGHTS \"\""):
        load_model_weights(build_rcnn(_small_cfg()), str(tmp_path / "res2net50_26w_4s.pth"))


def test_plain_backbone_without_fpn():
    cfg = _cfg("quickstart.yaml", "MODEL.BACKBONE.NAME", "build_res2net_backbone", "MODEL.FPN.IN_FEATURES", "[]",
               "MODEL.RES2NET.OUT_FEATURES", "['res3']", "MODEL.RPN.IN_FEATURES", "['res3']",
               "MODEL.ROI_HEADS.IN_FEATURES", "['res3']", "MODEL.ANCHOR_GENERATOR.SIZES", "[[16, 32, 64]]")
    model = build_rcnn(cfg)
    assert not hasattr(model.backbone, "fpn") and model.backbone.out_channels == 512
    model.train()
    assert torch.isfinite(sum(model(_inputs(False)).values()))


def test_stages_after_the_last_output_take_no_gradient():
    model = build_rcnn(_cfg("quickstart.yaml"))  # OUT_FEATURES res2, res3
    bottom_up = model.backbone.bottom_up
    assert all(p.requires_grad for p in bottom_up.layer2.parameters())
    assert not any(p.requires_grad for p in bottom_up.layer3.parameters())
    assert not any(p.requires_grad for p in bottom_up.layer4.parameters())
    assert "backbone.bottom_up.layer4.0.conv1.weight" in model.state_dict()  # keys kept for checkpoints


# ------------------------------------------------------------------ config path == plain builder
def _tree(model):
    """Module names and classes below the root (the transform aside: the engine's leaves resizing to its
    data mapper), state-dict keys with shapes, trainable parameters."""
    return ([(n, type(m).__name__) for n, m in model.named_modules() if n and n != "transform"],
            {k: tuple(v.shape) for k, v in model.state_dict().items()},
            sorted(n for n, p in model.named_parameters() if p.requires_grad))


@pytest.mark.parametrize("config, builder, kwargs", [
    ("faster_rcnn_r2_50.yaml", fasterrcnn_res2net_fpn, dict(variant="res2net50_26w_4s", num_classes=81)),
    ("faster_rcnn_r_50.yaml", fasterrcnn_res2net_fpn, dict(variant="resnet50", num_classes=81)),
    ("mask_rcnn_r2_50.yaml", maskrcnn_res2net_fpn, dict(variant="res2net50_26w_4s", num_classes=81)),
    ("retinanet_r2_50.yaml", retinanet_res2net_fpn, dict(variant="res2net50_26w_4s", num_classes=80)),
])
def test_config_path_builds_what_the_plain_builder_builds(config, builder, kwargs):
    """The engine's model for a shipped config is the builder's default model: same modules, same
    state-dict keys and shapes (checkpoints move between the two), same frozen parts."""
    cfg = get_cfg()
    merge_config_file(cfg, os.path.join(CONFIGS, config))
    engine_model = build_retinanet(cfg) if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else build_rcnn(cfg)
    plain = builder(**kwargs)
    assert isinstance(engine_model, type(plain))
    assert _tree(engine_model) == _tree(plain)
