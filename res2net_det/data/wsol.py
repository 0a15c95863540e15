"""Weakly supervised object localisation (WSOL) data: images with one class and its boxes.

Reads the ImageNet (ILSVRC) validation layout: one image per file and, next to it in an
annotation folder, one PASCAL VOC-style XML file with the same stem::

    <annotation>
      <filename>ILSVRC2012_val_00000001</filename>
      <size><width>500</width><height>375</height><depth>3</depth></size>
      <object><name>n01751748</name>
        <bndbox><xmin>111</xmin><ymin>108</ymin><xmax>363</xmax><ymax>352</ymax></bndbox>
      </object>
    </annotation>

Class names (``<name>``) map to indices through a class list in the format of ILSVRC's
``LOC_synset_mapping.txt``: one ``name [description]`` a line, line ``i`` is class ``i``.

Records are Detectron2's dataset dicts (``file_name``, ``image_id``, ``height``, ``width``,
``annotations`` with ``bbox`` / ``bbox_mode`` / ``category_id``) plus ``label``, the image's
class. Box coordinates are kept as written, as continuous ``XYXY_ABS`` pixel coordinates; the
one-pixel difference between VOC's 1-based inclusive and 0-based conventions is below what the
localisation metrics resolve at IoU 0.3-0.7.

The CUB-200-2011 layout (``images.txt``, ``image_class_labels.txt``, ``bounding_boxes.txt``,
``classes.txt``) is read by :func:`load_cub_wsol`.
"""
from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..modeling.pretrained import IMAGENET_MEAN, IMAGENET_STD
from .catalog import DatasetCatalog
from .image_io import collect_images, list_images, read_image
from .image_io import image_size as header_image_size

logger = logging.getLogger(__name__)

