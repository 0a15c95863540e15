"""Drawing on images (OpenCV): the one set of primitives every picture of the project uses.

Detection pictures (``TEST.VIS_IMAGES`` on both engines, ``tools/demo.py``), the CAM figure's
boxes and any task's side-by-side panels are built from :func:`upscale_for_drawing`,
:func:`draw_box`, :func:`draw_label`, :func:`overlay_mask`, :func:`side_by_side` and
:func:`save_image`. A leaf module: numpy and OpenCV only. Images are ``H x W x 3`` uint8 RGB.
"""
from __future__ import annotations

import colorsys
import os
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    "GREEN",
    "RED",
    "class_colour",
    "draw_box",
    "draw_boxes",
    "draw_detections",
    "draw_label",
    "line_thickness",
    "overlay_mask",
    "save_image",
    "side_by_side",
    "upscale_for_drawing",
]

Colour = Tuple[int, int, int]
GREEN: Colour = (0, 255, 0)
RED: Colour = (255, 0, 0)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def class_colour(class_id: int) -> Colour:
    """A distinct, stable RGB colour per class (golden-ratio hue steps)."""
    h = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def upscale_for_drawing(image: np.ndarray, min_side: int = 512) -> Tuple[np.ndarray, float]:
    """``(copy of image, scale)``: small images are enlarged (bilinear) so their short side is
    ``min_side``, so lines and labels stay legible; multiply coordinates by ``scale``."""
    img = np.ascontiguousarray(image).copy()
    scale = max(1.0, min_side / min(img.shape[:2]))
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    return img, scale


def line_thickness(image: np.ndarray) -> int:
    """Line width that reads well on ``image`` (1 px per 250 px of short side)."""
    return max(1, round(min(image.shape[:2]) / 250))


def draw_box(image: np.ndarray, box: Sequence[float], colour: Colour, thickness: int = 1) -> np.ndarray:
    """Draws an XYXY box outline on ``image`` in place (coordinates rounded to pixels); returns it."""
    x0, y0, x1, y1 = [int(round(float(v))) for v in box]
    cv2.rectangle(image, (x0, y0), (x1, y1), tuple(int(c) for c in colour), thickness)
    return image


def draw_boxes(image: np.ndarray, boxes, colour: Colour, thickness: int = 1) -> np.ndarray:
    """:func:`draw_box` for every row of an ``(N, 4)`` array; returns ``image``."""
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        draw_box(image, box, colour, thickness)
    return image


def draw_label(image: np.ndarray, text: str, x: float, y: float, colour: Colour, thickness: int = 1) -> np.ndarray:
    """Writes ``text`` in black on a ``colour`` patch whose bottom-left is ``(x, y)`` (moved down
    when it would leave the image); in place, returns ``image``."""
    scale = 0.4 * thickness
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    x0, ty = int(round(x)), max(int(round(y)), th + base)
    cv2.rectangle(image, (x0, ty - th - base), (x0 + tw, ty), tuple(int(c) for c in colour), -1)
    cv2.putText(image, text, (x0, ty - base), _FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return image


def overlay_mask(image: np.ndarray, mask: np.ndarray, colour: Colour, alpha: float = 0.5) -> np.ndarray:
    """Blends ``colour`` into the pixels of ``image`` where ``mask`` is set (resized to the image
    with nearest neighbour when sizes differ); in place, returns ``image``."""
    if mask.shape[:2] != image.shape[:2]:
        mask = cv2.resize(mask.astype(np.uint8), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    m = mask.astype(bool)
    image[m] = ((1 - alpha) * image[m] + alpha * np.array(colour)).astype(np.uint8)
    return image


def side_by_side(panels: Sequence[np.ndarray], gap: int = 4, height: Optional[int] = None) -> np.ndarray:
    """Panels (RGB, or grayscale shown as grey) resized to one height and joined left to right with
    a white ``gap``; e.g. image | prediction | ground truth."""
    height = height or max(p.shape[0] for p in panels)
    out = []
    for i, p in enumerate(panels):
        p = np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p
        if p.shape[0] != height:
            p = cv2.resize(p, (max(1, round(p.shape[1] * height / p.shape[0])), height), interpolation=cv2.INTER_LINEAR)
        if i:
            out.append(np.full((height, gap, 3), 255, np.uint8))
        out.append(p.astype(np.uint8))
    return np.concatenate(out, axis=1)


def save_image(path: str, image_rgb: np.ndarray) -> str:
    """Writes an RGB (or grayscale) uint8 image (format from the extension; folders created);
    raises ``OSError`` naming the path when OpenCV can't write it. Returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR) if image_rgb.ndim == 3 else image_rgb
    try:
        written = cv2.imwrite(path, image)
    except cv2.error as e:  # OpenCV raises for an unknown extension, returns False for I/O errors
        raise OSError(f"could not write image {path}: {e}") from e
    if not written:
        raise OSError(f"could not write image {path} (unwritable folder or full disk?)")
    return path


def draw_detections(
    image_rgb: np.ndarray,
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    class_names: Optional[Sequence[str]] = None,
    score_thresh: float = 0.5,
    masks: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Returns an RGB copy of ``image_rgb`` with boxes (XYXY), masks, labels and scores >= ``score_thresh``.

    Small images are upscaled (to 512 px on the short side) so labels stay legible.
    """
    img, scale = upscale_for_drawing(image_rgb)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale
    thickness = line_thickness(img)
    for i in np.argsort(-np.asarray(scores)):
        if scores[i] < score_thresh:
            continue
        cls = int(classes[i])
        colour = class_colour(cls)
        if masks is not None and len(masks):
            overlay_mask(img, masks[i], colour)
        draw_box(img, boxes[i], colour, thickness)
        name = class_names[cls] if class_names and cls < len(class_names) else str(cls)
        draw_label(img, f"{name} {scores[i]:.2f}", boxes[i][0], boxes[i][1], colour, thickness)
    return img
