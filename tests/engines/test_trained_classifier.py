"""A classification run's checkpoint comes back, with its test set and input size, for the CAM
jobs (tools/cam_eval.py and tools/cam_visualize.py --config-file)."""
import os

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.config.classification import build_classifier_model
from res2net_det.engines.trained_classifier import (
    build_trained_classifier,
    load_trained_classifier,
    trained_classifier_of_config,
)
from tests.helpers import REPO


def _cfg(*opts):
    cfg = merge_config_file(get_cfg(), str(REPO / "configs" / "cam" / "quickstart.yaml"))
    return merge_config_list(cfg, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts])


def test_trained_classifier_comes_back_for_the_cam_tools(tiny_wsol, tmp_path):
    """What train_net wrote (OUTPUT_DIR/model_final.pth, {"model": state dict}) loads strictly into
    the network the config describes, with the config's test set and input size."""
    cfg = _cfg("OUTPUT_DIR", str(tmp_path), "INPUT.CLASSIFIER.RESIZE", "(32, 32)",
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
    # the CAM jobs' --config-file FILE KEY VALUE ...: the same network, labelled by the file's name
    opts = ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "OUTPUT_DIR", str(tmp_path), "INPUT.CLASSIFIER.RESIZE",
            "(32, 32)", "DATASETS.WSOL_SPLITS", str([["tiny_cfg_cls_val", tiny_wsol, "val"]]),
            "DATASETS.TEST", "('tiny_cfg_cls_val',)"]
    by_file = trained_classifier_of_config(str(REPO / "configs" / "cam" / "quickstart.yaml"), opts)
    assert (by_file.label, by_file.image_size, len(by_file.records)) == ("quickstart", (32, 32), 8)
    assert torch.allclose(by_file.net(x), loaded.net(x), atol=1e-6)
    # a checkpoint of another architecture is refused, not half-loaded
    other = _cfg("MODEL.RES2NET.WIDTH_PER_GROUP", "4")
    torch.save({"model": build_classifier_model(other).state_dict()}, os.path.join(tmp_path, "other.pth"))
    with pytest.raises(Exception, match="shape"):
        build_trained_classifier(cfg, os.path.join(tmp_path, "other.pth"))


def test_only_a_classifier_config_with_a_test_set_is_taken(tmp_path):
    cfg = _cfg("OUTPUT_DIR", str(tmp_path), "MODEL.META_ARCHITECTURE", "GeneralizedRCNN")
    with pytest.raises(ValueError, match="Res2NetClassifier"):
        load_trained_classifier(cfg, "detector")
    cfg = _cfg("OUTPUT_DIR", str(tmp_path), "DATASETS.TEST", "()")
    with pytest.raises(ValueError, match="DATASETS.TEST is empty"):
        load_trained_classifier(cfg, "no_test_set")
