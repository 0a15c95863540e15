"""The ``DefaultTrainer`` every task of the Detectron2 engine derives from: our trainer keys,
meaning what they mean on the torchvision engine.

* ``SOLVER.OPTIMIZER``: SGD / Adam / AdamW over the one parameter-group policy
  (:func:`res2net_det.config.solver.build_optimizer`, Detectron2's rules), with Detectron2's
  ``SOLVER.CLIP_GRADIENTS``;
* ``SOLVER.GRAD_ACCUM_STEPS``: one iteration is one optimizer step over that many micro-batches of
  ``IMS_PER_BATCH / GRAD_ACCUM_STEPS`` images (:class:`AccumulatingTrainer`), so ``MAX_ITER`` and
  ``STEPS`` count optimizer steps as before;
* ``SOLVER.LOG_PERIOD``: iterations per line of ``metrics.json`` / TensorBoard / the log
  (Detectron2 hard-codes 20); ``SOLVER.CHECKPOINT_PERIOD`` 0 keeps ``model_final`` only, as on the
  torchvision engine;
* ``TEST.VIS_IMAGES``: after training, the task's pictures of that many images of every test set
  in ``OUTPUT_DIR/vis/<set>/`` (:meth:`TaskTrainer.visualize`);
* ``NUM_THREADS`` and ``MODEL.DEVICE auto`` are applied when the config is set up
  (:mod:`.train_net`), before any trainer exists;
* several processes on the CPU (``--num-gpus N MODEL.DEVICE cpu``: Detectron2's ``launch`` over
  gloo): :meth:`TaskTrainer.create_ddp_model` wraps a CPU model without GPU ids.

A task subclasses :class:`TaskTrainer` with its loaders, evaluator and ``visualize``.
"""
from __future__ import annotations

import logging
import os
import time
import weakref
from contextlib import nullcontext
from typing import Dict, List, Optional

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, TrainerBase, hooks
from detectron2.engine.defaults import create_ddp_model
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from torch.nn.parallel import DistributedDataParallel

from ...config.defaults import has_key
from ...config.solver import build_optimizer, images_per_micro_batch
from .checkpoint import Res2NetDetectionCheckpointer

logger = logging.getLogger(__name__)

__all__ = ["TRAINER_KEYS", "AccumulatingTrainer", "TaskTrainer", "micro_batch_cfg"]


# Our keys this trainer reads (res2net_det.config.defaults.add_trainer_config adds them).
TRAINER_KEYS = ("SOLVER.OPTIMIZER", "SOLVER.GRAD_ACCUM_STEPS", "SOLVER.LOG_PERIOD", "TEST.VIS_IMAGES", "NUM_THREADS")


def micro_batch_cfg(cfg: CfgNode) -> CfgNode:
    """``cfg`` with ``IMS_PER_BATCH`` of one micro-batch of all processes (Detectron2's loaders split
    it over the processes), for Detectron2's config-driven loaders."""
    if cfg.SOLVER.GRAD_ACCUM_STEPS == 1:
        return cfg
    micro = cfg.clone()
    micro.defrost()
    micro.SOLVER.IMS_PER_BATCH = images_per_micro_batch(cfg)
    micro.freeze()
    return micro


class AccumulatingTrainer(SimpleTrainer):
    """Detectron2's ``SimpleTrainer`` (or, with ``grad_scaler``, its ``AMPTrainer``) with
    ``accum_steps`` micro-batches per optimizer step: losses are averaged over them, gradients
    summed (synchronised across processes on the last one only), then one step is taken."""

    def __init__(self, model, data_loader, optimizer, accum_steps: int,
                 grad_scaler: Optional[torch.amp.GradScaler] = None) -> None:
        super().__init__(model, data_loader, optimizer)
        if accum_steps < 1:
            raise ValueError(f"SOLVER.GRAD_ACCUM_STEPS must be >= 1, got {accum_steps}")
        self.accum_steps = accum_steps
        self.grad_scaler = grad_scaler

    def run_step(self) -> None:
        assert self.model.training, "[AccumulatingTrainer] model was changed to eval mode!"
        self.optimizer.zero_grad()
        totals: Dict[str, torch.Tensor] = {}
        data_time = 0.0
        ddp = isinstance(self.model, DistributedDataParallel)
        for micro in range(self.accum_steps):
            start = time.perf_counter()
            data = next(self._data_loader_iter)
            data_time += time.perf_counter() - start
            last = micro == self.accum_steps - 1
            with self.model.no_sync() if ddp and not last else nullcontext():
                with torch.autocast("cuda") if self.grad_scaler is not None else nullcontext():
                    loss_dict = self.model(data)
                loss = sum(loss_dict.values()) / self.accum_steps
                (self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss).backward()
            for k, v in loss_dict.items():
                totals[k] = totals.get(k, 0) + v.detach() / self.accum_steps
        self.after_backward()
        self._write_metrics(totals, data_time)
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    def state_dict(self):
        ret = super().state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])


