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
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..utils.io import read_json_file
from .catalog import DatasetCatalog, datasets_root

logger = logging.getLogger(__name__)

__all__ = [
    "AnnotationError",
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




def _read_json(json_file: str) -> dict:
    data = read_json_file(json_file, "annotation file", AnnotationError)
    if not isinstance(data, dict) or "images" not in data:
        raise AnnotationError(f"annotation file {json_file} has no 'images' list; not COCO format")
    return data


def load_coco_json(
    json_file: str, image_root: str, dataset_name: Optional[str] = None
) -> Tuple[List[dict], Dict[str, Any]]:
    """Reads a COCO instances JSON into (records, metadata).

    Raises :class:`AnnotationError` for a truncated file or annotations that name an unknown
    image or category. Boxes with zero area, or lying outside their image, are dropped with a
    logged warning (they can't be trained on); crowd boxes are kept with ``iscrowd=1``.
    """
    from pycocotools.coco import COCO

    data = _read_json(json_file)
    data.setdefault("annotations", [])
    data.setdefault("categories", [])
    image_ids = {img["id"] for img in data["images"]}
    cat_ids = sorted(c["id"] for c in data["categories"])
    for ann in data["annotations"]:
        if ann.get("image_id") not in image_ids:
            raise AnnotationError(
                f"{json_file}: annotation id {ann.get('id')} refers to image_id "
                f"{ann.get('image_id')!r}, which is not in 'images'"
            )
        if ann.get("category_id") not in set(cat_ids):
            raise AnnotationError(
                f"{json_file}: annotation id {ann.get('id')} refers to category_id "
                f"{ann.get('category_id')!r}, which is not in 'categories' {cat_ids}"
            )
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
