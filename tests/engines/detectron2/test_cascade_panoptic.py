"""Cascade R-CNN, Cascade Mask R-CNN and Panoptic FPN on the Detectron2 engine: the shipped configs
build and train a few iterations on the CPU, narrowed by overrides, with finite losses; the panoptic
one on the generated panoptic shapes, evaluated with PQ (slow). Skipped without Detectron2."""
import json
import math

import pytest

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)
from res2net_det.engines import default_argument_parser  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_trainer, setup  # noqa: E402

# Narrow, from scratch (trainable BN, no weights to download), small images, one thread.
SMALL = [
    "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.RES2NET.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0",
    "MODEL.RES2NET.WIDTH_PER_GROUP", "4", "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_MASK_HEAD.CONV_DIM", "16", "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "200", "MODEL.RPN.POST_NMS_TOPK_TRAIN", "64",
    "MODEL.RPN.PRE_NMS_TOPK_TEST", "200", "MODEL.RPN.POST_NMS_TOPK_TEST", "32",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32", "MODEL.ROI_HEADS.NUM_CLASSES", "3",
    "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "192", "INPUT.MIN_SIZE_TEST", "128",
    "INPUT.MAX_SIZE_TEST", "192", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.BASE_LR", "0.002", "SOLVER.STEPS", "()",
    "SOLVER.WARMUP_ITERS", "1", "SOLVER.LOG_PERIOD", "1", "SOLVER.CHECKPOINT_PERIOD", "0",
    "DATALOADER.NUM_WORKERS", "0", "TEST.EVAL_PERIOD", "0", "NUM_THREADS", "1",
]
PANOPTIC = ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", "3", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32",
            "DATASETS.TRAIN", "('shapes_panoptic_train_separated',)"]


def _train(config: str, tmp_path, *opts: str):
    args = default_argument_parser().parse_args(
        ["--config-file", config, *SMALL, *opts, "OUTPUT_DIR", str(tmp_path / "run")])
    cfg = setup(args)
    trainer = build_trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.json").read_text().splitlines()]
    losses = [{k: v for k, v in line.items() if k.startswith("loss") or k == "total_loss"} for line in lines]
    return cfg, trainer, losses, getattr(trainer, "_last_eval_results", None)


@pytest.mark.parametrize("config, stage_losses", [
    ("cascade_rcnn_r2_101.yaml", {"loss_cls_stage2", "loss_box_reg_stage2"}),
    ("cascade_mask_rcnn_r2_101.yaml", {"loss_cls_stage2", "loss_mask"}),
    ("cascade_rcnn_r_101.yaml", {"loss_cls_stage0"}),
])
def test_cascade_configs_train_with_finite_losses(config, stage_losses, tmp_path):
    cfg, trainer, losses, _ = _train(config, tmp_path, "SOLVER.MAX_ITER", "2", "DATASETS.TRAIN", "('shapes_train',)",
                                     "DATASETS.TEST", "()")
    assert type(trainer.model.roi_heads).__name__ == "CascadeROIHeads"
    assert trainer.model.roi_heads.num_cascade_stages == 3
    assert len(trainer.model.backbone.bottom_up.layer3) == 23  # Res2Net-101 / ResNet-101
    assert len(losses) == 2 and stage_losses <= set(losses[-1])
    assert all(math.isfinite(v) for line in losses for v in line.values())


def test_panoptic_fpn_trains_on_the_generated_panoptic_shapes(tmp_path):
    cfg, trainer, losses, _ = _train("panoptic_fpn_r2_101_3x.yaml", tmp_path, *PANOPTIC, "SOLVER.MAX_ITER", "2",
                                     "DATASETS.TEST", "()")
    assert type(trainer.model).__name__ == "PanopticFPN"
    assert {"loss_sem_seg", "loss_mask", "loss_rpn_cls"} <= set(losses[-1])
    assert all(math.isfinite(v) for line in losses for v in line.values())


@pytest.mark.slow
def test_panoptic_fpn_reports_pq_on_the_generated_val_split(tmp_path):
    pytest.importorskip("panopticapi", reason="PQ needs panopticapi (https://github.com/cocodataset/panopticapi)")
    _, _, losses, results = _train("panoptic_fpn_r2_101_3x.yaml", tmp_path, *PANOPTIC, "SOLVER.MAX_ITER", "20",
                                   "DATASETS.TEST", "('shapes_panoptic_val_separated',)")
    assert all(math.isfinite(v) for line in losses for v in line.values())
    written = json.loads((tmp_path / "run" / "inference" / "shapes_panoptic_val_separated" /
                          "panoptic_eval_results.json").read_text())
    pq = written["panoptic_seg"]
    print("\nPanoptic FPN (narrow R2-101, 20 iterations from scratch) on shapes_panoptic_val: "
          + ", ".join(f"{name} {written.get(task, {}).get(key)}" for name, task, key in (
              ("PQ", "panoptic_seg", "PQ"), ("PQ things", "panoptic_seg", "PQ_th"),
              ("PQ stuff", "panoptic_seg", "PQ_st"),
              ("box AP", "bbox", "AP"), ("mask AP", "segm", "AP"), ("stuff mIoU", "sem_seg", "mIoU"))))
    assert math.isfinite(pq["PQ"]) and pq["PQ_st"] > 0  # stuff is found after a few steps (sky / ground)
    assert results["panoptic_seg"]["PQ"] == pq["PQ"]  # one test set: Detectron2 returns its results directly
