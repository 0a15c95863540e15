"""The embedded default detection data: coloured shapes on varied backgrounds, in COCO format.

Real JPEG files and a COCO instances JSON per split, deterministic by seed, so the quickstart
exercises the same readers as real data. Generated on first use under
``<datasets root>/generated/shapes_coco`` (git-ignored).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .catalog import DatasetCatalog, datasets_root
from .coco import load_coco_json

logger = logging.getLogger(__name__)

__all__ = ["SHAPE_CLASSES", "SHAPES_SPLITS", "generate_shapes_coco", "register_shapes"]

SHAPE_CLASSES = ("circle", "square", "triangle")
# split -> (number of images, seed offset)
SHAPES_SPLITS: Dict[str, Tuple[int, int]] = {"train": (800, 0), "val": (100, 1)}
_FORMAT_VERSION = 1


def _background(rng: np.random.RandomState, h: int, w: int) -> np.ndarray:
    """One of: flat colour, linear gradient, coloured noise, stripes."""
    kind = rng.randint(4)
    c0 = rng.randint(0, 256, size=3).astype(np.float32)
    if kind == 0:
        img = np.broadcast_to(c0, (h, w, 3)).copy()
    elif kind == 1:
        c1 = rng.randint(0, 256, size=3).astype(np.float32)
        t = np.linspace(0, 1, w if rng.rand() < 0.5 else h, dtype=np.float32)
        ramp = t[None, :, None] if t.size == w else t[:, None, None]
        img = np.broadcast_to(c0 * (1 - ramp) + c1 * ramp, (h, w, 3)).copy()
    elif kind == 2:
        img = c0 + rng.normal(0, 40, size=(h, w, 3)).astype(np.float32)
        img = cv2.GaussianBlur(img, (5, 5), 0)
    else:
        c1 = rng.randint(0, 256, size=3).astype(np.float32)
        period = rng.randint(6, 20)
        stripes = ((np.arange(w) // period) % 2).astype(np.float32)[None, :, None]
        img = np.broadcast_to(c0 * (1 - stripes) + c1 * stripes, (h, w, 3)).copy()
    return img


def _polygon(rng: np.random.RandomState, cls: str, cx: float, cy: float, r: float) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    if cls == "circle":
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    elif cls == "square":
        t = angle + np.arange(4) * np.pi / 2
    else:
        t = angle + np.arange(3) * 2 * np.pi / 3
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


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
        img = _background(rng, h, w)
        # About one image in twenty holds no object (real data has those too).
        num_objects = 0 if rng.rand() < 0.05 else rng.randint(1, 5)
        boxes: List[List[float]] = []
        for _ in range(num_objects):
            for _attempt in range(10):
                cls_idx = rng.randint(len(SHAPE_CLASSES))
                r = rng.uniform(10, 30)
                cx, cy = rng.uniform(r * 0.5, w - r * 0.5), rng.uniform(r * 0.5, h - r * 0.5)
                poly = _polygon(rng, SHAPE_CLASSES[cls_idx], cx, cy, r)
                poly[:, 0] = poly[:, 0].clip(0, w)
                poly[:, 1] = poly[:, 1].clip(0, h)
                x0, y0 = poly.min(0)
                x1, y1 = poly.max(0)
                box = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
                if box[2] < 6 or box[3] < 6 or any(_iou(box, b) > 0.2 for b in boxes):
                    continue
                colour = _contrasting_colour(rng, img)
                cv2.fillPoly(img, [np.round(poly).astype(np.int32)], colour.tolist(), lineType=cv2.LINE_AA)
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
        # JPEG noise on top of the drawing, as in photographs; images are stored BGR by OpenCV.
        out = cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        cv2.imwrite(os.path.join(image_dir, file_name), out, [cv2.IMWRITE_JPEG_QUALITY, 90])
        images.append({"id": image_id, "file_name": file_name, "height": h, "width": w})
    return {
        "info": {"description": f"res2net-det synthetic shapes, {split}", "seed": seed,
                 "version": _FORMAT_VERSION},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SHAPE_CLASSES)],
    }


@contextlib.contextmanager
def _exclusive(root: str):
    """An inter-process lock on ``root``: several processes (torchrun ranks, data loader workers)
    may ask for the data at once; one writes, the others wait and then find it complete."""
    os.makedirs(root, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, generation is deterministic and renames are atomic
        yield
        return
    with open(os.path.join(root, ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _complete(json_file: str, seed: int) -> bool:
    if not os.path.isfile(json_file):
        return False
    with open(json_file, encoding="utf-8") as f:
        info = json.load(f).get("info", {})
    return info.get("seed") == seed and info.get("version") == _FORMAT_VERSION


def generate_shapes_coco(root: str, seed: int = 0, splits: Optional[Dict[str, Tuple[int, int]]] = None) -> Dict[str, Tuple[str, str]]:
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
        with _exclusive(root):
            if _complete(json_file, seed + offset):  # another process wrote it while we waited
                continue
            logger.info("generating %d synthetic shape images for %s under %s", num_images, split, root)
            data = _make_split(root, split, num_images, seed + offset)
            os.makedirs(os.path.dirname(json_file), exist_ok=True)
            tmp = f"{json_file}.tmp.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, json_file)
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
