"""The saliency task on Detectron2's DefaultTrainer (skipped without Detectron2)."""
import json
import os

import pytest
import torch

detectron2 = pytest.importorskip("detectron2", reason="Detectron2 is not installed")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from res2net_det.config.defaults import add_res2net_det_config  # noqa: E402
from res2net_det.data.catalog import DatasetCatalog  # noqa: E402
from res2net_det.engines.detectron2.tasks import SaliencyTrainer  # noqa: E402
from res2net_det.modeling.saliency import PoolNetSaliency as CoreModel  # noqa: E402
from tests.helpers import write_pair  # noqa: E402


def _cfg(tmp_path, folders):
    cfg = add_res2net_det_config(get_cfg())  # Detectron2's defaults + all our keys, as train_net builds it
    cfg.merge_from_list([
        "MODEL.META_ARCHITECTURE", "PoolNetSaliency", "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "",
        "MODEL.PIXEL_MEAN", [123.675, 116.28, 103.53], "MODEL.PIXEL_STD", [58.395, 57.12, 57.375],
        "MODEL.BACKBONE.FREEZE_AT", 0,
        "MODEL.RES2NET.WIDTH_PER_GROUP", 4, "MODEL.RES2NET.NORM", "BN", "MODEL.RES2NET.OUT_FEATURES", ["res2", "res3"],
        "MODEL.SALIENCY.IN_FEATURES", ["stem", "res2", "res3"], "MODEL.SALIENCY.CONVERT_CHANNELS", [8, 8, 8],
        "INPUT.FORMAT", "RGB", "INPUT.SALIENCY.RESIZE", [32, 32],
        "DATASETS.SALIENCY_FOLDERS", folders, "DATASETS.TRAIN", ("d2_sod_tiny",), "DATASETS.TEST", ("d2_sod_tiny",),
        "DATALOADER.NUM_WORKERS", 0, "SOLVER.OPTIMIZER", "Adam", "SOLVER.BASE_LR", 1e-3,
        "SOLVER.IMS_PER_BATCH", 4, "SOLVER.GRAD_ACCUM_STEPS", 2, "SOLVER.MAX_ITER", 2, "SOLVER.STEPS", (),
        "SOLVER.WARMUP_ITERS", 0, "SOLVER.CHECKPOINT_PERIOD", 100, "OUTPUT_DIR", str(tmp_path / "out"),
    ])
    return cfg


@pytest.fixture
def tiny(tmp_path):
    for i in range(3):
        write_pair(tmp_path / "Image", tmp_path / "Mask", f"im{i}", size=(36 + i, 40), seed=i)
    yield [["d2_sod_tiny", str(tmp_path / "Image"), str(tmp_path / "Mask")]]
    DatasetCatalog.remove("d2_sod_tiny")


def test_meta_architecture_is_registered(tmp_path, tiny):
    model = build_model(_cfg(tmp_path, tiny))
    assert isinstance(model, CoreModel)


def test_train_with_accumulation_then_evaluate(tmp_path, tiny):
    cfg = _cfg(tmp_path, tiny)
    trainer = SaliencyTrainer(cfg)
    assert type(trainer._trainer).__name__ == "AccumulatingTrainer"
    assert isinstance(trainer.optimizer, torch.optim.Adam)
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert os.path.isfile(tmp_path / "out" / "model_final.pth")
    results = SaliencyTrainer.test(cfg, trainer.model)
    # DefaultTrainer.test unwraps the results of a single data set
    assert set(results["saliency"]) >= {"MAE", "maxF", "Sm", "maxE", "wF"}
    saved = json.loads((tmp_path / "out" / "inference" / "d2_sod_tiny" / "saliency_results.json").read_text())
    assert saved["out"]["d2_sod_tiny"]["num_images"] == 3
