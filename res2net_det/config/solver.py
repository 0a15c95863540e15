"""The optimizer, learning-rate schedule and batch arithmetic of ``SOLVER.*``: one parameter-group
policy and one optimizer choice for every task on both engines.

The policy is Detectron2's ``get_default_optimizer_params`` (configs are Detectron2's schema, so
its keys mean what Detectron2 says): every trainable parameter gets ``BASE_LR`` and
``WEIGHT_DECAY``; parameters of norm layers get ``WEIGHT_DECAY_NORM``; then parameters named
``bias`` (norm biases included) get ``BASE_LR x BIAS_LR_FACTOR`` when the factor is not 1, and
``WEIGHT_DECAY_BIAS`` when it is set. ``SOLVER.OPTIMIZER`` (our key) picks SGD with momentum
(Detectron2's), Adam or AdamW over those groups.

The schedule (:func:`lr_factor_at`, :func:`build_lr_scheduler`) is Detectron2's
``WarmupMultiStepLR`` / ``WarmupCosineLR`` in plain PyTorch, for the torchvision engine; Detectron2
builds its own from the same keys. ``SOLVER.IMS_PER_BATCH`` counts the images of one optimizer step
over all micro-batches of all processes (:func:`images_per_micro_batch`).

Gradient clipping is not done here: the torchvision trainer clips in its step, Detectron2 wraps
the optimizer with ``maybe_add_gradient_clipping``; both read ``SOLVER.CLIP_GRADIENTS`` the same way.
"""
from __future__ import annotations

import bisect
import logging
import math
from typing import Any, Dict, List, Optional, Tuple, Type

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["NORM_TYPES", "OPTIMIZERS", "LR_SCHEDULERS", "optimizer_param_groups", "param_group_kwargs",
           "optimizer_class", "build_optimizer", "lr_factor_at", "build_lr_scheduler", "images_per_micro_batch"]

# Detectron2's norm_module_types (its NaiveSyncBatchNorm subclasses BatchNorm2d).
NORM_TYPES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.LocalResponseNorm,
)

OPTIMIZERS = ("SGD", "Adam", "AdamW")


