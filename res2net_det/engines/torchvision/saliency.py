"""Salient object detection as a task of the torchvision engine (``MODEL.META_ARCHITECTURE:
PoolNetSaliency``): the generic trainer's checkpoints, resume, logging, accumulation and
evaluation, with the saliency model, mapper, evaluator and pictures of the core."""
from __future__ import annotations

import os

from ...config.saliency import build_saliency_model
from ...data.builtin import register_datasets_from_cfg
from ...data.saliency import SaliencyDatasetMapper, get_saliency_dicts
from ...evaluation.saliency import SaliencyEvaluator, visualize_saliency
from .data import MappedDataset, build_batch_test_loader, build_batch_train_loader
from .registry import Task, register_task
from .trainer import images_per_process

__all__ = ["build_train_loader", "build_test_loader", "build_evaluator"]


def build_train_loader(cfg):
    """Shuffled micro-batches of ``images_per_process(cfg)`` mapped dicts of ``DATASETS.TRAIN``."""
    register_datasets_from_cfg(cfg)
    dataset = MappedDataset(get_saliency_dicts(cfg.DATASETS.TRAIN), SaliencyDatasetMapper.from_config(cfg, True))
    return build_batch_train_loader(dataset, images_per_process(cfg), cfg.DATALOADER.NUM_WORKERS, cfg.SEED)


def build_test_loader(cfg, dataset_name: str):
    """One image per batch (full-size images differ in shape), in order, sharded by rank."""
    register_datasets_from_cfg(cfg)
    dataset = MappedDataset(get_saliency_dicts([dataset_name]), SaliencyDatasetMapper.from_config(cfg, False))
    return build_batch_test_loader(dataset, cfg.DATALOADER.NUM_WORKERS)


def build_evaluator(cfg, dataset_name: str, output_dir: str):
    return SaliencyEvaluator(dataset_name, output_dir=output_dir,
                             mask_tolerance=cfg.INPUT.SALIENCY.MASK_TOLERANCE,
                             method_name=os.path.basename(os.path.normpath(cfg.OUTPUT_DIR)))


register_task(Task("PoolNetSaliency", build_saliency_model, build_train_loader, build_test_loader, build_evaluator,
                   visualize=visualize_saliency))
