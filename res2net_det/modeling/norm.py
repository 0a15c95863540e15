"""Normalisation layers by name, as detection configs spell them."""
from __future__ import annotations

import copy
from typing import Callable, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torchvision.ops import FrozenBatchNorm2d

NormSpec = Union[str, Callable[[int], nn.Module]]

_NORMS = {
    "BN": nn.BatchNorm2d,
    "SyncBN": nn.SyncBatchNorm,
    "FrozenBN": FrozenBatchNorm2d,
    "GN": lambda channels: nn.GroupNorm(group_norm_groups(channels), channels),
}


def group_norm_groups(channels: int, preferred: int = 32) -> int:
    """32 groups as in Detectron2 and "Group Normalization" (Wu & He, 2018) where they divide
    ``channels``; otherwise the largest divisor below 32. Res2Net's split widths (26, 52, 104, 14
    ...) are rarely multiples of 32, and GroupNorm needs whole groups."""
    return max(g for g in range(1, preferred + 1) if channels % g == 0)


def get_norm(norm: NormSpec, channels: int) -> nn.Module:
    """A normalisation module for ``channels``: "BN", "SyncBN", "FrozenBN", "GN" or a callable."""
    if callable(norm):
        return norm(channels)
    if norm not in _NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose from {sorted(_NORMS)} or pass a callable")
    return _NORMS[norm](channels)


def convert_frozen_batchnorm(module: nn.Module) -> nn.Module:
    """Replaces every BatchNorm/SyncBatchNorm in ``module`` by a FrozenBatchNorm2d with its statistics."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        if module.affine:
            frozen.weight.data.copy_(module.weight.detach())
            frozen.bias.data.copy_(module.bias.detach())
        if module.running_mean is not None:
            frozen.running_mean.data.copy_(module.running_mean)
            frozen.running_var.data.copy_(module.running_var)
        return frozen
    for name, child in module.named_children():
        new_child = convert_frozen_batchnorm(child)
        if new_child is not child:
            setattr(module, name, new_child)
    return module


def is_foldable(norm: nn.Module) -> bool:
    """True for norms that are a per-channel affine map at inference (BN, SyncBN, FrozenBN)."""
    if isinstance(norm, FrozenBatchNorm2d):
        return True
    return isinstance(norm, nn.modules.batchnorm._BatchNorm) and norm.track_running_stats


def fold_norm_into_conv(conv: nn.Conv2d, norm: nn.Module) -> nn.Conv2d:
    """A new conv (with bias) that computes ``norm(conv(x))`` of an inference-mode ``norm``.

    Uses PyTorch's own ``fuse_conv_bn_weights``; torchvision's FrozenBatchNorm2d has the same
    fields (running mean/var, eps, weight, bias) and the same formula, so it folds alike.
    """
    if not is_foldable(norm):
        raise TypeError(f"cannot fold {type(norm).__name__} into a conv (only BN, SyncBN and FrozenBN)")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps,
        getattr(norm, "weight", None), getattr(norm, "bias", None),
    )
    return fused


def frozen_affine(norm: nn.Module) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """``(scale, shift)`` of a FrozenBatchNorm2d (a fixed per-channel affine map), else None."""
    if not isinstance(norm, FrozenBatchNorm2d):
        return None
    scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
    return scale, norm.bias - norm.running_mean * scale
