"""A compact, task-agnostic trainer on torch.distributed, driven by Detectron2's ``SOLVER.*`` keys.

Any task registered in :mod:`.registry` trains with it: SGD (or Adam/AdamW, over the parameter groups
of :mod:`res2net_det.config.solver`, shared with the Detectron2 engine) with linear warm-up and
multi-step or cosine decay (the same module's schedule), gradient accumulation, DDP under
``torchrun``, AMP on GPU, gradient clipping, atomic periodic/final checkpoints with ``--resume``,
TensorBoard + ``metrics.json``, a tqdm bar with ETA, a clear stop on a NaN/Inf loss, and evaluation
every ``TEST.EVAL_PERIOD`` iterations and at the end.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
import warnings
from collections import defaultdict
from contextlib import nullcontext
from typing import Any, Dict, Iterable, Iterator, List, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ...config.solver import build_lr_scheduler, build_optimizer, images_per_micro_batch, lr_factor_at
from ...utils import comm
from ...utils.device import resolve_device
from ...utils.events import MetricsWriter, flatten_results
from ...utils.io import write_json_file
from ...utils.rng import rng_state, set_rng_state
from .checkpoint import Checkpointer
from .registry import Task

logger = logging.getLogger(__name__)

__all__ = [
    "TaskLoopTrainer",
    "inference_on_dataset",
    "model_device",
    "images_per_process",
    "FINAL_RESULTS",
]

# Written (atomically) once the final evaluation and pictures are done: a run killed before that
# redoes them on --resume instead of stopping at "nothing to train".
FINAL_RESULTS = "final_results.json"


def _nonfinite_parameters(model: nn.Module) -> List[str]:
    return [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]


def model_device(cfg) -> torch.device:
    """``MODEL.DEVICE`` (:func:`res2net_det.utils.device.resolve_device`); this process's GPU under DDP."""
    return resolve_device(cfg.MODEL.DEVICE, comm.get_local_rank() if comm.get_world_size() > 1 else None)


def images_per_process(cfg) -> int:
    """Images of one micro-batch of this process: IMS_PER_BATCH / (processes x GRAD_ACCUM_STEPS)."""
    return images_per_micro_batch(cfg, comm.get_world_size())


@torch.no_grad()
def inference_on_dataset(model: nn.Module, data_loader: Iterable, evaluator) -> Dict[str, Any]:
    """Runs ``model`` in eval mode over ``data_loader`` and returns ``evaluator.evaluate()``."""
    was_training = model.training
    model.eval()
    evaluator.reset()
    start = time.perf_counter()
    n = 0
    try:
        for inputs in tqdm(data_loader, desc="inference", disable=None if comm.is_main_process() else True,
                           leave=False, dynamic_ncols=True):
            outputs = model(inputs)
            evaluator.process(inputs, outputs)
            n += len(inputs)
    finally:
        model.train(was_training)
    logger.info("inference on %d images: %.3f s / image", n, (time.perf_counter() - start) / max(n, 1))
    return evaluator.evaluate() or {}


def _infinite(loader: Iterable) -> Iterator:
    epoch = 0
    while True:
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the training data loader yields no batch")
        epoch += 1


