import os

import pytest

from res2net_det.config import ConfigKeyError, get_cfg, merge_config_file, merge_config_list
from tests.helpers import REPO

CONFIGS = str(REPO / "configs")


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def test_base_merging_applies_base_then_child():
    cfg = get_cfg()
    merge_config_file(cfg, os.path.join(CONFIGS, "faster_rcnn_r2_101.yaml"))
    assert cfg.MODEL.RES2NET.DEPTH == 101  # child
    assert cfg.MODEL.BACKBONE.NAME == "build_res2net_fpn_backbone"  # base
    assert list(cfg.MODEL.PIXEL_STD) == [58.395, 57.12, 57.375]  # base overrides Detectron2's default
    assert cfg.SOLVER.MOMENTUM == 0.9  # Detectron2's default, set by nobody


def test_unknown_key_names_key_and_the_file_that_sets_it(tmp_path):
    _write(tmp_path / "base.yaml", "MODEL:\n  RPN:\n    NMS_TRESH: 0.5\n")
    child = _write(tmp_path / "child.yaml", "_BASE_: base.yaml\nSOLVER:\n  BASE_LR: 0.1\n")
    with pytest.raises(ConfigKeyError) as e:
        merge_config_file(get_cfg(), child)
    assert "MODEL.RPN.NMS_TRESH" in str(e.value) and "base.yaml" in str(e.value)


def test_detectron2_only_key_says_so(tmp_path):
    path = _write(tmp_path / "semseg.yaml", "MODEL:\n  SEM_SEG_HEAD:\n    NUM_CLASSES: 3\n")
    with pytest.raises(ConfigKeyError, match="MODEL.SEM_SEG_HEAD.NUM_CLASSES.*torchvision engine does not honour"):
        merge_config_file(get_cfg(), path)


def test_unknown_command_line_key():
    with pytest.raises(ConfigKeyError, match="SOLVER.BASE_LRR"):
        merge_config_list(get_cfg(), ["SOLVER.BASE_LRR", "0.1"])
    cfg = merge_config_list(get_cfg(), ["SOLVER.BASE_LR", "0.1"])
    assert cfg.SOLVER.BASE_LR == 0.1


def test_missing_file_and_missing_base(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        merge_config_file(get_cfg(), str(tmp_path / "nope.yaml"))
    child = _write(tmp_path / "child.yaml", "_BASE_: gone.yaml\n")
    with pytest.raises(FileNotFoundError, match="gone.yaml"):
        merge_config_file(get_cfg(), child)


def test_defaults_equal_detectron2s():
    pytest.importorskip("detectron2", reason="Detectron2 is not installed; nothing to compare with")
    from detectron2.config import get_cfg as d2_get_cfg

    ours, theirs = get_cfg(), d2_get_cfg()

    def walk(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    d2 = dict(walk(theirs))
    differing = {k: (v, d2[k]) for k, v in walk(ours) if k in d2 and v != d2[k]
                 and not (isinstance(v, (list, tuple)) and list(v) == list(d2[k]))}
    assert not differing


def test_retinanet_keys_have_detectron2_defaults():
    r = get_cfg().MODEL.RETINANET
    assert (r.NUM_CLASSES, r.IN_FEATURES, r.IOU_THRESHOLDS, r.PRIOR_PROB, r.SMOOTH_L1_LOSS_BETA) == (
        80, ["p3", "p4", "p5", "p6", "p7"], [0.4, 0.5], 0.01, 0.1)
    d2_config = pytest.importorskip("detectron2.config",
                                    reason="Detectron2 is not installed: compared with it when it is")
    assert dict(d2_config.get_cfg().MODEL.RETINANET) == dict(r)
