"""Localisation metrics for class activation maps: the protocol of Choe et al., "Evaluating
Weakly Supervised Object Localization Methods Right" (CVPR 2020), as its evaluator
(clovaai/wsolevaluation) computes the published numbers, and our older "continuous" protocol.

No maintained library computes these, so they are written once here, from the definitions.

Protocol ``"wsol"`` (the default)
---------------------------------
Every convention below is there because the published numbers (the paper's tables and every
later WSOL paper using its code) were computed with it; changing any one moves MaxBoxAcc by up
to a few points, so none is "fixed", including the ones that look like off-by-ones.

* **Maps.** The raw map at the feature resolution, as float64 (the authors' ``t2n`` casts to
  ``np.float``), is resized to the evaluation crop (the image as fed to the model) with bicubic
  interpolation (``cv2.INTER_CUBIC``), then min-max normalised to [0, 1]; a map that is
  constant or contains NaN becomes all zeros (:func:`resize_scoremap`,
  :func:`normalize_scoremap`). OpenCV takes the size as ``(W, H)``; the authors only ever use
  224 x 224, where the order does not matter.
* **8 bits.** The [0, 1] score map is quantised by truncation, ``uint8(map * 255)``, in the
  map's own float type (float64 here; float32 would truncate some pixels differently).
* **Threshold.** A CAM threshold ``tau`` keeps the pixels *strictly above*
  ``int(tau * max(uint8 map))`` (OpenCV ``THRESH_BINARY``): the threshold is relative to the
  map's own 8-bit maximum and truncated to an integer. So ``tau = 0`` drops the pixels at 0
  (at least the map's minimum), and an all-zero map keeps nothing at any ``tau``.
* **Threshold grid.** ``np.arange(0, 1, cam_curve_interval)`` as floats, *not rounded*
  (``0.29`` is ``0.29000000000000004``, and ``int(0.29 * 100)`` would be 28 if it were
  rounded first). The paper's tables use ``cam_curve_interval = 0.01`` (the code's
  ``evaluate_wsol`` default is 0.001).
* **Boxes.** The boxes of the mask's OpenCV contours (``findContours`` with ``RETR_TREE``, so
  the contours of holes count too; ``CHAIN_APPROX_SIMPLE``). Each contour's bounding rectangle
  ``x, y, w, h`` gives the inclusive pixel box ``[x, y, min(x + w, W - 1), min(y + h, H - 1)]``:
  the end ``x + w`` is one pixel past the blob, clipped to the last pixel at the border. So a
  blob inside the map gets a box one pixel too wide and high, while a blob touching the right
  or bottom border (or the whole image) gets its exact box. A mask with no contour gives the
  single box ``[0, 0, 0, 0]`` (the top-left pixel), not "no box".
* **Largest contour.** For MaxBoxAcc only the contour of largest ``cv2.contourArea`` (polygon
  area, the first one on ties) gives a box; MaxBoxAccV2 uses every contour's box.
* **IoU.** Boxes are inclusive pixel boxes: areas ``(x1 - x0 + 1) * (y1 - y0 + 1)`` and the
  intersection likewise; a non-positive union counts as IoU 0. An image counts as localised
  when the best IoU between any of its predicted boxes and any of its ground-truth boxes is
  ``>= delta``.
* **Ground truth.** Boxes are given in the original image's pixels (the authors' metadata) and
  rescaled to the crop, each coordinate multiplied by the crop size, divided by the image size
  (in this order: a product landing on a whole pixel must not become ``55.999...``) and
  truncated with ``int()``.

Metrics (accuracies in percent):

* **BoxAcc(tau, delta)**: the share of images localised at IoU ``delta``;
* **MaxBoxAcc**: ``max_tau BoxAcc(tau, 0.5)``, largest contour only;
* **MaxBoxAccV2**: the mean over ``delta`` in {0.3, 0.5, 0.7} of ``max_tau BoxAcc(tau, delta)``,
  all contours, each ``delta`` at its own best threshold;
* **GT-known Loc**: BoxAcc(tau*, 0.5), largest contour, map of the true class, at a given
  ``tau*`` or by default the best one (then it equals MaxBoxAcc);
* **Top-1 Loc**: the share of images classified right *and* localised at IoU 0.5 at ``tau*``;
* **PxAP** (pixel masks, OpenImages30k): the area under the pixel precision-recall curve of the
  float score map over the data set, ignore pixels left out. Pixels with score ``>= t`` are
  predicted positive for ``t`` in the grid plus 1.0; the area is
  ``sum_k precision_k * (recall_k - recall_(k-1))`` from the highest threshold (recall 0) down,
  as the authors' histogram code sums it;
* **PIoU**: the best pixel IoU ``TP / (TP + FP + FN)`` over the grid, from the same data-set-wide
  counts. The authors' released evaluator has no PIoU; this is the paper's definition (the mask
  IoU at the optimal threshold), computed from the PxAP counts.

Protocol ``"continuous"`` (our earlier definitions, kept by name, never mixed in silently)
-----------------------------------------------------------------------------------------
Maps as the ``grad-cam`` library upsamples them (min-max, bilinear ``cv2.resize``, min-max);
the mask is ``map >= tau`` on floats; a contour's box is ``[x, y, x + w, y + h]`` in continuous
coordinates (it covers its pixels); IoU is the plain continuous one; ground-truth boxes are
rescaled as floats; an empty mask has no box (IoU 0). Same metrics, same grid.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torchvision.ops import box_iou

__all__ = [
    "PROTOCOLS",
    "DEFAULT_CAM_CURVE_INTERVAL",
    "DEFAULT_CAM_THRESHOLDS",
    "IOU_THRESHOLDS_V2",
    "cam_threshold_grid",
    "normalize_scoremap",
    "resize_scoremap",
    "library_upsample",
    "quantize_scoremap",
    "scoremap_boxes",
    "inclusive_box_iou",
    "rescale_boxes",
    "boxes_from_cam",
    "best_iou_per_threshold",
    "wsol_best_iou_per_threshold",
    "centre_prior_cam",
    "WSOLEvaluator",
    "PixelEvaluator",
]

#: ``"wsol"``: the published protocol (clovaai/wsolevaluation); ``"continuous"``: our older one.
PROTOCOLS = ("wsol", "continuous")
DEFAULT_CAM_CURVE_INTERVAL = 0.01
IOU_THRESHOLDS_V2 = (0.3, 0.5, 0.7)


def cam_threshold_grid(cam_curve_interval: float = DEFAULT_CAM_CURVE_INTERVAL) -> np.ndarray:
    """``np.arange(0, 1, cam_curve_interval)``, unrounded, as the authors' evaluator builds it."""
    if not 0 < cam_curve_interval < 1:
        raise ValueError(f"cam_curve_interval must lie in (0, 1), got {cam_curve_interval}")
    return np.arange(0, 1, cam_curve_interval)


