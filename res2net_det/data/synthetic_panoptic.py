"""Generated panoptic data: the shapes of :mod:`.synthetic` over two stuff regions, in COCO's
panoptic format and Detectron2's "separated" layout (what Panoptic FPN trains on).

Each image is a sky above a wavy horizon and ground below it (stuff, each painted with the detection
background recipe), with circles, squares and triangles on top (things, drawn as in the shapes
set). Per split, under ``<root>``:

* ``<split>/NNNNNN.jpg``: the images;
* ``panoptic_<split>/NNNNNN.png`` + ``annotations/panoptic_<split>.json``: COCO panoptic format
  (segment id ``R + 256 G + 256^2 B``; ``segments_info`` with category, box, area);
* ``annotations/instances_<split>.json``: the things as COCO instances (polygons);
* ``panoptic_stuff_<split>/NNNNNN.png``: the semantic map Detectron2's
  ``datasets/prepare_panoptic_fpn.py`` makes from the panoptic PNGs (things 0, stuff 1..N).

``register_shapes_panoptic`` registers ``shapes_panoptic_{train,val}_separated`` (the names
Detectron2 gives its own separated sets) with the metadata of Detectron2's
``register_coco_panoptic_separated``; the files are written on first load.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from ..utils.io import atomic_write
from .catalog import DatasetCatalog, datasets_root
from .coco import load_coco_json
from .synthetic import (
    SHAPE_CLASSES,
    _complete,
    coverage,
    fill_flat,
    generation_lock,
    paint_background,
    shape_outline,
    to_uint8,
    write_jpeg,
)

logger = logging.getLogger(__name__)

__all__ = ["PANOPTIC_SPLITS", "STUFF_CLASSES", "generate_shapes_panoptic", "register_shapes_panoptic"]

STUFF_CLASSES = ("sky", "ground")
# split -> (number of images, seed offset)
PANOPTIC_SPLITS: Dict[str, Tuple[int, int]] = {"train": (64, 10), "val": (16, 11)}
_FORMAT_VERSION = 1
_SIDES = {"circle": 32, "square": 4, "triangle": 3}
# COCO category ids: things 1..3 (the shapes set's), stuff after them.
_THING_IDS = {name: i + 1 for i, name in enumerate(SHAPE_CLASSES)}
_STUFF_IDS = {name: len(SHAPE_CLASSES) + i + 1 for i, name in enumerate(STUFF_CLASSES)}


def _categories() -> List[dict]:
    rng = np.random.RandomState(0)
    return ([{"id": i, "name": n, "isthing": 1, "supercategory": "shape", "color": rng.randint(0, 256, 3).tolist()}
             for n, i in _THING_IDS.items()]
            + [{"id": i, "name": n, "isthing": 0, "supercategory": "stuff", "color": rng.randint(0, 256, 3).tolist()}
               for n, i in _STUFF_IDS.items()])


def _box(mask: np.ndarray) -> List[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def _paint(rng: np.random.RandomState, h: int, w: int):
    """(image, segment map, [(segment id, category id, is thing, polygon or None)])."""
    horizon = h * rng.uniform(0.35, 0.65) + h * 0.08 * np.sin(np.arange(w) / w * 2 * np.pi * rng.uniform(0.5, 2)
                                                                 + rng.uniform(0, 2 * np.pi))
    ground = np.arange(h)[:, None] >= horizon[None, :]
    image = np.where(ground[..., None], paint_background(rng, "detection", h, w),
                     paint_background(rng, "detection", h, w))
    segments = np.where(ground, 2, 1).astype(np.int32)
    info = [(1, _STUFF_IDS["sky"], False, None), (2, _STUFF_IDS["ground"], False, None)]
    for _ in range(rng.randint(1, 5)):
        name = SHAPE_CLASSES[rng.randint(len(SHAPE_CLASSES))]
        r = rng.uniform(10, 28)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        poly = shape_outline("regular", centre=(cx, cy), radius=r, sides=_SIDES[name],
                             phase=rng.uniform(0, 2 * np.pi) if name != "circle" else 0.0)
        mask = coverage(h, w, poly, antialias=False) > 0
        if mask.sum() < 40 or (segments[mask] > 2).mean() > 0.2:  # tiny, or mostly over another shape
            continue
        fill_flat(image, poly, rng.randint(0, 256, 3).astype(np.float32))
        segment_id = len(info) + 1
        segments[mask] = segment_id
        info.append((segment_id, _THING_IDS[name], True, poly))
    return to_uint8(image), segments, info


def _make_split(root: str, split: str, num_images: int, seed: int) -> Tuple[dict, dict]:
    rng = np.random.RandomState(seed)
    folders = {k: os.path.join(root, f"{prefix}{split}") for k, prefix in
               (("image", ""), ("panoptic", "panoptic_"), ("stuff", "panoptic_stuff_"))}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    images, panoptic, instances = [], [], []
    stuff_map = np.zeros(256, np.uint8)  # segment category -> semantic id (things 0, stuff 1..N)
    for i, name in enumerate(STUFF_CLASSES):
        stuff_map[_STUFF_IDS[name]] = i + 1
    for image_id in range(1, num_images + 1):
        h, w = int(rng.choice([128, 160])), int(rng.choice([128, 160, 192]))
        image, segments, info = _paint(rng, h, w)
        stem = f"{image_id:06d}"
        write_jpeg(os.path.join(folders["image"], stem + ".jpg"), image, 90)
        rgb = np.stack([segments % 256, segments // 256 % 256, segments // 256 ** 2], axis=-1).astype(np.uint8)
        cv2.imwrite(os.path.join(folders["panoptic"], stem + ".png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        category_of = np.zeros(len(info) + 1, np.int64)
        segments_info = []
        for segment_id, category_id, is_thing, poly in info:
            mask = segments == segment_id
            category_of[segment_id] = category_id
            if not mask.any():
                continue
            segments_info.append({"id": segment_id, "category_id": category_id, "iscrowd": 0, "bbox": _box(mask),
                                  "area": int(mask.sum())})
            if is_thing:  # the polygon as drawn (Detectron2's instances come from polygons, not masks)
                instances.append({"id": len(instances) + 1, "image_id": image_id, "category_id": category_id,
                                  "bbox": _box(mask), "area": int(mask.sum()), "iscrowd": 0,
                                  "segmentation": [[round(float(v), 2) for v in poly.reshape(-1)]]})
        cv2.imwrite(os.path.join(folders["stuff"], stem + ".png"), stuff_map[category_of[segments]])
        images.append({"id": image_id, "file_name": stem + ".jpg", "height": h, "width": w})
        panoptic.append({"image_id": image_id, "file_name": stem + ".png", "segments_info": segments_info})
    info = {"description": f"res2net-det synthetic panoptic shapes, {split}", "seed": seed, "version": _FORMAT_VERSION}
    categories = _categories()
    return ({"info": info, "images": images, "annotations": panoptic, "categories": categories},
            {"info": info, "images": images, "annotations": instances,
             "categories": [c for c in categories if c["isthing"]]})


def _paths(root: str, split: str) -> Dict[str, str]:
    return {
        "image_root": os.path.join(root, split),
        "panoptic_root": os.path.join(root, f"panoptic_{split}"),
        "panoptic_json": os.path.join(root, "annotations", f"panoptic_{split}.json"),
        "sem_seg_root": os.path.join(root, f"panoptic_stuff_{split}"),
        "json_file": os.path.join(root, "annotations", f"instances_{split}.json"),
    }


def generate_shapes_panoptic(root: str, seed: int = 0,
                             splits: Optional[Dict[str, Tuple[int, int]]] = None) -> Dict[str, Dict[str, str]]:
    """Writes the panoptic shapes under ``root`` unless already there; ``{split: paths}``. The
    panoptic JSON is written last, so an interrupted split is redone on the next call."""
    splits = PANOPTIC_SPLITS if splits is None else splits
    out = {}
    for split, (num_images, offset) in splits.items():
        paths = out[split] = _paths(root, split)
        if _complete(paths["panoptic_json"], seed + offset):
            continue
        with generation_lock(root):
            if _complete(paths["panoptic_json"], seed + offset):
                continue
            logger.info("generating %d synthetic panoptic images for %s under %s", num_images, split, root)
            panoptic, instances = _make_split(root, split, num_images, seed + offset)
            os.makedirs(os.path.dirname(paths["json_file"]), exist_ok=True)
            for path, data in ((paths["json_file"], instances), (paths["panoptic_json"], panoptic)):
                with atomic_write(path) as f:
                    json.dump(data, f)
    return out


def panoptic_metadata() -> dict:
    """What Detectron2's ``register_coco_panoptic_separated`` and its builtin metadata set: the
    thing and stuff classes and their id maps (stuff contiguous ids 1..N, 0 for all things)."""
    return {
        "evaluator_type": "coco_panoptic_seg",
        "ignore_label": 255,
        "thing_classes": list(SHAPE_CLASSES),
        "thing_dataset_id_to_contiguous_id": {i: k for k, i in enumerate(_THING_IDS.values())},
        "stuff_classes": ["things", *STUFF_CLASSES],
        "stuff_dataset_id_to_contiguous_id": {0: 0, **{i: k + 1 for k, i in enumerate(_STUFF_IDS.values())}},
    }


def register_shapes_panoptic(root: Optional[str] = None) -> None:
    """Registers ``shapes_panoptic_train_separated`` / ``shapes_panoptic_val_separated`` (records:
    the instances of the things plus ``sem_seg_file_name``, as Detectron2's ``merge_to_panoptic``
    makes them); the files are generated when first loaded."""
    root = os.path.join(datasets_root() if root is None else root, "generated", "shapes_panoptic")
    for split in PANOPTIC_SPLITS:
        name = f"shapes_panoptic_{split}_separated"
        if name in DatasetCatalog:
            continue
        paths = _paths(root, split)

        def load(split=split, name=name, paths=paths):
            generate_shapes_panoptic(root, splits={split: PANOPTIC_SPLITS[split]})
            records, _meta = load_coco_json(paths["json_file"], paths["image_root"], name)
            for record in records:
                stem = os.path.splitext(os.path.basename(record["file_name"]))[0]
                record["sem_seg_file_name"] = os.path.join(paths["sem_seg_root"], stem + ".png")
            return records

        DatasetCatalog.register(name, load, **paths, **panoptic_metadata())
