"""The classification task's config translation: configs build classifiers and unsupported input
keys are refused."""

import pytest

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.config.classification import (
    build_classifier_model,
    classifier_kwargs_from_cfg,
)
from res2net_det.modeling.classification import Res2NetClassifier
from tests.helpers import REPO

CAM_CONFIGS = REPO / "configs" / "cam"


def _cfg(name="quickstart.yaml", *opts):
    cfg = merge_config_file(get_cfg(), str(CAM_CONFIGS / name))
    return merge_config_list(cfg, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts])


@pytest.mark.parametrize("name", ["quickstart.yaml", "res2net50_finetune.yaml"])
def test_every_cam_config_builds_a_classifier(name):
    cfg = _cfg(name)
    model = build_classifier_model(cfg)
    assert isinstance(model, Res2NetClassifier)
    assert model.backbone.fc.out_features == cfg.MODEL.CLASSIFIER.NUM_CLASSES
    blocks = [len(getattr(model.backbone, f"layer{i}")) for i in range(1, 5)]
    assert blocks == (list(cfg.MODEL.CLASSIFIER.BLOCKS_PER_STAGE) or [3, 4, 6, 3])


def test_input_keys_the_task_cannot_honour_are_refused():
    cfg = _cfg()
    cfg.MODEL.PIXEL_MEAN = [103.53, 116.28, 123.675]  # Detectron2's BGR default
    with pytest.raises(ValueError, match="MODEL.PIXEL_MEAN"):
        build_classifier_model(cfg)
    cfg = _cfg()
    cfg.MODEL.CLASSIFIER.BLOCKS_PER_STAGE = [1, 1, 1]
    with pytest.raises(ValueError, match="BLOCKS_PER_STAGE"):
        classifier_kwargs_from_cfg(cfg)
