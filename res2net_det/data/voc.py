"""PASCAL VOC detection data: the XML annotations in Detectron2's list-of-dicts format, the
builtin names Detectron2 uses (``voc_2007_trainval``, ``voc_2012_trainval``, ``voc_2007_test``,
...), users' own VOC folders (``DATASETS.PASCAL_VOC``), and a VOC copy of the generated shapes
(``shapes_voc_train`` / ``shapes_voc_val``) written from their COCO JSON.

A folder has Detectron2's (and the devkit's) layout::

    DIRNAME/Annotations/<id>.xml  DIRNAME/JPEGImages/<id>.jpg  DIRNAME/ImageSets/Main/<split>.txt

Records follow this package's convention (``bbox`` in ``XYWH_ABS``, what both engines' mappers
read); ``image_id`` is the file id (a string), as in Detectron2, so its
``PascalVOCDetectionEvaluator`` finds the images. VOC's 1-based inclusive pixel boxes become
``[xmin - 1, ymin - 1, xmax, ymax]`` as Detectron2 converts them; objects marked ``difficult`` are
kept for training (as Detectron2 does) and flagged ``difficult: 1`` for the evaluator, which
ignores them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Sequence

from ..utils.io import atomic_write
from .catalog import DatasetCatalog, datasets_root
from .coco import read_coco_json
from .synthetic import SHAPE_CLASSES, SHAPES_SPLITS, generate_shapes_coco

logger = logging.getLogger(__name__)

__all__ = [
    "VOC_CLASSES",
    "BUILTIN_VOC",
    "VOCAnnotationError",
    "load_voc_instances",
    "register_pascal_voc",
    "register_builtin_voc",
    "register_pascal_voc_from_cfg",
    "write_voc_from_coco",
    "register_shapes_voc",
]

# The 20 classes in the devkit's (and Detectron2's) order; contiguous ids follow it.
VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
    "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

# Detectron2's builtin names: name -> (folder under the data root, split, year).
BUILTIN_VOC: Dict[str, tuple] = {
    "voc_2007_trainval": ("VOC2007", "trainval", 2007),
    "voc_2007_train": ("VOC2007", "train", 2007),
    "voc_2007_val": ("VOC2007", "val", 2007),
    "voc_2007_test": ("VOC2007", "test", 2007),
    "voc_2012_trainval": ("VOC2012", "trainval", 2012),
    "voc_2012_train": ("VOC2012", "train", 2012),
    "voc_2012_val": ("VOC2012", "val", 2012),
}


class VOCAnnotationError(ValueError):
    """A VOC XML file (or image set list) that can't be read or says something impossible."""


