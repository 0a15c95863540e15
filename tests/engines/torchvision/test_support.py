"""The torchvision engine's support table: every shipped config it runs passes the check, and a
value it can't honour is refused before anything is built, naming the key and the file."""
import os

import pytest

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.engines.torchvision.modeling import build_backbone
from res2net_det.engines.torchvision.support import check_torchvision_support
from res2net_det.modeling.deform import DeformableConv2d
from tests.helpers import REPO

CONFIGS = str(REPO / "configs")


# Cascade R-CNN and Panoptic FPN are Detectron2's alone (tests/engines/test_detectron2_only_configs.py).
DETECTRON2_ONLY_PREFIXES = ("cascade_", "panoptic_")


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(CONFIGS)
                                        if f.endswith(".yaml") and not f.startswith("Base")))
def test_every_shipped_config_is_supported_by_torchvision(name):
    cfg = get_cfg()
    if name.startswith(DETECTRON2_ONLY_PREFIXES):
        with pytest.raises((ValueError, KeyError), match="ENGINE: detectron2"):
            merge_config_file(cfg, os.path.join(CONFIGS, name))
            check_torchvision_support(cfg, name)
        return
    merge_config_file(cfg, os.path.join(CONFIGS, name))
    check_torchvision_support(cfg, name)


def test_unsupported_value_is_refused_with_key():
    cfg = get_cfg()
    merge_config_file(cfg, os.path.join(CONFIGS, "faster_rcnn_r2_50.yaml"))
    merge_config_list(cfg, ["MODEL.ROI_HEADS.NAME", "CascadeROIHeads", "INPUT.CROP.ENABLED", "True"])
    with pytest.raises(ValueError) as e:
        check_torchvision_support(cfg, "x.yaml")
    assert "MODEL.ROI_HEADS.NAME = 'CascadeROIHeads'" in str(e.value)
    assert "INPUT.CROP.ENABLED" in str(e.value) and "x.yaml" in str(e.value)


def test_other_tasks_are_not_held_to_detection_keys():
    cfg = get_cfg()  # Detectron2's defaults: ROI_HEADS.NAME Res5ROIHeads, BACKBONE.NAME build_resnet_backbone
    with pytest.raises(ValueError, match="MODEL.ROI_HEADS.NAME"):
        check_torchvision_support(cfg)
    cfg.MODEL.META_ARCHITECTURE = "SomeSaliencyNet"
    check_torchvision_support(cfg)
    cfg.SOLVER.LR_SCHEDULER_NAME = "WarmupPolyLR"  # not one the engine has
    with pytest.raises(ValueError, match="SOLVER.LR_SCHEDULER_NAME"):
        check_torchvision_support(cfg)


def test_deformable_stages_are_honoured_by_the_torchvision_engine():
    """MODEL.RES2NET.DEFORM_* build core modules (torchvision's deform_conv2d): no engine refuses them."""
    cfg = get_cfg()
    merge_config_file(cfg, os.path.join(CONFIGS, "faster_rcnn_r2_50_dcn.yaml"))
    check_torchvision_support(cfg)
    bottom_up = build_backbone(cfg).bottom_up
    assert isinstance(bottom_up.layer3[0].convs[0], DeformableConv2d)
    assert not isinstance(bottom_up.layer1[0].convs[0], DeformableConv2d)


def test_retinanet_is_held_to_its_own_keys_not_rcnn_ones():
    cfg = get_cfg()
    merge_config_file(cfg, os.path.join(CONFIGS, "retinanet_r2_50.yaml"))
    assert cfg.MODEL.ROI_HEADS.NAME == "Res5ROIHeads"  # Detectron2's default, which RetinaNet never reads
    check_torchvision_support(cfg)
    for key, value in [("MODEL.RETINANET.FOCAL_LOSS_GAMMA", "3.0"), ("MODEL.RETINANET.NUM_CONVS", "2"),
                       ("MODEL.RETINANET.SMOOTH_L1_LOSS_BETA", "0.1"),
                       ("MODEL.BACKBONE.NAME", "build_res2net_fpn_backbone")]:
        bad = merge_config_list(cfg.clone(), [key, value])
        with pytest.raises(ValueError, match=key):
            check_torchvision_support(bad)
    # beta only matters for smooth L1
    check_torchvision_support(merge_config_list(cfg.clone(), ["MODEL.RETINANET.BBOX_REG_LOSS_TYPE", "giou",
                                                              "MODEL.RETINANET.SMOOTH_L1_LOSS_BETA", "0.1"]))
