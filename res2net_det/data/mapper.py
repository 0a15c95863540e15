"""From a detection record to a model input: read the image, resize, flip, boxes to tensors.

Follows Detectron2's ``DatasetMapper``: ``ResizeShortestEdge`` (``INPUT.MIN_SIZE_*`` /
``MAX_SIZE_*``), horizontal flip in training, and an input dict ``{"image": uint8 CxHxW tensor in
INPUT.FORMAT order, "height", "width" (original size, for outputs), "file_name", "image_id",
"instances": {"gt_boxes": XYXY float tensor, "gt_classes": int64 tensor[, "gt_masks": uint8 NxHxW]}}``.
"""
from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .image_io import ImageReadError, read_image

__all__ = ["resize_shortest_edge_size", "resize_shortest_edge", "image_to_tensor",
           "DetectionMapper"]


def resize_shortest_edge_size(h: int, w: int, short: int, max_size: int) -> Tuple[int, int]:
    """Detectron2's ``ResizeShortestEdge`` output size for an ``h x w`` image."""
    scale = short / min(h, w)
    nh, nw = h * scale, w * scale
    if max(nh, nw) > max_size:
        scale = max_size / max(nh, nw)
        nh, nw = nh * scale, nw * scale
    return int(nh + 0.5), int(nw + 0.5)


def resize_shortest_edge(image: np.ndarray, short: int, max_size: int) -> np.ndarray:
    """Resizes an HxWxC image so its short side is ``short`` (long side at most ``max_size``)."""
    import cv2

    nh, nw = resize_shortest_edge_size(image.shape[0], image.shape[1], short, max_size)
    return cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWxC uint8 array -> CxHxW uint8 tensor (the model input layout)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def _polygons_to_mask(polygons: Sequence[Sequence[float]], h: int, w: int) -> np.ndarray:
    from pycocotools import mask as mask_util

    rles = mask_util.frPyObjects([list(map(float, p)) for p in polygons], h, w)
    return mask_util.decode(mask_util.merge(rles)).astype(np.uint8)


class DetectionMapper:
    """Callable turning a record into a model input dict.

    Args:
        is_train: sample a training size and flip; else resize to the test size.
        min_sizes: candidate shortest edges (one is chosen at random in training).
        max_size: cap on the longest edge.
        image_format: "RGB" or "BGR" (``INPUT.FORMAT``).
        random_flip: "horizontal" or "none".
        mask_on: also produce ``gt_masks`` from polygon ``segmentation``.
    """

    def __init__(
        self,
        is_train: bool,
        min_sizes: Sequence[int],
        max_size: int,
        image_format: str = "RGB",
        random_flip: str = "horizontal",
        mask_on: bool = False,
    ) -> None:
        self.is_train = is_train
        self.min_sizes = [int(s) for s in (min_sizes if isinstance(min_sizes, (list, tuple)) else [min_sizes])]
        self.max_size = int(max_size)
        self.image_format = image_format
        self.flip = is_train and random_flip == "horizontal"
        self.mask_on = mask_on

    @classmethod
    def from_config(cls, cfg, is_train: bool) -> "DetectionMapper":
        return cls(
            is_train=is_train,
            min_sizes=cfg.INPUT.MIN_SIZE_TRAIN if is_train else [cfg.INPUT.MIN_SIZE_TEST],
            max_size=cfg.INPUT.MAX_SIZE_TRAIN if is_train else cfg.INPUT.MAX_SIZE_TEST,
            image_format=cfg.INPUT.FORMAT,
            random_flip=cfg.INPUT.RANDOM_FLIP,
            mask_on=cfg.MODEL.MASK_ON,
        )

    def __call__(self, record: dict, rng: Optional[np.random.Generator] = None) -> dict:
        rng = rng if rng is not None else np.random.default_rng()
        record = copy.deepcopy(record)
        image = read_image(record["file_name"], self.image_format)
        h, w = image.shape[:2]
        if ("height" in record and record["height"] != h) or ("width" in record and record["width"] != w):
            raise ImageReadError(
                f"image {record['file_name']} is {w}x{h} but its annotation says "
                f"{record.get('width')}x{record.get('height')}"
            )
        short = int(rng.choice(self.min_sizes)) if self.is_train else self.min_sizes[-1]
        image = resize_shortest_edge(image, short, self.max_size)
        nh, nw = image.shape[:2]
        sx, sy = nw / w, nh / h
        flip = self.flip and rng.random() < 0.5
        if flip:
            image = image[:, ::-1]

        out = {
            "file_name": record["file_name"],
            "image_id": record.get("image_id"),
            "height": h,
            "width": w,
            "image": image_to_tensor(image),
        }
        if not self.is_train:
            return out

        anns = [a for a in record.get("annotations", []) if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
        boxes *= np.array([sx, sy, sx, sy], dtype=np.float32)
        if flip:
            boxes[:, [0, 2]] = nw - boxes[:, [2, 0]]
        instances = {
            "gt_boxes": torch.from_numpy(boxes),
            "gt_classes": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
        }
        if self.mask_on:
            masks: List[np.ndarray] = []
            for a in anns:
                seg = a.get("segmentation")
                if not isinstance(seg, list) or not seg:
                    raise ValueError(
                        f"MODEL.MASK_ON needs polygon 'segmentation' in every annotation; "
                        f"image {record['file_name']} has an annotation without one"
                    )
                polys = []
                for p in seg:
                    p = np.asarray(p, dtype=np.float64).reshape(-1, 2) * (sx, sy)
                    if flip:
                        p[:, 0] = nw - p[:, 0]
                    polys.append(p.reshape(-1))
                masks.append(_polygons_to_mask(polys, nh, nw))
            instances["gt_masks"] = (torch.from_numpy(np.stack(masks)) if masks
                                     else torch.zeros((0, nh, nw), dtype=torch.uint8))
        out["instances"] = instances
        return out