__all__ = [
    "WSOLDataError",
    "BBOX_MODE_XYXY_ABS",
    "read_class_list",
    "parse_ilsvrc_xml",
    "load_ilsvrc_wsol",
    "load_wsol_split",
    "load_cub_wsol",
    "records_for_images",
    "load_wsol_source",
    "check_labels",
    "read_image_rgb",
    "original_image_size",
    "load_resized",
    "flip_horizontal",
    "normalize_image",
    "WSOLDataset",
    "register_wsol_split",
    "collate_wsol",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

# Detectron2's BoxMode.XYXY_ABS, spelled out so the core needs no Detectron2.
BBOX_MODE_XYXY_ABS = 0


class WSOLDataError(ValueError):
    """A WSOL data file that is missing, malformed or inconsistent; the message names the file."""


# ---------------------------------------------------------------------------- class lists
def read_class_list(path: str) -> List[str]:
    """Class names from a ``name [description]``-per-line file; line ``i`` is class ``i``."""
    if not os.path.isfile(path):
        raise WSOLDataError(f"class list not found: {path}")
    names: List[str] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            name = line.split()[0]
            if name in names:
                raise WSOLDataError(f"{path}:{line_no}: class {name!r} is listed twice")
            names.append(name)
    if not names:
        raise WSOLDataError(f"class list {path} is empty")
    return names


# ---------------------------------------------------------------------------- ILSVRC XML
def _child_text(node: ET.Element, tag: str, xml_path: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise WSOLDataError(f"{xml_path}: <{node.tag}> has no <{tag}>")
    return child.text.strip()


def _child_number(node: ET.Element, tag: str, xml_path: str) -> float:
    text = _child_text(node, tag, xml_path)
    try:
        return float(text)
    except ValueError:
        raise WSOLDataError(f"{xml_path}: <{tag}> is not a number: {text!r}") from None


def parse_ilsvrc_xml(xml_path: str, class_to_index: Dict[str, int]) -> dict:
    """Reads one ILSVRC / PASCAL VOC-style annotation file.

    Returns ``{"height", "width", "label", "annotations"}``. Raises :class:`WSOLDataError`
    naming the file for a missing or malformed file, an unknown class name, objects of
    different classes, and a box that is empty or outside the image.
    """
    if not os.path.isfile(xml_path):
        raise WSOLDataError(f"annotation file not found: {xml_path}")
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as e:
        raise WSOLDataError(f"{xml_path}: malformed XML: {e}") from None
    if root.tag != "annotation":
        raise WSOLDataError(f"{xml_path}: root element is <{root.tag}>, expected <annotation>")
    size = root.find("size")
    if size is None:
        raise WSOLDataError(f"{xml_path}: <annotation> has no <size>")
    width = int(_child_number(size, "width", xml_path))
    height = int(_child_number(size, "height", xml_path))
    if width <= 0 or height <= 0:
        raise WSOLDataError(f"{xml_path}: image size {width}x{height} is not positive")

    objects = root.findall("object")
    if not objects:
        raise WSOLDataError(f"{xml_path}: no <object> (WSOL needs at least one box)")
    annotations = []
    label: Optional[int] = None
    for obj in objects:
        name = _child_text(obj, "name", xml_path)
        if name not in class_to_index:
            raise WSOLDataError(
                f"{xml_path}: class {name!r} is not in the class list ({len(class_to_index)} classes)"
            )
        category = class_to_index[name]
        if label is not None and category != label:
            raise WSOLDataError(
                f"{xml_path}: objects of different classes ({name!r} and class {label}); "
                "WSOL evaluation expects one class per image"
            )
        label = category
        box_node = obj.find("bndbox")
        if box_node is None:
            raise WSOLDataError(f"{xml_path}: <object> {name!r} has no <bndbox>")
        x0, y0, x1, y1 = (_child_number(box_node, t, xml_path) for t in ("xmin", "ymin", "xmax", "ymax"))
        if not (x1 > x0 and y1 > y0):
            raise WSOLDataError(f"{xml_path}: empty box {[x0, y0, x1, y1]} (needs xmax > xmin, ymax > ymin)")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise WSOLDataError(
                f"{xml_path}: box {[x0, y0, x1, y1]} lies outside the {width}x{height} image"
            )
        annotations.append(
            {"bbox": [x0, y0, x1, y1], "bbox_mode": BBOX_MODE_XYXY_ABS, "category_id": category}
        )
    return {"height": height, "width": width, "label": label, "annotations": annotations}


def load_ilsvrc_wsol(
    image_dir: str,
    annotation_dir: str,
    class_list: str,
    missing_annotation: str = "error",
) -> List[dict]:
    """Dataset dicts for every image in ``image_dir`` with its XML in ``annotation_dir``.

    Args:
        image_dir: folder of images (``*.JPEG`` in ILSVRC).
        annotation_dir: folder of ``<image stem>.xml`` files.
        class_list: ``LOC_synset_mapping.txt``-style class list.
        missing_annotation: ``"error"`` (default) or ``"skip"`` (logged) for an image without XML.
    """
    if missing_annotation not in ("error", "skip"):
        raise ValueError(f"missing_annotation must be 'error' or 'skip', got {missing_annotation!r}")
    classes = read_class_list(class_list)
    class_to_index = {name: i for i, name in enumerate(classes)}
    if not os.path.isdir(annotation_dir):
        raise WSOLDataError(f"annotation folder not found: {annotation_dir}")
    records = []
    skipped = []
    for image_id, path in enumerate(list_images(image_dir)):
        file = os.path.basename(path)
        xml_path = os.path.join(annotation_dir, os.path.splitext(file)[0] + ".xml")
        if not os.path.isfile(xml_path):
            if missing_annotation == "skip":
                skipped.append(file)
                continue
            raise WSOLDataError(
                f"no annotation for image {os.path.join(image_dir, file)}: {xml_path} does not exist "
                "(pass missing_annotation='skip' to leave such images out)"
            )
        record = parse_ilsvrc_xml(xml_path, class_to_index)
        record.update(file_name=path, image_id=image_id, annotation_file=xml_path)
        records.append(record)
    if skipped:
        logger.warning("skipped %d images without annotation in %s: %s", len(skipped), annotation_dir,
                       ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
    return records


def load_wsol_split(root: str, split: str = "val", missing_annotation: str = "error") -> List[dict]:
    """Reads this project's WSOL layout: ``root/classes.txt``, ``root/<split>/{images,annotations}/``."""
    return load_ilsvrc_wsol(
        os.path.join(root, split, "images"),
        os.path.join(root, split, "annotations"),
        os.path.join(root, "classes.txt"),
        missing_annotation=missing_annotation,
    )


# ---------------------------------------------------------------------------- CUB-200-2011
def _read_indexed_lines(path: str, min_fields: int) -> Dict[int, List[str]]:
    if not os.path.isfile(path):
        raise WSOLDataError(f"CUB file not found: {path}")
    out: Dict[int, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < min_fields + 1:
                raise WSOLDataError(f"{path}:{line_no}: expected {min_fields + 1} fields, got {line.strip()!r}")
            try:
                out[int(fields[0])] = fields[1:]
            except ValueError:
                raise WSOLDataError(f"{path}:{line_no}: id {fields[0]!r} is not an integer") from None
    return out


def load_cub_wsol(root: str, split: str = "test") -> List[dict]:
    """Dataset dicts for CUB-200-2011 (``images.txt``, ``classes.txt``, ``image_class_labels.txt``,
    ``bounding_boxes.txt`` (x, y, width, height), ``train_test_split.txt``, ``images/``).

    ``split`` is ``"train"``, ``"test"`` or ``"all"``. Class ids in the files are 1-based.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    images = _read_indexed_lines(os.path.join(root, "images.txt"), 1)
    classes = _read_indexed_lines(os.path.join(root, "classes.txt"), 1)
    labels_path = os.path.join(root, "image_class_labels.txt")
    labels = _read_indexed_lines(labels_path, 1)
    boxes_path = os.path.join(root, "bounding_boxes.txt")
    boxes = _read_indexed_lines(boxes_path, 4)
    splits = _read_indexed_lines(os.path.join(root, "train_test_split.txt"), 1)
    records = []
    for image_id in sorted(images):
        is_train = splits.get(image_id, ["0"])[0] == "1"
        if split != "all" and is_train != (split == "train"):
            continue
        file_name = os.path.join(root, "images", images[image_id][0])
        if image_id not in labels or image_id not in boxes:
            raise WSOLDataError(f"{labels_path if image_id not in labels else boxes_path}: "
                                f"no entry for image id {image_id}")
        class_id = int(labels[image_id][0])
        if not 1 <= class_id <= len(classes):
            raise WSOLDataError(
                f"{labels_path}: image id {image_id} has class {class_id}, outside 1..{len(classes)}"
            )
        x, y, w, h = (float(v) for v in boxes[image_id][:4])
        if w <= 0 or h <= 0:
            raise WSOLDataError(f"{boxes_path}: image id {image_id} has an empty box {[x, y, w, h]}")
        records.append({
            "file_name": file_name, "image_id": image_id, "label": class_id - 1,
            # CUB stores no image size; read_image_rgb checks the box against the decoded image.
            "height": None, "width": None,
            "annotations": [{"bbox": [x, y, x + w, y + h], "bbox_mode": BBOX_MODE_XYXY_ABS,
                             "category_id": class_id - 1}],
        })
    return records


# ---------------------------------------------------------------------------- any source
def records_for_images(
    paths: Sequence[str], annotation_dir: Optional[str] = None, class_list: Optional[str] = None
) -> List[dict]:
    """Dataset dicts for a user's own images (files, folders of images or glob patterns).

    With ``annotation_dir`` (and ``class_list``) each image's ``<stem>.xml`` gives its class and
    boxes when it exists; otherwise the record has ``label`` None and no boxes.
    """
    files = collect_images(paths, "image")
    class_to_index = None
    if annotation_dir is not None:
        if class_list is None:
            raise ValueError("annotations need a class list to map class names to indices")
        class_to_index = {n: i for i, n in enumerate(read_class_list(class_list))}
    records = []
    for image_id, file in enumerate(files):
        record = {"file_name": file, "image_id": image_id, "label": None, "annotations": [],
                  "height": None, "width": None}
        if class_to_index is not None:
            xml_path = os.path.join(annotation_dir, os.path.splitext(os.path.basename(file))[0] + ".xml")
            if os.path.isfile(xml_path):
                record.update(parse_ilsvrc_xml(xml_path, class_to_index), annotation_file=xml_path)
        records.append(record)
    return records


def load_wsol_source(
    data_root: Optional[str] = None,
    split: str = "val",
    images: Optional[str] = None,
    annotations: Optional[str] = None,
    class_list: Optional[str] = None,
    cub_root: Optional[str] = None,
) -> Tuple[List[dict], List[str]]:
    """``(records, class names)`` from one of: ``images`` + ``annotations`` + ``class_list``
    (ILSVRC), ``cub_root`` (CUB-200-2011, ``split`` train/test), or ``data_root`` (this
    project's layout, see :func:`load_wsol_split`)."""
    if cub_root is not None:
        classes_file = os.path.join(cub_root, "classes.txt")
        names = [fields[0] for _, fields in sorted(_read_indexed_lines(classes_file, 1).items())]
        return load_cub_wsol(cub_root, "test" if split == "val" else split), names
    if images is not None:
        if annotations is None or class_list is None:
            raise ValueError("an ILSVRC-style set needs images, annotations and a class list")
        return load_ilsvrc_wsol(images, annotations, class_list), read_class_list(class_list)
    if data_root is None:
        raise ValueError("give a data root, a CUB root, or images + annotations + class list")
    return load_wsol_split(data_root, split), read_class_list(os.path.join(data_root, "classes.txt"))


# ---------------------------------------------------------------------------- checks, reading
def check_labels(records: Sequence[dict], num_classes: int) -> None:
    """Raises naming the file of the first image whose class index a model can't output."""
    for r in records:
        if not 0 <= r["label"] < num_classes:
            raise WSOLDataError(
                f"{r.get('annotation_file', r['file_name'])}: class index {r['label']} is out of range "
                f"for a model with {num_classes} classes"
            )


def read_image_rgb(record_or_path) -> np.ndarray:
    """Decodes an image to ``H x W x 3`` uint8 RGB with :func:`res2net_det.data.image_io.read_image`
    (its :class:`~res2net_det.data.image_io.ImageReadError` names the file).

    Given a dataset dict, also checks the decoded size against the annotation's size (or,
    without one, that the boxes lie inside the image), raising :class:`WSOLDataError`.
    """
    record = record_or_path if isinstance(record_or_path, dict) else None
    path = record["file_name"] if record is not None else record_or_path
    image = read_image(path, "RGB")
    if record is not None:
        h, w = image.shape[:2]
        if record.get("height") is not None:
            if (record["height"], record["width"]) != (h, w):
                raise WSOLDataError(
                    f"{record.get('annotation_file', path)}: size {record['width']}x{record['height']} "
                    f"does not match the image {path} ({w}x{h})"
                )
        else:
            for ann in record["annotations"]:
                x0, y0, x1, y1 = ann["bbox"]
                if x0 < 0 or y0 < 0 or x1 > w + 1 or y1 > h + 1:  # CUB boxes are 1-based
                    raise WSOLDataError(f"{path}: box {ann['bbox']} lies outside the {w}x{h} image")
    return image


def original_image_size(record: dict) -> Tuple[int, int]:
    """``(H, W)`` of a record's original image: from the record, else (CUB) from the file's header."""
    if record.get("height") is not None:
        return record["height"], record["width"]
    width, height = header_image_size(record["file_name"])
    return height, width


def load_resized(record: dict, image_size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """``(RGB uint8 image resized to image_size (H, W), boxes (K, 4) in its pixels)`` of a dataset dict."""
    image = read_image_rgb(record)
    h, w = image.shape[:2]
    out_h, out_w = image_size
    image = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    boxes = np.array([a["bbox"] for a in record["annotations"]], dtype=np.float32).reshape(-1, 4)
    boxes *= np.array([out_w / w, out_h / h, out_w / w, out_h / h], dtype=np.float32)
    return image, boxes


def flip_horizontal(image: np.ndarray, boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mirrors an ``H x W x C`` image and its ``(K, 4)`` XYXY boxes left to right."""
    boxes = boxes.copy()
    boxes[:, [0, 2]] = image.shape[1] - boxes[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), boxes


_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def normalize_image(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 ``H x W x 3`` -> ImageNet-normalised ``3 x H x W`` float tensor."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)
    return (x - _MEAN) / _STD


class WSOLDataset(torch.utils.data.Dataset):
    """Images resized to ``image_size`` (no crop, so every box stays whole), ImageNet-normalised.

    Items are ``(image CHW float, label, boxes (K, 4) in resized pixels, index)``.

    Args:
        records: dataset dicts from :func:`load_ilsvrc_wsol` / :func:`load_cub_wsol`.
        image_size: ``(height, width)`` fed to the model.
        augment: random horizontal flip (training only).
    """

    def __init__(self, records: Sequence[dict], image_size: Tuple[int, int] = (224, 224),
                 augment: bool = False) -> None:
        self.records = list(records)
        self.image_size = tuple(image_size)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.records)

    def load_resized(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(resized RGB uint8 image, boxes (K, 4) in its pixels)``."""
        return load_resized(self.records[index], self.image_size)

    @staticmethod
    def normalize(image: np.ndarray) -> torch.Tensor:
        """RGB uint8 ``H x W x 3`` -> normalised ``3 x H x W`` float tensor."""
        return normalize_image(image)

    def __getitem__(self, index: int):
        image, boxes = self.load_resized(index)
        if self.augment and torch.rand(()) < 0.5:
            image, boxes = flip_horizontal(image, boxes)
        return self.normalize(image), self.records[index]["label"], torch.from_numpy(boxes), index


def register_wsol_split(name: str, root: str, split: str, prepare: Optional[Callable[[], Any]] = None) -> None:
    """Registers ``root/<split>`` of this project's WSOL layout (:func:`load_wsol_split`) as data
    set ``name`` in :data:`res2net_det.data.catalog.DatasetCatalog`; nothing is read until used,
    then ``prepare()`` (if given) runs first, e.g. to generate the files. Registering the same
    name for the same files again is a no-op."""
    if name in DatasetCatalog:
        meta = DatasetCatalog.metadata(name)
        if (meta.get("wsol_root"), meta.get("split")) != (root, split):
            raise ValueError(f"data set {name!r} is already registered for other files "
                             f"({meta.get('wsol_root')}, {meta.get('split')}); choose another name")
        return

    def load() -> List[dict]:
        if prepare is not None:
            prepare()
        DatasetCatalog.metadata(name)["thing_classes"] = read_class_list(os.path.join(root, "classes.txt"))
        return load_wsol_split(root, split)

    DatasetCatalog.register(name, load, wsol_root=root, split=split, evaluator_type="classification")


def register_wsol_splits_from_cfg(cfg) -> None:
    """Registers ``DATASETS.WSOL_SPLITS`` ([[name, root, split], ...]) when the config has the key."""
    for i, entry in enumerate(getattr(cfg.DATASETS, "WSOL_SPLITS", None) or []):
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise ValueError(f"DATASETS.WSOL_SPLITS[{i}] must be [name, root, split], got {entry!r}")
        register_wsol_split(*(str(v) for v in entry))


def collate_wsol(batch):
    """Stacks images and labels; keeps the per-image box tensors in a list."""
    images, labels, boxes, indices = zip(*batch)
    return torch.stack(images), torch.tensor(labels), list(boxes), list(indices)
