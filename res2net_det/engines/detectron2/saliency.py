"""Salient object detection on Detectron2: the ``PoolNetSaliency`` meta-architecture and its
:class:`~.trainer.TaskTrainer` with the saliency mapper, loaders, evaluator and pictures.

The model, mapper and evaluator are the core's (they already follow Detectron2's conventions);
this module only plugs them into Detectron2's registries and trainer. Importing it registers
``MODEL.META_ARCHITECTURE: PoolNetSaliency`` in ``META_ARCH_REGISTRY``.
"""
from __future__ import annotations

import os

from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.modeling import META_ARCH_REGISTRY

from ...config.saliency import build_saliency_model
from ...config.solver import images_per_micro_batch
from ...data.builtin import register_datasets_from_cfg
from ...data.saliency import SaliencyDatasetMapper, get_saliency_dicts
from ...evaluation.saliency import SaliencyEvaluator, visualize_saliency
from .trainer import TaskTrainer

__all__ = ["PoolNetSaliency", "SaliencyTrainer"]


@META_ARCH_REGISTRY.register()
def PoolNetSaliency(cfg):  # noqa: N802  (the registry key is this name)
    """``MODEL.META_ARCHITECTURE: PoolNetSaliency``: :func:`res2net_det.config.saliency.build_saliency_model`."""
    return build_saliency_model(cfg)


class SaliencyTrainer(TaskTrainer):
    """``TaskTrainer`` for ``PoolNetSaliency`` configs."""

    @classmethod
    def build_train_loader(cls, cfg):
        register_datasets_from_cfg(cfg)
        return build_detection_train_loader(
            dataset=get_saliency_dicts(cfg.DATASETS.TRAIN),
            mapper=SaliencyDatasetMapper.from_config(cfg, is_train=True),
            total_batch_size=images_per_micro_batch(cfg),
            aspect_ratio_grouping=False,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    @classmethod
    def build_test_loader(cls, cfg, dataset_name: str):
        register_datasets_from_cfg(cfg)
        return build_detection_test_loader(
            dataset=get_saliency_dicts([dataset_name]),
            mapper=SaliencyDatasetMapper.from_config(cfg, is_train=False),
            num_workers=cfg.DATALOADER.NUM_WORKERS,
        )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name: str, output_folder: str = None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return SaliencyEvaluator(dataset_name, output_dir=output_folder,
                                 mask_tolerance=cfg.INPUT.SALIENCY.MASK_TOLERANCE,
                                 method_name=os.path.basename(os.path.normpath(cfg.OUTPUT_DIR)))

    @classmethod
    def visualize(cls, cfg, model, dataset_name: str, output_dir: str, num_images: int):
        return visualize_saliency(cfg, model, dataset_name, output_dir, num_images)
