"""Detection configs translated into the builders' arguments (res2net_det.config.detection)."""
import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.config.detection import backbone_args_from_cfg, rcnn_args_from_cfg, retinanet_args_from_cfg
from res2net_det.modeling.detection import res2net_fpn_backbone
from tests.helpers import REPO


def _cfg(name, *opts):
    cfg = merge_config_file(get_cfg(), str(REPO / "configs" / name))
    return merge_config_list(cfg, list(opts))


@pytest.mark.parametrize("name, variant, overrides", [
    ("faster_rcnn_r2_50.yaml", "res2net50_26w_4s", {}),
    ("faster_rcnn_r_50.yaml", "resnet50", {}),
    ("faster_rcnn_r2_50_v1b.yaml", "res2net50_v1b_26w_4s", {}),
    ("faster_rcnn_r2_50_14w_8s.yaml", "res2net50_14w_8s", {}),
    ("faster_rcnn_r2_101.yaml", "res2net101_26w_4s", {}),
    ("quickstart.yaml", "res2net50_26w_4s", {"base_width": 8}),  # no published row: the nearest + overrides
    ("retinanet_r2_50.yaml", "res2net50_26w_4s", {}),
    ("retinanet_r_50.yaml", "resnet50", {}),
])
def test_res2net_keys_name_the_table_row(name, variant, overrides):
    args = backbone_args_from_cfg(_cfg(name))
    assert (args["variant"], args["backbone_kwargs"]) == (variant, overrides)


def test_off_table_depth_and_stem_become_overrides():
    args = backbone_args_from_cfg(_cfg("faster_rcnn_r2_50.yaml", "MODEL.RES2NET.DEPTH", "152",
                                       "MODEL.RES2NET.DEEP_STEM", "True", "MODEL.RES2NET.STEM_WIDTH", "16"))
    assert args["variant"] == "res2net50_26w_4s"
    assert args["backbone_kwargs"] == {"layers": (3, 8, 36, 3), "deep_stem": True, "stem_width": 16}


def test_speed_keys_reach_the_builders_res2net():
    args = backbone_args_from_cfg(_cfg("faster_rcnn_r2_50.yaml", "MODEL.RES2NET.COMPILE", "True",
                                       "MODEL.RES2NET.CHECKPOINT_ACTIVATIONS", "True",
                                       "MODEL.RES2NET.CHANNELS_LAST", "True"))
    assert args["backbone_kwargs"] == {"compile": True, "checkpoint_activations": True, "channels_last": True}
    args.pop("variant")
    bottom_up = res2net_fpn_backbone("res2net50_26w_4s", **args).bottom_up
    assert bottom_up.compile and bottom_up.checkpoint_activations and bottom_up.channels_last
    assert bottom_up.layer3[0].conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert backbone_args_from_cfg(_cfg("faster_rcnn_r2_50.yaml"))["backbone_kwargs"] == {}


def test_backbone_keys():
    args = backbone_args_from_cfg(_cfg("faster_rcnn_r2_50_dcn.yaml", "MODEL.BACKBONE.FREEZE_AT", "1",
                                       "MODEL.FPN.OUT_CHANNELS", "128", "MODEL.RES2NET.NORM", "GN"))
    assert args["trainable_layers"] == 4 and args["norm"] == "GN" and args["fpn_channels"] == 128
    assert args["out_features"] == ("res2", "res3", "res4", "res5") and args["top_block"] == "maxpool"
    assert args["deformable_stages"] == ("res3", "res4", "res5")
    retina = backbone_args_from_cfg(_cfg("retinanet_r2_50.yaml"))
    assert retina["out_features"] == ("res3", "res4", "res5") and retina["top_block"] == "p6p7"


def test_rcnn_keys():
    args = rcnn_args_from_cfg(_cfg("mask_rcnn_r2_50.yaml", "MODEL.ROI_HEADS.NUM_CLASSES", "7"))
    assert args["num_classes"] == 8  # torchvision counts the background
    assert args["roi_features"] == ["p2", "p3", "p4", "p5"] and args["box_head_fc_dims"] == [1024, 1024]
    assert args["mask_head_conv_dims"] == [256] * 4 and args["box_pooler_sampling_ratio"] == 0
    assert args["rpn_pre_nms_top_n_train"] == 2000 and args["image_mean"] == [123.675, 116.28, 103.53]


def test_retinanet_keys():
    args = retinanet_args_from_cfg(_cfg("retinanet_r2_50.yaml", "MODEL.RETINANET.NUM_CLASSES", "3",
                                        "MODEL.RETINANET.SCORE_THRESH_TEST", "0.1"))
    assert args["num_classes"] == 3  # no background output
    assert (args["bg_iou_thresh"], args["fg_iou_thresh"]) == (0.4, 0.5)
    assert args["box_loss"] == "l1" and args["score_thresh"] == 0.1 and args["topk_candidates"] == 1000
    assert args["anchor_sizes"][0] == (32, 40.3175, 50.7968) and len(args["anchor_sizes"]) == 5
    assert retinanet_args_from_cfg(_cfg("retinanet_r2_50.yaml", "MODEL.RETINANET.BBOX_REG_LOSS_TYPE",
                                        "giou"))["box_loss"] == "giou"


@pytest.mark.parametrize("opts, message", [
    (("MODEL.RETINANET.SMOOTH_L1_LOSS_BETA", "0.1"), "MODEL.RETINANET.SMOOTH_L1_LOSS_BETA"),
    (("MODEL.RETINANET.IN_FEATURES", "['p3', 'p4']"), "MODEL.RETINANET.IN_FEATURES"),
    (("MODEL.ANCHOR_GENERATOR.SIZES", "[[32], [64]]"), "MODEL.ANCHOR_GENERATOR.SIZES has 2 lists"),
    (("MODEL.BACKBONE.NAME", "build_res2net_fpn_backbone"), "build_retinanet_res2net_fpn_backbone"),
    (("MODEL.FPN.IN_FEATURES", "['res2', 'res3']"), "MODEL.FPN.IN_FEATURES"),
])
def test_retinanet_key_errors_name_the_key(opts, message):
    with pytest.raises(ValueError, match=message):
        retinanet_args_from_cfg(_cfg("retinanet_r2_50.yaml", *opts))


def test_rcnn_refuses_the_retinanet_backbone():
    with pytest.raises(ValueError, match="RetinaNet's"):
        rcnn_args_from_cfg(_cfg("faster_rcnn_r2_50.yaml",
                                "MODEL.BACKBONE.NAME", "build_retinanet_res2net_fpn_backbone"))
