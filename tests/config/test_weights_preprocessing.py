"""Published weights and the config's preprocessing: a mismatch is refused, naming both sides."""
import pytest

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.config.weights import check_weights_preprocessing, preprocessing_mismatches
from res2net_det.model_zoo import list_configs
from tests.helpers import REPO, shipped_config

CAFFE_BGR = ["INPUT.FORMAT", "BGR", "MODEL.PIXEL_MEAN", "[103.53, 116.28, 123.675]",
             "MODEL.PIXEL_STD", "[1.0, 1.0, 1.0]"]


def _cfg(name="faster_rcnn_r2_50.yaml", opts=()):
    cfg = merge_config_file(get_cfg(), str(REPO / "configs" / name))
    cfg.merge_from_list(list(opts))
    return cfg


@pytest.mark.parametrize("weights", ["res2net://res2net50_26w_4s", "timm://res2net50_26w_4s",
                                     "http://127.0.0.1:1/mirror/res2net50_26w_4s-06e79181.pth"])
def test_detectron2_caffe_defaults_with_imagenet_weights_are_refused(weights):
    cfg = _cfg(opts=["MODEL.WEIGHTS", weights, *CAFFE_BGR])
    with pytest.raises(ValueError) as e:
        check_weights_preprocessing(cfg, "configs/faster_rcnn_r2_50.yaml")
    message = str(e.value)
    for text in (weights, "configs/faster_rcnn_r2_50.yaml", "INPUT.FORMAT: 'BGR', the weights' 'RGB'",
                 "[103.53, 116.28, 123.675]", "[123.675, 116.28, 103.53]", "[58.395, 57.12, 57.375]",
                 "MODEL.WEIGHTS_ALLOW_OTHER_PREPROCESSING True"):
        assert text in message


def test_one_differing_key_is_named_alone():
    cfg = _cfg(opts=["MODEL.PIXEL_STD", "[1.0, 1.0, 1.0]"])
    assert preprocessing_mismatches(cfg) == ["MODEL.PIXEL_STD: [1.0, 1.0, 1.0], the weights' [58.395, 57.12, 57.375]"]


def test_the_named_key_accepts_the_mismatch_on_purpose():
    check_weights_preprocessing(_cfg(opts=[*CAFFE_BGR, "MODEL.WEIGHTS_ALLOW_OTHER_PREPROCESSING", "True"]))


def test_files_that_are_not_published_weights_are_not_checked():
    for weights in ("", "output/run/model_final.pth", "my_backbone.pth"):
        assert preprocessing_mismatches(_cfg(opts=["MODEL.WEIGHTS", weights, *CAFFE_BGR])) == []


def test_every_shipped_config_agrees_with_the_weights_it_names():
    named = 0
    for name in list_configs():
        cfg = shipped_config(name, skip=False)
        if cfg is None:  # Detectron2-only, and Detectron2 is not installed
            continue
        check_weights_preprocessing(cfg, name)
        named += str(cfg.MODEL.WEIGHTS).startswith(("res2net://", "torchvision://"))
    assert named >= 12  # every ImageNet-started config names its weights
