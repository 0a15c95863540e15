"""The Detectron2 engine's trainer and data set bridge, end to end on a tiny data set
(skipped without Detectron2)."""
import argparse
import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)
import cv2  # noqa: E402
from detectron2.data import DatasetCatalog as D2DatasetCatalog  # noqa: E402
from detectron2.data import MetadataCatalog as D2MetadataCatalog  # noqa: E402

from res2net_det.data.catalog import DatasetCatalog  # noqa: E402
from res2net_det.engines.detectron2 import register_catalog_in_detectron2  # noqa: E402
from res2net_det.engines.detectron2.detection import DetectionTrainer  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_config, launch_main, main, trainer_class  # noqa: E402
from res2net_det.evaluation.bootstrap import coco_metrics  # noqa: E402
from res2net_det.evaluation.per_image import load_per_image  # noqa: E402

CLASSES = ["square", "bar"]


def _write_tiny_set(root, count=2):
    """Images with one bright square and one bar each, as Detectron2 dataset dicts (XYWH boxes)."""
    rng = np.random.default_rng(0)
    dicts = []
    for i in range(count):
        image = rng.integers(0, 60, (64, 96, 3), dtype=np.uint8)
        image[8:40, 8:40] = 230
        image[44:56, 30:90] = (30, 200, 30)
        path = os.path.join(root, f"{i}.jpg")
        assert cv2.imwrite(path, image)
        dicts.append({
            "file_name": path, "image_id": i, "height": 64, "width": 96,
            "annotations": [
                {"bbox": [8, 8, 32, 32], "bbox_mode": 1, "category_id": 0, "iscrowd": 0},
                {"bbox": [30, 44, 60, 12], "bbox_mode": 1, "category_id": 1, "iscrowd": 0},
            ],
        })
    return dicts


@pytest.fixture
def tiny_set(tmp_path):
    name = f"res2net_det_test_tiny_{os.getpid()}_{tmp_path.name}"
    dicts = _write_tiny_set(str(tmp_path))
    DatasetCatalog.register(name, lambda: dicts, thing_classes=CLASSES)
    yield name
    DatasetCatalog.remove(name)
    if name in D2DatasetCatalog.list():
        D2DatasetCatalog.remove(name)
        D2MetadataCatalog.remove(name)


def test_catalog_entries_reach_detectron2(tiny_set):
    assert tiny_set not in D2DatasetCatalog.list()
    added = register_catalog_in_detectron2()
    assert tiny_set in added
    assert D2DatasetCatalog.get(tiny_set) == DatasetCatalog.get(tiny_set)
    assert D2MetadataCatalog.get(tiny_set).thing_classes == CLASSES
    # a second call keeps the existing registration instead of failing
    assert tiny_set not in register_catalog_in_detectron2()


def test_metadata_learnt_on_loading_reaches_detectron2():
    """A COCO loader fills the category id map only when it reads the JSON; COCOEvaluator needs it."""
    name = f"res2net_det_test_lazy_meta_{os.getpid()}"

    def load():
        DatasetCatalog.metadata(name).update(thing_classes=["cat", "dog"],
                                             thing_dataset_id_to_contiguous_id={1: 0, 7: 1})
        return [{"file_name": "x.jpg", "image_id": 1, "height": 4, "width": 4, "annotations": []}]

    DatasetCatalog.register(name, load, thing_classes=["?", "?"], evaluator_type="coco")
    try:
        register_catalog_in_detectron2([name])
        assert D2MetadataCatalog.get(name).evaluator_type == "coco"
        assert not hasattr(D2MetadataCatalog.get(name), "thing_dataset_id_to_contiguous_id")
        assert len(D2DatasetCatalog.get(name)) == 1
        assert D2MetadataCatalog.get(name).thing_dataset_id_to_contiguous_id == {1: 0, 7: 1}
        assert D2MetadataCatalog.get(name).thing_classes == ["cat", "dog"]
    finally:
        DatasetCatalog.remove(name)
        D2DatasetCatalog.remove(name)
        D2MetadataCatalog.remove(name)