#: The paper's CAM threshold grid (``cam_curve_interval`` 0.01).
DEFAULT_CAM_THRESHOLDS = cam_threshold_grid()


def _check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown WSOL protocol {protocol!r}; choose one of {PROTOCOLS}")
    return protocol


# ---------------------------------------------------------------------------- maps
def normalize_scoremap(scoremap: np.ndarray) -> np.ndarray:
    """Min-max normalisation to [0, 1] in the map's float type (float64 for integer input); a
    constant map or one with NaN gives zeros."""
    scoremap = np.asarray(scoremap)
    if not np.issubdtype(scoremap.dtype, np.floating):
        scoremap = scoremap.astype(np.float64)
    if np.isnan(scoremap).any() or scoremap.min() == scoremap.max():
        return np.zeros_like(scoremap)
    shifted = scoremap - scoremap.min()
    return shifted / shifted.max()


def resize_scoremap(raw: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The ``wsol`` protocol's score map: ``raw`` as float64, resized to ``size`` ``(H, W)``
    bicubically, then :func:`normalize_scoremap`. Any positive affine rescaling of ``raw`` (e.g.
    the CAM library's own min-max scaling) gives the same map up to rounding, since both steps
    commute with it."""
    height, width = size
    resized = cv2.resize(np.asarray(raw, np.float64), (width, height), interpolation=cv2.INTER_CUBIC)
    return normalize_scoremap(resized)


def _library_minmax(maps: np.ndarray) -> np.ndarray:
    # the grad-cam library's scaling (pytorch_grad_cam.utils.image.scale_cam_image), eps included
    maps = maps - maps.min()
    return maps / (1e-7 + maps.max())


def library_upsample(raw: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The ``continuous`` protocol's map: what the ``grad-cam`` library returns for one target
    layer (min-max, bilinear ``cv2.resize`` to ``size`` ``(H, W)``, min-max again)."""
    height, width = size
    resized = cv2.resize(_library_minmax(np.asarray(raw, np.float32)), (width, height))
    return _library_minmax(resized).astype(np.float32)


def quantize_scoremap(scoremap: np.ndarray) -> np.ndarray:
    """``uint8(map * 255)``, truncating, computed in the map's own float type (float32 and
    float64 can truncate differently); the map must lie in [0, 1]."""
    scoremap = np.asarray(scoremap)
    if not np.issubdtype(scoremap.dtype, np.floating):
        scoremap = scoremap.astype(np.float64)
    return (scoremap * 255).astype(np.uint8)


def _check_scoremap(scoremap: np.ndarray, index: int) -> np.ndarray:
    scoremap = np.asarray(scoremap)
    if scoremap.ndim != 2:
        raise ValueError(f"score map {index} must be 2-D (H, W), got shape {scoremap.shape}")
    if not np.isfinite(scoremap).all():
        raise ValueError(f"score map {index} contains NaN or inf (normalize_scoremap maps those to zeros)")
    if scoremap.size and (scoremap.min() < 0 or scoremap.max() > 1):
        raise ValueError(f"score map {index} must lie in [0, 1], got [{scoremap.min()}, {scoremap.max()}] "
                         "(use resize_scoremap / normalize_scoremap)")
    return scoremap


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
    _check_protocol(protocol)
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


def centre_prior_cam(height: int, width: int) -> np.ndarray:
    """A baseline "CAM" that knows nothing about the image: ``1 - max(|x - cx| / (W/2), |y - cy| / (H/2))``.

    Its level sets are centred boxes with the image's aspect ratio, from the whole image
    (threshold 0) down to a point, so thresholding it sweeps every centred box; with the best
    threshold it is the best centre-box guess, and at threshold 0 the whole-image guess.
    """
    ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (height / 2)
    xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (width / 2)
    return 1.0 - np.maximum(np.abs(ys)[:, None], np.abs(xs)[None, :])


def _threshold_value(value: float) -> float:
    # grid values such as 0.07000000000000001, shown as 0.07
    return float(round(float(value), 10))


# ---------------------------------------------------------------------------- evaluators
class WSOLEvaluator:
    """Accumulates per-image IoU curves and computes the box metrics of the module docstring.

    Args:
        cam_thresholds: thresholds swept over each [0, 1] map (default: the grid of
            ``cam_curve_interval``).
        iou_thresholds: the IoU levels averaged by MaxBoxAccV2.
        loc_iou: the IoU level of MaxBoxAcc, GT-known Loc and Top-1 Loc.
        protocol: ``"wsol"`` (published) or ``"continuous"``.
        cam_curve_interval: step of the default threshold grid.
    """

    def __init__(
        self,
        cam_thresholds: Optional[Sequence[float]] = None,
        iou_thresholds: Sequence[float] = IOU_THRESHOLDS_V2,
        loc_iou: float = 0.5,
        protocol: str = "wsol",
        cam_curve_interval: float = DEFAULT_CAM_CURVE_INTERVAL,
    ) -> None:
        self.protocol = _check_protocol(protocol)
        if cam_thresholds is None:
            cam_thresholds = cam_threshold_grid(cam_curve_interval)
        self.cam_thresholds = np.asarray(cam_thresholds, np.float64)
        self.iou_thresholds = tuple(iou_thresholds)
        self.loc_iou = loc_iou
        self.reset()

    def reset(self) -> None:
        self._single: List[np.ndarray] = []
        self._multi: List[np.ndarray] = []
        self._correct: List[Optional[bool]] = []

    def process(
        self,
        cams: np.ndarray,
        gt_boxes: Sequence[np.ndarray],
        gt_labels: Optional[Sequence[int]] = None,
        pred_labels: Optional[Sequence[int]] = None,
        image_sizes: Optional[Sequence[Tuple[int, int]]] = None,
    ) -> None:
        """Adds a batch: ``cams (N, H, W)`` in [0, 1] (maps of the true class at the crop's size).

        ``gt_boxes[i]`` is ``(K, 4)`` ``[x0, y0, x1, y1]``; with ``image_sizes`` (``(H, W)`` of
        each original image) the boxes are in the original image and are rescaled to the map as
        the protocol does, else they are taken as already in the map's pixels. Without labels (a
        baseline with no classifier) Top-1 Loc is not computed.
        """
        if len(cams) != len(gt_boxes):
            raise ValueError(f"{len(cams)} CAMs but {len(gt_boxes)} box sets")
        if image_sizes is not None and len(image_sizes) != len(cams):
            raise ValueError(f"{len(cams)} CAMs but {len(image_sizes)} image sizes")
        for i, cam in enumerate(cams):
            boxes = np.asarray(gt_boxes[i]).reshape(-1, 4)
            if image_sizes is not None:
                boxes = rescale_boxes(boxes, image_sizes[i], cam.shape[-2:], self.protocol)
            if self.protocol == "wsol":
                single, multi = wsol_best_iou_per_threshold(_check_scoremap(cam, i), boxes, self.cam_thresholds)
            else:
                single, multi = best_iou_per_threshold(cam, boxes, self.cam_thresholds)
            self._single.append(single)
            self._multi.append(multi)
            if gt_labels is None or pred_labels is None:
                self._correct.append(None)
            else:
                self._correct.append(int(gt_labels[i]) == int(pred_labels[i]))

    def per_image(self, image_ids: Sequence, loc_cam_threshold: Optional[float] = None) -> Dict[str, np.ndarray]:
        """Per image and threshold, whether the box hits (``loc_hit``: largest contour at
        ``loc_iou``; ``v2_hit``: all contours at each of ``iou_thresholds``), and ``correct``:
        what :mod:`res2net_det.evaluation.bootstrap` resamples (``loc_index`` -1: the best threshold)."""
        if len(image_ids) != len(self._single):
            raise ValueError(f"{len(image_ids)} image ids for {len(self._single)} evaluated images")
        single, multi = np.stack(self._single), np.stack(self._multi)
        out = {"image_ids": np.asarray([str(i) for i in image_ids]), "loc_hit": single >= self.loc_iou,
               "v2_hit": np.stack([multi >= iou for iou in self.iou_thresholds]),
               "loc_index": np.array(-1 if loc_cam_threshold is None
                                     else int(np.argmin(np.abs(self.cam_thresholds - loc_cam_threshold))))}
        if all(c is not None for c in self._correct):
            out["correct"] = np.array(self._correct, bool)
        return out

    def box_accuracy(self, all_contours: bool, iou: float) -> np.ndarray:
        """BoxAcc(tau, iou) in percent for every threshold, shape ``(T,)``."""
        curves = np.stack(self._multi if all_contours else self._single)
        return 100.0 * (curves >= iou).mean(axis=0)

    def evaluate(self, loc_cam_threshold: Optional[float] = None) -> Dict[str, object]:
        """The metrics as a flat dict (percentages; thresholds as fractions).

        Args:
            loc_cam_threshold: ``tau*`` for GT-known / Top-1 Loc (the nearest grid value);
                default the best threshold.
        """
        if not self._single:
            raise RuntimeError("no images were processed")
        single = self.box_accuracy(False, self.loc_iou)
        best = int(np.argmax(single))  # the first best threshold, as max() over the curve
        if loc_cam_threshold is None:
            loc_index = best
        else:
            loc_index = int(np.argmin(np.abs(self.cam_thresholds - loc_cam_threshold)))
        located = np.stack(self._single)[:, loc_index] >= self.loc_iou
        out: Dict[str, object] = {
            "protocol": self.protocol,
            "num_images": len(self._single),
            "max_box_acc": float(single[best]),
            "max_box_acc_threshold": _threshold_value(self.cam_thresholds[best]),
            "gt_known_loc": float(100.0 * located.mean()),
            "loc_cam_threshold": _threshold_value(self.cam_thresholds[loc_index]),
        }
        if all(c is not None for c in self._correct):
            correct = np.array(self._correct, bool)
            out["top1_cls"] = float(100.0 * correct.mean())
            out["top1_loc"] = float(100.0 * (correct & located).mean())
        v2 = []
        for iou in self.iou_thresholds:
            acc = self.box_accuracy(True, iou)
            key = f"iou{int(round(iou * 100))}"
            out[f"max_box_acc_v2_{key}"] = float(acc.max())
            out[f"max_box_acc_v2_{key}_threshold"] = _threshold_value(self.cam_thresholds[int(np.argmax(acc))])
            v2.append(acc.max())
        out["max_box_acc_v2"] = float(np.mean(v2))
        return out


class PixelEvaluator:
    """PxAP and PIoU over a data set of score maps and pixel masks with ignore regions.

    Counts, over all images, the foreground and background pixels whose score falls between
    consecutive thresholds of the grid (+ 1.0 and 2.0 as upper edges, so a score of exactly 1
    and the empty prediction are points of the curve, as in the authors' evaluator).

    Args:
        cam_thresholds: the threshold grid (default: that of ``cam_curve_interval``).
        cam_curve_interval: step of the default grid.
    """

    def __init__(
        self, cam_thresholds: Optional[Sequence[float]] = None,
        cam_curve_interval: float = DEFAULT_CAM_CURVE_INTERVAL,
    ) -> None:
        if cam_thresholds is None:
            cam_thresholds = cam_threshold_grid(cam_curve_interval)
        self.cam_thresholds = np.asarray(cam_thresholds, np.float64)
        # bin i holds scores in [edge_i, edge_(i+1)); the last, [2, 3], holds none
        self._edges = np.concatenate([self.cam_thresholds, [1.0, 2.0, 3.0]])
        self.reset()

    def reset(self) -> None:
        self._foreground = np.zeros(len(self._edges) - 1, np.int64)
        self._background = np.zeros(len(self._edges) - 1, np.int64)
        self.num_images = 0
        self._per_image: List[Tuple[np.ndarray, np.ndarray]] = []

    def process(
        self, scoremaps: np.ndarray, foreground_masks: Sequence[np.ndarray],
        ignore_masks: Optional[Sequence[Optional[np.ndarray]]] = None,
    ) -> None:
        """Adds a batch: ``scoremaps (N, H, W)`` in [0, 1]; masks ``(H, W)`` booleans (foreground
        = any object instance; ignore pixels are left out of both counts)."""
        if len(scoremaps) != len(foreground_masks):
            raise ValueError(f"{len(scoremaps)} score maps but {len(foreground_masks)} masks")
        for i, scoremap in enumerate(scoremaps):
            scoremap = _check_scoremap(scoremap, i)
            foreground = np.asarray(foreground_masks[i], bool)
            ignore = None if ignore_masks is None else ignore_masks[i]
            ignore = np.zeros_like(foreground) if ignore is None else np.asarray(ignore, bool)
            if foreground.shape != scoremap.shape or ignore.shape != scoremap.shape:
                raise ValueError(f"image {i}: score map {scoremap.shape}, mask {foreground.shape}, "
                                 f"ignore mask {ignore.shape} must have one shape")
            counted = ~ignore
            fg = np.histogram(scoremap[foreground & counted], bins=self._edges)[0]
            bg = np.histogram(scoremap[~foreground & counted], bins=self._edges)[0]
            self._foreground += fg
            self._background += bg
            self._per_image.append((fg, bg))
            self.num_images += 1

    def per_image(self, image_ids: Sequence) -> Dict[str, np.ndarray]:
        """Each image's foreground / background pixel histograms over the threshold bins (their
        sums are the data set's counts): what :mod:`res2net_det.evaluation.bootstrap` resamples."""
        if len(image_ids) != self.num_images:
            raise ValueError(f"{len(image_ids)} image ids for {self.num_images} evaluated images")
        return {"image_ids": np.asarray([str(i) for i in image_ids]), "hist_edges": self._edges,
                "fg_hist": np.array([f for f, _ in self._per_image], np.int64).reshape(self.num_images, -1),
                "bg_hist": np.array([b for _, b in self._per_image], np.int64).reshape(self.num_images, -1)}

    def curves(self) -> Dict[str, np.ndarray]:
        """Pixel counts at each threshold ``t`` (pixels with score ``>= t``), thresholds from
        high (2.0: nothing predicted) to low (0.0): ``thresholds, tp, fp, positives``."""
        tp = np.cumsum(self._foreground[::-1])
        fp = np.cumsum(self._background[::-1])
        return {"thresholds": self._edges[-2::-1], "tp": tp, "fp": fp, "positives": int(self._foreground.sum())}

    def evaluate(self) -> Dict[str, object]:
        if not self.num_images:
            raise RuntimeError("no images were processed")
        c = self.curves()
        tp, fp, positives = c["tp"].astype(np.float64), c["fp"].astype(np.float64), c["positives"]
        if positives == 0:
            raise RuntimeError("no foreground pixel in the evaluated masks: PxAP is undefined")
        predicted = tp + fp
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = tp / positives
        # a step with no prediction adds no recall, so precision 0 there changes nothing
        pxap = float(100.0 * np.sum(precision[1:] * np.diff(recall)))
        on_grid = c["thresholds"] < 1.0
        iou = tp[on_grid] / (positives + fp[on_grid])
        best = int(np.argmax(iou))
        return {"pxap": pxap, "piou": float(100.0 * iou[best]),
                "piou_threshold": _threshold_value(c["thresholds"][on_grid][best]), "num_mask_images": self.num_images}
