"""The embedded default saliency data set: salient shapes on cluttered backgrounds, in the DUTS layout.

No real SOD data set can be downloaded here, so the project generates a small one in the same
layout and formats as DUTS (JPEG images, binary 8-bit PNG masks, ``DUTS-TR`` / ``DUTS-TE``
splits); it goes through the same readers, mapper and evaluator as real data.

Each picture: a smooth colour-noise background with clutter (many small low-saturation
shapes and lines, a few saturated thin strokes) and one or two large, saturated, shaded
objects (ellipse, polygon, star, rounded box) - the salient objects, whose union is the mask.
The pictures are painted by the project's one scene painter (:mod:`.synthetic`, ``saliency``
background). Generation is deterministic (one seed per image) and written atomically to
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
from .synthetic import (
    SHAPES,
    blend,
    coverage,
    generation_lock,
    hsv_colour,
    paint_background,
    place,
    shape_outline,
    to_uint8,
    write_jpeg,
)

logger = logging.getLogger(__name__)

__all__ = ["SYNTHETIC_SALIENCY_SPLITS", "generate_saliency_dataset", "register_synthetic_saliency",
           "synthetic_saliency_root"]

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


def _object_outline(rng: np.random.Generator, cx: float, cy: float, r: float) -> np.ndarray:
    """A salient object: ellipse, irregular polygon, star or rounded box of radius ``r``, any rotation."""
    kind = rng.integers(0, 4)
    if kind == 0:
        size = dict(a=r, b=r * rng.uniform(0.5, 1.0))
        shape = "ellipse"
    elif kind == 1:
        return shape_outline("irregular", rng, centre=(cx, cy), radius=r)
    elif kind == 2:
        star = SHAPES["star"](rng, radius=r)  # draws its proportions before the rotation is drawn
        return place(star, (cx, cy), rng.uniform(0, np.pi))
    else:
        size = dict(a=r, b=r * rng.uniform(0.5, 1.0))
        shape = "superellipse"
    return shape_outline(shape, centre=(cx, cy), angle=rng.uniform(0, np.pi), **size)


def _draw_sample(seed: int) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(_SIZE_RANGE[0], _SIZE_RANGE[1] + 1, size=2))
    img = paint_background(rng, "saliency", h, w)
    mask = np.zeros((h, w), np.uint8)
    for _ in range(1 if rng.uniform() < 0.75 else 2):
        r = rng.uniform(0.18, 0.32) * min(h, w)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        obj = coverage(h, w, _object_outline(rng, cx, cy, r), antialias=False)
        # Saturated colour with a linear shading across the object.
        base = np.array(hsv_colour(rng, (0.7, 1.0), (0.55, 1.0)), np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        shade = 1.0 + 0.25 * (((xx - cx) * np.cos(ang) + (yy - cy) * np.sin(ang)) / r)
        img = blend(img, np.clip(base[None, None] * shade[..., None], 0, 255), obj)
        mask |= obj
    return to_uint8(img), mask


def generate_saliency_dataset(root: str, force: bool = False) -> str:
    """Writes every split of the synthetic data set under ``root`` (once) and returns ``root``.

    Several processes may ask at once (DDP ranks, test workers): one writes under the lock beside
    the set, the others wait and find it complete, so a finished set is never replaced under a reader.
    """
    marker = os.path.join(root, f"COMPLETE.v{_VERSION}")
    if os.path.exists(marker) and not force:
        return root
    parent = os.path.dirname(os.path.abspath(root))
    with generation_lock(parent):
        if os.path.exists(marker) and not force:  # another process wrote it while we waited
            return root
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
                    write_jpeg(os.path.join(img_dir, stem + ".jpg"), img, 92)
                    cv2.imwrite(os.path.join(mask_dir, stem + ".png"), mask)
            open(os.path.join(tmp, f"COMPLETE.v{_VERSION}"), "w").close()
            shutil.rmtree(root, ignore_errors=True)  # an older or unfinished set
            os.replace(tmp, root)
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