def test_box_modes_named_by_string_become_detectron2_box_modes():
    from detectron2.structures import BoxMode

    name = f"res2net_det_test_box_mode_{os.getpid()}"
    records = [{"file_name": "a.jpg", "image_id": 0, "height": 8, "width": 8,
                "annotations": [{"bbox": [1, 1, 2, 2], "bbox_mode": "XYWH_ABS", "category_id": 0}]}]
    DatasetCatalog.register(name, lambda: records, thing_classes=["a"])
    try:
        register_catalog_in_detectron2([name])
        (annotation,) = D2DatasetCatalog.get(name)[0]["annotations"]
        assert annotation["bbox_mode"] is BoxMode.XYWH_ABS
        assert BoxMode.convert(annotation["bbox"], annotation["bbox_mode"], BoxMode.XYXY_ABS) == [1, 1, 3, 3]
        assert records[0]["annotations"][0]["bbox_mode"] == "XYWH_ABS"  # ours untouched
        records[0]["annotations"][0]["bbox_mode"] = "XYWH"
        with pytest.raises(ValueError, match="a.jpg: unknown bbox_mode 'XYWH'"):
            D2DatasetCatalog.get(name)
    finally:
        DatasetCatalog.remove(name)
        D2DatasetCatalog.remove(name)
        D2MetadataCatalog.remove(name)


def test_detectron2_builtin_names_are_left_to_detectron2():
    # our catalog knows Detectron2's COCO names too (res2net_det.data.coco registers them)
    registered_here = "coco_2017_val" not in DatasetCatalog
    if registered_here:
        DatasetCatalog.register("coco_2017_val", lambda: [], thing_classes=["x"])
    try:
        assert "coco_2017_val" not in register_catalog_in_detectron2(["coco_2017_val"])
        assert len(D2MetadataCatalog.get("coco_2017_val").thing_classes) == 80
    finally:
        if registered_here:
            DatasetCatalog.remove("coco_2017_val")


def test_unknown_name_is_a_clear_error():
    with pytest.raises(KeyError, match="no_such_set"):
        register_catalog_in_detectron2(["no_such_set"])


def _args(tmp_path, name, *opts, resume=False, eval_only=False):
    return argparse.Namespace(
        config_file="configs/faster_rcnn_r2_50.yaml", resume=resume, eval_only=eval_only,
        num_gpus=0, num_machines=1, machine_rank=0, dist_url="auto",
        opts=[
            "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.NUM_CLASSES", "2",
            # from scratch: batch norm that learns its statistics (frozen BN of a random init diverges)
            "MODEL.RES2NET.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0",
            "DATASETS.TRAIN", f"('{name}',)", "DATASETS.TEST", f"('{name}',)",
            "INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.MAX_SIZE_TRAIN", "96",
            "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96",
            "MODEL.RPN.POST_NMS_TOPK_TRAIN", "32", "MODEL.RPN.POST_NMS_TOPK_TEST", "32",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16",
            "SOLVER.IMS_PER_BATCH", "2", "SOLVER.BASE_LR", "0.001", "SOLVER.STEPS", "()",
            "SOLVER.WARMUP_ITERS", "0", "SOLVER.CHECKPOINT_PERIOD", "2",
            "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(tmp_path / "out"),
            "SOLVER.LOG_PERIOD", "1", "TEST.VIS_IMAGES", "1", *opts,
        ],
    )


