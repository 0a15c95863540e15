"""Generated data: the one scene painter of the three embedded data sets, and the detection set.

* The **scene painter** (first half): background recipes per task (:data:`BACKGROUNDS`), one
  table of shape outlines (:data:`SHAPES`), filling (flat colour or a texture through a coverage
  mask) and JPEG writing. :mod:`.synthetic_saliency` (DUTS layout) and :mod:`.shapes_wsol`
  (ILSVRC layout) write their data sets with it.
* The **detection set**: coloured shapes on varied backgrounds in COCO format. Real JPEG files and
  a COCO instances JSON per split, deterministic by seed, so the quickstart exercises the same
  readers as real data. Generated on first use under ``<datasets root>/generated/shapes_coco``
  (git-ignored).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Callable, Dict, List, Optional, Tuple, Union

import cv2
import numpy as np
from filelock import FileLock

from ..utils.io import atomic_write
from .catalog import DatasetCatalog, datasets_root
from .coco import load_coco_json

logger = logging.getLogger(__name__)

__all__ = [
    "BACKGROUNDS", "SHAPES", "SHAPE_CLASSES", "SHAPES_SPLITS", "blend", "coverage", "fill_flat", "generate_shapes_coco",
    "generation_lock", "hsv_colour", "paint_background", "place", "random_integers", "register_shapes",
    "shape_outline", "to_uint8", "write_jpeg",
]

SHAPE_CLASSES = ("circle", "square", "triangle")
# split -> (number of images, seed offset)
SHAPES_SPLITS: Dict[str, Tuple[int, int]] = {"train": (800, 0), "val": (100, 1)}
_FORMAT_VERSION = 1


# =============================================================================== the scene painter
# One painter for the three generated data sets (detection shapes in COCO format, salient objects
# in the DUTS layout, WSOL shapes in the ILSVRC layout): a background from a named recipe, object
# outlines from one table of shapes, placed, rasterised and filled one way, written as JPEG. Each
# task's writer chooses the recipe, the shapes and their colours; the quickstarts are tuned on
# these pictures, so every function reproduces the random draws and arithmetic the data sets were
# made with (tests/data/test_synthetic.py pins a sample of each set by checksum).

RandomSource = Union[np.random.RandomState, np.random.Generator]


def random_integers(rng: RandomSource, low: int, high: int, size=None):
    """Integers in ``[low, high)`` from either NumPy generator (the COCO shapes use the legacy
    ``RandomState``, whose stream fixes that data set; the other sets use a ``Generator``)."""
    if isinstance(rng, np.random.Generator):
        return rng.integers(low, high, size=size)
    return rng.randint(low, high, size=size)


def hsv_colour(rng: RandomSource, saturation: Tuple[float, float], value: Tuple[float, float]) -> Tuple[int, int, int]:
    """A random RGB colour of any hue with saturation and value (0..1) drawn from the given ranges."""
    hsv = np.uint8([[[random_integers(rng, 0, 180), rng.uniform(*saturation) * 255, rng.uniform(*value) * 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


# ---------------------------------------------------------------------------- backgrounds
def _varied_background(rng: RandomSource, h: int, w: int) -> np.ndarray:
    """Detection: one of flat colour, linear gradient, blurred colour noise, stripes (float32)."""
    kind = random_integers(rng, 0, 4)
    c0 = random_integers(rng, 0, 256, 3).astype(np.float32)
    if kind == 0:
        return np.broadcast_to(c0, (h, w, 3)).copy()
    if kind == 2:
        img = c0 + rng.normal(0, 40, size=(h, w, 3)).astype(np.float32)
        return cv2.GaussianBlur(img, (5, 5), 0)
    c1 = random_integers(rng, 0, 256, 3).astype(np.float32)
    if kind == 1:
        t = np.linspace(0, 1, w if rng.uniform() < 0.5 else h, dtype=np.float32)
        ramp = t[None, :, None] if t.size == w else t[:, None, None]
    else:
        period = random_integers(rng, 6, 20)
        ramp = ((np.arange(w) // period) % 2).astype(np.float32)[None, :, None]
    return np.broadcast_to(c0 * (1 - ramp) + c1 * ramp, (h, w, 3)).copy()


def _cluttered_background(rng: RandomSource, h: int, w: int) -> np.ndarray:
    """Salient objects: smooth low-saturation colour noise, many small dull shapes and lines, a
    few saturated thin strokes (uint8): distractors that are not salient."""
    coarse = rng.uniform(60, 200, size=(random_integers(rng, 2, 6), random_integers(rng, 2, 6), 3)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + 0.35 * (img - grey) + rng.normal(0, 6, size=(h, w, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(random_integers(rng, 10, 25)):
        color = hsv_colour(rng, (0.0, 0.35), (0.2, 0.9))
        kind = random_integers(rng, 0, 3)
        c = (int(random_integers(rng, 0, w)), int(random_integers(rng, 0, h)))
        s = int(random_integers(rng, 3, max(4, min(h, w) // 8)))
        if kind == 0:
            cv2.circle(img, c, s, color, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (c[0] - s, c[1] - s), (c[0] + s, c[1] + s // 2), color, -1, cv2.LINE_AA)
        else:
            end = (int(random_integers(rng, 0, w)), int(random_integers(rng, 0, h)))
            cv2.line(img, c, end, color, int(random_integers(rng, 1, 3)), cv2.LINE_AA)
    for _ in range(random_integers(rng, 0, 4)):
        p1 = (int(random_integers(rng, 0, w)), int(random_integers(rng, 0, h)))
        p2 = (int(random_integers(rng, 0, w)), int(random_integers(rng, 0, h)))
        cv2.line(img, p1, p2, hsv_colour(rng, (0.6, 1.0), (0.6, 1.0)), 1, cv2.LINE_AA)
    return img


def _gradient_clutter_background(rng: RandomSource, h: int, w: int) -> np.ndarray:
    """Localisation: a colour gradient in any direction with pixel noise, thin line segments and
    small blobs too small to look like an object (float64). Square images (``h == w``)."""
    size = h
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    c0, c1 = rng.uniform(40, 215, 3), rng.uniform(40, 215, 3)
    direction = rng.uniform(0, 2 * np.pi)
    t = (np.cos(direction) * x + np.sin(direction) * y + 1.5) / 3.0
    image = c0 * (1 - t[..., None]) + c1 * t[..., None]
    image += rng.normal(0, 12, image.shape)
    for _ in range(random_integers(rng, 6, 14)):
        p0 = random_integers(rng, 0, size, 2)
        p1 = p0 + random_integers(rng, -size // 3, size // 3, 2)
        cv2.line(image, tuple(int(v) for v in p0), tuple(int(v) for v in p1),
                 rng.uniform(0, 255, 3).tolist(), int(random_integers(rng, 1, 3)), cv2.LINE_AA)
    for _ in range(random_integers(rng, 5, 12)):
        centre = tuple(int(v) for v in random_integers(rng, 0, size, 2))
        axes = tuple(int(v) for v in random_integers(rng, 1, max(2, size // 24), 2))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360,
                    rng.uniform(0, 255, 3).tolist(), -1, cv2.LINE_AA)
    return image


#: Background recipe per task: ``(rng, height, width) -> H x W x 3`` canvas (float or uint8).
BACKGROUNDS: Dict[str, Callable[[RandomSource, int, int], np.ndarray]] = {
    "detection": _varied_background,
    "saliency": _cluttered_background,
    "localization": _gradient_clutter_background,
}


def paint_background(rng: RandomSource, style: str, height: int, width: int) -> np.ndarray:
    """A task's background (``style`` from :data:`BACKGROUNDS`), drawing from ``rng``."""
    if style not in BACKGROUNDS:
        raise KeyError(f"unknown background style {style!r}; choose from {sorted(BACKGROUNDS)}")
    if style == "localization" and height != width:
        raise ValueError(f"the localization background is square; got {height}x{width}")
    return BACKGROUNDS[style](rng, height, width)


