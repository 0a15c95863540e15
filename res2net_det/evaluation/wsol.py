"""Localisation metrics for class activation maps: the protocol of Choe et al., "Evaluating
Weakly Supervised Object Localization Methods Right" (CVPR 2020), as its evaluator
(clovaai/wsolevaluation) computes the published numbers, and our older "continuous" protocol.

No maintained library computes these, so they are written once here, from the definitions: the
score maps in :mod:`.wsol_scoremaps`, the boxes and their IoU in :mod:`.wsol_boxes`, and here the
evaluators that accumulate them into the metrics.

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

import numpy as np

from .wsol_boxes import (
    best_iou_per_threshold,
    boxes_from_cam,
    inclusive_box_iou,
    rescale_boxes,
    scoremap_boxes,
    wsol_best_iou_per_threshold,
)
from .wsol_scoremaps import (
    DEFAULT_CAM_CURVE_INTERVAL,
    DEFAULT_CAM_THRESHOLDS,
    PROTOCOLS,
    cam_threshold_grid,
    centre_prior_cam,
    check_protocol,
    check_scoremap,
    library_upsample,
    normalize_scoremap,
    quantize_scoremap,
    resize_scoremap,
)

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

IOU_THRESHOLDS_V2 = (0.3, 0.5, 0.7)


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
        self.protocol = check_protocol(protocol)
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
                single, multi = wsol_best_iou_per_threshold(check_scoremap(cam, i), boxes, self.cam_thresholds)
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
            scoremap = check_scoremap(scoremap, i)
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