class TaskTrainer(DefaultTrainer):
    """``DefaultTrainer`` with our trainer keys (module docstring); checkpoints, ``--resume``,
    evaluation hooks and ``launch`` are Detectron2's."""

    def __init__(self, cfg: CfgNode) -> None:
        missing = [k for k in TRAINER_KEYS if not has_key(cfg, k)]
        if missing:
            raise KeyError(f"the config has no {', '.join(missing)}: build it with Detectron2's get_cfg() + "
                           "res2net_det.config.add_res2net_det_config (what train_net.build_config does)")
        images_per_micro_batch(cfg)  # fail before building anything on a bad GRAD_ACCUM_STEPS
        self._init_default_trainer(cfg)
        accum = cfg.SOLVER.GRAD_ACCUM_STEPS
        if accum > 1:
            t = self._trainer
            scaler = t.grad_scaler if isinstance(t, AMPTrainer) else None
            self._trainer = AccumulatingTrainer(t.model, t.data_loader, t.optimizer, accum, grad_scaler=scaler)

    def _init_default_trainer(self, cfg: CfgNode) -> None:
        """``DefaultTrainer.__init__`` (Detectron2 0.6), step for step, except that the model is
        wrapped by :meth:`create_ddp_model`: Detectron2's own call hands DDP the process's GPU id,
        which a CPU model refuses."""
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = self.create_ddp_model(model)
        self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DetectionCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @staticmethod
    def create_ddp_model(model: torch.nn.Module) -> torch.nn.Module:
        """Detectron2's ``create_ddp_model(model, broadcast_buffers=False)`` (the model itself with one
        process), with ``device_ids=None`` for a model on the CPU (gloo)."""
        on_cpu = all(p.device.type == "cpu" for p in model.parameters())
        return create_ddp_model(model, broadcast_buffers=False, **({"device_ids": None} if on_cpu else {}))

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
        return maybe_add_gradient_clipping(cfg, build_optimizer(cfg, model))

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        """Detectron2's detection loader with micro-batches (tasks with their own data override this)."""
        return super().build_train_loader(micro_batch_cfg(cfg))

    def build_hooks(self):
        log_period = self.cfg.SOLVER.LOG_PERIOD
        if log_period < 1:
            raise ValueError(f"SOLVER.LOG_PERIOD must be >= 1, got {log_period}")
        # DefaultTrainer.__init__ made a plain DetectionCheckpointer just before calling this, and the
        # hooks built here keep it: swapping it now makes every load and save go through ours (weights
        # names, the torchvision engine's detector files).
        self.checkpointer = Res2NetDetectionCheckpointer.replacing(self.checkpointer, self.cfg)
        built = []
        for h in super().build_hooks():
            if isinstance(h, hooks.PeriodicWriter):
                h = hooks.PeriodicWriter(self.build_writers(), period=log_period)
            elif isinstance(h, hooks.PeriodicCheckpointer) and self.cfg.SOLVER.CHECKPOINT_PERIOD <= 0:
                # CHECKPOINT_PERIOD 0: only model_final, as on the torchvision engine (Detectron2's
                # hook would divide by it); a period past the end never fires before the last iteration.
                h = hooks.PeriodicCheckpointer(self.checkpointer, period=self.max_iter + 1)
            built.append(h)
        return built

    def train(self):
        results = super().train()
        if self.cfg.TEST.VIS_IMAGES > 0 and comm.is_main_process() and self.start_iter < self.max_iter:
            for name in self.cfg.DATASETS.TEST:
                self.visualize(self.cfg, self.model.module if hasattr(self.model, "module") else self.model,
                               name, os.path.join(self.cfg.OUTPUT_DIR, "vis", name), self.cfg.TEST.VIS_IMAGES)
        comm.synchronize()
        return results

    @classmethod
    def visualize(cls, cfg: CfgNode, model: torch.nn.Module, dataset_name: str, output_dir: str,
                  num_images: int) -> List[str]:
        """``TEST.VIS_IMAGES``: the task's pictures of the first ``num_images`` images; the paths."""
        raise NotImplementedError(f"{cls.__name__} draws no pictures; set TEST.VIS_IMAGES 0")
