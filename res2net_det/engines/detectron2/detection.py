"""Detection on Detectron2 (``GeneralizedRCNN``, ``RetinaNet``, ``PanopticFPN`` and Detectron2's other
detectors): the :class:`~.trainer.TaskTrainer` with Detectron2's loaders, its evaluators chosen by the
data set's ``evaluator_type`` (:mod:`.evaluation`) and the same pictures of the predictions as the
torchvision engine draws. Detectron2 builds the models from its own registries (our backbones:
:mod:`.backbone`).
"""
from __future__ import annotations

import os

import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog as D2DatasetCatalog
from detectron2.data import DatasetMapper, MetadataCatalog
from detectron2.utils import comm

from ...evaluation.coco import write_detection_pictures
from .evaluation import build_detection_evaluator
from .trainer import TaskTrainer

__all__ = ["DetectionTrainer", "visualize_predictions"]


class DetectionTrainer(TaskTrainer):
    """Detection (``GeneralizedRCNN`` and Detectron2's other detectors): Detectron2's loaders, the
    COCO evaluator (box AP, and mask AP for Mask R-CNN) and drawn predictions; our trainer keys
    come from :class:`~.trainer.TaskTrainer`."""

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str = None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_detection_evaluator(dataset_name, output_folder)  # COCO or VOC, by evaluator_type

    @classmethod
    def visualize(cls, cfg, model, dataset_name: str, output_dir: str, num_images: int):
        return visualize_predictions(cfg, model, dataset_name, output_dir, num_images)


def _instances_dict(instances) -> dict:
    """Detectron2 ``Instances`` -> the fields :func:`write_detection_pictures` draws."""
    instances = instances.to("cpu")
    out = {"pred_boxes": instances.pred_boxes.tensor, "scores": instances.scores,
           "pred_classes": instances.pred_classes}
    if instances.has("pred_masks"):
        out["pred_masks"] = instances.pred_masks
    return out


def visualize_predictions(cfg: CfgNode, model: torch.nn.Module, dataset_name: str, output_dir: str,
                          num_images: int) -> list:
    """Draws the predictions on the first ``num_images`` images of a data set as PNGs (the same
    pictures as the torchvision engine's); returns the paths."""
    if not comm.is_main_process() or num_images <= 0:
        return []
    mapper = DatasetMapper(cfg, is_train=False)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        paths = write_detection_pictures(
            D2DatasetCatalog.get(dataset_name)[:num_images],
            lambda record, _image: _instances_dict(model([mapper(record)])[0]["instances"]),
            output_dir, MetadataCatalog.get(dataset_name).get("thing_classes"),
        )
    model.train(was_training)
    return paths