def optimizer_param_groups(
    model: nn.Module,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: Optional[float] = None,
    bias_lr_factor: float = 1.0,
    weight_decay_bias: Optional[float] = None,
) -> List[dict]:
    """Parameter groups of ``model`` under Detectron2's rules (module docstring), merged so that
    parameters with the same ``lr`` and ``weight_decay`` share one group (first-seen order).

    A parameter shared by several modules counts once; frozen parameters are left out.
    """
    groups: Dict[Tuple[float, float], List[nn.Parameter]] = {}
    seen = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            lr, wd = base_lr, weight_decay
            if isinstance(module, NORM_TYPES) and weight_decay_norm is not None:
                wd = weight_decay_norm
            if name == "bias":
                if bias_lr_factor is not None and bias_lr_factor != 1.0:
                    lr = base_lr * bias_lr_factor
                if weight_decay_bias is not None:
                    wd = weight_decay_bias
            groups.setdefault((lr, wd), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": wd} for (lr, wd), params in groups.items()]


def param_group_kwargs(cfg) -> Dict[str, Any]:
    """The arguments of :func:`optimizer_param_groups` besides the model, from ``SOLVER.*``."""
    s = cfg.SOLVER
    return dict(base_lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY, weight_decay_norm=s.WEIGHT_DECAY_NORM,
                bias_lr_factor=s.BIAS_LR_FACTOR, weight_decay_bias=s.WEIGHT_DECAY_BIAS)


def optimizer_class(cfg) -> Tuple[Type[torch.optim.Optimizer], Dict[str, Any]]:
    """The ``torch.optim`` class of ``SOLVER.OPTIMIZER`` and its arguments besides the parameter
    groups (what :func:`build_optimizer` builds, and the Detectron2 LazyConfig twins write out)."""
    s = cfg.SOLVER
    name = str(s.OPTIMIZER).upper()
    if name == "SGD":
        return torch.optim.SGD, dict(lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV)
    if name in ("ADAM", "ADAMW"):
        return (torch.optim.Adam if name == "ADAM" else torch.optim.AdamW), dict(lr=s.BASE_LR)
    raise ValueError(f"SOLVER.OPTIMIZER must be one of {', '.join(map(repr, OPTIMIZERS))}, got {s.OPTIMIZER!r}")


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZER`` over :func:`optimizer_param_groups` of ``SOLVER.*``."""
    groups = optimizer_param_groups(model, **param_group_kwargs(cfg))
    if not groups:
        raise ValueError("the model has no trainable parameter (is MODEL.BACKBONE.FREEZE_AT too high?)")
    optimizer, kwargs = optimizer_class(cfg)
    return optimizer(groups, **kwargs)


LR_SCHEDULERS = ("WarmupMultiStepLR", "WarmupCosineLR")


def lr_factor_at(cfg, iteration: int) -> float:
    """The learning-rate factor of Detectron2's ``SOLVER.LR_SCHEDULER_NAME`` at ``iteration``:
    ``WarmupMultiStepLR`` (x GAMMA at each of STEPS) or ``WarmupCosineLR`` (half a cosine from 1
    to 0 over MAX_ITER), both times the warm-up factor during the first WARMUP_ITERS."""
    s = cfg.SOLVER
    if s.LR_SCHEDULER_NAME == "WarmupMultiStepLR":
        factor = s.GAMMA ** bisect.bisect_right(sorted(s.STEPS), iteration)
    elif s.LR_SCHEDULER_NAME == "WarmupCosineLR":
        factor = 0.5 * (1.0 + math.cos(math.pi * iteration / max(1, s.MAX_ITER)))
    else:
        raise ValueError(f"SOLVER.LR_SCHEDULER_NAME must be one of {LR_SCHEDULERS}, got {s.LR_SCHEDULER_NAME!r}")
    if iteration < s.WARMUP_ITERS:
        if s.WARMUP_METHOD == "constant":
            factor *= s.WARMUP_FACTOR
        else:
            alpha = iteration / s.WARMUP_ITERS
            factor *= s.WARMUP_FACTOR * (1 - alpha) + alpha
    return factor


def build_lr_scheduler(cfg, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` of :func:`lr_factor_at`; it reads the config at every step, so a resumed run
    follows the config's schedule from its iteration on."""
    if cfg.SOLVER.LR_SCHEDULER_NAME not in LR_SCHEDULERS:
        raise ValueError(
            f"SOLVER.LR_SCHEDULER_NAME must be one of {LR_SCHEDULERS}, got {cfg.SOLVER.LR_SCHEDULER_NAME!r}"
        )
    late = [st for st in cfg.SOLVER.STEPS if st > cfg.SOLVER.MAX_ITER]
    if late and cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupMultiStepLR":
        logger.warning("SOLVER.STEPS %s lie beyond SOLVER.MAX_ITER %d and never apply", late, cfg.SOLVER.MAX_ITER)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor_at(cfg, it))


def images_per_micro_batch(cfg, processes: int = 1) -> int:
    """Images of one micro-batch of ``processes`` processes together: ``IMS_PER_BATCH / (processes x
    GRAD_ACCUM_STEPS)``. The torchvision engine asks for one process's share; Detectron2's loaders
    take the total of all processes (``processes`` 1) and split it themselves."""
    accum = cfg.SOLVER.GRAD_ACCUM_STEPS
    if accum < 1:
        raise ValueError(f"SOLVER.GRAD_ACCUM_STEPS must be >= 1, got {accum}")
    if cfg.SOLVER.IMS_PER_BATCH % (processes * accum):
        by = f"the number of processes ({processes}) x " if processes > 1 else ""
        raise ValueError(f"SOLVER.IMS_PER_BATCH ({cfg.SOLVER.IMS_PER_BATCH}) must be divisible by "
                         f"{by}SOLVER.GRAD_ACCUM_STEPS ({accum})")
    return cfg.SOLVER.IMS_PER_BATCH // (processes * accum)
