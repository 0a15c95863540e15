"""The results of one finished run, read from the files its evaluators wrote.

A run is an ``OUTPUT_DIR`` of either engine (or of a CAM / saliency tool). :func:`read_run` reads
every results file it finds (task: file -> columns of :data:`TASK_COLUMNS`):

* detection: ``inference/<data set>/coco_eval_results.json`` -> AP, AP50, AP75, APs, APm, APl (+ mask AP)
* detection-voc: ``inference/<data set>/voc_eval_results.json`` -> mAP (the year's AP at IoU 0.5: VOC07
  11-point), all-point mAP, AP, AP75
* saliency: ``inference/<data set>/saliency_results.json`` (or ``saliency_results.json``) -> maxF, MAE,
  S-measure, maxE
* cam: ``cam_results.json`` or ``results.json`` (``{"settings", "rows"}``) -> Top-1 Loc, GT-known Loc,
  MaxBoxAccV2, deletion, insertion
* panoptic: ``inference/<data set>/panoptic_eval_results.json`` -> PQ (things, stuff), box AP, mask AP, stuff mIoU

and notes where each evaluator left its per-image data (:mod:`.per_image`), which the paired
bootstrap of :mod:`.compare` resamples. A run that is missing, still training or holds no results
raises :class:`RunNotFinishedError`.
"""
from __future__ import annotations

import glob
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..utils.io import read_json_file
from .per_image import per_image_path

__all__ = ["RunNotFinishedError", "RunResults", "TASK_COLUMNS", "TASK_TITLES", "read_run"]


class RunNotFinishedError(ValueError):
    """A run folder that is missing, unfinished or holds no results."""


# task -> [(column title, key in the metrics dict read from the run, higher is better, decimals)]
# (percentages with one decimal, saliency scores and AUCs in [0, 1] with three)
TASK_COLUMNS: Dict[str, List[Tuple[str, str, bool, int]]] = {
    "detection": [("AP", "AP", True, 1), ("AP50", "AP50", True, 1), ("AP75", "AP75", True, 1),
                  ("APs", "APs", True, 1), ("APm", "APm", True, 1), ("APl", "APl", True, 1),
                  ("mask AP", "mask_AP", True, 1)],
    "detection-voc": [("mAP", "AP50", True, 1), ("mAP (all-point)", "AP50_allpoint", True, 1), ("AP", "AP", True, 1),
                      ("AP75", "AP75", True, 1)],
    "saliency": [("maxF", "maxF", True, 3), ("MAE", "MAE", False, 3), ("S-measure", "Sm", True, 3),
                 ("maxE", "maxE", True, 3)],
    "panoptic": [("PQ", "PQ", True, 1), ("PQ things", "PQ_th", True, 1), ("PQ stuff", "PQ_st", True, 1),
                 ("box AP", "AP", True, 1), ("mask AP", "mask_AP", True, 1), ("mIoU", "mIoU", True, 1)],
    "cam": [("Top-1 Loc", "top1_loc", True, 1), ("GT-known Loc", "gt_known_loc", True, 1),
            ("MaxBoxAccV2", "max_box_acc_v2", True, 1), ("Deletion", "deletion_auc", False, 3),
            ("Insertion", "insertion_auc", True, 3)],
}
TASK_TITLES = {"detection": "detection (COCO AP, %)", "detection-voc": "detection (PASCAL VOC, %)",
                "saliency": "salient object detection", "cam": "CAM localisation",
                "panoptic": "panoptic segmentation (COCO PQ, AP, %)"}


@dataclass
class RunResults:
    label: str
    run_dir: str
    # (task, data set or CAM method) -> metrics
    results: "OrderedDict[Tuple[str, str], Dict[str, Optional[float]]]" = field(default_factory=OrderedDict)
    # (task, data set or CAM method) -> [(per-image file, section, metric prefix)]: where the
    # evaluator left the per-image data the bootstrap resamples (the file may be missing)
    per_image: Dict[Tuple[str, str], List[Tuple[str, str, str]]] = field(default_factory=dict)


def _number(value: Any) -> Optional[float]:
    return (float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            else None)


def _unfinished_checkpoint(run_dir: str) -> Optional[str]:
    """The last checkpoint's name when a trainer (either engine) stopped before its final one."""
    marker = os.path.join(run_dir, "last_checkpoint")
    if not os.path.isfile(marker):
        return None
    with open(marker, encoding="utf-8") as f:
        name = f.read().strip()
    return None if os.path.basename(name) == "model_final.pth" else name


