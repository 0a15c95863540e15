"""Checking a data set without training on it: every problem found, not just the first.

Training stops at the first bad file; a user preparing a data set wants the whole list at once.
:func:`check_dataset` loads a registered data set (any task: COCO, VOC-style, saliency folders,
WSOL) and then reads every image (and mask) the way training would, collecting what fails: the
reader's own errors, an image whose size differs from its annotation, boxes outside the image.
A COCO file that does not load is checked record by record with :func:`coco_problems`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

from tqdm import tqdm

from .catalog import DatasetCatalog
from .coco import AnnotationError, coco_problems, read_coco_json
from .mapper import read_image
from .saliency import read_mask

__all__ = ["DatasetReport", "check_dataset", "check_records"]


@dataclass
class DatasetReport:
    name: str
    num_records: int = 0
    problems: List[str] = field(default_factory=list)

    def summary(self) -> str:
        head = f"{self.name}: {self.num_records} images, {len(self.problems)} problem(s)"
        return "\n  ".join([head] + self.problems)


def _box_problem(box, width: int, height: int) -> Optional[str]:
    x, y, w, h = box
    if not all(math.isfinite(v) for v in box):
        return f"non-finite box {box}"
    if w <= 0 or h <= 0 or x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return f"box {box} has no area inside the {width}x{height} image"
    return None


def check_records(records: List[dict], progress: bool = True) -> List[str]:
    """Problems of loaded dataset dicts: unreadable images or masks, sizes that differ from the
    record's, boxes without area inside their image."""
    problems: List[str] = []
    for record in tqdm(records, desc="checking", disable=None if progress else True, leave=False):
        path = record["file_name"]
        try:
            image = read_image(path)
        except (OSError, ValueError) as e:
            problems.append(str(e))
            continue
        h, w = image.shape[:2]
        if (record.get("height", h), record.get("width", w)) != (h, w):
            problems.append(f"{path}: the image is {w}x{h} but its annotation says "
                            f"{record.get('width')}x{record.get('height')} (W x H)")
        for ann in record.get("annotations", []):
            why = _box_problem([float(v) for v in ann["bbox"]], w, h) if "bbox" in ann else None
            if why:
                problems.append(f"{path}: {why}")
        for box in record.get("boxes", []):  # WSOL records: [x0, y0, x1, y1]
            x0, y0, x1, y1 = (float(v) for v in box)
            why = _box_problem([x0, y0, x1 - x0, y1 - y0], w, h)
            if why:
                problems.append(f"{path}: {why}")
        mask = record.get("sem_seg_file_name")
        if mask:
            try:
                m = read_mask(mask)
            except (OSError, ValueError) as e:
                problems.append(str(e))
                continue
            if m.shape[:2] != (h, w):
                problems.append(f"{mask}: the mask is {m.shape[1]}x{m.shape[0]} but its image {path} is {w}x{h}")
    return problems


def check_dataset(name: str, progress: bool = True) -> DatasetReport:
    """Loads the registered data set ``name`` and checks every record (see the module docstring)."""
    report = DatasetReport(name)
    try:
        records = DatasetCatalog.get(name)
    except (AnnotationError, OSError, ValueError, KeyError) as e:
        json_file = DatasetCatalog.metadata(name).get("json_file") if name in DatasetCatalog else None
        if isinstance(e, AnnotationError) and json_file:
            try:
                report.problems = coco_problems(read_coco_json(json_file), json_file)
            except AnnotationError as unreadable:
                report.problems = [str(unreadable)]
        report.problems = report.problems or [str(e).strip("'\"")]
        return report
    report.num_records = len(records)
    report.problems = check_records(records, progress)
    return report