# ---------------------------------------------------------------------------- shapes
def _regular(rng, radius: float, sides: int, phase: float = 0.0) -> np.ndarray:
    """Regular polygon with circumradius ``radius`` (a 32-gon draws a circle), first vertex at ``phase``."""
    t = phase + np.arange(sides) * 2 * np.pi / sides
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _ellipse(rng, a: float, b: float, points: int = 64) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return np.stack([a * np.cos(t), b * np.sin(t)], axis=1)


def _box(rng, a: float, b: float) -> np.ndarray:
    """Rectangle with half-widths ``a`` (x) and ``b`` (y)."""
    return np.array([[-a, -b], [a, -b], [a, b], [-a, b]])


def _triangle(rng, width: float, height: float) -> np.ndarray:
    """Equilateral triangle pointing up, stretched to ``width x height`` (of a unit template)."""
    t = np.pi / 2 + np.array([0, 2, 4]) * np.pi / 3
    return np.stack([np.cos(t), -np.sin(t)], 1) * 0.58 * np.array([width, height])


def _cross(rng, width: float, height: float) -> np.ndarray:
    """Plus sign with arms a third as thick as long, stretched to ``width x height``."""
    a, b = 0.5, 0.17
    pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b],
                    [b, a], [-b, a], [-b, b], [-a, b], [-a, -b], [-b, -b]])
    return pts * np.array([width, height])


