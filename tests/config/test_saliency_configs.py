"""The SOD configs merge into our defaults and say what their comments say."""

import pytest

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.engines.torchvision.support import check_torchvision_support
from tests.helpers import REPO

SOD = REPO / "configs" / "sod"
DUTS_TR_IMAGES = 10553


def _load(name):
    return merge_config_file(get_cfg(), str(SOD / name))


@pytest.mark.parametrize("name", ["poolnet_r2_50_duts.yaml", "poolnet_r2_50_duts_batched.yaml",
                                  "poolnet_r_50_duts.yaml"])
def test_duts_recipe_in_iterations(name):
    cfg = _load(name)
    check_torchvision_support(cfg, name)
    s = cfg.SOLVER
    assert cfg.MODEL.META_ARCHITECTURE == "PoolNetSaliency"
    assert (s.OPTIMIZER, s.BASE_LR, s.WEIGHT_DECAY, s.GAMMA, s.WARMUP_ITERS) == ("Adam", 5e-5, 5e-4, 0.1, 0)
    # 10 images per optimizer step (1 x 10 accumulated, or one batch of 10)
    assert s.IMS_PER_BATCH == 10
    steps_per_epoch = DUTS_TR_IMAGES / s.IMS_PER_BATCH
    assert s.MAX_ITER == round(24 * steps_per_epoch)
    assert list(s.STEPS) == [round(15 * steps_per_epoch)]
    assert cfg.MODEL.RES2NET.RES5_DILATION == 2 and cfg.MODEL.RES2NET.NORM == "FrozenBN"
    assert cfg.INPUT.SALIENCY.HFLIP and cfg.MODEL.SALIENCY.LOSS_REDUCTION == "sum"
    assert cfg.MODEL.PIXEL_MEAN == [123.675, 116.28, 103.53] and cfg.INPUT.FORMAT == "RGB"


def test_variants_differ_where_they_should():
    full, batched, r50 = (_load(n) for n in ("poolnet_r2_50_duts.yaml", "poolnet_r2_50_duts_batched.yaml",
                                             "poolnet_r_50_duts.yaml"))
    assert (full.SOLVER.GRAD_ACCUM_STEPS, list(full.INPUT.SALIENCY.RESIZE)) == (10, [])
    assert (batched.SOLVER.GRAD_ACCUM_STEPS, list(batched.INPUT.SALIENCY.RESIZE)) == (1, [352, 352])
    assert (r50.MODEL.RES2NET.SCALE, r50.MODEL.RES2NET.WIDTH_PER_GROUP) == (1, 64)
    assert (full.MODEL.RES2NET.SCALE, full.MODEL.RES2NET.WIDTH_PER_GROUP) == (4, 26)


def test_quickstart_uses_the_generated_data():
    cfg = _load("quickstart.yaml")
    check_torchvision_support(cfg, "quickstart.yaml")
    assert cfg.DATASETS.TRAIN == ("sod_synthetic_train",) and cfg.DATASETS.TEST == ("sod_synthetic_test",)
    assert cfg.MODEL.WEIGHTS == "" and cfg.ENGINE == "torchvision"
