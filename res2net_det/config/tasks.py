"""The tasks whose data are our dataset dicts, described once for both engines.

A :class:`TaskSpec` says how a config becomes the task's model, records, mapper, evaluator and
pictures, all core objects; each engine only wraps them in its own machinery (the torchvision
engine's loaders and :class:`~res2net_det.engines.torchvision.registry.Task`, Detectron2's loaders,
``META_ARCH_REGISTRY`` and a ``TaskTrainer``), so a key means the same on both. Detection is not
here: each engine builds its own detectors, mappers and evaluators (Detectron2's are Detectron2's).

A new task of this kind adds its ``TaskSpec`` to :data:`TASK_SPECS`; both engines then run it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence

from torch import nn

from ..evaluation.classification import visualize_classifier
from ..evaluation.saliency import visualize_saliency
from .classification import (
    TEST_BATCH_SIZE,
    build_classification_evaluator,
    build_classification_mapper,
    build_classifier_model,
    classification_dicts_from_cfg,
)
from .saliency import build_saliency_evaluator, build_saliency_mapper, build_saliency_model, saliency_dicts_from_cfg

__all__ = ["TaskSpec", "SALIENCY", "CLASSIFICATION", "TASK_SPECS"]


@dataclass(frozen=True)
class TaskSpec:
    """A task in engine-free terms; every callable takes the config first.

    Args:
        name: the ``MODEL.META_ARCHITECTURE`` it answers to.
        build_model: ``cfg -> nn.Module`` on the CPU, Detectron2's dict-in convention.
        dataset_dicts: ``(cfg, data set names) -> records`` (registers the config's data sets first).
        build_mapper: ``(cfg, is_train) -> mapper``; a mapper takes ``(record[, rng])``.
        build_evaluator: ``(cfg, data set name, output folder) -> evaluator``.
        visualize: ``(cfg, model, data set name, output folder, number of images) -> [PNG path]``
            (``TEST.VIS_IMAGES``).
        test_batch_size: images per test batch (1 when images keep their own sizes).
    """

    name: str
    build_model: Callable[[Any], nn.Module]
    dataset_dicts: Callable[[Any, Sequence[str]], List[dict]]
    build_mapper: Callable[[Any, bool], Callable]
    build_evaluator: Callable[[Any, str, str], Any]
    visualize: Callable[..., List[str]]
    test_batch_size: int = 1


SALIENCY = TaskSpec("PoolNetSaliency", build_saliency_model, saliency_dicts_from_cfg, build_saliency_mapper,
                    build_saliency_evaluator, visualize_saliency)
CLASSIFICATION = TaskSpec("Res2NetClassifier", build_classifier_model, classification_dicts_from_cfg,
                          build_classification_mapper, build_classification_evaluator, visualize_classifier,
                          test_batch_size=TEST_BATCH_SIZE)
TASK_SPECS: Dict[str, TaskSpec] = {spec.name: spec for spec in (SALIENCY, CLASSIFICATION)}
