"""The Res2Net bottleneck block (Gao et al., TPAMI 2021), with the official module names.

Faithfulness notes (see the official code): the stride sits on every split 3x3 conv, not on the
first 1x1; the first block of every stage ("stage" block, layer1 included) has no hierarchical
additions and passes its last split through ``AvgPool2d(3, stride, padding=1)``, which is not an
identity even at stride 1. With frozen norms the split convs run through
:class:`~.split_convs.SplitConvs` (same gradients, less activation memory).
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import nn

from ..utils.tracing import is_tracing_or_exporting
from .norm import NormSpec, frozen_affine, get_norm
from .split_convs import SplitConvs

__all__ = ["Bottle2neck"]


class Bottle2neck(nn.Module):
    """The Res2Net bottleneck: 1x1 -> hierarchical split 3x3 convs -> 1x1.

    Args:
        inplanes: input channels.
        planes: bottleneck planes; the block outputs ``planes * 4`` channels.
        stride: stride of the split 3x3 convs (and of the shortcut).
        downsample: shortcut module, or None for identity.
        base_width: width of one split per 64 planes (26 for "26w").
        scale: number of splits (4 for "4s"); 1 gives a plain ResNet bottleneck.
        cardinality: groups of each split 3x3 conv (Res2NeXt); 1 for Res2Net.
        dilation: dilation of the split 3x3 convs.
        is_stage_block: True for the first block of a stage (no hierarchical
            additions, average pool on the last split).
        norm: normalisation spec, see :func:`res2net_det.modeling.norm.get_norm`.
        stride_in_1x1: put the stride on the first 1x1 conv instead (Caffe / MSRA ResNet, as
            in PoolNet's released ResNet-50); scale 1 only, Res2Net's splits always stride.
    """

    expansion = 4
    # Frozen norms run the split convs through SplitConvs (less activation memory, same gradients);
    # False runs the reference path, which tests compare it with.
    split_convs_fast_path = True

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        base_width: int = 26,
        scale: int = 4,
        cardinality: int = 1,
        dilation: int = 1,
        is_stage_block: bool = False,
        norm: NormSpec = "BN",
        stride_in_1x1: bool = False,
    ) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if stride_in_1x1 and scale != 1:
            raise ValueError(f"stride_in_1x1 is the plain (scale 1) ResNet layout; got scale {scale}")
        width = int(math.floor(planes * (base_width / 64.0))) * cardinality
        if width < 1 or cardinality < 1:
            raise ValueError(
                f"base_width {base_width} x cardinality {cardinality} gives splits of {width} channels for "
                f"{planes} planes; use base_width >= {math.ceil(64 / planes)} and cardinality >= 1"
            )
        self.width = width
        self.scale = scale
        self.is_stage_block = is_stage_block
        # scale 1 keeps one 3x3 conv (plain ResNet bottleneck).
        num_convs = max(1, scale - 1)

        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, width * scale, kernel_size=1, stride=stride_1x1, bias=False)
        self.bn1 = get_norm(norm, width * scale)
        self.convs = nn.ModuleList(
            nn.Conv2d(
                width, width, kernel_size=3, stride=stride_3x3, padding=dilation,
                dilation=dilation, groups=cardinality, bias=False,
            )
            for _ in range(num_convs)
        )
        self.bns = nn.ModuleList(get_norm(norm, width) for _ in range(num_convs))
        self.pool = (
            nn.AvgPool2d(kernel_size=3, stride=stride, padding=1)
            if is_stage_block and scale > 1
            else None
        )
        self.conv3 = nn.Conv2d(width * scale, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = get_norm(norm, planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        # Set by fuse.fold_block_norms_ in a stage block: its independent split convs as one grouped conv.
        self.register_module("grouped_convs", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)

        out = self.relu(self.bn1(self.conv1(x)))
        frozen = self._frozen_split_norms()
        if frozen is not None:
            first = self.convs[0]
            out = SplitConvs.apply(
                out, self.pool is not None, not self.is_stage_block,
                (first.stride, first.padding, first.dilation, first.groups), *frozen,
                *[c.weight for c in self.convs])
            return self._finish(out, shortcut)
        if self.grouped_convs is not None:
            n = self.grouped_convs.in_channels
            outs = [self.relu(self.grouped_convs(out[:, :n])), self.pool(out[:, n:])]
        else:
            splits = torch.split(out, self.width, dim=1)
            outs: List[torch.Tensor] = []
            sp = splits[0]
            for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
                sp = splits[i] if (i == 0 or self.is_stage_block) else sp + splits[i]
                sp = self.relu(bn(conv(sp)))
                outs.append(sp)
            if self.scale > 1:
                last = splits[-1]
                outs.append(self.pool(last) if self.pool is not None else last)
        out = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        return self._finish(out, shortcut)

    def _finish(self, out: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv3(out))
        out += shortcut  # in place, as torchvision: no backward needs the norm's output
        return self.relu(out)

    def _frozen_split_norms(self) -> Optional[Tuple[Tuple[torch.Tensor, ...], Tuple[torch.Tensor, ...]]]:
        """``(scales, shifts)`` of the split convs' norms when :class:`~.split_convs.SplitConvs` can run the splits
        (scale > 1, plain convs, FrozenBN, eager mode), else None: the reference path runs."""
        if not self.split_convs_fast_path or self.scale == 1 or self.grouped_convs is not None:
            return None
        if torch.jit.is_scripting() or is_tracing_or_exporting() or torch.compiler.is_compiling():
            return None  # tracers, exporters and compilers take the reference path's plain ops
        if not all(type(c) is nn.Conv2d and c.bias is None for c in self.convs):
            return None  # deformable convs
        affine = [frozen_affine(bn) for bn in self.bns]
        if any(a is None for a in affine):
            return None
        return tuple(a[0] for a in affine), tuple(a[1] for a in affine)
