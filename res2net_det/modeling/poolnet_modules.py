"""PoolNet's two modules, global guidance and feature aggregation, as the Res2Net authors wrote
them (Res2Net/Res2Net-PoolNet, ``networks/poolnet_res2net.py``), with the pooling they need in a
form that exports: ``F.adaptive_avg_pool2d`` and PoolNet's ``AvgPool2d`` become averaging matmuls
that follow the input's size when traced or exported (:func:`_adaptive_avg_pool2d`,
:func:`_avg_pool`). The network that puts them together: :class:`~.saliency.PoolNetSaliency`.

Every resize is bilinear with ``align_corners=True`` (:func:`resize`).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..utils.tracing import is_tracing_or_exporting

__all__ = ["FeatureAggregation", "GlobalGuidance", "resize"]


def _conv3x3_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.ReLU(inplace=True))


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``x`` resized bilinearly (``align_corners=True``) to ``size``, as every resize of PoolNet."""
    # Exporting, always interpolate (an identity at equal sizes with align_corners).
    if not is_tracing_or_exporting() and tuple(x.shape[-2:]) == tuple(size):
        return x  # what the authors' code does where sizes agree (no interpolate call)
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


def _pooling_matrix(length, bins, like: torch.Tensor) -> torch.Tensor:
    """``bins x length`` matrix averaging the windows of adaptive average pooling:
    bin i covers ``[floor(i * length / bins), ceil((i + 1) * length / bins))``."""
    i = torch.arange(bins, device=like.device)
    start = torch.div(i * length, bins, rounding_mode="floor")
    end = torch.div((i + 1) * length + bins - 1, bins, rounding_mode="floor")
    j = torch.arange(length, device=like.device)
    inside = (j[None, :] >= start[:, None]) & (j[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start).to(like.dtype)[:, None]


def _adaptive_avg_pool2d(x: torch.Tensor, size) -> torch.Tensor:
    """``F.adaptive_avg_pool2d``, which the ONNX exporter and torch.export only handle for a
    fixed input size; when tracing or exporting, the same windows as two averaging matmuls,
    which follow the input's size (matched to eager within float rounding by the export tests)."""
    if not (is_tracing_or_exporting() or torch.compiler.is_compiling()):
        return F.adaptive_avg_pool2d(x, size)
    out_h, out_w = (size, size) if isinstance(size, int) else size
    rows = _pooling_matrix(x.shape[-2], out_h, x)
    cols = _pooling_matrix(x.shape[-1], out_w, x)
    return torch.matmul(torch.matmul(rows, x), cols.t())


class _AdaptiveAvgPool(nn.Module):
    """``nn.AdaptiveAvgPool2d`` through :func:`_adaptive_avg_pool2d` (exportable at any size); a
    module so that the pyramid branches keep the authors' indices (pool, conv ``.1``, ReLU)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _adaptive_avg_pool2d(x, self.size)


class GlobalGuidance(nn.Module):
    """PoolNet's global guidance module (Res2Net-PoolNet's ``Res2Net_locate`` head).

    The top backbone feature gets its own 1x1 reduction (no ReLU). Each pyramid branch
    average-pools it to ``bin x bin``, applies a 1x1 conv + ReLU and is upsampled back; the
    reduced map and the branches are concatenated and fused by a 3x3 conv + ReLU. Each lower
    level's guidance is that map upsampled to the level's size, then a 3x3 conv + ReLU.

    Args:
        in_channels: width of the raw top backbone feature (2048 for res5).
        channels: width of the module (the top level's reduced width, 512 in PoolNet).
        bins: output sizes of the adaptive average pools (1, 3, 5 in PoolNet).
        guide_channels: width of each lower level, top-down order (one guidance each).
    """

    def __init__(self, in_channels: int, channels: int, bins: Sequence[int], guide_channels: Sequence[int]) -> None:
        super().__init__()
        self.bins = tuple(bins)
        self.reduce = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.branches = nn.ModuleList(
            nn.Sequential(_AdaptiveAvgPool(b), nn.Conv2d(channels, channels, 1, bias=False), nn.ReLU(inplace=True))
            for b in self.bins
        )
        self.fuse = _conv3x3_relu(channels * (len(self.bins) + 1), channels)
        self.guides = nn.ModuleList(_conv3x3_relu(channels, c) for c in guide_channels)

    def forward(self, top: torch.Tensor, sizes: Sequence[Sequence[int]]) -> List[torch.Tensor]:
        """Guidance maps for the lower levels, whose spatial ``sizes`` are given top-down."""
        reduced = self.reduce(top)
        size = reduced.shape[-2:]
        pyramid = [reduced] + [resize(branch(reduced), size) for branch in self.branches]
        context = self.fuse(torch.cat(pyramid, dim=1))
        return [guide(resize(context, s)) for guide, s in zip(self.guides, sizes)]


def _window_matrix(length, k: int, like: torch.Tensor) -> torch.Tensor:
    """``bins x length`` matrix of :func:`_avg_pool`'s windows along one side: windows of
    ``min(k, length)`` elements from 0, the remainder dropped. ``length`` may be a traced size."""
    length = torch.as_tensor(length, device=like.device)
    size = torch.clamp(length, max=k)
    i = torch.arange(torch.div(length, size, rounding_mode="floor"), device=like.device)
    j = torch.arange(length, device=like.device)
    inside = (j[None, :] >= (i * size)[:, None]) & (j[None, :] < ((i + 1) * size)[:, None])
    return inside.to(like.dtype) / size.to(like.dtype)


def _avg_pool(x: torch.Tensor, k: int) -> torch.Tensor:
    """``AvgPool2d(k, k)`` as PoolNet pools; on a side shorter than ``k`` (where PoolNet's pool
    would fail) the window shrinks to that side, so small images still go through. When tracing
    for ONNX, the same windows as two averaging matmuls, which follow the input's size (a kernel
    computed from the size would be baked in). Not for torch.export: it follows ``min(k, side)``
    symbolically, and the matmul windows made it fix the sizes instead."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        rows = _window_matrix(x.shape[-2], k, x)
        cols = _window_matrix(x.shape[-1], k, x)
        return torch.matmul(torch.matmul(rows, x), cols.t())
    h, w = x.shape[-2:]
    return F.avg_pool2d(x, kernel_size=(min(k, h), min(k, w)))


