"""The optimizer of ``SOLVER.*``: one parameter-group policy and one optimizer choice for every
task on both engines.

The policy is Detectron2's ``get_default_optimizer_params`` (configs are Detectron2's schema, so
its keys mean what Detectron2 says): every trainable parameter gets ``BASE_LR`` and
``WEIGHT_DECAY``; parameters of norm layers get ``WEIGHT_DECAY_NORM``; then parameters named
``bias`` (norm biases included) get ``BASE_LR x BIAS_LR_FACTOR`` when the factor is not 1, and
``WEIGHT_DECAY_BIAS`` when it is set. ``SOLVER.OPTIMIZER`` (our key) picks SGD with momentum
(Detectron2's), Adam or AdamW over those groups.

Gradient clipping is not done here: the torchvision trainer clips in its step, Detectron2 wraps
the optimizer with ``maybe_add_gradient_clipping``; both read ``SOLVER.CLIP_GRADIENTS`` the same way.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

__all__ = ["NORM_TYPES", "OPTIMIZERS", "optimizer_param_groups", "build_optimizer"]

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


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZER`` over :func:`optimizer_param_groups` of ``SOLVER.*``."""
    s = cfg.SOLVER
    groups = optimizer_param_groups(
        model, base_lr=s.BASE_LR, weight_decay=s.WEIGHT_DECAY, weight_decay_norm=s.WEIGHT_DECAY_NORM,
        bias_lr_factor=s.BIAS_LR_FACTOR, weight_decay_bias=s.WEIGHT_DECAY_BIAS,
    )
    if not groups:
        raise ValueError("the model has no trainable parameter (is MODEL.BACKBONE.FREEZE_AT too high?)")
    name = str(s.OPTIMIZER).upper()
    if name == "SGD":
        return torch.optim.SGD(groups, lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV)
    if name == "ADAM":
        return torch.optim.Adam(groups, lr=s.BASE_LR)
    if name == "ADAMW":
        return torch.optim.AdamW(groups, lr=s.BASE_LR)
    raise ValueError(f"SOLVER.OPTIMIZER must be one of {', '.join(map(repr, OPTIMIZERS))}, got {s.OPTIMIZER!r}")