def _irregular(rng, radius: float) -> np.ndarray:
    """5-8 vertices at jittered angles and radii 65-100% of ``radius``."""
    n = random_integers(rng, 5, 9)
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(-0.25, 0.25, n) * (2 * np.pi / n)
    rad = radius * rng.uniform(0.65, 1.0, n)
    return np.stack([rad * np.cos(t), rad * np.sin(t)], axis=1)


def _star(rng, radius: float) -> np.ndarray:
    """4-6 points, inner radius 45-65% of ``radius``."""
    n = random_integers(rng, 4, 7)
    t = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    rad = np.where(np.arange(2 * n) % 2 == 0, radius, radius * rng.uniform(0.45, 0.65))
    return np.stack([rad * np.cos(t), rad * np.sin(t)], axis=1)


def _superellipse(rng, a: float, b: float, exponent: float = 0.4) -> np.ndarray:
    """A rounded box."""
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    x = a * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** exponent
    y = b * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** exponent
    return np.stack([x, y], axis=1)


#: Outline per shape kind: ``(rng, **size) -> (K, 2)`` float points around the origin. Kinds that
#: draw their own proportions (``irregular``, ``star``) take ``rng``.
SHAPES: Dict[str, Callable[..., np.ndarray]] = {
    "regular": _regular, "ellipse": _ellipse, "box": _box, "triangle": _triangle, "cross": _cross,
    "irregular": _irregular, "star": _star, "superellipse": _superellipse,
}


def place(points: np.ndarray, centre=(0.0, 0.0), angle: float = 0.0) -> np.ndarray:
    """``points`` rotated by ``angle`` (radians) about the origin, then moved to ``centre``."""
    x, y = points[:, 0], points[:, 1]
    if angle:
        c, s = np.cos(angle), np.sin(angle)
        x, y = x * c - y * s, x * s + y * c
    return np.stack([x + centre[0], y + centre[1]], axis=1)


def shape_outline(kind: str, rng: Optional[RandomSource] = None, centre=(0.0, 0.0), angle: float = 0.0,
                  **size) -> np.ndarray:
    """``(K, 2)`` outline of a :data:`SHAPES` kind with the given ``size`` arguments, rotated by
    ``angle`` about its centre and moved to ``centre`` (:func:`place`)."""
    if kind not in SHAPES:
        raise KeyError(f"unknown shape {kind!r}; choose from {sorted(SHAPES)}")
    return place(SHAPES[kind](rng, **size), centre, angle)


