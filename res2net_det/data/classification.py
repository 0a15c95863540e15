"""Image-classification data: WSOL-layout records (an image, its class, its object boxes) and the
mapper that turns one into the classifier's input dict.

Records come from :mod:`res2net_det.data.wsol` (ILSVRC-style XML, this project's layout, CUB) and
the generated shapes set (:mod:`res2net_det.data.shapes_wsol`), through the data set catalog.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .catalog import DatasetCatalog
from .coco import get_dataset_dicts
from .wsol import check_labels, flip_horizontal, load_resized, normalize_image

__all__ = ["ClassificationMapper", "get_classification_dicts"]


class ClassificationMapper:
    """Dataset dict -> model input: resized (no crop, so the boxes stay whole for the CAM
    localisation metrics), optionally flipped, normalised with ImageNet's RGB mean / std.

    Args:
        image_size: ``(height, width)``.
        flip: flip horizontally with probability 0.5 (training).
    """

    def __init__(self, image_size: Tuple[int, int], flip: bool) -> None:
        self.image_size = tuple(int(v) for v in image_size)
        self.flip = flip

    def __call__(self, record: dict, rng: Optional[np.random.Generator] = None) -> dict:
        image, boxes = load_resized(record, self.image_size)
        if self.flip and (rng if rng is not None else np.random).random() < 0.5:
            image, boxes = flip_horizontal(image, boxes)
        return {"image": normalize_image(image), "label": record["label"], "boxes": torch.from_numpy(boxes),
                "image_id": record["image_id"], "file_name": record["file_name"]}


def get_classification_dicts(names: Sequence[str], num_classes: int) -> List[dict]:
    """The records of the registered data sets ``names``, checked against a classifier of
    ``num_classes`` outputs: every set's class list has that length and every label fits."""
    records = get_dataset_dicts(list(names), filter_empty=False)
    for name in names:
        classes = DatasetCatalog.metadata(name).get("thing_classes")
        if classes is not None and len(classes) != num_classes:
            raise ValueError(f"data set {name!r} has {len(classes)} classes but MODEL.CLASSIFIER.NUM_CLASSES "
                             f"is {num_classes}")
    check_labels(records, num_classes)
    return records
