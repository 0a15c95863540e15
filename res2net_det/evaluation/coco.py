"""COCO detection metrics with pycocotools' ``COCOeval``, behind Detectron2's evaluator protocol.

``reset()``, ``process(inputs, outputs)``, ``evaluate()``: outputs are Detectron2-style
``{"instances": {"pred_boxes" (XYXY, original image), "scores", "pred_classes" (contiguous ids)
[, "pred_masks"]}}``. ``evaluate()`` writes ``coco_instances_results.json`` (the detections, in
COCO's result format), runs COCOeval on them against the data set's annotation file, prints a
table and writes ``coco_eval_results.json``. Numbers are in percent, as Detectron2 reports them.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..data.catalog import DatasetCatalog
from ..data.image_io import output_names, read_image
from ..utils import comm
from ..utils.io import write_json_file
from ..utils.visualization import draw_detections, save_image
from .per_image import coco_ranked_detections, per_image_path, save_per_image

logger = logging.getLogger(__name__)

__all__ = ["COCOEvaluator", "instances_to_coco_json", "evaluate_coco_results", "format_table",
           "write_detection_pictures", "write_coco_per_image"]

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def instances_to_coco_json(instances: Dict[str, Any], image_id: int,
                           contiguous_to_dataset_id: Dict[int, int]) -> List[dict]:
    """One image's predictions in COCO result format (bbox XYWH, dataset category ids)."""
    boxes = instances["pred_boxes"].detach().cpu().numpy().astype(np.float64)
    if boxes.size == 0:
        return []
    boxes[:, 2:] -= boxes[:, :2]
    scores = instances["scores"].detach().cpu().tolist()
    classes = instances["pred_classes"].detach().cpu().tolist()
    rles = None
    if "pred_masks" in instances:
        from pycocotools import mask as mask_util

        masks = instances["pred_masks"].detach().cpu().numpy().astype(np.uint8)
        rles = [mask_util.encode(np.asfortranarray(m)) for m in masks]
        for r in rles:
            r["counts"] = r["counts"].decode("utf-8")
    results = []
    for i, (box, score, cls) in enumerate(zip(boxes.tolist(), scores, classes)):
        res = {"image_id": image_id, "category_id": contiguous_to_dataset_id[int(cls)],
               "bbox": [round(v, 3) for v in box], "score": round(float(score), 5)}
        if rles is not None:
            res["segmentation"] = rles[i]
        results.append(res)
    return results


def _load_gt(gt_json: str):
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(gt_json)


def _matched(coco_gt, results: List[dict], iou_type: str, img_ids: Optional[Sequence[int]]):
    """A ``COCOeval`` after ``evaluate()`` (the per-image matches), its output captured."""
    from pycocotools.cocoeval import COCOeval

    if iou_type == "segm":
        results = [r for r in results if "segmentation" in r]
    else:
        results = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
        if img_ids is not None:
            ev.params.imgIds = sorted(set(img_ids))
        ev.evaluate()
    return ev


def write_coco_per_image(gt_json: str, results: List[dict], iou_types: Sequence[str], img_ids: Optional[Sequence[int]],
                         path: str) -> Optional[str]:
    """pycocotools' per-image matches of ``results`` for each IoU type, as ranked detections in
    ``path`` (:mod:`res2net_det.evaluation.per_image`), for an engine whose evaluator does not keep
    its ``COCOeval`` (Detectron2's); None when there is nothing to match."""
    if not results:
        return None
    coco_gt = _load_gt(gt_json)
    sections = {t: coco_ranked_detections(_matched(coco_gt, results, t, img_ids)) for t in iou_types}
    return save_per_image(path, sections, {"gt_json": gt_json})


def evaluate_coco_results(
    gt_json: str, results: List[dict], iou_type: str = "bbox",
    img_ids: Optional[Sequence[int]] = None, class_names: Optional[Sequence[str]] = None,
    per_image: Optional[Dict[str, dict]] = None,
) -> Dict[str, float]:
    """COCOeval of ``results`` against ``gt_json``: AP, AP50, AP75, APs, APm, APl and ``AP-<class>``.

    ``per_image``: a dict that receives, under ``iou_type``, COCOeval's per-image matches as a
    ranked-detections section (:func:`res2net_det.evaluation.per_image.coco_ranked_detections`)."""
    coco_gt = _load_gt(gt_json)
    if "annotations" not in coco_gt.dataset:
        # An image-info file (COCO test-dev): there is nothing to score against, and COCOeval
        # would print AP -1 (nan) and let the run "succeed".
        raise ValueError(
            f"can't evaluate on {gt_json}: it has no 'annotations' (an image-info file such as COCO "
            "test-dev?). Remove it from DATASETS.TEST, or submit coco_instances_results.json to the "
            "benchmark's server"
        )
    if not results:
        logger.warning("no predictions: every %s metric is 0", iou_type)
        return {m: 0.0 for m in METRIC_NAMES}
    ev = _matched(coco_gt, results, iou_type, img_ids)
    if per_image is not None:
        per_image[iou_type] = coco_ranked_detections(ev)
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        ev.accumulate()
        ev.summarize()
    logger.info("COCOeval %s:\n%s", iou_type, summary.getvalue())
    metrics = {m: float(ev.stats[i] * 100) if ev.stats[i] >= 0 else float("nan") for i, m in enumerate(METRIC_NAMES)}
    # precision: [IoU thresholds, recall points, classes, area ranges, max detections]
    precision = ev.eval["precision"]
    cat_ids = ev.params.catIds
    names = class_names or [coco_gt.cats[c]["name"] for c in cat_ids]
    for k, name in enumerate(names):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        metrics[f"AP-{name}"] = float(np.mean(p) * 100) if p.size else float("nan")
    return metrics


