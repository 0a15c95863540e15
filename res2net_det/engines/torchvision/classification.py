"""The image-classification task of the torchvision engine (``MODEL.META_ARCHITECTURE: Res2NetClassifier``).

Trains a Res2Net classifier on data sets in the WSOL layout (:mod:`res2net_det.data.wsol`:
images, a class each, object boxes) with the generic trainer, so class activation maps can be
evaluated on the trained network. Keys: ``MODEL.RES2NET.*`` (the network),
``MODEL.CLASSIFIER.*``, ``INPUT.CLASSIFIER.RESIZE`` and ``DATASETS.WSOL_SPLITS``
(:func:`res2net_det.config.classification.add_classification_config`).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...config.classification import classifier_kwargs_from_cfg
from ...data.catalog import DatasetCatalog
from ...data.coco import get_dataset_dicts
from ...data.shapes_wsol import register_shapes_wsol
from ...data.wsol import IMAGENET_MEAN, IMAGENET_STD, check_labels, flip_horizontal, load_resized, normalize_image, register_wsol_splits_from_cfg
from ...modeling.res2net import Res2Net
from ...utils import comm
from .data import MappedDataset, build_batch_test_loader, build_batch_train_loader
from .registry import Task, register_task
from .trainer import images_per_process

logger = logging.getLogger(__name__)

__all__ = [
    "Res2NetClassifier",
    "ClassificationMapper",
    "ClassificationEvaluator",
    "register_classification_datasets",
    "build_train_loader",
    "build_test_loader",
    "build_evaluator",
    "TASK",
]


def _check_input_keys(cfg) -> None:
    """The CAM tools normalise with ImageNet's RGB mean/std (``data.wsol``); a config that says
    otherwise would train a network they then feed differently, so it is refused."""
    mean = [255.0 * m for m in IMAGENET_MEAN]
    std = [255.0 * s for s in IMAGENET_STD]
    problems = []
    if cfg.INPUT.FORMAT != "RGB":
        problems.append(f"INPUT.FORMAT = {cfg.INPUT.FORMAT!r} (supported: 'RGB')")
    if not np.allclose(cfg.MODEL.PIXEL_MEAN, mean, atol=1e-2):
        problems.append(f"MODEL.PIXEL_MEAN = {list(cfg.MODEL.PIXEL_MEAN)} (supported: {mean}, ImageNet RGB)")
    if not np.allclose(cfg.MODEL.PIXEL_STD, std, atol=1e-2):
        problems.append(f"MODEL.PIXEL_STD = {list(cfg.MODEL.PIXEL_STD)} (supported: {std}, ImageNet RGB)")
    if cfg.INPUT.RANDOM_FLIP not in ("horizontal", "none"):
        problems.append(f"INPUT.RANDOM_FLIP = {cfg.INPUT.RANDOM_FLIP!r} (supported: 'horizontal', 'none')")
    if len(cfg.INPUT.CLASSIFIER.RESIZE) != 2 or min(cfg.INPUT.CLASSIFIER.RESIZE) < 8:
        problems.append(f"INPUT.CLASSIFIER.RESIZE = {cfg.INPUT.CLASSIFIER.RESIZE!r} (must be (height, width), each >= 8)")
    if problems:
        raise ValueError("the Res2NetClassifier task can't honour these config values:\n  " + "\n  ".join(problems))


class Res2NetClassifier(nn.Module):
    """A Res2Net classifier behind the trainer's list-of-dicts contract.

    Inputs are dicts with ``image`` (normalised ``3 x H x W``) and, in training, ``label``.
    Training returns ``{"loss_cls": cross-entropy}``; eval returns one dict per image with
    ``logits``, ``scores`` (softmax) and ``pred_class``.

    Args:
        net: the classifier (``net(images) -> logits``, features and ``fc``), kept as
            ``.backbone``: the attribute under which the trainer's ``MODEL.WEIGHTS`` loader puts a
            plain official / timm Res2Net checkpoint (a classifier of another size is skipped).
    """

    def __init__(self, net: Res2Net) -> None:
        super().__init__()
        self.backbone = net

    @classmethod
    def from_config(cls, cfg) -> "Res2NetClassifier":
        _check_input_keys(cfg)
        return cls(Res2Net(**classifier_kwargs_from_cfg(cfg)))

    def forward(self, batched_inputs: Sequence[dict]):
        device = next(self.backbone.parameters()).device
        images = torch.stack([d["image"] for d in batched_inputs]).to(device)
        logits = self.backbone(images)
        if self.training:
            labels = torch.as_tensor([d["label"] for d in batched_inputs], device=device)
            return {"loss_cls": F.cross_entropy(logits, labels)}
        scores = logits.softmax(1)
        return [{"logits": lg, "scores": sc, "pred_class": int(sc.argmax())} for lg, sc in zip(logits, scores)]


class ClassificationMapper:
    """Dataset dict -> model input: resized (no crop), optionally flipped, normalised.

    Args:
        image_size: ``(height, width)``.
        flip: flip horizontally with probability 0.5 (training).
    """

    def __init__(self, image_size: Tuple[int, int], flip: bool) -> None:
        self.image_size = tuple(int(v) for v in image_size)
        self.flip = flip

    @classmethod
    def from_config(cls, cfg, is_train: bool) -> "ClassificationMapper":
        return cls(cfg.INPUT.CLASSIFIER.RESIZE, flip=is_train and cfg.INPUT.RANDOM_FLIP == "horizontal")

    def __call__(self, record: dict, rng: Optional[np.random.Generator] = None) -> dict:
        image, boxes = load_resized(record, self.image_size)
        if self.flip and (rng if rng is not None else np.random).random() < 0.5:
            image, boxes = flip_horizontal(image, boxes)
        return {"image": normalize_image(image), "label": record["label"], "boxes": torch.from_numpy(boxes),
                "image_id": record["image_id"], "file_name": record["file_name"]}


class ClassificationEvaluator:
    """Top-1 accuracy (percent), with Detectron2's ``DatasetEvaluator`` protocol; under DDP the
    predictions of all processes are gathered. Writes ``classification_results.json`` to
    ``output_dir`` (when given): the accuracy and every image's prediction."""

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None) -> None:
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self._predictions: List[dict] = []

    def reset(self) -> None:
        self._predictions = []

    def process(self, inputs: Sequence[dict], outputs: Sequence[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            self._predictions.append({"image_id": inp["image_id"], "label": int(inp["label"]),
                                      "pred_class": int(out["pred_class"])})

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        predictions = [p for part in comm.all_gather(self._predictions) for p in part]
        if not comm.is_main_process():
            return None
        if not predictions:
            raise ValueError(f"no predictions to evaluate on {self.dataset_name!r}")
        correct = sum(p["label"] == p["pred_class"] for p in predictions)
        results = {"classification": {"top1": 100.0 * correct / len(predictions),
                                      "num_images": float(len(predictions))}}
        logger.info("%s: top-1 accuracy %.2f%% on %d images", self.dataset_name,
                    results["classification"]["top1"], len(predictions))
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(os.path.join(self.output_dir, "classification_results.json"), "w", encoding="utf-8") as f:
                json.dump({"results": results, "predictions": predictions}, f)
        return results


def register_classification_datasets(cfg) -> None:
    """Registers the generated ``wsol_shapes_train/val`` and ``DATASETS.WSOL_SPLITS`` ([[name, root, split]])."""
    register_shapes_wsol()
    register_wsol_splits_from_cfg(cfg)


def _records(cfg, names: Sequence[str]) -> List[dict]:
    register_classification_datasets(cfg)
    records = get_dataset_dicts(list(names), filter_empty=False)
    num_classes = cfg.MODEL.CLASSIFIER.NUM_CLASSES
    for name in names:
        classes = DatasetCatalog.metadata(name).get("thing_classes")
        if classes is not None and len(classes) != num_classes:
            raise ValueError(f"data set {name!r} has {len(classes)} classes but MODEL.CLASSIFIER.NUM_CLASSES "
                             f"is {num_classes}")
    check_labels(records, num_classes)
    return records


def build_train_loader(cfg):
    dataset = MappedDataset(_records(cfg, cfg.DATASETS.TRAIN), ClassificationMapper.from_config(cfg, is_train=True))
    return build_batch_train_loader(dataset, images_per_process(cfg), cfg.DATALOADER.NUM_WORKERS, cfg.SEED)


def build_test_loader(cfg, dataset_name: str, batch_size: int = 32):
    dataset = MappedDataset(_records(cfg, [dataset_name]), ClassificationMapper.from_config(cfg, is_train=False))
    return build_batch_test_loader(dataset, cfg.DATALOADER.NUM_WORKERS, batch_size=batch_size)


def build_evaluator(cfg, dataset_name: str, output_dir: str) -> ClassificationEvaluator:
    return ClassificationEvaluator(dataset_name, output_dir)


TASK = register_task(Task(
    name="Res2NetClassifier",
    build_model=Res2NetClassifier.from_config,
    build_train_loader=build_train_loader,
    build_test_loader=build_test_loader,
    build_evaluator=build_evaluator,
))
