"""COCO-format detection data: reading with pycocotools into Detectron2's list-of-dicts format,
registering data sets by name (Detectron2's builtin COCO names and users' own files).

A record is ``{"file_name", "height", "width", "image_id", "annotations": [{"bbox" (XYWH_ABS),
"bbox_mode": "XYWH_ABS", "category_id" (contiguous, 0-based), "iscrowd", "segmentation"?}]}``;
the metadata holds ``thing_classes`` and ``thing_dataset_id_to_contiguous_id`` as in Detectron2.
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..utils.io import read_json_file
from .catalog import DatasetCatalog, datasets_root

logger = logging.getLogger(__name__)

__all__ = [
    "AnnotationError",
    "coco_problems",
    "read_coco_json",
    "load_coco_json",
    "register_coco_instances",
    "register_builtin_coco",
    "register_coco_instances_from_cfg",
    "get_dataset_dicts",
    "datasets_root",
    "BUILTIN_COCO",
]


class AnnotationError(ValueError):
    """An annotation file that can't be read or refers to things that don't exist."""




def read_coco_json(json_file: str) -> dict:
    """The parsed COCO file; an unreadable file or one without an ``images`` list fails naming it."""
    data = read_json_file(json_file, "annotation file", AnnotationError)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise AnnotationError(f"annotation file {json_file} has no 'images' list; not COCO format")
    return data


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def coco_problems(data: dict, json_file: str) -> List[str]:
    """Every problem of a COCO instances dict that would make training or evaluation wrong, each
    naming the file and the record: duplicated ids (pycocotools keeps the last one silently, so
    an image's boxes would land on another), missing or non-numeric fields, NaN/infinite boxes,
    and references to images or categories that don't exist. Empty when the file is sound."""
    problems: List[str] = []

    def dup_check(records: list, what: str) -> set:
        seen, dups = set(), set()
        for r in records:
            rid = r.get("id") if isinstance(r, dict) else None
            if rid is None:
                problems.append(f"{json_file}: a {what} record has no 'id': {str(r)[:80]}")
            elif rid in seen:
                dups.add(rid)
            seen.add(rid)
        for rid in sorted(dups, key=str):
            problems.append(f"{json_file}: {what} id {rid!r} is used more than once")
        return seen

    image_ids = dup_check(data["images"], "image")
    for img in data["images"]:
        if not isinstance(img, dict):
            continue
        for key in ("file_name", "width", "height"):
            if key not in img:
                problems.append(f"{json_file}: image id {img.get('id')!r} has no '{key}'")
        for key in ("width", "height"):
            if key in img and (not _is_number(img[key]) or not img[key] > 0):
                problems.append(f"{json_file}: image id {img.get('id')!r} has {key} {img[key]!r}, "
                                "not a positive number")
    cat_ids = dup_check(data.get("categories", []), "category")
    annotations = data.get("annotations", [])
    dup_check(annotations, "annotation")
    for ann in annotations:
        if not isinstance(ann, dict):
            continue
        aid = ann.get("id")
        if ann.get("image_id") not in image_ids:
            problems.append(f"{json_file}: annotation id {aid} refers to image_id {ann.get('image_id')!r}, "
                            "which is not in 'images'")
        if ann.get("category_id") not in cat_ids:
            problems.append(f"{json_file}: annotation id {aid} refers to category_id {ann.get('category_id')!r}, "
                            f"which is not in 'categories' {sorted(cat_ids, key=str)}")
        box = ann.get("bbox")
        if box is None:
            problems.append(f"{json_file}: annotation id {aid} has no 'bbox'")
        elif not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_is_number(v) for v in box):
            problems.append(f"{json_file}: annotation id {aid} has bbox {box!r}; "
                            "expected [x, y, width, height] numbers")
        elif not all(math.isfinite(v) for v in box):
            problems.append(f"{json_file}: annotation id {aid} has a non-finite bbox {box!r}")
    return problems


