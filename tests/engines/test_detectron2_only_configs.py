"""Cascade R-CNN and Panoptic FPN run on Detectron2 only: the torchvision engine refuses their
configs before building or writing anything, naming the key and the engine to use."""
import pytest

from res2net_det.engines import default_argument_parser, main

DETECTRON2_ONLY = {
    "cascade_rcnn_r2_101.yaml": "MODEL.ROI_HEADS.NAME",
    "cascade_rcnn_r_101.yaml": "MODEL.ROI_HEADS.NAME",
    "cascade_mask_rcnn_r2_101.yaml": "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG",
    "cascade_mask_rcnn_r_101.yaml": "MODEL.ROI_HEADS.NAME",
    "panoptic_fpn_r2_101_3x.yaml": "MODEL.SEM_SEG_HEAD",
    "panoptic_fpn_r_101_3x.yaml": "MODEL.SEM_SEG_HEAD",
}


@pytest.mark.parametrize("name", sorted(DETECTRON2_ONLY))
def test_torchvision_engine_refuses_detectron2_only_configs(name, tmp_path):
    out = tmp_path / "out"
    args = default_argument_parser().parse_args(["--config-file", name, "ENGINE", "torchvision",
                                                 "OUTPUT_DIR", str(out)])
    with pytest.raises((ValueError, KeyError)) as info:
        main(args)
    message = str(info.value)
    assert DETECTRON2_ONLY[name] in message and "ENGINE: detectron2" in message
    assert name.split("_r")[0] in message  # the file (or its _BASE_) that sets the key
    assert not out.exists()
