"""The WSOL benchmarks' own metadata layout (Choe et al., CVPR 2020, clovaai/wsolevaluation),
for CUB-200-2011, ILSVRC and OpenImages30k::

    metadata/<CUB|ILSVRC|OpenImages>/<train|val|test>/
      image_ids.txt      <image id>                       one a line, e.g. val/ILSVRC2012_val_00000001.JPEG
      class_labels.txt   <image id>,<class index>
      image_sizes.txt    <image id>,<width>,<height>      (empty for OpenImages)
      localization.txt   <image id>,<x0>,<y0>,<x1>,<y1>   one line per box (CUB, ILSVRC), or
                         <image id>,<mask path>,<ignore path>   one line per object mask (OpenImages);
                                                          the ignore path on the image's first line only

An image id is the image's path below the data root (``--data-root``); mask paths are below
the mask root (by default the data root, as in the authors' ``dataset/OpenImages``). Boxes are
inclusive pixel boxes of the original image (``0 <= x0 <= x1 <= width - 1``).

Records are this package's WSOL dataset dicts (see :mod:`res2net_det.data.wsol`) plus
``wsol_id`` (the image id), and for masks ``mask_files`` and ``ignore_file``. Every bad row
raises :class:`~res2net_det.data.wsol.WSOLDataError` naming the file and line.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .wsol import BBOX_MODE_XYXY_ABS, WSOLDataError

__all__ = [
    "METADATA_FILES",
    "KNOWN_NUM_CLASSES",
    "find_metadata_dir",
    "load_wsol_metadata",
    "load_wsol_masks",
]

METADATA_FILES = ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")
#: Class counts of the three benchmarks (their metadata holds indices only).
KNOWN_NUM_CLASSES = {"CUB": 200, "ILSVRC": 1000, "OpenImages": 100}


def find_metadata_dir(path: str, split: str = "test") -> str:
    """``path`` itself when it holds ``image_ids.txt``, else ``path/<split>``."""
    for candidate in (path, os.path.join(path, split)):
        if os.path.isfile(os.path.join(candidate, "image_ids.txt")):
            return candidate
    raise WSOLDataError(
        f"no WSOL metadata at {path}: expected {', '.join(METADATA_FILES)} in it or in {os.path.join(path, split)} "
        "(the layout metadata/<dataset>/<split>/ of clovaai/wsolevaluation)"
    )


def _rows(path: str, fields: Sequence[int], required: bool = True):
    """``(line number, fields)`` of a comma-separated file, blank lines skipped."""
    if not os.path.isfile(path):
        if required:
            raise WSOLDataError(f"WSOL metadata file not found: {path}")
        return
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            values = line.split(",")
            if len(values) not in fields:
                raise WSOLDataError(
                    f"{path}:{line_no}: expected {' or '.join(map(str, fields))} comma-separated fields, got {line!r}"
                )
            yield line_no, values


def _integer(value: str, path: str, line_no: int, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise WSOLDataError(f"{path}:{line_no}: {what} {value!r} is not an integer") from None


def _known(image_id: str, index: Dict[str, int], path: str, line_no: int, ids_path: str) -> int:
    if image_id not in index:
        raise WSOLDataError(f"{path}:{line_no}: unknown image {image_id!r} (not in {ids_path})")
    return index[image_id]


def load_wsol_metadata(
    metadata_dir: str,
    data_root: str,
    split: str = "test",
    mask_root: Optional[str] = None,
    check_mask_files: bool = True,
) -> Tuple[List[dict], List[str]]:
    """``(records, class names)`` of one split of the authors' metadata.

    Args:
        metadata_dir: the split's folder, or the data set's folder holding ``<split>/``.
        data_root: the folder the image ids are relative to.
        split: used when ``metadata_dir`` is the data set's folder.
        mask_root: the folder mask paths are relative to (default ``data_root``).
        check_mask_files: raise for a mask or ignore file that does not exist.

    Class names are the indices as strings, as many as the benchmark has when the metadata sits
    in a folder named ``CUB``, ``ILSVRC`` or ``OpenImages``, else the largest index + 1.
    """
    folder = find_metadata_dir(metadata_dir, split)
    mask_root = data_root if mask_root is None else mask_root
    ids_path, labels_path, sizes_path, loc_path = (os.path.join(folder, name) for name in METADATA_FILES)

    records: List[dict] = []
    index: Dict[str, int] = {}
    for line_no, (image_id,) in _rows(ids_path, (1,)):
        if image_id in index:
            raise WSOLDataError(f"{ids_path}:{line_no}: image {image_id!r} is listed twice")
        index[image_id] = len(records)
        records.append({"file_name": os.path.join(data_root, image_id), "image_id": len(records),
                        "wsol_id": image_id, "label": None, "height": None, "width": None, "annotations": []})
    if not records:
        raise WSOLDataError(f"{ids_path} lists no image")

    for line_no, (image_id, label) in _rows(labels_path, (2,)):
        record = records[_known(image_id, index, labels_path, line_no, ids_path)]
        value = _integer(label, labels_path, line_no, "class index")
        if value < 0:
            raise WSOLDataError(f"{labels_path}:{line_no}: class index {value} is negative")
        if record["label"] is not None:
            raise WSOLDataError(f"{labels_path}:{line_no}: image {image_id!r} has a second class label")
        record.update(label=value, annotation_file=f"{labels_path}:{line_no}")
    for record in records:
        if record["label"] is None:
            raise WSOLDataError(f"{labels_path}: no class label for image {record['wsol_id']!r}")

    for line_no, (image_id, width, height) in _rows(sizes_path, (3,), required=False):
        record = records[_known(image_id, index, sizes_path, line_no, ids_path)]
        w = _integer(width, sizes_path, line_no, "width")
        h = _integer(height, sizes_path, line_no, "height")
        if w <= 0 or h <= 0:
            raise WSOLDataError(f"{sizes_path}:{line_no}: image size {w}x{h} is not positive")
        record.update(width=w, height=h)

    kind = None
    for line_no, values in _rows(loc_path, (3, 5)):
        row_kind = "box" if len(values) == 5 else "mask"
        if kind is not None and row_kind != kind:
            raise WSOLDataError(f"{loc_path}:{line_no}: a {row_kind} row among {kind} rows")
        kind = row_kind
        record = records[_known(values[0], index, loc_path, line_no, ids_path)]
        if kind == "box":
            _add_box(record, values[1:], loc_path, line_no, sizes_path)
        else:
            _add_mask(record, values[1], values[2], mask_root, loc_path, line_no, check_mask_files)
    if kind is None:
        raise WSOLDataError(f"{loc_path} has no box or mask")
    for record in records:
        if not (record["annotations"] if kind == "box" else record.get("mask_files")):
            raise WSOLDataError(f"{loc_path}: no {kind} for image {record['wsol_id']!r}")

    dataset = os.path.basename(os.path.dirname(os.path.abspath(folder)))
    num_classes = KNOWN_NUM_CLASSES.get(dataset, max(r["label"] for r in records) + 1)
    if max(r["label"] for r in records) >= num_classes:
        raise WSOLDataError(f"{labels_path}: class index {max(r['label'] for r in records)} is out of range "
                            f"for {dataset} ({num_classes} classes)")
    return records, [str(i) for i in range(num_classes)]


def _add_box(record: dict, values: Sequence[str], path: str, line_no: int, sizes_path: str) -> None:
    x0, y0, x1, y1 = (_integer(v, path, line_no, "box coordinate") for v in values)
    if record["width"] is None:
        raise WSOLDataError(f"{path}:{line_no}: image {record['wsol_id']!r} has no size in {sizes_path} "
                            "(boxes are rescaled from the original size)")
    w, h = record["width"], record["height"]
    if x1 < x0 or y1 < y0:
        raise WSOLDataError(f"{path}:{line_no}: empty box {[x0, y0, x1, y1]} (needs x0 <= x1, y0 <= y1)")
    if x0 < 0 or y0 < 0 or x1 > w - 1 or y1 > h - 1:
        raise WSOLDataError(f"{path}:{line_no}: box {[x0, y0, x1, y1]} lies outside the {w}x{h} image "
                            f"(inclusive pixel boxes: 0 <= x0 <= x1 <= {w - 1}, 0 <= y0 <= y1 <= {h - 1})")
    record["annotations"].append({"bbox": [x0, y0, x1, y1], "bbox_mode": BBOX_MODE_XYXY_ABS,
                                  "category_id": record["label"]})


def _add_mask(record: dict, mask: str, ignore: str, mask_root: str, path: str, line_no: int, check: bool) -> None:
    if not mask:
        raise WSOLDataError(f"{path}:{line_no}: no mask path for image {record['wsol_id']!r}")
    files = [os.path.join(mask_root, mask)] + ([os.path.join(mask_root, ignore)] if ignore else [])
    if check:
        for file in files:
            if not os.path.isfile(file):
                raise WSOLDataError(f"{path}:{line_no}: mask file not found: {file}")
    record.setdefault("mask_files", []).append(files[0])
    if ignore:
        if record.get("ignore_file") not in (None, files[1]):
            raise WSOLDataError(f"{path}:{line_no}: a second ignore mask for image {record['wsol_id']!r} "
                                f"({files[1]}; the first was {record['ignore_file']})")
        record["ignore_file"] = files[1]
    else:
        record.setdefault("ignore_file", None)


def _read_mask(path: str, size: Tuple[int, int]) -> np.ndarray:
    # OpenCV's grayscale decoding, not data/image_io's reader: the protocol's masks are what the
    # authors' evaluator reads with cv2.imread(IMREAD_GRAYSCALE) (e.g. how a 16-bit PNG maps to 8 bits)
    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise WSOLDataError(f"could not read mask {path} (missing, corrupt or not an image)")
    height, width = size
    # nearest neighbour, then any non-zero value is inside, as the authors' evaluator
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST) > 0


def load_wsol_masks(record: dict, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """``(foreground, ignore)`` boolean ``size`` ``(H, W)`` masks of a record with ``mask_files``:
    the union of its instance masks, and its ignore region minus that foreground (the ignore
    file marks boxes around unannotated instances)."""
    if not record.get("mask_files"):
        raise WSOLDataError(f"{record['file_name']}: the record has no masks")
    foreground = np.zeros(size, bool)
    for path in record["mask_files"]:
        foreground |= _read_mask(path, size)
    ignore = np.zeros(size, bool)
    if record.get("ignore_file"):
        ignore = _read_mask(record["ignore_file"], size) & ~foreground
    return foreground, ignore
