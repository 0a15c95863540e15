"""Training from scratch is no trap: no weights + frozen norm or FREEZE_AT > 0 is refused before
training on both engines, saying what to set; the missing-weights errors say it too."""
import argparse

import pytest

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.config.from_scratch import (
    check_initial_weights,
    check_trainable_from_scratch,
    check_weights_file,
    from_scratch_problems,
)
from res2net_det.model_zoo import get_config_file, list_configs
from tests.helpers import shipped_config


def _cfg(name, *opts):
    return merge_config_list(merge_config_file(get_cfg(), get_config_file(name)), list(opts))


def _args(config="", **kw):
    return argparse.Namespace(config_file=config, opts=[], eval_only=kw.get("eval_only", False),
                              resume=kw.get("resume", False))


def test_frozen_bn_from_scratch_is_refused_with_what_to_set():
    cfg = _cfg("faster_rcnn_r2_50.yaml", "MODEL.WEIGHTS", "")
    with pytest.raises(ValueError) as info:
        check_trainable_from_scratch(cfg, "faster_rcnn_r2_50.yaml")
    message = str(info.value)
    for words in ("MODEL.WEIGHTS is empty (faster_rcnn_r2_50.yaml)", "MODEL.RES2NET.NORM is FrozenBN",
                  "FREEZE_AT is 2", "MODEL.RES2NET.NORM BN", "SyncBN", "MODEL.BACKBONE.FREEZE_AT 0"):
        assert words in message


@pytest.mark.parametrize("opts, expected", [
    (("MODEL.RES2NET.NORM", "BN"), ["FREEZE_AT is 2"]),
    (("MODEL.BACKBONE.FREEZE_AT", "0"), ["NORM is FrozenBN"]),
    (("MODEL.RES2NET.NORM", "SyncBN", "MODEL.BACKBONE.FREEZE_AT", "0"), []),
    (("MODEL.RES2NET.NORM", "GN", "MODEL.BACKBONE.FREEZE_AT", "0"), []),
])
def test_each_frozen_part_is_named(opts, expected):
    problems = from_scratch_problems(_cfg("faster_rcnn_r2_50.yaml", "MODEL.WEIGHTS", "", *opts))
    assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems))


def test_detectron2_resnet_backbone_norm_is_the_one_checked():
    cfg = _cfg("faster_rcnn_r2_50.yaml", "MODEL.WEIGHTS", "", "MODEL.RES2NET.NORM", "BN",
               "MODEL.BACKBONE.FREEZE_AT", "0")
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    cfg.MODEL.RESNETS = type(cfg)({"NORM": "FrozenBN"})
    assert from_scratch_problems(cfg) == [
        "MODEL.RESNETS.NORM is FrozenBN (frozen statistics of a random initialisation)"]


# Configs for inference with a released file given by --weights (no training recipe of ours):
# training them as they are would start a frozen-BN backbone from random weights, so it is refused.
INFERENCE_ONLY = {"sod/poolnet_r_50_released.yaml"}


@pytest.mark.parametrize("name", list_configs())
def test_shipped_from_scratch_configs_pass(name):
    """The quickstarts train from scratch (BN, FREEZE_AT 0); every config with weights is not concerned."""
    cfg = shipped_config(name)
    if name in INFERENCE_ONLY:
        with pytest.raises(ValueError, match="MODEL.WEIGHTS is empty"):
            check_trainable_from_scratch(cfg, name)
        return
    check_trainable_from_scratch(cfg, name)
    if not cfg.MODEL.WEIGHTS:
        assert cfg.MODEL.RES2NET.NORM != "FrozenBN" and cfg.MODEL.BACKBONE.FREEZE_AT == 0


def test_missing_weights_file_says_how_to_get_it_or_train_from_scratch(tmp_path):
    cfg = _cfg("faster_rcnn_r2_50.yaml", "MODEL.WEIGHTS", str(tmp_path / "nope.pth"))
    with pytest.raises(FileNotFoundError) as info:
        check_weights_file(cfg)
    message = str(info.value)
    assert "nope.pth" in message and "tools/convert_weights.py" in message
    assert 'MODEL.WEIGHTS ""' in message and "MODEL.RES2NET.NORM BN" in message and "FREEZE_AT 0" in message
    # the checkpointer's job
    check_weights_file(_cfg("faster_rcnn_r2_50.yaml", "MODEL.WEIGHTS", "https://example.org/w.pth"))


def test_eval_only_and_a_real_resume_are_not_checked(tmp_path):
    cfg = _cfg("faster_rcnn_r2_50.yaml", "MODEL.WEIGHTS", "", "OUTPUT_DIR", str(tmp_path))
    check_initial_weights(cfg, _args(eval_only=True))
    with pytest.raises(ValueError, match="NORM BN"):
        check_initial_weights(cfg, _args(resume=True))  # nothing to resume from yet
    (tmp_path / "last_checkpoint").write_text("model_0000099.pth")
    check_initial_weights(cfg, _args(resume=True))


def test_torchvision_engine_refuses_before_training(tmp_path):
    from res2net_det.engines.torchvision.checkpoint import load_model_weights
    from res2net_det.engines.torchvision.train_net import setup

    args = argparse.Namespace(config_file=get_config_file("faster_rcnn_r2_50.yaml"), eval_only=False, resume=False,
                              opts=["MODEL.WEIGHTS", "", "OUTPUT_DIR", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="MODEL.BACKBONE.FREEZE_AT 0"):
        setup(args)
    assert not (tmp_path / "out").exists()  # refused before anything was written
    with pytest.raises(FileNotFoundError, match="FREEZE_AT 0"):
        load_model_weights(None, str(tmp_path / "missing.pth"))


def test_detectron2_engine_refuses_before_training(tmp_path):
    pytest.importorskip("detectron2", reason="Detectron2 is not installed")
    from res2net_det.engines.detectron2.train_net import setup

    args = argparse.Namespace(config_file=get_config_file("faster_rcnn_r2_50.yaml"), eval_only=False, resume=False,
                              opts=["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path / "out")],
                              num_gpus=1, num_machines=1, machine_rank=0, dist_url="auto")
    with pytest.raises(ValueError, match="MODEL.RES2NET.NORM BN"):
        setup(args)
    args.opts = ["MODEL.WEIGHTS", str(tmp_path / "missing.pth"), "MODEL.DEVICE", "cpu",
                 "OUTPUT_DIR", str(tmp_path / "out")]
    with pytest.raises(FileNotFoundError, match="FREEZE_AT 0"):
        setup(args)


@pytest.mark.parametrize("name", ["sod/quickstart.yaml", "cam/quickstart.yaml"])
def test_task_models_are_judged_by_their_res2net_keys(name):
    """Saliency and classification build MODEL.RES2NET.*; Detectron2's default BACKBONE.NAME and
    MODEL.RESNETS.NORM (FrozenBN) in its config tree must not refuse them."""
    cfg = _cfg(name)
    cfg.MODEL.BACKBONE.NAME = "build_resnet_backbone"
    cfg.MODEL.RESNETS = type(cfg)({"NORM": "FrozenBN"})
    assert from_scratch_problems(cfg) == []