class FeatureAggregation(nn.Module):
    """PoolNet's feature aggregation module (FAM, the authors' ``DeepPoolLayer``), optionally
    fused with the next finer level.

    ``x`` is average-pooled by each factor, convolved, upsampled and summed with ``x``, then a
    ReLU. With ``fuse``, the sum is upsampled to the finer level first; a 3x3 conv maps it to
    ``out_channels``; with ``fuse`` it is summed with the finer level's feature and its global
    guidance before a last 3x3 conv.

    Args:
        in_channels: width of ``x``.
        out_channels: output width (the finer level's width when fusing).
        pool_sizes: pooling factors (2, 4, 8 in PoolNet).
        fuse: whether a finer level follows.
    """

    def __init__(self, in_channels: int, out_channels: int, pool_sizes: Sequence[int], fuse: bool) -> None:
        super().__init__()
        self.pool_sizes = tuple(pool_sizes)
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=False) for _ in self.pool_sizes
        )
        self.conv_sum = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv_fuse = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False) if fuse else None

    def forward(
        self, x: torch.Tensor, finer: Optional[torch.Tensor] = None, guide: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        size = x.shape[-2:]
        out = x
        for k, conv in zip(self.pool_sizes, self.convs):
            out = out + resize(conv(_avg_pool(x, k)), size)
        out = F.relu(out)
        if self.conv_fuse is None:
            return self.conv_sum(out)
        if finer is None or guide is None:
            raise ValueError("a fusing FeatureAggregation needs the finer level and its guidance")
        out = self.conv_sum(resize(out, finer.shape[-2:]))
        return self.conv_fuse(out + finer + guide)
