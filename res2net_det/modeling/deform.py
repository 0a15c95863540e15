"""Deformable split convolutions for chosen Res2Net stages (Dai et al., ICCV 2017; modulated:
Zhu et al., CVPR 2019), with torchvision's ``deform_conv2d`` so they run on CPU and GPU in both
engines.

The deformable conv keeps the plain conv's ``weight`` under the same key, so ImageNet weights
still load; only the new ``conv_offset`` (zero-initialised: the network starts as the plain one)
is absent from ImageNet checkpoints.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.ops import deform_conv2d

from .res2net import STAGE_NAMES, Res2Net

__all__ = ["DeformableConv2d", "make_stages_deformable"]


class DeformableConv2d(nn.Module):
    """A conv that predicts per-position sampling offsets (and, modulated, weights) from its input.

    Args:
        conv: the plain conv to replace; its weight, stride, padding, dilation and groups are kept.
        modulated: also predict a sigmoid mask per sampling point (DCNv2).
        offset_groups: channel groups with their own offsets (Detectron2's DEFORM_NUM_GROUPS).
    """

    def __init__(self, conv: nn.Conv2d, modulated: bool = False, offset_groups: int = 1) -> None:
        super().__init__()
        if conv.in_channels % offset_groups:
            raise ValueError(f"offset_groups {offset_groups} must divide the {conv.in_channels} input channels")
        self.weight = conv.weight
        self.register_parameter("bias", conv.bias)  # None for Res2Net's convs; set by BN folding
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.modulated = modulated
        points = offset_groups * conv.kernel_size[0] * conv.kernel_size[1]
        self.conv_offset = nn.Conv2d(
            conv.in_channels, points * (3 if modulated else 2), conv.kernel_size,
            stride=conv.stride, padding=conv.padding, dilation=conv.dilation, bias=True,
        )
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.conv_offset(x)
        mask = None
        if self.modulated:
            dy_dx, mask = offset.split([offset.shape[1] // 3 * 2, offset.shape[1] // 3], dim=1)
            offset, mask = dy_dx, mask.sigmoid()
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation, mask)


def make_stages_deformable(
    model: Res2Net, on_per_stage: Sequence[bool], modulated: bool = False, offset_groups: int = 1
) -> Res2Net:
    """Replaces the split 3x3 convs of the stages flagged in ``on_per_stage`` (res2..res5, as
    Detectron2's ``MODEL.RESNETS.DEFORM_ON_PER_STAGE``) by :class:`DeformableConv2d`, in place.
    Offsets in a frozen stage stay frozen, like the rest of it."""
    if len(on_per_stage) != len(STAGE_NAMES):
        raise ValueError(f"DEFORM_ON_PER_STAGE needs one flag per stage {STAGE_NAMES}, got {list(on_per_stage)}")
    stages = dict(model.stages())
    for name, on in zip(STAGE_NAMES, on_per_stage):
        if not on:
            continue
        frozen = STAGE_NAMES.index(name) + 2 <= getattr(model, "freeze_at", 0)
        for block in stages[name]:
            for i, conv in enumerate(block.convs):
                deformable = DeformableConv2d(conv, modulated=modulated, offset_groups=offset_groups)
                deformable.conv_offset.requires_grad_(not frozen)
                block.convs[i] = deformable
    return model
