"""PASCAL VOC detection metrics: the devkit's AP, as Detectron2's ``PascalVOCDetectionEvaluator``
computes it, without Detectron2.

Definitions (the official devkit, ``voc_eval.py`` of py-faster-rcnn that Detectron2 copies):
detections of a class are sorted by score and matched greedily to the unmatched ground-truth box
of the same image with the largest IoU, a match counting when IoU > threshold; a detection whose
best box is ``difficult`` counts neither as true nor as false positive, and difficult boxes are not
in the recall's denominator. AP is the **11-point** interpolated precision (mean of the maximum
precision at recall >= 0, 0.1, ..., 1; the VOC2007 metric) or the **all-point** area under the
monotone precision envelope (VOC2010+). IoU uses VOC's pixel convention (``+1`` on widths of
1-based inclusive boxes), which equals the plain continuous IoU of the records' boxes (VOC boxes
are read as ``[xmin - 1, ymin - 1, xmax, ymax]``).

Reported as Detectron2 does (percent): ``AP50`` (the data set's year metric at IoU 0.5: VOC07's
11-point for 2007, all-point for 2012), ``AP75``, ``AP`` (mean over IoU 0.50:0.05:0.95), plus
``AP50_11point`` and ``AP50_allpoint`` (both definitions at IoU 0.5, whatever the year) and
``AP50-<class>``. A class without any non-difficult ground truth has no AP (NaN, left out of
the means; Detectron2 would average a NaN).
"""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..data.catalog import DatasetCatalog
from ..utils import comm
from ..utils.io import write_json_file
from .per_image import per_image_path, ranked_detections, save_per_image

logger = logging.getLogger(__name__)

__all__ = ["voc_ap", "voc_matches", "voc_precision_recall", "write_voc_per_image", "evaluate_voc", "PascalVOCEvaluator",
           "format_voc_table"]

IOU_THRESHOLDS = tuple(t / 100 for t in range(50, 100, 5))


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool) -> float:
    """The devkit's AP of one precision/recall curve (points in detection order)."""
    recall, precision = np.asarray(recall, dtype=np.float64), np.asarray(precision, dtype=np.float64)
    if use_07_metric:
        # 11 points: the best precision at recall >= t, for t = 0, 0.1, ..., 1 (0 where none reaches t).
        # The points exactly as the devkit makes them (np.arange: t = 0.30000000000000004, ...), so a
        # recall of exactly 3/10 misses t = 0.3 here as it does there and in Detectron2.
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            reached = recall >= t
            ap += (precision[reached].max() if reached.any() else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the precision envelope (non-increasing)
    changed = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changed + 1] - mrec[changed]) * mpre[changed + 1]))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    iw = np.maximum(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0.0)
    ih = np.maximum(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0.0)
    inter = iw * ih
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return inter / np.maximum(union, np.finfo(np.float64).eps)


