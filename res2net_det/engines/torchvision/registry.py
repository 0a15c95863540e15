"""Tasks of the torchvision engine, by ``MODEL.META_ARCHITECTURE``.

A task tells the generic trainer how to build its model, data loaders and evaluator. Detection
registers ``"GeneralizedRCNN"``; another task registers its own name::

    from res2net_det.engines.torchvision.registry import Task, register_task
    register_task(Task("SaliencyNet", build_model=..., build_train_loader=...,
                       build_test_loader=..., build_evaluator=...))

and is imported by ``res2net_det/engines/torchvision/__init__.py``, so importing the engine
registers every builtin task (as importing ``detectron2.modeling`` fills its registries).
The contract follows Detectron2: in training ``model(list of dicts) -> {loss name: scalar}``; in
eval ``model(list of dicts) -> [per-image output dict]``; evaluators have ``reset()``,
``process(inputs, outputs)`` and ``evaluate() -> dict`` (Detectron2's ``DatasetEvaluator``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional

from torch import nn

__all__ = ["Task", "register_task", "get_task"]


@dataclass(frozen=True)
class Task:
    """What the trainer needs from a task.

    Args:
        name: the ``MODEL.META_ARCHITECTURE`` value it answers to.
        build_model: ``cfg -> nn.Module`` following the dict-in contract above.
        build_train_loader: ``cfg -> iterable of lists of input dicts`` (infinite or not; the
            trainer restarts a finite one and calls ``set_epoch`` on a DistributedSampler).
        build_test_loader: ``(cfg, dataset_name) -> iterable of lists of input dicts``.
        build_evaluator: ``(cfg, dataset_name, output_dir) -> evaluator``.
        visualize: optional ``(cfg, model, dataset_name, output_dir, num_images) -> [PNG path]``,
            run after the final evaluation when ``TEST.VIS_IMAGES`` > 0.
    """

    name: str
    build_model: Callable[[Any], nn.Module]
    build_train_loader: Callable[[Any], Iterable]
    build_test_loader: Callable[[Any, str], Iterable]
    build_evaluator: Callable[[Any, str, str], Any]
    visualize: Optional[Callable[..., Any]] = None


_TASKS: Dict[str, Task] = {}

def register_task(task: Task) -> Task:
    """Registers ``task`` under ``task.name`` (re-registering the same name replaces it)."""
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The task registered as ``name``."""
    if name not in _TASKS:
        known = sorted(_TASKS)
        raise KeyError(
            f"MODEL.META_ARCHITECTURE {name!r} has no task in the torchvision engine; known: {known}"
        )
    return _TASKS[name]