# ---------------------------------------------------------------------------- filling
def fill_flat(canvas: np.ndarray, outline: np.ndarray, colour) -> np.ndarray:
    """Fills ``outline`` (rounded to whole pixels) with one colour, anti-aliased, in place."""
    cv2.fillPoly(canvas, [np.round(outline).astype(np.int32)], np.asarray(colour).tolist(), lineType=cv2.LINE_AA)
    return canvas


def coverage(height: int, width: int, outline: np.ndarray, antialias: bool, subpixel_bits: int = 0) -> np.ndarray:
    """``H x W`` uint8 mask (0..255) of the pixels ``outline`` covers; with ``antialias`` border
    pixels are partly covered, ``subpixel_bits`` keeps that many fractional bits of the vertices."""
    mask = np.zeros((height, width), np.uint8)
    scale = 1 << subpixel_bits
    pts = np.round(outline * scale).astype(np.int32) if subpixel_bits else np.round(outline).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA if antialias else cv2.LINE_8, shift=subpixel_bits)
    return mask


def blend(canvas: np.ndarray, surface: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``canvas`` with ``surface`` (an ``H x W x 3`` texture or a colour) laid over it where ``mask``
    (0..255) covers it: a new float array."""
    alpha = mask[..., None].astype(np.float32) / 255.0
    return canvas * (1 - alpha) + surface * alpha


def to_uint8(canvas: np.ndarray) -> np.ndarray:
    """The finished picture: clipped to 0..255 and truncated to uint8."""
    return np.clip(canvas, 0, 255).astype(np.uint8)


def write_jpeg(path: str, image_rgb: np.ndarray, quality: int) -> None:
    """Writes an RGB uint8 picture as JPEG: compression noise on top, as in photographs."""
    if not cv2.imwrite(path, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"could not write {path}")


# =============================================================================== COCO shapes
# class -> (sides of the regular polygon, whether it turns by a random angle)
_COCO_SHAPES = {"circle": (32, False), "square": (4, True), "triangle": (3, True)}


def _contrasting_colour(rng: np.random.RandomState, background: np.ndarray) -> np.ndarray:
    mean = background.reshape(-1, 3).mean(0)
    for _ in range(20):
        colour = rng.randint(0, 256, size=3).astype(np.float32)
        if np.abs(colour - mean).sum() > 150:
            return colour
    return 255.0 - mean


def _iou(a: List[float], b: List[float]) -> float:
    ax1, ay1, ax2, ay2 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx1, by1, bx2, by2 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0.0, min(ax2, bx2) - max(ax1, bx1)), max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _make_split(root: str, split: str, num_images: int, seed: int) -> dict:
    rng = np.random.RandomState(seed)
    image_dir = os.path.join(root, split)
    os.makedirs(image_dir, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        h, w = int(rng.choice([128, 144, 160])), int(rng.choice([128, 160, 192]))
        img = paint_background(rng, "detection", h, w)
        # About one image in twenty holds no object (real data has those too).
        num_objects = 0 if rng.rand() < 0.05 else rng.randint(1, 5)
        boxes: List[List[float]] = []
        for _ in range(num_objects):
            for _attempt in range(10):
                cls_idx = rng.randint(len(SHAPE_CLASSES))
                r = rng.uniform(10, 30)
                cx, cy = rng.uniform(r * 0.5, w - r * 0.5), rng.uniform(r * 0.5, h - r * 0.5)
                angle = rng.uniform(0, 2 * np.pi)
                sides, phase = _COCO_SHAPES[SHAPE_CLASSES[cls_idx]]
                poly = shape_outline("regular", centre=(cx, cy), radius=r, sides=sides, phase=angle if phase else 0.0)
                poly[:, 0] = poly[:, 0].clip(0, w)
                poly[:, 1] = poly[:, 1].clip(0, h)
                x0, y0 = poly.min(0)
                x1, y1 = poly.max(0)
                box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
                if box[2] < 6 or box[3] < 6 or any(_iou(box, b) > 0.2 for b in boxes):
                    continue
                colour = _contrasting_colour(rng, img)
                fill_flat(img, poly, colour)
                boxes.append(box)
                annotations.append({
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cls_idx + 1,
                    "bbox": [round(v, 2) for v in box],
                    "area": float(cv2.contourArea(poly.astype(np.float32))),
                    "segmentation": [[round(float(v), 2) for v in poly.reshape(-1)]],
                    "iscrowd": 0,
                })
                break
        file_name = f"{image_id:06d}.jpg"
        write_jpeg(os.path.join(image_dir, file_name), to_uint8(img), 90)
        images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
    return {
        "info": {"description": f"res2net-det synthetic shapes, {split}", "seed": seed,
                 "version": _FORMAT_VERSION},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SHAPE_CLASSES)],
    }


def generation_lock(root: str) -> FileLock:
    """An inter-process lock on the generated data set ``root`` (``root/.lock``): several processes
    (torchrun ranks, data loader workers, test workers) may ask for the data at once; one writes,
    the others wait and then find it complete."""
    os.makedirs(root, exist_ok=True)
    return FileLock(os.path.join(root, ".lock"))


def _complete(json_file: str, seed: int) -> bool:
    if not os.path.isfile(json_file):
        return False
    with open(json_file, encoding="utf-8") as f:
        info = json.load(f).get("info", {})
    return info.get("seed") == seed and info.get("version") == _FORMAT_VERSION


def generate_shapes_coco(
    root: str, seed: int = 0, splits: Optional[Dict[str, Tuple[int, int]]] = None
) -> Dict[str, Tuple[str, str]]:
    """Writes the shapes data set under ``root`` unless it is already there.

    Returns ``{split: (json_file, image_root)}``. A split is complete once its JSON exists
    (written last, atomically), so an interrupted run is redone on the next call.
    """
    splits = SHAPES_SPLITS if splits is None else splits
    out = {}
    for split, (num_images, offset) in splits.items():
        json_file = os.path.join(root, "annotations", f"instances_{split}.json")
        image_root = os.path.join(root, split)
        out[split] = (json_file, image_root)
        if _complete(json_file, seed + offset):
            continue
        with generation_lock(root):
            if _complete(json_file, seed + offset):  # another process wrote it while we waited
                continue
            logger.info("generating %d synthetic shape images for %s under %s", num_images, split, root)
            data = _make_split(root, split, num_images, seed + offset)
            os.makedirs(os.path.dirname(json_file), exist_ok=True)
            with atomic_write(json_file) as f:
                json.dump(data, f)
    return out


def register_shapes(root: Optional[str] = None) -> None:
    """Registers ``shapes_train`` / ``shapes_val`` under the data root (default
    :func:`datasets_root`); the files are generated when first loaded."""
    root = os.path.join(datasets_root() if root is None else root, "generated", "shapes_coco")
    for split in SHAPES_SPLITS:
        name = f"shapes_{split}"
        if name in DatasetCatalog:
            continue
        json_file = os.path.join(root, "annotations", f"instances_{split}.json")
        image_root = os.path.join(root, split)

        def load(split=split, name=name, json_file=json_file, image_root=image_root):
            generate_shapes_coco(root, splits={split: SHAPES_SPLITS[split]})
            records, meta = load_coco_json(json_file, image_root, name)
            DatasetCatalog.metadata(name).update(meta)
            return records

        DatasetCatalog.register(
            name, load, json_file=json_file, image_root=image_root, evaluator_type="coco",
            thing_classes=list(SHAPE_CLASSES),
        )