def read_image_set(dirname: str, split: str) -> List[str]:
    """The file ids of ``ImageSets/Main/<split>.txt`` (one a line; blank lines ignored)."""
    path = os.path.join(dirname, "ImageSets", "Main", f"{split}.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"VOC image set list not found: {path} (expected the layout DIRNAME/{{Annotations,JPEGImages,"
            "ImageSets/Main}}; see datasets/README.md)"
        )
    with open(path, encoding="utf-8") as f:
        ids = [line.split()[0] for line in f if line.strip()]
    if not ids:
        raise VOCAnnotationError(f"VOC image set list {path} is empty")
    return ids


def _text(node: Optional[ET.Element], tag: str, xml_file: str, where: str) -> str:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None or not child.text.strip():
        raise VOCAnnotationError(f"{xml_file}: {where} has no <{tag}>")
    return child.text.strip()


def _number(node: ET.Element, tag: str, xml_file: str, where: str) -> float:
    text = _text(node, tag, xml_file, where)
    try:
        return float(text)
    except ValueError:
        raise VOCAnnotationError(f"{xml_file}: {where} has <{tag}>{text}</{tag}>, not a number") from None


def parse_voc_xml(xml_file: str, class_names: Sequence[str]) -> Dict[str, Any]:
    """``{"height", "width", "annotations"}`` of one VOC XML file; every error names the file and
    the object (by its position and class) and what is wrong."""
    if not os.path.isfile(xml_file):
        raise FileNotFoundError(f"VOC annotation file not found: {xml_file}")
    try:
        root = ET.parse(xml_file).getroot()
    except ET.ParseError as e:
        raise VOCAnnotationError(f"{xml_file} is not valid XML ({e}); is it truncated?") from e
    size = root.find("size")
    if size is None:
        raise VOCAnnotationError(f"{xml_file}: no <size> (the image's width and height)")
    width, height = _number(size, "width", xml_file, "<size>"), _number(size, "height", xml_file, "<size>")
    if width <= 0 or height <= 0:
        raise VOCAnnotationError(f"{xml_file}: <size> is {width:g}x{height:g}; width and height must be positive")
    annotations = []
    for i, obj in enumerate(root.findall("object")):
        name = _text(obj, "name", xml_file, f"object {i}")
        where = f"object {i} ({name})"
        if name not in class_names:
            raise VOCAnnotationError(f"{xml_file}: {where} has class {name!r}, not one of {list(class_names)}")
        box = obj.find("bndbox")
        if box is None:
            raise VOCAnnotationError(f"{xml_file}: {where} has no <bndbox>")
        xmin, ymin, xmax, ymax = (_number(box, t, xml_file, f"{where} <bndbox>")
                                  for t in ("xmin", "ymin", "xmax", "ymax"))
        if xmax < xmin or ymax < ymin:
            raise VOCAnnotationError(
                f"{xml_file}: {where} has an empty box xmin {xmin:g} ymin {ymin:g} xmax {xmax:g} ymax {ymax:g}"
            )
        if xmin < 1 or ymin < 1 or xmax > width or ymax > height:
            # VOC boxes are 1-based pixels (1..width, 1..height); clip what sticks out, as the
            # COCO reader does, and refuse a box with nothing inside the image.
            clipped = max(xmin, 1.0), max(ymin, 1.0), min(xmax, width), min(ymax, height)
            if clipped[2] < clipped[0] or clipped[3] < clipped[1]:
                raise VOCAnnotationError(
                    f"{xml_file}: {where} box ({xmin:g}, {ymin:g}, {xmax:g}, {ymax:g}) lies outside the "
                    f"{width:g}x{height:g} image (VOC boxes are 1-based pixels, 1..width and 1..height)"
                )
            logger.warning("%s: %s box (%g, %g, %g, %g) clipped to the %gx%g image", xml_file, where,
                           xmin, ymin, xmax, ymax, width, height)
            xmin, ymin, xmax, ymax = clipped
        difficult = obj.find("difficult")
        try:
            difficult = int(difficult.text) if difficult is not None and difficult.text else 0
        except ValueError:
            raise VOCAnnotationError(
                f"{xml_file}: {where} has <difficult>{difficult.text}</difficult>, not 0 or 1") from None
        # 1-based inclusive pixels -> continuous coordinates (Detectron2's conversion), as XYWH.
        x0, y0 = xmin - 1.0, ymin - 1.0
        annotations.append({
            "bbox": [x0, y0, xmax - x0, ymax - y0],
            "bbox_mode": "XYWH_ABS",
            "category_id": list(class_names).index(name),
            "iscrowd": 0,
            "difficult": difficult,
        })
    return {"height": int(round(height)), "width": int(round(width)), "annotations": annotations}


def load_voc_instances(dirname: str, split: str, class_names: Sequence[str] = VOC_CLASSES) -> List[dict]:
    """The records of a VOC folder's split (Detectron2's ``load_voc_instances``, this package's
    box convention)."""
    records = []
    for file_id in read_image_set(dirname, split):
        parsed = parse_voc_xml(os.path.join(dirname, "Annotations", f"{file_id}.xml"), class_names)
        records.append(dict(parsed, file_name=os.path.join(dirname, "JPEGImages", f"{file_id}.jpg"), image_id=file_id))
    logger.info("loaded %d images, %d objects from %s (%s)", len(records),
                sum(len(r["annotations"]) for r in records), dirname, split)
    return records


def register_pascal_voc(name: str, dirname: str, split: str, year: int,
                        class_names: Sequence[str] = VOC_CLASSES, loader=None) -> None:
    """Registers a VOC folder's split as ``name`` (Detectron2's ``register_pascal_voc``), with the
    metadata Detectron2's ``PascalVOCDetectionEvaluator`` reads (``dirname``, ``split``, ``year``:
    2007 scores with the 11-point AP, 2012 with the all-point AP) and ``evaluator_type
    "pascal_voc"``. Nothing is read until the data set is used."""
    if int(year) not in (2007, 2012):
        raise ValueError(f"data set {name!r}: VOC year must be 2007 or 2012 (it picks the AP definition), got {year!r}")
    DatasetCatalog.register(
        name, loader or (lambda: load_voc_instances(dirname, split, class_names)),
        thing_classes=list(class_names), dirname=dirname, split=split, year=int(year), evaluator_type="pascal_voc",
    )


def register_builtin_voc(root: Optional[str] = None) -> None:
    """Registers Detectron2's VOC names under the data root (``VOC2007/``, ``VOC2012/``) once."""
    root = datasets_root() if root is None else root
    for name, (folder, split, year) in BUILTIN_VOC.items():
        if name not in DatasetCatalog:
            register_pascal_voc(name, os.path.join(root, folder), split, year)


def register_pascal_voc_from_cfg(cfg) -> List[str]:
    """Registers ``DATASETS.PASCAL_VOC`` (``[[name, dirname, split, year], ...]``, optionally a fifth
    element: the class names, default VOC's 20). Returns the names registered; the same entry
    again is a no-op, a known name with other files raises."""
    names = []
    for i, entry in enumerate(getattr(cfg.DATASETS, "PASCAL_VOC", []) or []):
        if not isinstance(entry, (list, tuple)) or len(entry) not in (4, 5):
            raise ValueError(f"DATASETS.PASCAL_VOC[{i}] must be [name, dirname, split, year] "
                             f"(+ optional [class names]), got {entry!r}")
        name, dirname, split = (str(v) for v in entry[:3])
        year = int(entry[3])
        classes = list(entry[4]) if len(entry) == 5 else list(VOC_CLASSES)
        if name in DatasetCatalog:
            meta = DatasetCatalog.metadata(name)
            if (meta.get("dirname"), meta.get("split"), meta.get("year")) != (dirname, split, year):
                raise ValueError(f"DATASETS.PASCAL_VOC[{i}]: data set {name!r} is already registered with "
                                 f"{meta.get('dirname')} / {meta.get('split')}; choose another name")
            continue
        register_pascal_voc(name, dirname, split, year, classes)
        names.append(name)
    return names


# ------------------------------------------------------------------ VOC copy of COCO data
def _voc_xml(file_name: str, width: int, height: int, objects: List[tuple]) -> str:
    lines = ["<annotation>", f"  <filename>{file_name}</filename>",
             f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for name, (xmin, ymin, xmax, ymax), difficult in objects:
        lines += ["  <object>", f"    <name>{name}</name>", "    <pose>Unspecified</pose>",
                  "    <truncated>0</truncated>", f"    <difficult>{difficult}</difficult>",
                  f"    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>",
                  "  </object>"]
    return "\n".join(lines + ["</annotation>", ""])


def _link_or_copy(src: str, dst: str) -> None:
    if os.path.exists(dst):
        os.remove(dst)
    try:
        os.link(src, dst)  # no second copy of the pixels where the file system allows it
    except OSError:
        shutil.copyfile(src, dst)


def write_voc_from_coco(json_file: str, image_root: str, out_root: str, split: str,
                        id_prefix: str = "") -> List[str]:
    """Writes a COCO instances file's images and boxes as a VOC folder: ``out_root/Annotations/
    <id>.xml``, ``JPEGImages/<id>.jpg`` (hard links where possible) and, last, ``ImageSets/Main/
    <split>.txt``. Returns the file ids (``id_prefix`` + the image's file stem).

    Boxes become VOC's 1-based inclusive integer pixels (``xmin = round(x) + 1``, ``xmax =
    round(x + w)``), so reading them back gives the COCO box to within half a pixel; crowd
    annotations are written ``difficult`` (evaluation ignores both). Only JPEG images are
    accepted: the VOC layout names every image ``<id>.jpg``.
    """
    data = read_coco_json(json_file)
    categories = {c["id"]: c["name"] for c in data.get("categories", [])}
    by_image: Dict[Any, list] = {}
    for ann in data.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(out_root, sub), exist_ok=True)
    ids = []
    for img in sorted(data["images"], key=lambda i: i["id"]):
        stem, ext = os.path.splitext(os.path.basename(img["file_name"]))
        if ext.lower() not in (".jpg", ".jpeg"):
            raise VOCAnnotationError(f"{json_file}: image id {img['id']} is {img['file_name']}; the VOC layout "
                                     "holds JPEG files (<id>.jpg) only")
        file_id = f"{id_prefix}{stem}"
        w, h = int(img["width"]), int(img["height"])
        objects = []
        for ann in by_image.get(img["id"], []):
            x, y, bw, bh = (float(v) for v in ann["bbox"])
            xmin, ymin = min(max(int(round(x)) + 1, 1), w), min(max(int(round(y)) + 1, 1), h)
            xmax, ymax = max(min(int(round(x + bw)), w), xmin), max(min(int(round(y + bh)), h), ymin)
            objects.append((categories[ann["category_id"]], (xmin, ymin, xmax, ymax), int(ann.get("iscrowd", 0))))
        with open(os.path.join(out_root, "Annotations", f"{file_id}.xml"), "w", encoding="utf-8") as f:
            f.write(_voc_xml(f"{file_id}.jpg", w, h, objects))
        _link_or_copy(os.path.join(image_root, img["file_name"]),
                      os.path.join(out_root, "JPEGImages", f"{file_id}.jpg"))
        ids.append(file_id)
    # The list goes last, atomically: its presence says the split is complete.
    list_file = os.path.join(out_root, "ImageSets", "Main", f"{split}.txt")
    with atomic_write(list_file) as f:
        f.write("\n".join(ids) + "\n")
    return ids


@contextlib.contextmanager
def _lock(path: str):
    """One process converts; the others (torchrun ranks, Detectron2 workers) wait for it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: conversion is deterministic and the list is renamed in atomically
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ensure_shapes_voc(coco_root: str, voc_root: str, split: str) -> None:
    json_file, image_root = generate_shapes_coco(coco_root, splits={split: SHAPES_SPLITS[split]})[split]
    list_file = os.path.join(voc_root, "ImageSets", "Main", f"{split}.txt")

    def fresh() -> bool:  # written after (from) the current COCO file
        return os.path.isfile(list_file) and os.path.getmtime(list_file) >= os.path.getmtime(json_file)

    if fresh():
        return
    with _lock(os.path.join(voc_root, ".lock")):
        if not fresh():
            logger.info("writing the %s shapes in VOC format under %s", split, voc_root)
            write_voc_from_coco(json_file, image_root, voc_root, split, id_prefix=f"{split}_")


def register_shapes_voc(root: Optional[str] = None) -> None:
    """Registers ``shapes_voc_train`` / ``shapes_voc_val``: the generated shapes (``shapes_*``) as a
    VOC folder (``<data root>/generated/shapes_voc``, year 2007: scored with the VOC07 11-point
    AP), converted from their COCO JSON when first loaded."""
    root = datasets_root() if root is None else root
    coco_root = os.path.join(root, "generated", "shapes_coco")
    voc_root = os.path.join(root, "generated", "shapes_voc")
    for split in SHAPES_SPLITS:
        name = f"shapes_voc_{split}"
        if name in DatasetCatalog:
            continue

        def load(split=split) -> List[dict]:
            _ensure_shapes_voc(coco_root, voc_root, split)
            return load_voc_instances(voc_root, split, SHAPE_CLASSES)

        register_pascal_voc(name, voc_root, split, 2007, SHAPE_CLASSES, loader=load)
