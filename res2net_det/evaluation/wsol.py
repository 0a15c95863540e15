"""Localisation metrics for class activation maps, following Choe et al., "Evaluating Weakly
Supervised Object Localization Methods Right" (CVPR 2020).

No maintained library computes these, so they are written once here. Definitions:

* a CAM (scaled to [0, 1]) is binarised at each threshold ``tau`` of ``cam_thresholds``
  (``cam >= tau``); boxes are the bounding boxes of the mask's contours (OpenCV);
* **BoxAcc(tau, delta)**: the share of images for which some predicted box has IoU >= ``delta``
  with some ground-truth box of the image;
* **MaxBoxAcc**: ``max_tau BoxAcc(tau, 0.5)`` with the box of the largest contour only;
* **MaxBoxAccV2**: the mean over ``delta`` in {0.3, 0.5, 0.7} of ``max_tau BoxAcc(tau, delta)``,
  with the boxes of all contours (each ``delta`` picks its own best threshold);
* **GT-known Loc**: BoxAcc(tau*, 0.5), largest-contour box, CAM of the true class, at the
  threshold ``tau*`` given by the user or, by default, the best one (then it equals MaxBoxAcc);
* **Top-1 Loc**: the share of images classified right *and* localised at IoU >= 0.5 at ``tau*``.

Accuracies are percentages. Boxes are ``[x0, y0, x1, y1]`` in continuous pixel coordinates; a
contour's box covers its pixels, ``[x, y, x + w, y + h]``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torchvision.ops import box_iou

__all__ = [
    "DEFAULT_CAM_THRESHOLDS",
    "IOU_THRESHOLDS_V2",
    "boxes_from_cam",
    "best_iou_per_threshold",
    "centre_prior_cam",
    "WSOLEvaluator",
]

#: The paper's CAM threshold grid (``cam_curve_interval`` 0.01).
DEFAULT_CAM_THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)
IOU_THRESHOLDS_V2 = (0.3, 0.5, 0.7)


def boxes_from_cam(cam: np.ndarray, threshold: float, all_contours: bool = True) -> np.ndarray:
    """Boxes ``(K, 4)`` around the contours of ``cam >= threshold``; ``(0, 4)`` if the mask is empty.

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
    """``(largest_contour, all_contours)``: for each threshold, the best IoU between the CAM's
    box(es) and any ground-truth box (0 when the mask is empty). Both have shape ``(T,)``."""
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


class WSOLEvaluator:
    """Accumulates per-image IoU curves and computes the WSOL metrics of the module docstring.

    Args:
        cam_thresholds: thresholds swept over each [0, 1] CAM.
        iou_thresholds: the IoU levels averaged by MaxBoxAccV2.
        loc_iou: the IoU level of MaxBoxAcc, GT-known Loc and Top-1 Loc.
    """

    def __init__(
        self,
        cam_thresholds: Sequence[float] = DEFAULT_CAM_THRESHOLDS,
        iou_thresholds: Sequence[float] = IOU_THRESHOLDS_V2,
        loc_iou: float = 0.5,
    ) -> None:
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
    ) -> None:
        """Adds a batch: ``cams (N, H, W)`` in [0, 1] (CAMs of the true class), boxes in CAM pixels.

        Without labels (a baseline with no classifier) Top-1 Loc is not computed.
        """
        if len(cams) != len(gt_boxes):
            raise ValueError(f"{len(cams)} CAMs but {len(gt_boxes)} box sets")
        for i, cam in enumerate(cams):
            single, multi = best_iou_per_threshold(cam, np.asarray(gt_boxes[i]), self.cam_thresholds)
            self._single.append(single)
            self._multi.append(multi)
            if gt_labels is None or pred_labels is None:
                self._correct.append(None)
            else:
                self._correct.append(int(gt_labels[i]) == int(pred_labels[i]))

    def box_accuracy(self, all_contours: bool, iou: float) -> np.ndarray:
        """BoxAcc(tau, iou) in percent for every threshold, shape ``(T,)``."""
        curves = np.stack(self._multi if all_contours else self._single)
        return 100.0 * (curves >= iou).mean(axis=0)

    def evaluate(self, loc_cam_threshold: Optional[float] = None) -> Dict[str, object]:
        """The metrics as a flat dict (percentages; thresholds as fractions).

        Args:
            loc_cam_threshold: ``tau*`` for GT-known / Top-1 Loc; default the best threshold.
        """
        if not self._single:
            raise RuntimeError("no images were processed")
        single = self.box_accuracy(False, self.loc_iou)
        best = int(np.argmax(single))
        if loc_cam_threshold is None:
            loc_index = best
        else:
            loc_index = int(np.argmin(np.abs(self.cam_thresholds - loc_cam_threshold)))
        located = np.stack(self._single)[:, loc_index] >= self.loc_iou
        out: Dict[str, object] = {
            "num_images": len(self._single),
            "max_box_acc": float(single[best]),
            "max_box_acc_threshold": float(self.cam_thresholds[best]),
            "gt_known_loc": float(100.0 * located.mean()),
            "loc_cam_threshold": float(self.cam_thresholds[loc_index]),
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
            out[f"max_box_acc_v2_{key}_threshold"] = float(self.cam_thresholds[int(np.argmax(acc))])
            v2.append(acc.max())
        out["max_box_acc_v2"] = float(np.mean(v2))
        return out