def load_coco_json(
    json_file: str, image_root: str, dataset_name: Optional[str] = None
) -> Tuple[List[dict], Dict[str, Any]]:
    """Reads a COCO instances JSON into (records, metadata).

    Raises :class:`AnnotationError` for a truncated file or annotations that name an unknown
    image or category. Boxes with zero area, or lying outside their image, are dropped with a
    logged warning (they can't be trained on); crowd boxes are kept with ``iscrowd=1``.
    """
    from pycocotools.coco import COCO

    data = read_coco_json(json_file)
    problems = coco_problems(data, json_file)
    if problems:
        more = (f"\n  ... and {len(problems) - 5} more (python tools/check_data.py lists them all)"
                if len(problems) > 5 else "")
        raise AnnotationError(f"{len(problems)} problem(s) in {json_file}:\n  " + "\n  ".join(problems[:5]) + more)
    data.setdefault("annotations", [])
    data.setdefault("categories", [])
    cat_ids = sorted(c["id"] for c in data["categories"])
    # pycocotools prints progress to stdout; keep the log tidy.
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = data
        coco.createIndex()

    cats = coco.loadCats(cat_ids)
    id_map = {cid: i for i, cid in enumerate(cat_ids)}
    metadata = {
        "json_file": json_file,
        "image_root": image_root,
        "evaluator_type": "coco",
        "thing_classes": [c["name"] for c in sorted(cats, key=lambda c: c["id"])],
        "thing_dataset_id_to_contiguous_id": id_map,
    }

    records: List[dict] = []
    dropped = 0
    for img in sorted(coco.imgs.values(), key=lambda i: i["id"]):
        w, h = int(img["width"]), int(img["height"])
        annotations = []
        for ann in coco.imgToAnns.get(img["id"], []):
            x, y, bw, bh = [float(v) for v in ann["bbox"]]
            # Clip to the image; what's left must have area.
            x0, y0 = max(x, 0.0), max(y, 0.0)
            x1, y1 = min(x + bw, w), min(y + bh, h)
            if x1 - x0 <= 0 or y1 - y0 <= 0:
                dropped += 1
                logger.warning(
                    "%s: dropped annotation id %s of image %s: box %s has no area inside the %dx%d image",
                    json_file, ann.get("id"), img["file_name"], ann["bbox"], w, h,
                )
                continue
            obj = {
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "bbox_mode": "XYWH_ABS",
                "category_id": id_map[ann["category_id"]],
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
            if "segmentation" in ann:
                obj["segmentation"] = ann["segmentation"]
            annotations.append(obj)
        records.append({
            "file_name": os.path.join(image_root, img["file_name"]),
            "height": h,
            "width": w,
            "image_id": img["id"],
            "annotations": annotations,
        })
    if dropped:
        logger.warning("%s: dropped %d annotations without area inside their image", json_file, dropped)
    logger.info("loaded %d images, %d annotations from %s", len(records),
                sum(len(r["annotations"]) for r in records), json_file)
    return records, metadata


def register_coco_instances(name: str, metadata: Dict[str, Any], json_file: str, image_root: str) -> None:
    """Registers a COCO instances JSON + image folder as data set ``name`` (Detectron2's signature).

    Nothing is read until the data set is used; class names are filled in then.
    """
    meta = dict(metadata or {})
    meta.update(json_file=json_file, image_root=image_root, evaluator_type="coco")

    def load() -> List[dict]:
        records, file_meta = load_coco_json(json_file, image_root, name)
        DatasetCatalog.metadata(name).update(file_meta)  # class names come from the file
        return records

    DatasetCatalog.register(name, load, **meta)


# Detectron2's builtin names: name -> (image folder, annotation file) under datasets_root().
BUILTIN_COCO: Dict[str, Tuple[str, str]] = {
    "coco_2014_train": ("coco/train2014", "coco/annotations/instances_train2014.json"),
    "coco_2014_val": ("coco/val2014", "coco/annotations/instances_val2014.json"),
    "coco_2014_minival": ("coco/val2014", "coco/annotations/instances_minival2014.json"),
    "coco_2014_valminusminival": ("coco/val2014", "coco/annotations/instances_valminusminival2014.json"),
    "coco_2017_train": ("coco/train2017", "coco/annotations/instances_train2017.json"),
    "coco_2017_val": ("coco/val2017", "coco/annotations/instances_val2017.json"),
    "coco_2017_test": ("coco/test2017", "coco/annotations/image_info_test2017.json"),
    "coco_2017_test-dev": ("coco/test2017", "coco/annotations/image_info_test-dev2017.json"),
    "coco_2017_val_100": ("coco/val2017", "coco/annotations/instances_val2017_100.json"),
}


def register_builtin_coco(root: Optional[str] = None) -> None:
    """Registers Detectron2's COCO names once (see :mod:`res2net_det.data.builtin` for the rest)."""
    root = datasets_root() if root is None else root
    for name, (image_dir, json_rel) in BUILTIN_COCO.items():
        if name not in DatasetCatalog:
            register_coco_instances(name, {}, os.path.join(root, json_rel), os.path.join(root, image_dir))


def register_coco_instances_from_cfg(cfg) -> List[str]:
    """Registers ``DATASETS.COCO_INSTANCES`` ([[name, json_file, image_root], ...]).

    Returns the names registered from the config. A name already registered with other files
    raises; registering the same files again is a no-op.
    """
    names = []
    for i, entry in enumerate(getattr(cfg.DATASETS, "COCO_INSTANCES", []) or []):
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise ValueError(
                f"DATASETS.COCO_INSTANCES[{i}] must be [name, json_file, image_root], got {entry!r}"
            )
        name, json_file, image_root = (str(v) for v in entry)
        if name in DatasetCatalog:
            meta = DatasetCatalog.metadata(name)
            if (meta.get("json_file"), meta.get("image_root")) != (json_file, image_root):
                raise ValueError(
                    f"DATASETS.COCO_INSTANCES[{i}]: data set {name!r} is already registered "
                    f"with {meta.get('json_file')} / {meta.get('image_root')}; choose another name"
                )
            continue
        register_coco_instances(name, {}, json_file, image_root)
        names.append(name)
    return names


def get_dataset_dicts(names: Sequence[str], filter_empty: bool = True) -> List[dict]:
    """The records of one or more registered data sets, concatenated.

    With ``filter_empty``, images without any non-crowd annotation are skipped (logged), as
    Detectron2 does for training.
    """
    if isinstance(names, str):
        names = [names]
    if not names:
        raise ValueError("no data set given (DATASETS.TRAIN / DATASETS.TEST is empty)")
    records: List[dict] = []
    for name in names:
        part = DatasetCatalog.get(name)
        if not part:
            raise ValueError(f"data set {name!r} is empty")
        records += part
    if filter_empty:
        kept = [r for r in records if any(not a.get("iscrowd", 0) for a in r.get("annotations", []))]
        if len(kept) < len(records):
            logger.info("skipped %d of %d images without annotations (DATALOADER.FILTER_EMPTY_ANNOTATIONS)",
                        len(records) - len(kept), len(records))
        if not kept:
            raise ValueError(f"no image of {list(names)} has an annotation to train on")
        records = kept
    return records