def format_table(metrics: Dict[str, float], title: str) -> str:
    """The summary metrics on one row and per-category AP below, as text."""
    lines = [title]
    head = [m for m in METRIC_NAMES if m in metrics]
    lines.append(" | ".join(f"{m:>6}" for m in head))
    lines.append(" | ".join(f"{metrics[m]:6.2f}" for m in head))
    per_cat = [(k[3:], v) for k, v in metrics.items() if k.startswith("AP-")]
    if per_cat:
        width = max(len(n) for n, _ in per_cat)
        lines.append(f"{'category':<{width}} | AP")
        lines += [f"{n:<{width}} | {v:6.2f}" for n, v in per_cat]
    return "\n".join(lines)


class COCOEvaluator:
    """Detectron2's ``COCOEvaluator`` protocol on pycocotools.

    Args:
        dataset_name: a registered data set whose metadata has ``json_file``.
        output_dir: where the detections and the metrics JSON go (None: nowhere).
        tasks: ("bbox",) or ("bbox", "segm"); by default from what the outputs hold.
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None,
                 tasks: Optional[Sequence[str]] = None) -> None:
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self.tasks = tuple(tasks) if tasks else None
        self._predictions: List[dict] = []
        self._image_ids: List[int] = []

    def reset(self) -> None:
        self._predictions = []
        self._image_ids = []

    def _id_map(self) -> Dict[int, int]:
        meta = DatasetCatalog.metadata(self.dataset_name)
        if "thing_dataset_id_to_contiguous_id" not in meta:
            raise KeyError(f"data set {self.dataset_name!r} has no category map; load it before evaluating")
        return {v: int(k) for k, v in meta["thing_dataset_id_to_contiguous_id"].items()}

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        id_map = self._id_map()
        for inp, out in zip(inputs, outputs):
            self._image_ids.append(inp["image_id"])
            self._predictions += instances_to_coco_json(out["instances"], inp["image_id"], id_map)
            if self.tasks is None:
                self.tasks = ("bbox", "segm") if "pred_masks" in out["instances"] else ("bbox",)

    def evaluate(self) -> Dict[str, Dict[str, float]]:
        predictions = [p for part in comm.all_gather(self._predictions) for p in part]
        image_ids = [i for part in comm.all_gather(self._image_ids) for i in part]
        if not comm.is_main_process():
            return {}
        meta = DatasetCatalog.metadata(self.dataset_name)
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            path = os.path.join(self.output_dir, "coco_instances_results.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(predictions, f)
            logger.info("saved %d detections to %s", len(predictions), path)
        results, per_image = {}, {}
        for task in self.tasks or ("bbox",):
            metrics = evaluate_coco_results(meta["json_file"], predictions, task, image_ids,
                                            meta.get("thing_classes"), per_image=per_image)
            results[task] = metrics
            table = format_table(metrics, f"{self.dataset_name} {task} AP (%), {len(image_ids)} images:")
            logger.info("\n%s", table)
        if self.output_dir:
            # Strict JSON: an AP pycocotools can't compute (no object of a size) is null, not NaN.
            path = os.path.join(self.output_dir, "coco_eval_results.json")
            write_json_file(path, results, indent=2)
            if per_image:  # what tools/compare_runs.py resamples for its intervals
                save_per_image(per_image_path(path), per_image, {"gt_json": meta["json_file"]})
        return results


def _numpy(value) -> np.ndarray:
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


def write_detection_pictures(
    records: Sequence[Mapping[str, Any]],
    predict: Callable[[Mapping[str, Any], np.ndarray], Mapping[str, Any]],
    output_dir: str,
    class_names: Optional[Sequence[str]] = None,
    score_thresh: float = 0.5,
) -> List[str]:
    """Draws each record's detections and writes ``output_dir/<image stem>.png``; returns the paths.

    The one picture writer of the detection task (``TEST.VIS_IMAGES`` on both engines,
    ``tools/demo.py``). ``predict(record, image_rgb)`` returns ``{"pred_boxes" (XYXY in the
    image), "scores", "pred_classes"[, "pred_masks"]}`` as tensors or arrays. Two records with
    one file stem raise before anything is written, so no picture overwrites another.
    """
    names = output_names([r["file_name"] for r in records], ".png", "picture")
    paths = []
    for record, name in zip(records, names):
        image = read_image(record["file_name"], "RGB")
        found = predict(record, image)
        drawn = draw_detections(
            image, _numpy(found["pred_boxes"]), _numpy(found["scores"]), _numpy(found["pred_classes"]),
            class_names, score_thresh,
            masks=_numpy(found["pred_masks"]) if "pred_masks" in found else None,
        )
        paths.append(save_image(os.path.join(output_dir, name), drawn))
    return paths