def voc_matches(
    gt: Mapping[Any, Tuple[np.ndarray, np.ndarray]],
    detections: Sequence[Tuple[Any, float, Sequence[float]]],
    iou_threshold: float = 0.5,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The devkit's greedy matching of one class: ``(order, tp, ignored, npos)``, ``order`` the
    detections by score (stable), ``tp`` / ``ignored`` booleans in that order (a detection whose
    best box is difficult is ignored: neither true nor false), ``npos`` the non-difficult boxes.
    Arguments as :func:`voc_precision_recall`."""
    npos = int(sum((~np.asarray(d, dtype=bool)).sum() for _, d in gt.values()))
    order = np.argsort(-np.asarray([d[1] for d in detections], dtype=np.float64), kind="stable")
    matched = {image_id: np.zeros(len(boxes), dtype=bool) for image_id, (boxes, _) in gt.items()}
    tp, ignored = np.zeros(len(order), bool), np.zeros(len(order), bool)
    for rank, i in enumerate(order):
        image_id, _, box = detections[i]
        boxes, difficult = gt.get(image_id, (np.zeros((0, 4)), np.zeros(0, dtype=bool)))
        if len(boxes) == 0:
            continue
        overlaps = _iou(np.asarray(box, dtype=np.float64), np.asarray(boxes, dtype=np.float64))
        j = int(np.argmax(overlaps))
        if overlaps[j] > iou_threshold:
            if difficult[j]:
                ignored[rank] = True  # neither true nor false
            elif not matched[image_id][j]:
                tp[rank] = True
                matched[image_id][j] = True
    return order, tp, ignored, npos


def voc_precision_recall(
    gt: Mapping[Any, Tuple[np.ndarray, np.ndarray]],
    detections: Sequence[Tuple[Any, float, Sequence[float]]],
    iou_threshold: float = 0.5,
) -> Tuple[np.ndarray, np.ndarray, int]:
    """Recall and precision after each detection of one class, and the number of positives.

    Args:
        gt: ``{image_id: (boxes N x 4 XYXY, difficult N bools)}`` of this class, every image of the
            data set (images without a box of the class may be left out).
        detections: ``(image_id, score, XYXY box)`` of this class; sorted here by score
            (stable, so equal scores keep their order).
    """
    order, tp, ignored, npos = voc_matches(gt, detections, iou_threshold)
    fp = ~tp & ~ignored
    tp, fp = np.cumsum(tp, dtype=np.float64), np.cumsum(fp, dtype=np.float64)
    recall = tp / npos if npos else np.full(len(tp), np.nan)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return recall, precision, npos


def evaluate_voc(
    records: Sequence[dict],
    detections: Mapping[int, Sequence[Tuple[Any, float, Sequence[float]]]],
    class_names: Sequence[str],
    use_07_metric: bool = True,
    per_image: Optional[Dict[str, dict]] = None,
) -> Dict[str, float]:
    """VOC metrics (percent) of ``detections`` (``{contiguous class id: [(image_id, score, XYXY)]}``)
    against the records' boxes (``XYWH_ABS``, ``difficult`` flags); see the module docstring.

    ``per_image``: a dict that receives under ``"bbox"`` the matches at every IoU threshold as a
    ranked-detections section (:mod:`res2net_det.evaluation.per_image`), groups = classes."""
    gt: Dict[int, Dict[Any, Tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for rec in records:
        per_class: Dict[int, Tuple[list, list]] = defaultdict(lambda: ([], []))
        for ann in rec.get("annotations", []):
            x, y, w, h = ann["bbox"]
            per_class[ann["category_id"]][0].append([x, y, x + w, y + h])
            per_class[ann["category_id"]][1].append(bool(ann.get("difficult", 0) or ann.get("iscrowd", 0)))
        for cls, (boxes, difficult) in per_class.items():
            gt[cls][rec["image_id"]] = (np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                                        np.asarray(difficult, dtype=bool))
    known = {rec["image_id"] for rec in records}
    unknown = {d[0] for dets in detections.values() for d in dets} - known
    if unknown:
        raise KeyError(f"detections for images not in the data set: {sorted(map(str, unknown))[:5]}")

    ap = {}  # (threshold, 11-point?) -> per-class AP
    for t in IOU_THRESHOLDS:
        for eleven in {use_07_metric, True, False} if t == 0.5 else {use_07_metric}:
            values = []
            for cls in range(len(class_names)):
                recall, precision, npos = voc_precision_recall(gt.get(cls, {}), list(detections.get(cls, [])), t)
                values.append(voc_ap(recall, precision, eleven) * 100 if npos else float("nan"))
            ap[(t, eleven)] = values
    missing = [class_names[c] for c, v in enumerate(ap[(0.5, use_07_metric)]) if np.isnan(v)]
    if missing:
        logger.warning("no (non-difficult) ground truth of classes %s: they have no AP and are left out", missing)

    def mean(values: List[float]) -> float:
        finite = [v for v in values if not np.isnan(v)]
        return float(np.mean(finite)) if finite else float("nan")

    per_threshold = [mean(ap[(t, use_07_metric)]) for t in IOU_THRESHOLDS]
    metrics = {
        "AP": mean(per_threshold),
        "AP50": mean(ap[(0.5, use_07_metric)]),
        "AP75": mean(ap[(0.75, use_07_metric)]),
        "AP50_11point": mean(ap[(0.5, True)]),
        "AP50_allpoint": mean(ap[(0.5, False)]),
    }
    for name, value in zip(class_names, ap[(0.5, use_07_metric)]):
        metrics[f"AP50-{name}"] = value
    if per_image is not None:
        per_image["bbox"] = _ranked_voc(records, gt, detections, len(class_names), class_names)
    return metrics


def _ranked_voc(records, gt, detections, num_classes: int, class_names: Sequence[str]) -> dict:
    index = {rec["image_id"]: i for i, rec in enumerate(records)}
    det_group, det_image, tps, igs = [], [], [], []
    pos = [(cls, index[image_id], int((~difficult).sum())) for cls, per_image in gt.items()
           for image_id, (_, difficult) in per_image.items() if (~difficult).any()]
    for cls in range(num_classes):
        dets = list(detections.get(cls, []))
        if not dets:
            continue
        flags = [voc_matches(gt.get(cls, {}), dets, t) for t in IOU_THRESHOLDS]
        order = flags[0][0]
        det_group.append(np.full(len(order), cls))
        det_image.append(np.array([index[dets[i][0]] for i in order], np.int64))
        tps.append(np.stack([f[1] for f in flags]))
        igs.append(np.stack([f[2] for f in flags]))
    empty = np.zeros((len(IOU_THRESHOLDS), 0), bool)
    pos_arr = np.array(pos, np.int64).reshape(-1, 3)
    return ranked_detections(
        [rec["image_id"] for rec in records], list(class_names), IOU_THRESHOLDS,
        np.concatenate(det_group) if det_group else np.zeros(0, np.int64),
        np.concatenate(det_image) if det_image else np.zeros(0, np.int64),
        np.concatenate(tps, axis=1) if tps else empty, np.concatenate(igs, axis=1) if igs else empty,
        pos_arr[:, 0], pos_arr[:, 1], pos_arr[:, 2])


def write_voc_per_image(dataset_name: str, detections: Sequence[dict], path: str) -> str:
    """The devkit's matches of ``detections`` (``image_id``, contiguous ``category_id``, ``score``,
    ``bbox`` XYXY) on ``dataset_name`` of our catalog (its records keep the difficult flags; the
    metadata's ``year`` picks the metric, as :class:`PascalVOCEvaluator` does) as ranked detections
    in ``path``, for an engine whose VOC evaluator keeps no per-image data (Detectron2's); returns ``path``."""
    if dataset_name not in DatasetCatalog:
        raise KeyError(f"{dataset_name!r} is not in res2net_det's catalog, whose VOC reader keeps the difficult flags")
    meta = DatasetCatalog.metadata(dataset_name)
    records, class_names = DatasetCatalog.get(dataset_name), meta["thing_classes"]
    use_07_metric = int(meta.get("year", 2007)) == 2007
    by_class: Dict[int, list] = defaultdict(list)
    for d in detections:
        by_class[d["category_id"]].append((d["image_id"], d["score"], d["bbox"]))
    per_image: Dict[str, dict] = {}
    evaluate_voc(records, by_class, class_names, use_07_metric=use_07_metric, per_image=per_image)
    return save_per_image(path, per_image, {"use_07_metric": use_07_metric})


def format_voc_table(metrics: Dict[str, float], title: str) -> str:
    head = ("AP50", "AP50_11point", "AP50_allpoint", "AP", "AP75")
    lines = [title, " | ".join(f"{m:>13}" for m in head), " | ".join(f"{metrics[m]:13.2f}" for m in head)]
    per_class = [(k[5:], v) for k, v in metrics.items() if k.startswith("AP50-")]
    if per_class:
        width = max(len(n) for n, _ in per_class)
        lines += [f"{'class':<{width}} | AP50"] + [f"{n:<{width}} | {v:6.2f}" for n, v in per_class]
    return "\n".join(lines)


class PascalVOCEvaluator:
    """Detectron2's ``PascalVOCDetectionEvaluator`` on the torchvision engine (its protocol:
    ``reset``, ``process``, ``evaluate``), for data sets with ``evaluator_type "pascal_voc"``.

    ``evaluate()`` returns ``{"bbox": metrics}`` (see :func:`evaluate_voc`; the 11-point AP for a
    2007 data set, as the metadata's ``year`` says) and writes ``voc_eval_results.json`` and the
    detections (``voc_detections.json``: ``image_id``, ``category_id`` (contiguous), ``score``,
    ``bbox`` XYXY) to ``output_dir``.
    """

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None) -> None:
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self._detections: List[dict] = []

    def reset(self) -> None:
        self._detections = []

    def process(self, inputs: List[dict], outputs: List[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            inst = out["instances"]
            boxes = inst["pred_boxes"].detach().cpu().numpy().astype(np.float64).tolist()
            scores = inst["scores"].detach().cpu().tolist()
            classes = inst["pred_classes"].detach().cpu().tolist()
            for box, score, cls in zip(boxes, scores, classes):
                self._detections.append({"image_id": inp["image_id"], "category_id": int(cls),
                                         "score": float(score), "bbox": [round(v, 3) for v in box]})

    def evaluate(self) -> Dict[str, Dict[str, float]]:
        detections = [d for part in comm.all_gather(self._detections) for d in part]
        if not comm.is_main_process():
            return {}
        meta = DatasetCatalog.metadata(self.dataset_name)
        records = DatasetCatalog.get(self.dataset_name)
        year = int(meta.get("year", 2007))
        by_class: Dict[int, list] = defaultdict(list)
        for d in detections:
            by_class[d["category_id"]].append((d["image_id"], d["score"], d["bbox"]))
        per_image: Dict[str, dict] = {}
        metrics = evaluate_voc(records, by_class, meta["thing_classes"], use_07_metric=year == 2007,
                               per_image=per_image if self.output_dir else None)
        logger.info("\n%s", format_voc_table(
            metrics, f"{self.dataset_name} VOC{year} AP (%), AP50 {'11-point' if year == 2007 else 'all-point'}, "
                     f"{len(records)} images:"))
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            write_json_file(os.path.join(self.output_dir, "voc_detections.json"), detections)
            path = os.path.join(self.output_dir, "voc_eval_results.json")
            write_json_file(path, {"bbox": metrics}, indent=2)
            save_per_image(per_image_path(path), per_image, {"use_07_metric": year == 2007})
        return {"bbox": metrics}
