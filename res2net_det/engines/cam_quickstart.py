"""The CAM quickstart: train a small Res2Net classifier on the generated shapes set with the
torchvision engine's generic trainer (``configs/cam/quickstart.yaml``), evaluate its CAMs
against model-free baselines, and draw the figure.

The classifier is a real Res2Net (hierarchical 4-split blocks, stage-block average pool) made
small through the config: one block per stage (instead of 3-4-6-3), base width 8 instead of
26, and res5 dilated (output stride 16) so the 64-pixel inputs still give a 4x4 CAM. No
pretrained weights are used.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import Dict, Optional, Sequence

import torch

from ..config.classification import classifier_kwargs_from_cfg
from ..data.catalog import DatasetCatalog
from ..evaluation.cam_benchmark import evaluate_cam_methods, format_table
from ..modeling.cam import save_model_card
from ..evaluation.cam_figure import visualize_cams
from .torchvision.registry import get_task
from .torchvision.train_net import setup
from .torchvision.trainer import Trainer

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CONFIG", "run_cam_quickstart"]

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                              "configs", "cam", "quickstart.yaml")
# The card's base variant; every constructor argument is overridden by the config's kwargs.
_CARD_BASE = "res2net50_26w_4s"


def _final_train_loss(output_dir: str) -> Optional[float]:
    """``total_loss`` of the last training line of ``metrics.json`` (the trainer's log)."""
    path = os.path.join(output_dir, "metrics.json")
    loss = None
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                loss = json.loads(line).get("total_loss", loss)
    return loss


def run_cam_quickstart(
    config_file: str = DEFAULT_CONFIG,
    opts: Sequence[str] = (),
    methods: Sequence[str] = ("gradcam", "gradcam++"),
    faithfulness_images: int = 16,
    figure_images: int = 8,
) -> Dict[str, object]:
    """Trains with ``config_file`` (+ ``KEY VALUE`` ``opts``), evaluates, and returns the summary
    (also written to ``OUTPUT_DIR/summary.json``).

    The table is in the published WSOL protocol (:mod:`res2net_det.evaluation.wsol`); each method
    has a second row, labelled ``(aligned)``, with its maps shifted half a stride onto the
    evidence (:func:`res2net_det.modeling.cam.align_cam_to_input`).

    Writes, besides the trainer's files (``model_final.pth``, ``metrics.json``, TensorBoard
    events): ``res2net_small.{json,pth}`` (a model card for the CAM tools), ``results.json``
    (the evaluation), ``cams.png`` (the figure) and ``summary.json``.
    """
    start = time.perf_counter()
    cfg = setup(argparse.Namespace(config_file=config_file, opts=list(opts)))
    if cfg.MODEL.META_ARCHITECTURE != "Res2NetClassifier":
        raise ValueError(f"{config_file}: the CAM quickstart trains a classifier (MODEL.META_ARCHITECTURE "
                         f"Res2NetClassifier), got {cfg.MODEL.META_ARCHITECTURE!r}")
    output_dir = cfg.OUTPUT_DIR
    trainer = Trainer(cfg, get_task(cfg.MODEL.META_ARCHITECTURE))
    trainer.resume_or_load(resume=False)
    train_start = time.perf_counter()
    results = trainer.train()  # ends with the top-1 evaluation on DATASETS.TEST
    train_seconds = round(time.perf_counter() - train_start, 1)
    if len(cfg.DATASETS.TEST) != 1:
        raise ValueError(f"{config_file}: the CAM quickstart evaluates one data set, DATASETS.TEST is {cfg.DATASETS.TEST}")
    accuracy = results["classification"]["top1"]
    model = trainer.model.backbone.eval()

    val_name = cfg.DATASETS.TEST[0]
    val = DatasetCatalog.get(val_name)
    class_names = DatasetCatalog.metadata(val_name)["thing_classes"]
    size = tuple(cfg.INPUT.CLASSIFIER.RESIZE)
    kwargs = classifier_kwargs_from_cfg(cfg)
    kwargs.pop("num_classes")
    card = save_model_card(os.path.join(output_dir, "res2net_small.json"), model, _CARD_BASE,
                           len(class_names), kwargs, label="res2net-small",
                           extra={"image_size": size[0], "classes": class_names, "config": config_file})
    logger.info("validation accuracy %.1f%% after %s s of training", accuracy, train_seconds)

    # the published WSOL protocol, plus each method's half-stride-aligned maps as labelled extra rows
    result = evaluate_cam_methods({"res2net-small": model}, methods, val, size,
                                  faithfulness_images=faithfulness_images, progress=False, align_to_input=True)
    table = format_table(result["rows"])
    with open(os.path.join(output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)

    rows = {(r["model"], r["method"]): r for r in result["rows"]}
    # the figure draws aligned maps, so at the aligned rows' thresholds
    thresholds = {f"res2net-small / {m}": rows[("res2net-small", f"{m} (aligned)")]["loc_cam_threshold"]
                  for m in methods}
    figure = visualize_cams(os.path.join(output_dir, "cams.png"), {"res2net-small": model}, methods,
                            val[:figure_images], size, thresholds, class_names)
    summary = {
        "train": {"iterations": cfg.SOLVER.MAX_ITER, "images_per_batch": cfg.SOLVER.IMS_PER_BATCH,
                  "seconds": train_seconds},
        "final_train_loss": _final_train_loss(output_dir),
        "val_accuracy": accuracy,
        f"{methods[0]}_gt_known_loc": rows.get(("res2net-small", methods[0]), {}).get("gt_known_loc"),
        f"{methods[0]}_max_box_acc_v2": rows[("res2net-small", methods[0])]["max_box_acc_v2"],
        f"{methods[0]}_aligned_gt_known_loc": rows[("res2net-small", f"{methods[0]} (aligned)")]["gt_known_loc"],
        "protocol": result["settings"]["protocol"],
        "baseline_centre_box_gt_known_loc": rows[("baseline", "centre box")]["gt_known_loc"],
        "baseline_centre_box_max_box_acc_v2": rows[("baseline", "centre box")]["max_box_acc_v2"],
        "baseline_whole_image_gt_known_loc": rows[("baseline", "whole image")]["gt_known_loc"],
        "model_card": card,
        "results": os.path.join(output_dir, "results.json"),
        "figure": figure,
        "table": table,
        "seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    with open(os.path.join(output_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary
