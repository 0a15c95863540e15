"""Salient object detection on Detectron2: the ``PoolNetSaliency`` meta-architecture and a
``DefaultTrainer`` with the saliency mapper, loaders, evaluator, Adam and gradient accumulation.

The model, mapper and evaluator are the core's (they already follow Detectron2's conventions);
this module only plugs them into Detectron2's registries and trainer. Importing it registers
``MODEL.META_ARCHITECTURE: PoolNetSaliency`` in ``META_ARCH_REGISTRY``.
"""
from __future__ import annotations

import os
import time
from typing import Dict

import torch
from detectron2.data import build_detection_test_loader, build_detection_train_loader
from detectron2.engine import DefaultTrainer, SimpleTrainer
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.solver.build import maybe_add_gradient_clipping

from ...data.builtin import register_datasets_from_cfg
from ...data.saliency import SaliencyDatasetMapper, get_saliency_dicts
from ...evaluation.saliency import SaliencyEvaluator
from ...config.saliency import build_saliency_model

__all__ = ["PoolNetSaliency", "AccumulatingTrainer", "SaliencyTrainer"]


@META_ARCH_REGISTRY.register()
def PoolNetSaliency(cfg):  # noqa: N802  (the registry key is this name)
    """``MODEL.META_ARCHITECTURE: PoolNetSaliency``: :func:`res2net_det.config.saliency.build_saliency_model`."""
    return build_saliency_model(cfg)


class AccumulatingTrainer(SimpleTrainer):
    """Detectron2's ``SimpleTrainer`` with ``accum_steps`` micro-batches per optimizer step.

    One iteration is one optimizer step, as in the torchvision engine, so ``MAX_ITER`` / ``STEPS``
    count steps and ``IMS_PER_BATCH`` counts the images of all micro-batches.
    """

    def __init__(self, model, data_loader, optimizer, accum_steps: int) -> None:
        super().__init__(model, data_loader, optimizer)
        if accum_steps < 1:
            raise ValueError(f"SOLVER.GRAD_ACCUM_STEPS must be >= 1, got {accum_steps}")
        self.accum_steps = accum_steps

    def run_step(self) -> None:
        assert self.model.training, "[AccumulatingTrainer] model was changed to eval mode!"
        self.optimizer.zero_grad()
        totals: Dict[str, torch.Tensor] = {}
        data_time = 0.0
        for _ in range(self.accum_steps):
            start = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time += time.perf_counter() - start
            loss_dict = self.model(data)
            (sum(loss_dict.values()) / self.accum_steps).backward()
            for k, v in loss_dict.items():
                totals[k] = totals.get(k, 0) + v.detach() / self.accum_steps
        self.after_backward()
        self._write_metrics(totals, data_time)
        self.optimizer.step()


class SaliencyTrainer(DefaultTrainer):
    """``DefaultTrainer`` for ``PoolNetSaliency`` configs (checkpoints, resume, hooks unchanged)."""

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        accum = cfg.SOLVER.GRAD_ACCUM_STEPS
        if accum > 1:
            t = self._trainer
            self._trainer = AccumulatingTrainer(t.model, t.data_loader, t.optimizer, accum)

    @classmethod
    def build_optimizer(cls, cfg, model):
        """Adam / AdamW when ``SOLVER.OPTIMIZER`` asks for it (the saliency recipe), else Detectron2's SGD."""
        name = str(cfg.SOLVER.get("OPTIMIZER", "SGD")).upper()
        if name == "SGD":
            return super().build_optimizer(cfg, model)
        if name not in ("ADAM", "ADAMW"):
            raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD', 'Adam' or 'AdamW', got {cfg.SOLVER.OPTIMIZER!r}")
        params = [p for p in model.parameters() if p.requires_grad]
        optim = torch.optim.Adam if name == "ADAM" else torch.optim.AdamW
        return maybe_add_gradient_clipping(cfg, optim)(params, lr=cfg.SOLVER.BASE_LR, weight_decay=cfg.SOLVER.WEIGHT_DECAY)

    @classmethod
    def build_train_loader(cls, cfg):
        register_datasets_from_cfg(cfg)
        accum = cfg.SOLVER.GRAD_ACCUM_STEPS
        if cfg.SOLVER.IMS_PER_BATCH % accum:
            raise ValueError(
                f"SOLVER.IMS_PER_BATCH ({cfg.SOLVER.IMS_PER_BATCH}) must be divisible by SOLVER.GRAD_ACCUM_STEPS ({accum})"
            )
        return build_detection_train_loader(
            dataset=get_saliency_dicts(cfg.DATASETS.TRAIN),
            mapper=SaliencyDatasetMapper.from_config(cfg, is_train=True),
            total_batch_size=cfg.SOLVER.IMS_PER_BATCH // accum,
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
