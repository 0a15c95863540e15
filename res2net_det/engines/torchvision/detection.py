"""The detection tasks of the torchvision engine: ``MODEL.META_ARCHITECTURE`` ``GeneralizedRCNN``
(Faster / Mask R-CNN) and ``RetinaNet``, sharing data, evaluation and drawing."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import List

import torch
from torch import nn

from ...data.catalog import DatasetCatalog
from ...data.coco import get_dataset_dicts
from ...data.mapper import DetectionMapper
from ...evaluation.coco import write_detection_pictures
from ...evaluation.detection import build_detection_evaluator
from ...utils import comm
from .data import MappedDataset, aspect_ratio_groups, build_batch_test_loader, build_batch_train_loader
from .modeling import build_rcnn, build_retinanet
from .registry import Task, register_task
from .trainer import images_per_process

logger = logging.getLogger(__name__)

__all__ = ["build_train_loader", "build_test_loader", "build_evaluator", "visualize_predictions", "TASK",
           "RETINANET_TASK"]


def _check_num_classes(cfg, names) -> None:
    key = "RETINANET" if cfg.MODEL.META_ARCHITECTURE == "RetinaNet" else "ROI_HEADS"
    num_classes = cfg.MODEL[key].NUM_CLASSES
    for name in names:
        classes = DatasetCatalog.metadata(name).get("thing_classes")
        if classes is not None and len(classes) != num_classes:
            raise ValueError(
                f"data set {name!r} has {len(classes)} classes but MODEL.{key}.NUM_CLASSES is {num_classes}"
            )


def build_train_loader(cfg):
    records = get_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    _check_num_classes(cfg, cfg.DATASETS.TRAIN)
    dataset = MappedDataset(records, DetectionMapper.from_config(cfg, is_train=True))
    groups = aspect_ratio_groups(records) if cfg.DATALOADER.ASPECT_RATIO_GROUPING else None
    return build_batch_train_loader(dataset, images_per_process(cfg), cfg.DATALOADER.NUM_WORKERS, cfg.SEED, groups)


def build_test_loader(cfg, dataset_name: str):
    records = get_dataset_dicts([dataset_name], filter_empty=False)
    dataset = MappedDataset(records, DetectionMapper.from_config(cfg, is_train=False))
    return build_batch_test_loader(dataset, cfg.DATALOADER.NUM_WORKERS)


def build_evaluator(cfg, dataset_name: str, output_dir: str):
    """COCO or VOC AP, by the data set's ``evaluator_type`` (as Detectron2 chooses)."""
    return build_detection_evaluator(dataset_name, output_dir)


@torch.no_grad()
def visualize_predictions(cfg, model: nn.Module, dataset_name: str, output_dir: str, num_images: int) -> List[str]:
    """Draws predictions on the first ``num_images`` images of a data set; returns the PNG paths."""
    if not comm.is_main_process() or num_images <= 0:
        return []
    records = get_dataset_dicts([dataset_name], filter_empty=False)[:num_images]
    mapper = DetectionMapper.from_config(cfg, is_train=False)
    was_training = model.training
    model.eval()
    paths = write_detection_pictures(
        records, lambda record, _image: model([mapper(record)])[0]["instances"], output_dir,
        DatasetCatalog.metadata(dataset_name).get("thing_classes"), score_thresh=0.5,
    )
    model.train(was_training)
    logger.info("drew predictions on %d images of %s in %s", len(paths), dataset_name, output_dir)
    return paths


TASK = register_task(Task(
    name="GeneralizedRCNN",
    build_model=build_rcnn,
    build_train_loader=build_train_loader,
    build_test_loader=build_test_loader,
    build_evaluator=build_evaluator,
    visualize=visualize_predictions,
))

# RetinaNet: the same data, evaluation and pictures; only the model differs.
RETINANET_TASK = register_task(replace(TASK, name="RetinaNet", build_model=build_retinanet))
