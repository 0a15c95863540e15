"""The classification task's config translation: configs build classifiers, unsupported input
keys are refused, and a trained run's checkpoint comes back for the CAM tools."""
import os

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.config.classification import (
    build_classifier_model,
    build_trained_classifier,
    classifier_kwargs_from_cfg,
    load_trained_classifier,
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


def test_trained_classifier_comes_back_for_the_cam_tools(tiny_wsol, tmp_path):
    """What train_net wrote (OUTPUT_DIR/model_final.pth, {"model": state dict}) loads strictly into
    the network the config describes, with the config's test set and input size."""
    cfg = _cfg("quickstart.yaml", "OUTPUT_DIR", str(tmp_path), "INPUT.CLASSIFIER.RESIZE", "(32, 32)",
               "DATASETS.WSOL_SPLITS", str([["tiny_cfg_cls_val", tiny_wsol, "val"]]),
               "DATASETS.TEST", "('tiny_cfg_cls_val',)")
    with pytest.raises(FileNotFoundError, match="model_final.pth"):
        build_trained_classifier(cfg)
    torch.manual_seed(0)
    trained = build_classifier_model(cfg)
    torch.save({"model": trained.state_dict(), "iteration": 3}, os.path.join(tmp_path, "model_final.pth"))
    loaded = load_trained_classifier(cfg, "quickstart")
    x = torch.randn(2, 3, 32, 32)
    assert not loaded.net.training
    assert torch.allclose(loaded.net(x), trained.backbone.eval()(x), atol=1e-6)
    assert (loaded.label, loaded.image_size, len(loaded.records)) == ("quickstart", (32, 32), 8)
    assert loaded.class_names == ["circle", "square", "triangle", "cross"]
    # a checkpoint of another architecture is refused, not half-loaded
    other = _cfg("quickstart.yaml", "MODEL.RES2NET.WIDTH_PER_GROUP", "4")
    torch.save({"model": build_classifier_model(other).state_dict()}, os.path.join(tmp_path, "other.pth"))
    with pytest.raises(Exception, match="shape"):
        build_trained_classifier(cfg, os.path.join(tmp_path, "other.pth"))
