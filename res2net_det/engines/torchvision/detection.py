"""The detection task of the torchvision engine (``MODEL.META_ARCHITECTURE: GeneralizedRCNN``)."""
from __future__ import annotations

import logging
import os
from typing import List

import cv2
import torch
from torch import nn

from ...data.catalog import DatasetCatalog
from ...data.coco import get_dataset_dicts
from ...data.mapper import DetectionMapper, read_image
from ...evaluation.detection import build_detection_evaluator
from ...utils import comm
from ...utils.visualization import draw_detections
from .data import MappedDataset, build_batch_test_loader, build_batch_train_loader
from .modeling import build_rcnn
from .registry import Task, register_task
from .trainer import images_per_process

logger = logging.getLogger(__name__)

__all__ = ["build_train_loader", "build_test_loader", "build_evaluator", "visualize_predictions", "TASK"]


def _check_num_classes(cfg, names) -> None:
    for name in names:
        classes = DatasetCatalog.metadata(name).get("thing_classes")
        if classes is not None and len(classes) != cfg.MODEL.ROI_HEADS.NUM_CLASSES:
            raise ValueError(
                f"data set {name!r} has {len(classes)} classes but MODEL.ROI_HEADS.NUM_CLASSES is "
                f"{cfg.MODEL.ROI_HEADS.NUM_CLASSES}"
            )


def build_train_loader(cfg):
    records = get_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    _check_num_classes(cfg, cfg.DATASETS.TRAIN)
    dataset = MappedDataset(records, DetectionMapper.from_config(cfg, is_train=True))
    return build_batch_train_loader(dataset, images_per_process(cfg), cfg.DATALOADER.NUM_WORKERS, cfg.SEED)


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
    os.makedirs(output_dir, exist_ok=True)
    records = get_dataset_dicts([dataset_name], filter_empty=False)[:num_images]
    mapper = DetectionMapper.from_config(cfg, is_train=False)
    classes = DatasetCatalog.metadata(dataset_name).get("thing_classes")
    was_training = model.training
    model.eval()
    paths = []
    for rec in records:
        out = model([mapper(rec)])[0]["instances"]
        image = read_image(rec["file_name"], "RGB")
        drawn = draw_detections(
            image, out["pred_boxes"].cpu().numpy(), out["scores"].cpu().numpy(),
            out["pred_classes"].cpu().numpy(), classes, score_thresh=0.5,
            masks=out["pred_masks"].cpu().numpy() if "pred_masks" in out else None,
        )
        path = os.path.join(output_dir, os.path.splitext(os.path.basename(rec["file_name"]))[0] + ".png")
        cv2.imwrite(path, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        paths.append(path)
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