@pytest.mark.slow
def test_train_resume_and_eval_only(tiny_set, tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "out"
    # one test set: Detectron2 returns its metrics unnested, {"bbox": {"AP": ...}}
    # score threshold 0: an untrained model's low-scored boxes are kept, so AP is defined
    results = main(_args(tmp_path, tiny_set, "SOLVER.MAX_ITER", "2", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"))
    assert set(results["bbox"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert (out / "model_final.pth").is_file() and (out / "last_checkpoint").is_file()
    assert (out / "inference" / tiny_set / "coco_instances_results.json").is_file()
    # pycocotools' per-image matches of those detections, for compare_runs' intervals, give Detectron2's AP
    sections = load_per_image(str(out / "inference" / tiny_set / "coco_eval_results.per_image.npz"))
    again = coco_metrics(sections["bbox"], np.ones((1, len(sections["bbox"]["image_ids"])), np.float32))
    assert again["AP"][0] == pytest.approx(results["bbox"]["AP"], abs=1e-6)
    iterations = [json.loads(line).get("iteration") for line in (out / "metrics.json").read_text().splitlines()]
    assert {0, 1} <= set(iterations)  # SOLVER.LOG_PERIOD 1: a line per iteration
    assert (out / "vis" / tiny_set / "0.png").is_file()  # TEST.VIS_IMAGES 1
    first = torch.load(out / "model_final.pth", weights_only=False)
    assert first["iteration"] == 1  # Detectron2 counts from 0

    # --resume continues from the last checkpoint up to the new MAX_ITER; through launch_main,
    # which runs main in this process when there is no GPU (what tools/train_net.py calls)
    assert "bbox" in launch_main(_args(tmp_path, tiny_set, "SOLVER.MAX_ITER", "4", resume=True))
    resumed = torch.load(out / "model_final.pth", weights_only=False)
    assert resumed["iteration"] == 3
    assert not torch.equal(resumed["model"]["backbone.bottom_up.layer4.0.conv3.weight"],
                           first["model"]["backbone.bottom_up.layer4.0.conv3.weight"])

    # --eval-only loads MODEL.WEIGHTS and reports the same metric names
    weights = str(out / "model_final.pth")
    results = main(_args(tmp_path, tiny_set, "MODEL.WEIGHTS", weights, eval_only=True))
    assert "AP50" in results["bbox"]


def test_trainer_keys_of_our_config():
    cfg = build_config("configs/faster_rcnn_r2_50.yaml", ["MODEL.WEIGHTS", "", "SOLVER.OPTIMIZER", "AdamW"])
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = DetectionTrainer.build_optimizer(cfg, model)
    assert isinstance(optimizer, torch.optim.AdamW)
    # Detectron2's parameter groups: no weight decay on the norm (WEIGHT_DECAY_NORM 0)
    norm_group = next(g for g in optimizer.param_groups if g["params"][0] is model[1].weight)
    assert norm_group["weight_decay"] == cfg.SOLVER.WEIGHT_DECAY_NORM == 0.0
    sgd = build_config("configs/faster_rcnn_r2_50.yaml", ["MODEL.WEIGHTS", ""])
    assert isinstance(DetectionTrainer.build_optimizer(sgd, model), torch.optim.SGD)
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER"):
        DetectionTrainer.build_optimizer(build_config("", ["SOLVER.OPTIMIZER", "Lion"]), model)
    # accumulation works for detection too (tests/engines/test_trainer_keys.py); a count that does
    # not divide the batch is refused before anything is built
    with pytest.raises(ValueError, match=r"SOLVER.IMS_PER_BATCH \(16\).*SOLVER.GRAD_ACCUM_STEPS \(3\)"):
        DetectionTrainer(build_config("", ["SOLVER.GRAD_ACCUM_STEPS", "3"]))


def test_the_config_picks_the_trainer_of_its_task():
    from res2net_det.engines.detectron2.tasks import ClassifierTrainer, SaliencyTrainer

    assert trainer_class(build_config("configs/faster_rcnn_r2_50.yaml")) is DetectionTrainer
    sod = build_config("configs/sod/poolnet_r2_50_duts.yaml")  # GRAD_ACCUM_STEPS 10: its trainer accumulates
    assert trainer_class(sod) is SaliencyTrainer
    assert trainer_class(build_config("configs/cam/res2net50_finetune.yaml")) is ClassifierTrainer


def test_model_device_auto_becomes_a_device_detectron2_knows():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert build_config("configs/cam/quickstart.yaml").MODEL.DEVICE == expected  # its MODEL.DEVICE is auto
    assert build_config("", ["MODEL.DEVICE", "cpu"]).MODEL.DEVICE == "cpu"


def test_a_config_without_our_trainer_keys_is_refused_by_name():
    from detectron2.config import get_cfg as detectron2_get_cfg

    with pytest.raises(KeyError, match="SOLVER.OPTIMIZER.*add_res2net_det_config"):
        DetectionTrainer(detectron2_get_cfg())
