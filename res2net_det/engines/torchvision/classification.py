"""Image classification as a task of the torchvision engine (``MODEL.META_ARCHITECTURE:
Res2NetClassifier``): the generic trainer with the core's classifier, mapper and evaluator
(:mod:`res2net_det.config.classification` turns the config into them)."""
from __future__ import annotations

from ...config.classification import (
    TEST_BATCH_SIZE,
    build_classification_mapper,
    build_classifier_model,
    classification_dicts_from_cfg,
)
from ...evaluation.classification import ClassificationEvaluator, visualize_classifier
from .data import MappedDataset, build_batch_test_loader, build_batch_train_loader
from .registry import Task, register_task
from .trainer import images_per_process

__all__ = ["build_train_loader", "build_test_loader", "build_evaluator", "TASK"]


def build_train_loader(cfg):
    """Shuffled micro-batches of ``images_per_process(cfg)`` mapped dicts of ``DATASETS.TRAIN``."""
    dataset = MappedDataset(classification_dicts_from_cfg(cfg, cfg.DATASETS.TRAIN),
                            build_classification_mapper(cfg, is_train=True))
    return build_batch_train_loader(dataset, images_per_process(cfg), cfg.DATALOADER.NUM_WORKERS, cfg.SEED)


def build_test_loader(cfg, dataset_name: str, batch_size: int = TEST_BATCH_SIZE):
    """In order, sharded by rank; images share one size, so they batch."""
    dataset = MappedDataset(classification_dicts_from_cfg(cfg, [dataset_name]),
                            build_classification_mapper(cfg, is_train=False))
    return build_batch_test_loader(dataset, cfg.DATALOADER.NUM_WORKERS, batch_size=batch_size)


def build_evaluator(cfg, dataset_name: str, output_dir: str) -> ClassificationEvaluator:
    return ClassificationEvaluator(dataset_name, output_dir)


TASK = register_task(Task("Res2NetClassifier", build_classifier_model, build_train_loader, build_test_loader,
                          build_evaluator, visualize=visualize_classifier))
