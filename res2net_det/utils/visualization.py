"""Drawing detections on images (OpenCV), for the quickstart's pictures and ``tools/demo.py``."""
from __future__ import annotations

import colorsys
from typing import Optional, Sequence

import cv2
import numpy as np

__all__ = ["class_colour", "draw_detections"]


def class_colour(class_id: int) -> tuple:
    """A distinct, stable RGB colour per class (golden-ratio hue steps)."""
    h = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(
    image_rgb: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    class_names: Optional[Sequence[str]] = None,
    score_thresh: float = 0.5,
    masks: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Returns an RGB copy of ``image_rgb`` with boxes (XYXY), labels and scores >= ``score_thresh``.

    Small images are upscaled (to 512 px on the short side) so labels stay legible.
    """
    img = np.ascontiguousarray(image_rgb).copy()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale = max(1.0, 512 / min(img.shape[:2]))
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        boxes = boxes * scale
        if masks is not None and len(masks):
            masks = np.stack([cv2.resize(m.astype(np.uint8), (img.shape[1], img.shape[0]),
                                         interpolation=cv2.INTER_NEAREST) for m in masks])
    thickness = max(1, round(min(img.shape[:2]) / 250))
    for i in np.argsort(-np.asarray(scores)):
        if scores[i] < score_thresh:
            continue
        cls = int(classes[i])
        colour = class_colour(cls)
        if masks is not None and len(masks):
            m = masks[i].astype(bool)
            img[m] = (0.5 * img[m] + 0.5 * np.array(colour)).astype(np.uint8)
        x0, y0, x1, y1 = [int(round(v)) for v in boxes[i]]
        cv2.rectangle(img, (x0, y0), (x1, y1), colour, thickness)
        name = class_names[cls] if class_names and cls < len(class_names) else str(cls)
        label = f"{name} {scores[i]:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, thickness)
        ty = max(y0, th + base)
        cv2.rectangle(img, (x0, ty - th - base), (x0 + tw, ty), colour, -1)
        cv2.putText(img, label, (x0, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, (0, 0, 0),
                    thickness, cv2.LINE_AA)
    return img
