"""Boxes from thresholded score maps, and their IoU with the ground truth, under both protocols.

``"wsol"`` (the published one, :mod:`.wsol` explains every convention): 8-bit thresholds,
``RETR_TREE`` contours, end-clipped inclusive pixel boxes (:func:`scoremap_boxes`,
:func:`inclusive_box_iou`, :func:`wsol_best_iou_per_threshold`); ``"continuous"``: float
thresholds and continuous boxes (:func:`boxes_from_cam`, :func:`best_iou_per_threshold`). Both
rescale the ground truth to the evaluated crop with :func:`rescale_boxes`.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
import torch
from torchvision.ops import box_iou

from .wsol_scoremaps import DEFAULT_CAM_THRESHOLDS, check_protocol, quantize_scoremap

__all__ = [
    "scoremap_boxes",
    "inclusive_box_iou",
    "rescale_boxes",
    "wsol_best_iou_per_threshold",
    "boxes_from_cam",
    "best_iou_per_threshold",
]


# ---------------------------------------------------------------------------- boxes (wsol)
def scoremap_boxes(
    scoremap: np.ndarray, thresholds: Sequence[float] = DEFAULT_CAM_THRESHOLDS
) -> List[Tuple[np.ndarray, int]]:
    """For each threshold: ``(boxes (K, 4) int64, index of the largest contour's box)`` under the
    ``wsol`` protocol (8-bit threshold, ``RETR_TREE`` contours, end-clipped inclusive boxes;
    ``[[0, 0, 0, 0]]`` and index 0 when nothing survives)."""
    height, width = scoremap.shape
    quantized = quantize_scoremap(scoremap)
    peak = int(quantized.max())
    cache: Dict[int, Tuple[np.ndarray, int]] = {}  # several taus share an integer threshold
    out = []
    for tau in thresholds:
        level = int(tau * peak)
        if level not in cache:
            mask = (quantized > level).astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
            if not contours:
                cache[level] = (np.zeros((1, 4), np.int64), 0)
            else:
                rects = np.array([cv2.boundingRect(c) for c in contours], np.int64)  # x, y, w, h
                boxes = np.stack([rects[:, 0], rects[:, 1],
                                  np.minimum(rects[:, 0] + rects[:, 2], width - 1),
                                  np.minimum(rects[:, 1] + rects[:, 3], height - 1)], axis=1)
                areas = [cv2.contourArea(c) for c in contours]
                cache[level] = (boxes, int(np.argmax(areas)))  # argmax: the first on ties, as max()
        out.append(cache[level])
    return out


def inclusive_box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """``(Na, Nb)`` IoU of inclusive pixel boxes ``[x0, y0, x1, y1]`` (a box ``[x, y, x, y]`` is
    one pixel); a non-positive union gives 0."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 4)[:, None, :]
    b = np.asarray(boxes_b, np.float64).reshape(-1, 4)[None, :, :]
    inter_w = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    inter_h = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    intersection = inter_w * inter_h
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def rescale_boxes(
    boxes: np.ndarray, image_size: Tuple[int, int], crop_size: Tuple[int, int], protocol: str = "wsol"
) -> np.ndarray:
    """Boxes ``(K, 4)`` from an image of ``image_size`` ``(H, W)`` to the crop ``(H, W)``:
    scaled and truncated to integers (``wsol``) or scaled as floats (``continuous``)."""
    check_protocol(protocol)
    (h, w), (out_h, out_w) = image_size, crop_size
    # multiply, then divide: a coordinate landing on a whole pixel stays whole before int()
    scaled = (np.asarray(boxes, np.float64).reshape(-1, 4) * np.array([out_w, out_h, out_w, out_h], np.float64)
              / np.array([w, h, w, h], np.float64))
    if protocol == "wsol":
        return np.trunc(scaled).astype(np.int64)
    return scaled.astype(np.float32)


def wsol_best_iou_per_threshold(
    scoremap: np.ndarray, gt_boxes: np.ndarray, thresholds: Sequence[float] = DEFAULT_CAM_THRESHOLDS
) -> Tuple[np.ndarray, np.ndarray]:
    """``(largest_contour, all_contours)`` best IoU with any ground-truth box per threshold, under
    the ``wsol`` protocol; ``gt_boxes`` are inclusive boxes in the map's pixels."""
    gt = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    if len(gt) == 0:
        raise ValueError("an image needs at least one ground-truth box")
    single = np.zeros(len(thresholds))
    multi = np.zeros(len(thresholds))
    for i, (boxes, largest) in enumerate(scoremap_boxes(scoremap, thresholds)):
        best_per_box = inclusive_box_iou(boxes, gt).max(axis=1)
        single[i] = best_per_box[largest]
        multi[i] = best_per_box.max()
    return single, multi


# ---------------------------------------------------------------------------- boxes (continuous)
def boxes_from_cam(cam: np.ndarray, threshold: float, all_contours: bool = True) -> np.ndarray:
    """``continuous`` protocol: boxes ``(K, 4)`` around the contours of ``cam >= threshold`` in
    continuous coordinates ``[x, y, x + w, y + h]``; ``(0, 4)`` if the mask is empty.

    With ``all_contours=False`` only the largest contour (by area) gives a box.
    """
    mask = (cam >= threshold).astype(np.uint8)
    # RETR_TREE like the paper's code: inner contours (around holes) are candidates too.
    contours, _ = cv2.findContours(mask, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 4), np.float32)
    if not all_contours:
        contours = [max(contours, key=cv2.contourArea)]
    boxes = np.array([cv2.boundingRect(c) for c in contours], np.float32)  # x, y, w, h
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def best_iou_per_threshold(
    cam: np.ndarray, gt_boxes: np.ndarray, thresholds: Sequence[float] = DEFAULT_CAM_THRESHOLDS
) -> Tuple[np.ndarray, np.ndarray]:
    """``continuous`` protocol: ``(largest_contour, all_contours)``: for each threshold, the best
    IoU between the CAM's box(es) and any ground-truth box (0 when the mask is empty). Both have
    shape ``(T,)``."""
    gt = torch.as_tensor(np.asarray(gt_boxes, np.float32).reshape(-1, 4))
    if len(gt) == 0:
        raise ValueError("an image needs at least one ground-truth box")
    result = []
    for all_contours in (False, True):
        per_threshold = [boxes_from_cam(cam, t, all_contours) for t in thresholds]
        counts = [len(b) for b in per_threshold]
        best = np.zeros(len(thresholds), np.float64)
        if sum(counts):
            ious = box_iou(torch.from_numpy(np.concatenate(per_threshold)), gt).amax(dim=1).numpy()
            starts = np.cumsum([0] + counts[:-1])
            for i, (start, count) in enumerate(zip(starts, counts)):
                if count:
                    best[i] = ious[start:start + count].max()
        result.append(best)
    return result[0], result[1]