def _read_saliency(path: str, run: "RunResults") -> None:
    data = read_json_file(path, "saliency results")
    for method, per_dataset in data.items():
        for dataset, entry in per_dataset.items():
            key = ("saliency", dataset if len(data) == 1 else f"{dataset} [{method}]")
            run.results[key] = {k: _number(v) for k, v in entry.get("metrics", {}).items()}
            run.per_image[key] = [(per_image_path(path), f"{method}/{dataset}", "")]


def read_run(run_dir: str, label: Optional[str] = None) -> RunResults:
    """The results of one finished run; :class:`RunNotFinishedError` naming the folder when it is
    missing, still training (its ``last_checkpoint`` is not ``model_final.pth``) or holds no
    results file."""
    label = label or os.path.basename(os.path.normpath(run_dir))
    if not os.path.isdir(run_dir):
        raise RunNotFinishedError(f"run folder not found: {run_dir}")
    last = _unfinished_checkpoint(run_dir)
    if last:
        raise RunNotFinishedError(
            f"{run_dir}: unfinished run (its last checkpoint is {last}, not model_final.pth); finish it "
            "with tools/train_net.py ... --resume (or tools/reproduce.py ... --resume), or leave it out"
        )
    run = RunResults(label, run_dir)
    inference = os.path.join(run_dir, "inference")
    for path in sorted(glob.glob(os.path.join(inference, "*", "coco_eval_results.json"))):
        data = read_json_file(path, "COCO results")
        metrics = {k: _number(v) for k, v in data.get("bbox", {}).items()}
        if "segm" in data:
            metrics["mask_AP"] = _number(data["segm"].get("AP"))
        key = ("detection", os.path.basename(os.path.dirname(path)))
        run.results[key] = metrics
        run.per_image[key] = [(per_image_path(path), "bbox", "")] + \
            ([(per_image_path(path), "segm", "mask_")] if "segm" in data else [])
    for path in sorted(glob.glob(os.path.join(inference, "*", "panoptic_eval_results.json"))):
        data = read_json_file(path, "panoptic results")
        metrics = {k: _number(data.get("panoptic_seg", {}).get(k)) for k in ("PQ", "PQ_th", "PQ_st")}
        metrics.update(AP=_number(data.get("bbox", {}).get("AP")), mask_AP=_number(data.get("segm", {}).get("AP")),
                       mIoU=_number(data.get("sem_seg", {}).get("mIoU")))
        run.results[("panoptic", os.path.basename(os.path.dirname(path)))] = metrics
    for path in sorted(glob.glob(os.path.join(inference, "*", "voc_eval_results.json"))):
        data = read_json_file(path, "VOC results")
        key = ("detection-voc", os.path.basename(os.path.dirname(path)))
        run.results[key] = {k: _number(v) for k, v in data.get("bbox", {}).items()}
        run.per_image[key] = [(per_image_path(path), "bbox", "")]
    for path in sorted(glob.glob(os.path.join(inference, "*", "saliency_results.json"))) + \
            sorted(glob.glob(os.path.join(run_dir, "saliency_results.json"))):
        _read_saliency(path, run)
    for name in ("cam_results.json", "results.json"):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            continue
        data = read_json_file(path, "CAM results")
        if not (isinstance(data, dict) and isinstance(data.get("rows"), list)):
            continue
        # the model-free rows are the same in every run
        rows = [r for r in data["rows"] if r.get("model") != "baseline"]
        models = list(OrderedDict.fromkeys(r.get("model") for r in rows))
        for row in rows:
            method = str(row.get("method"))
            key = ("cam", method if len(models) == 1 else f"{method} [{row.get('model')}]")
            run.results[key] = {k: _number(v) for k, v in row.items()}
            if isinstance(row.get("per_image"), str):
                run.per_image[key] = [(per_image_path(path), row["per_image"], "")]
        break
    if not run.results:
        raise RunNotFinishedError(
            f"{run_dir}: no results (inference/<data set>/coco_eval_results.json, voc_eval_results.json, "
            "panoptic_eval_results.json, saliency_results.json, or a CAM results.json): the run has not finished its "
            "evaluation, or this is not a run folder"
        )
    return run
