"""Image classification on Detectron2: the ``Res2NetClassifier`` meta-architecture and its
:class:`~.trainer.TaskTrainer` with the core's classifier, mapper, evaluator and CAM pictures
(:mod:`res2net_det.config.classification` turns the config into them, as for the torchvision
engine). Importing it registers ``MODEL.META_ARCHITECTURE: Res2NetClassifier`` in
``META_ARCH_REGISTRY``.
"""
from __future__ import annotations

import os

from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.modeling import META_ARCH_REGISTRY

from ...config.classification import (
    TEST_BATCH_SIZE,
    build_classification_mapper,
    build_classifier_model,
    classification_dicts_from_cfg,
)
from ...config.solver import images_per_micro_batch
from ...evaluation.classification import ClassificationEvaluator, visualize_classifier
from .trainer import TaskTrainer

__all__ = ["Res2NetClassifier", "ClassifierTrainer"]


@META_ARCH_REGISTRY.register()
def Res2NetClassifier(cfg):  # noqa: N802  (the registry key is this name)
    """``MODEL.META_ARCHITECTURE: Res2NetClassifier``:
    :func:`res2net_det.config.classification.build_classifier_model`."""
    return build_classifier_model(cfg)


class ClassifierTrainer(TaskTrainer):
    """``TaskTrainer`` for ``Res2NetClassifier`` configs: top-1 accuracy on ``DATASETS.TEST``."""

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(
            dataset=classification_dicts_from_cfg(cfg, cfg.DATASETS.TRAIN),
            mapper=build_classification_mapper(cfg, is_train=True),
            total_batch_size=images_per_micro_batch(cfg),
            aspect_ratio_grouping=False,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    @classmethod
    def build_test_loader(cls, cfg, dataset_name: str):
        return build_detection_test_loader(
            dataset=classification_dicts_from_cfg(cfg, [dataset_name]),
            mapper=build_classification_mapper(cfg, is_train=False),
            batch_size=TEST_BATCH_SIZE,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name: str, output_folder: str = None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return ClassificationEvaluator(dataset_name, output_folder)

    @classmethod
    def visualize(cls, cfg, model, dataset_name: str, output_dir: str, num_images: int):
        return visualize_classifier(cfg, model, dataset_name, output_dir, num_images)
