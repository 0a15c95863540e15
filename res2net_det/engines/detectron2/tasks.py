"""The core's dataset-dict tasks (:data:`res2net_det.config.tasks.TASK_SPECS`: saliency,
classification) on Detectron2: each meta-architecture in ``META_ARCH_REGISTRY`` and a
:class:`~.trainer.TaskTrainer` whose loaders, evaluator and pictures are those of its
:class:`~res2net_det.config.tasks.TaskSpec`, as on the torchvision engine. Importing it registers
``MODEL.META_ARCHITECTURE: PoolNetSaliency`` and ``Res2NetClassifier``.
"""
from __future__ import annotations

import os

from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.modeling import META_ARCH_REGISTRY

from ...config.solver import images_per_micro_batch
from ...config.tasks import CLASSIFICATION, SALIENCY, TaskSpec
from .trainer import TaskTrainer

__all__ = ["PoolNetSaliency", "Res2NetClassifier", "SpecTrainer", "SaliencyTrainer", "ClassifierTrainer"]


@META_ARCH_REGISTRY.register()
def PoolNetSaliency(cfg):  # noqa: N802  (the registry key is this name)
    """``MODEL.META_ARCHITECTURE: PoolNetSaliency``: :func:`res2net_det.config.saliency.build_saliency_model`."""
    return SALIENCY.build_model(cfg)


@META_ARCH_REGISTRY.register()
def Res2NetClassifier(cfg):  # noqa: N802  (the registry key is this name)
    """``MODEL.META_ARCHITECTURE: Res2NetClassifier``:
    :func:`res2net_det.config.classification.build_classifier_model`."""
    return CLASSIFICATION.build_model(cfg)


class SpecTrainer(TaskTrainer):
    """The ``TaskTrainer`` of the task :attr:`spec`: Detectron2's loaders over the spec's records and
    mapper (no aspect-ratio grouping), its evaluator and its pictures."""

    spec: TaskSpec

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(
            dataset=cls.spec.dataset_dicts(cfg, cfg.DATASETS.TRAIN),
            mapper=cls.spec.build_mapper(cfg, True),
            total_batch_size=images_per_micro_batch(cfg),
            aspect_ratio_grouping=False,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    @classmethod
    def build_test_loader(cls, cfg, dataset_name: str):
        return build_detection_test_loader(
            dataset=cls.spec.dataset_dicts(cfg, [dataset_name]),
            mapper=cls.spec.build_mapper(cfg, False),
            batch_size=cls.spec.test_batch_size,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name: str, output_folder: str = None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return cls.spec.build_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def visualize(cls, cfg, model, dataset_name: str, output_dir: str, num_images: int):
        return cls.spec.visualize(cfg, model, dataset_name, output_dir, num_images)


class SaliencyTrainer(SpecTrainer):
    """``PoolNetSaliency`` configs: the saliency metrics on ``DATASETS.TEST``."""

    spec = SALIENCY


class ClassifierTrainer(SpecTrainer):
    """``Res2NetClassifier`` configs: top-1 accuracy on ``DATASETS.TEST``."""

    spec = CLASSIFICATION
