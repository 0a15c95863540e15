"""The embedded default saliency data set: salient shapes on cluttered backgrounds, in the DUTS layout.

No real SOD data set can be downloaded here, so the project generates a small one in the same
layout and formats as DUTS (JPEG images, binary 8-bit PNG masks, ``DUTS-TR`` / ``DUTS-TE``
splits); it goes through the same readers, mapper and evaluator as real data.

Each picture: a smooth colour-noise background with clutter (many small low-saturation
shapes and lines, a few saturated thin strokes) and one or two large, saturated, shaded
objects (ellipse, polygon, star, rounded box) - the salient objects, whose union is the mask.
Generation is deterministic (one seed per image) and written atomically to
``<data root>/generated/sod_synthetic`` (git-ignored) on first use.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .catalog import DatasetCatalog, datasets_root
from .saliency import load_saliency_folder

logger = logging.getLogger(__name__)

__all__ = ["SYNTHETIC_SALIENCY_SPLITS", "generate_saliency_dataset", "register_synthetic_saliency", "synthetic_saliency_root"]

# Bump when the drawing changes, so stale copies are regenerated.
_VERSION = 1
# name -> (split folder, number of images, seed offset)
SYNTHETIC_SALIENCY_SPLITS = {
    "sod_synthetic_train": ("DUTS-TR", 600, 0),
    "sod_synthetic_test": ("DUTS-TE", 100, 1_000_000),
}
_SIZE_RANGE = (96, 160)  # image height and width are drawn from this range


def synthetic_saliency_root(root: Optional[str] = None) -> str:
    return os.path.join(datasets_root() if root is None else root, "generated", "sod_synthetic")


def _hsv_color(rng: np.random.Generator, sat: Tuple[float, float], val: Tuple[float, float]) -> Tuple[int, int, int]:
    hsv = np.uint8([[[rng.integers(0, 180), rng.uniform(*sat) * 255, rng.uniform(*val) * 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    # Low-frequency colour noise, desaturated towards grey.
    coarse = rng.uniform(60, 200, size=(rng.integers(2, 6), rng.integers(2, 6), 3)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + 0.35 * (img - grey) + rng.normal(0, 6, size=(h, w, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    # Clutter: small dull shapes, lines and a few saturated strokes.
    for _ in range(rng.integers(10, 25)):
        color = _hsv_color(rng, (0.0, 0.35), (0.2, 0.9))
        kind = rng.integers(0, 3)
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        s = int(rng.integers(3, max(4, min(h, w) // 8)))
        if kind == 0:
            cv2.circle(img, c, s, color, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (c[0] - s, c[1] - s), (c[0] + s, c[1] + s // 2), color, -1, cv2.LINE_AA)
        else:
            end = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, c, end, color, int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(rng.integers(0, 4)):
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(img, p1, p2, _hsv_color(rng, (0.6, 1.0), (0.6, 1.0)), 1, cv2.LINE_AA)
    return img


def _object_polygon(rng: np.random.Generator, cx: float, cy: float, r: float) -> np.ndarray:
    kind = rng.integers(0, 4)
    if kind == 0:  # ellipse
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        a, b, rot = r, r * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi)
        x, y = a * np.cos(t), b * np.sin(t)
    elif kind == 1:  # irregular polygon
        n = rng.integers(5, 9)
        t = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(-0.25, 0.25, n) * (2 * np.pi / n)
        rad = r * rng.uniform(0.65, 1.0, n)
        x, y, rot = rad * np.cos(t), rad * np.sin(t), 0.0
    elif kind == 2:  # star
        n = rng.integers(4, 7)
        t = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
        rad = np.where(np.arange(2 * n) % 2 == 0, r, r * rng.uniform(0.45, 0.65))
        x, y, rot = rad * np.cos(t), rad * np.sin(t), rng.uniform(0, np.pi)
    else:  # rounded box: a superellipse
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        a, b, rot = r, r * rng.uniform(0.5, 1.0), rng.uniform(0, np.pi)
        x = a * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** 0.4
        y = b * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** 0.4
    xr = x * np.cos(rot) - y * np.sin(rot) + cx
    yr = x * np.sin(rot) + y * np.cos(rot) + cy
    return np.stack([xr, yr], axis=1).round().astype(np.int32)


def _draw_sample(seed: int) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(_SIZE_RANGE[0], _SIZE_RANGE[1] + 1, size=2))
    img = _background(rng, h, w)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(1 if rng.uniform() < 0.75 else 2):
        r = rng.uniform(0.18, 0.32) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        poly = _object_polygon(rng, cx, cy, r)
        obj = np.zeros((h, w), np.uint8)
        cv2.fillPoly(obj, [poly], 255)
        # Saturated colour with a linear shading across the object.
        base = np.array(_hsv_color(rng, (0.7, 1.0), (0.55, 1.0)), np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        shade = 1.0 + 0.25 * (((xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)) / r)
        colored = np.clip(base[None, None] * shade[..., None], 0, 255)
        sel = obj > 0
        img[sel] = colored[sel].astype(np.uint8)
        mask |= obj
    return img, mask


def generate_saliency_dataset(root: str, force: bool = False) -> str:
    """Writes every split of the synthetic data set under ``root`` (once) and returns ``root``."""
    marker = os.path.join(root, f"COMPLETE.v{_VERSION}")
    if os.path.exists(marker) and not force:
        return root
    parent = os.path.dirname(os.path.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".sod_synthetic.", dir=parent)
    try:
        for split, count, offset in SYNTHETIC_SALIENCY_SPLITS.values():
            img_dir = os.path.join(tmp, split, f"{split}-Image")
            mask_dir = os.path.join(tmp, split, f"{split}-Mask")
            os.makedirs(img_dir)
            os.makedirs(mask_dir)
            for i in range(count):
                img, mask = _draw_sample(seed=offset + i)
                stem = f"sal_{i:05d}"
                cv2.imwrite(os.path.join(img_dir, stem + ".jpg"), img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
                cv2.imwrite(os.path.join(mask_dir, stem + ".png"), mask)
        open(os.path.join(tmp, f"COMPLETE.v{_VERSION}"), "w").close()
        if os.path.exists(root):
            shutil.rmtree(root)
        try:
            os.replace(tmp, root)
        except OSError:
            if not os.path.exists(marker):  # another process may have won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("generated the synthetic saliency data set in %s", root)
    return root


def register_synthetic_saliency(root: Optional[str] = None) -> None:
    """Registers ``sod_synthetic_train`` / ``sod_synthetic_test``; generated when first loaded."""
    for name, (split, _, _) in SYNTHETIC_SALIENCY_SPLITS.items():
        if name in DatasetCatalog:
            continue

        def load(split=split) -> List[dict]:
            base = generate_saliency_dataset(synthetic_saliency_root(root))
            return load_saliency_folder(
                os.path.join(base, split, f"{split}-Image"), os.path.join(base, split, f"{split}-Mask")
            )

        DatasetCatalog.register(name, load, evaluator_type="saliency", generated=True)
