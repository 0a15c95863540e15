"""The core's dataset-dict tasks (:data:`res2net_det.config.tasks.TASK_SPECS`: saliency,
classification) as tasks of this engine: the :class:`~.registry.Task` of a
:class:`~res2net_det.config.tasks.TaskSpec` feeds the spec's records through its mapper into this
engine's loaders; model, evaluator and pictures are the spec's. Importing it registers them all.
"""
from __future__ import annotations

from typing import List

from ...config.tasks import TASK_SPECS, TaskSpec
from .data import MappedDataset, build_batch_test_loader, build_batch_train_loader
from .registry import Task, register_task
from .trainer import images_per_process

__all__ = ["task_from_spec", "TASKS"]


def task_from_spec(spec: TaskSpec) -> Task:
    """``spec`` as a task of the generic trainer."""

    def build_train_loader(cfg):
        """Shuffled micro-batches of ``images_per_process(cfg)`` mapped records of ``DATASETS.TRAIN``."""
        dataset = MappedDataset(spec.dataset_dicts(cfg, cfg.DATASETS.TRAIN), spec.build_mapper(cfg, True))
        return build_batch_train_loader(dataset, images_per_process(cfg), cfg.DATALOADER.NUM_WORKERS, cfg.SEED)

    def build_test_loader(cfg, dataset_name: str):
        """In order, sharded by rank, ``spec.test_batch_size`` images a batch."""
        dataset = MappedDataset(spec.dataset_dicts(cfg, [dataset_name]), spec.build_mapper(cfg, False))
        return build_batch_test_loader(dataset, cfg.DATALOADER.NUM_WORKERS, batch_size=spec.test_batch_size)

    return Task(spec.name, spec.build_model, build_train_loader, build_test_loader, spec.build_evaluator,
                visualize=spec.visualize)


TASKS: List[Task] = [register_task(task_from_spec(spec)) for spec in TASK_SPECS.values()]