class TaskLoopTrainer:
    """Trains ``task``'s model on ``cfg``; see the module docstring for the features.

    Args:
        cfg: a frozen config (``get_cfg()`` + file + options).
        task: the registered task of ``cfg.MODEL.META_ARCHITECTURE``.
        model: a prebuilt model (else ``task.build_model(cfg)``).
    """

    def __init__(self, cfg, task: Task, model: Optional[nn.Module] = None) -> None:
        self.cfg = cfg
        self.task = task
        self.device = model_device(cfg)
        model = model if model is not None else task.build_model(cfg)
        self.model = model.to(self.device)
        self.train_model: nn.Module = self.model
        if comm.get_world_size() > 1:
            self.train_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False,
            )
        self.optimizer = build_optimizer(cfg, self.model)
        self.scheduler = build_lr_scheduler(cfg, self.optimizer)
        self.amp = bool(cfg.SOLVER.AMP.ENABLED)
        if self.amp and self.device.type != "cuda":
            logger.warning("SOLVER.AMP.ENABLED is ignored on %s (mixed precision needs a GPU)", self.device)
            self.amp = False
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.checkpointer = Checkpointer(
            self.model, cfg.OUTPUT_DIR, save_to_disk=comm.is_main_process(), keep=cfg.SOLVER.CHECKPOINT_KEEP,
            optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
        )
        self.start_iter = 0
        # The seed of the data order and augmentations: SEED (train_net.setup replaces -1 with a
        # drawn seed, so the config holds it). A resumed run takes its checkpoint's.
        self.seed = max(cfg.SEED, 0)
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.iter = 0
        self.accum = cfg.SOLVER.GRAD_ACCUM_STEPS
        images_per_process(cfg)  # fail early on a bad GRAD_ACCUM_STEPS or an indivisible batch

    # ------------------------------------------------------------------ state
    def resume_or_load(self, resume: bool = True) -> None:
        """``--resume``: continue after the iteration of OUTPUT_DIR/last_checkpoint; else start
        at iteration 0 from MODEL.WEIGHTS."""
        extra = self.checkpointer.resume_or_load(self.cfg.MODEL.WEIGHTS, resume=resume,
                                                 allow_partial=self.cfg.MODEL.WEIGHTS_ALLOW_PARTIAL,
                                                 accept_checksum_mismatch=self.cfg.MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH)
        self.start_iter = extra["iteration"] + 1 if "iteration" in extra else 0
        if "iteration" not in extra:
            return
        if "rng" in extra:
            set_rng_state(extra["rng"])
        else:
            logger.warning("the checkpoint holds no random generator states (written by an older version): "
                           "the resumed run is a continuation, but not bit for bit the unbroken one")
        if extra.get("seed", self.seed) != self.seed:
            logger.info("resuming with the run's seed %d from the checkpoint (SEED is %d)", extra["seed"], self.seed)
            self.seed = extra["seed"]
        self._apply_config_schedule()

    def _apply_config_schedule(self) -> None:
        """After a resume, the config's SOLVER.BASE_LR (and bias LR factor) wins over the learning
        rates stored in the checkpoint's optimizer, and its schedule (MAX_ITER, STEPS, ...) applies
        from the resumed iteration on: the LambdaLR reads the config at every step."""
        fresh = build_optimizer(self.cfg, self.model).param_groups
        by_param = {id(p): g["lr"] for g in fresh for p in g["params"]}
        changed = False
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            lr = by_param[id(group["params"][0])]
            changed |= not math.isclose(lr, base)
            group["initial_lr"] = lr
        self.scheduler.base_lrs = [g["initial_lr"] for g in self.optimizer.param_groups]
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * lr_factor_at(self.cfg, self.start_iter)
        if changed:
            logger.info("resume: SOLVER.BASE_LR of the config (%g) replaces the checkpoint's learning rates",
                        self.cfg.SOLVER.BASE_LR)

    def save_checkpoint(self, name: str) -> Optional[str]:
        """Writes ``name`` with everything a bit-exact resume needs; refuses non-finite weights, so
        ``last_checkpoint`` always names a usable file."""
        bad = _nonfinite_parameters(self.model)
        if bad:
            last = self.checkpointer.last_checkpoint()
            raise FloatingPointError(
                f"the weights became infinite or NaN by iteration {self.iter} ({len(bad)} tensors, e.g. {bad[0]}); "
                f"no checkpoint was written. Last good checkpoint: {last or 'none'}. Lower SOLVER.BASE_LR, "
                "lengthen SOLVER.WARMUP_ITERS or enable SOLVER.CLIP_GRADIENTS, then --resume from it."
            )
        return self.checkpointer.save(name, iteration=self.iter, seed=self.seed, rng=rng_state())

    def _cfg_with_seed(self):
        """The config with SEED set to the run's seed (a resumed run keeps its first seed)."""
        if self.cfg.SEED == self.seed:
            return self.cfg
        cfg = self.cfg.clone()
        cfg.defrost()
        cfg.SEED = self.seed
        cfg.freeze()
        return cfg

    def _skip_consumed(self, loader) -> None:
        """Moves a resumable sampler past the items the run has already trained on."""
        if self.start_iter == 0:
            return
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_start"):
            sampler.set_start(self.start_iter * self.accum * getattr(loader, "batch_size", 1))
        else:
            logger.warning("the training loader can't skip what it already served: the data order restarts")

    # ------------------------------------------------------------------ loop
    def run_step(self, data_iter: Iterator) -> Dict[str, float]:
        """One optimizer step over ``GRAD_ACCUM_STEPS`` micro-batches; returns the losses."""
        self.optimizer.zero_grad(set_to_none=True)
        totals: Dict[str, float] = defaultdict(float)
        data_time = 0.0
        for micro in range(self.accum):
            t0 = time.perf_counter()
            batch = next(data_iter)
            data_time += time.perf_counter() - t0
            sync = micro == self.accum - 1 or not isinstance(self.train_model, DistributedDataParallel)
            with (nullcontext() if sync else self.train_model.no_sync()):
                with torch.autocast("cuda", enabled=self.amp) if self.amp else nullcontext():
                    losses = self.train_model(batch)
                if not isinstance(losses, dict) or not losses:
                    raise TypeError("in training, the model must return a non-empty dict of losses")
                loss = sum(losses.values())
                if not torch.isfinite(loss).all():
                    raise FloatingPointError(
                        f"loss became infinite or NaN at iteration {self.iter}: "
                        + ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
                        + f". Last good checkpoint: {self.checkpointer.last_checkpoint() or 'none'}. Lower "
                        "SOLVER.BASE_LR, lengthen SOLVER.WARMUP_ITERS or enable SOLVER.CLIP_GRADIENTS, then "
                        "--resume (the config's learning rate replaces the checkpoint's)."
                    )
                self.scaler.scale(loss / self.accum).backward()
            for k, v in losses.items():
                totals[k] += v.detach().item() / self.accum
        self._clip_gradients()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        totals["total_loss"] = sum(v for k, v in totals.items())
        totals["data_time"] = data_time
        return totals

    def _clip_gradients(self) -> None:
        c = self.cfg.SOLVER.CLIP_GRADIENTS
        if not c.ENABLED:
            return
        self.scaler.unscale_(self.optimizer)
        # Detectron2 clips every parameter on its own, for both "value" and "norm".
        for group in self.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if c.CLIP_TYPE == "value":
                    torch.nn.utils.clip_grad_value_(p, c.CLIP_VALUE)
                elif c.CLIP_TYPE == "norm":
                    torch.nn.utils.clip_grad_norm_(p, c.CLIP_VALUE, c.NORM_TYPE)
                else:
                    raise ValueError(f"SOLVER.CLIP_GRADIENTS.CLIP_TYPE must be 'value' or 'norm', got {c.CLIP_TYPE!r}")

    def train(self) -> Dict[str, Any]:
        """Trains from ``start_iter`` to ``SOLVER.MAX_ITER``; returns the final evaluation results."""
        cfg = self.cfg
        main = comm.is_main_process()
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        if main:
            # Lines a killed run wrote after its last checkpoint (all of them, when it had none).
            MetricsWriter.truncate(cfg.OUTPUT_DIR, self.start_iter - 1)
        writer = MetricsWriter(cfg.OUTPUT_DIR, enabled=main, start_iter=self.start_iter)
        try:
            if self.start_iter < self.max_iter:
                self._train_loop(writer)
            return self._final_evaluation(writer)
        finally:
            writer.close()

    def _train_loop(self, writer: "MetricsWriter") -> None:
        cfg = self.cfg
        loader = self.task.build_train_loader(self._cfg_with_seed())
        self._skip_consumed(loader)
        data_iter = _infinite(loader)
        log_period = max(1, cfg.SOLVER.LOG_PERIOD)
        window: Dict[str, List[float]] = defaultdict(list)
        logger.info("training from iteration %d to %d", self.start_iter, self.max_iter)
        self.train_model.train()
        # disable=None: a bar on a terminal; in a log file or CI, only the periodic log lines.
        bar = tqdm(total=self.max_iter, initial=self.start_iter, dynamic_ncols=True, desc="train",
                   disable=None if comm.is_main_process() else True)
        step_start = time.perf_counter()
        try:
            for self.iter in range(self.start_iter, self.max_iter):
                lr = self.optimizer.param_groups[0]["lr"]
                metrics = self.run_step(data_iter)
                now = time.perf_counter()
                metrics["time"] = now - step_start
                step_start = now
                for k, v in metrics.items():
                    window[k].append(v)
                last = self.iter == self.max_iter - 1
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['total_loss']:.3f}", lr=f"{lr:.2e}")
                if (self.iter + 1) % log_period == 0 or last:
                    avg = {k: sum(v) / len(v) for k, v in window.items()}
                    avg["lr"] = lr
                    avg["eta_seconds"] = avg["time"] * (self.max_iter - self.iter - 1)
                    writer.write(self.iter, avg)
                    logger.info("iter %d/%d  %s", self.iter + 1, self.max_iter,
                                "  ".join(f"{k}: {v:.4g}" for k, v in sorted(avg.items())))
                    window.clear()
                period = cfg.SOLVER.CHECKPOINT_PERIOD
                if last:
                    self.save_checkpoint("model_final")
                elif period > 0 and (self.iter + 1) % period == 0:
                    self.save_checkpoint(f"model_{self.iter:07d}")
                eval_period = cfg.TEST.EVAL_PERIOD
                if not last and eval_period > 0 and (self.iter + 1) % eval_period == 0:
                    results = self.test(cfg, self.task, self.model)
                    if results:
                        writer.write(self.iter, flatten_results(results))
                    self.train_model.train()
                    step_start = time.perf_counter()
        finally:
            bar.close()

    def _final_evaluation(self, writer: "MetricsWriter") -> Dict[str, Any]:
        """Evaluates and draws after the last iteration, unless a previous run got that far."""
        cfg = self.cfg
        marker = os.path.join(cfg.OUTPUT_DIR, FINAL_RESULTS)
        if self.start_iter >= self.max_iter and os.path.isfile(marker):
            logger.info("nothing to train or evaluate: already at SOLVER.MAX_ITER %d (%s)", self.max_iter, marker)
            with open(marker, encoding="utf-8") as f:
                return json.load(f)
        if self.start_iter >= self.max_iter:
            logger.info("already at SOLVER.MAX_ITER %d: running the final evaluation the last run did not finish",
                        self.max_iter)
        results = self.test(cfg, self.task, self.model)
        if results:
            writer.write(self.max_iter - 1, flatten_results(results))
        if cfg.TEST.VIS_IMAGES > 0 and self.task.visualize is not None and comm.is_main_process():
            for name in cfg.DATASETS.TEST:
                self.task.visualize(cfg, self.model, name, os.path.join(cfg.OUTPUT_DIR, "vis", name),
                                    cfg.TEST.VIS_IMAGES)
        if comm.is_main_process():
            write_json_file(marker, results)
        comm.synchronize()
        return results

    # ------------------------------------------------------------------ evaluation
    @staticmethod
    def test(cfg, task: Task, model: nn.Module) -> Dict[str, Any]:
        """Evaluates ``model`` on every ``DATASETS.TEST`` set; ``{dataset: results}``."""
        results: Dict[str, Any] = {}
        for name in cfg.DATASETS.TEST:
            loader = task.build_test_loader(cfg, name)
            out_dir = os.path.join(cfg.OUTPUT_DIR, "inference", name)
            evaluator = task.build_evaluator(cfg, name, out_dir)
            results[name] = inference_on_dataset(model, loader, evaluator)
        if len(results) == 1:
            results = next(iter(results.values()))
        return results


def __getattr__(name: str) -> Any:
    # The class was called Trainer up to 0.1 (docs/engines.md named it), like the Detectron2 engine's
    # detection trainer: the old name still imports, with a warning, until 0.3.
    if name == "Trainer":
        warnings.warn("res2net_det.engines.torchvision.trainer.Trainer is now TaskLoopTrainer; the old name "
                      "goes away in 0.3", DeprecationWarning, stacklevel=2)
        return TaskLoopTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
