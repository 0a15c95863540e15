"""A PoolNet-style salient object detector on the Res2Net backbone.

Modelled on PoolNet (Liu et al., "A Simple Pooling-Based Design for Real-Time Salient Object
Detection", CVPR 2019) as the Res2Net authors used it (Res2Net-PoolNet): the backbone's
levels are reduced by 1x1 convs; a global guidance module (pyramid pooling on the top level)
sends upsampled guidance to every decoder level; feature aggregation modules (multi-scale
average pooling) fuse the decoder top-down; a 1x1 conv scores the finest level and the logits
are upsampled to the input size. Layer4 is dilated (stride 16) and the backbone's batch norm
is frozen, as in Res2Net-PoolNet. Written from the paper's description.

The meta-architecture follows Detectron2's conventions: ``model(list_of_dicts)`` returns
``{"loss_sal": ...}`` in training mode and ``[{"saliency": H x W in [0, 1]}]`` in eval mode.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .res2net import STAGE_NAMES, Res2Net

__all__ = [
    "FeatureAggregation",
    "GlobalGuidance",
    "PoolNetSaliency",
    "saliency_loss",
]

_STEM_CHANNELS = 64


def _conv3x3_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.ReLU(inplace=True))


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
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
    if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()):
        return F.adaptive_avg_pool2d(x, size)
    out_h, out_w = (size, size) if isinstance(size, int) else size
    rows = _pooling_matrix(x.shape[-2], out_h, x)
    cols = _pooling_matrix(x.shape[-1], out_w, x)
    return torch.matmul(torch.matmul(rows, x), cols.t())


class GlobalGuidance(nn.Module):
    """PoolNet's global guidance module: pyramid pooling on the top level, then one guidance
    branch per lower level (upsample + 3x3 conv to that level's width).

    Args:
        channels: width of the top level.
        bins: output sizes of the adaptive average pools (1, 3, 5 in PoolNet).
        guide_channels: width of each lower level, top-down order (one branch each).
    """

    def __init__(self, channels: int, bins: Sequence[int], guide_channels: Sequence[int]) -> None:
        super().__init__()
        self.bins = tuple(bins)
        self.branches = nn.ModuleList(_conv3x3_relu(channels, channels) for _ in self.bins)
        self.fuse = _conv3x3_relu(channels, channels)
        self.guides = nn.ModuleList(_conv3x3_relu(channels, c) for c in guide_channels)

    def forward(self, top: torch.Tensor, sizes: Sequence[Sequence[int]]) -> List[torch.Tensor]:
        """Guidance maps for the lower levels, whose spatial ``sizes`` are given top-down."""
        size = top.shape[-2:]
        pooled = top
        for bin_size, branch in zip(self.bins, self.branches):
            pooled = pooled + _resize(branch(_adaptive_avg_pool2d(top, bin_size)), size)
        context = self.fuse(pooled)
        return [guide(_resize(context, s)) for guide, s in zip(self.guides, sizes)]


class FeatureAggregation(nn.Module):
    """PoolNet's feature aggregation module (FAM), optionally fused with the next finer level.

    ``x`` is average-pooled by each factor, convolved, upsampled and summed with ``x``; a 3x3 conv
    maps the sum to ``out_channels``. With ``fuse``, the result is upsampled to the finer level
    and summed with that level's feature and its global guidance before a last 3x3 conv.

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
        self.relu = nn.ReLU(inplace=True)
        self.conv_sum = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv_fuse = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False) if fuse else None

    def forward(
        self, x: torch.Tensor, finer: Optional[torch.Tensor] = None, guide: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        size = x.shape[-2:]
        out = x
        for k, conv in zip(self.pool_sizes, self.convs):
            # Adaptive pooling to ceil(size / k) instead of AvgPool2d(k, k): the same windows on
            # sizes divisible by k, and no error on maps smaller than k (small or odd inputs).
            # Integer ceil division keeps the size symbolic when tracing (math.ceil would bake it in).
            pooled = _adaptive_avg_pool2d(x, ((size[0] + k - 1) // k, (size[1] + k - 1) // k))
            out = out + _resize(conv(pooled), size)
        out = self.conv_sum(self.relu(out))
        if self.conv_fuse is None:
            return out
        if finer is None or guide is None:
            raise ValueError("a fusing FeatureAggregation needs the finer level and its guidance")
        out = _resize(out, finer.shape[-2:]) + finer + guide
        return self.conv_fuse(out)


def saliency_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Binary cross-entropy on logits, per image summed (``"sum"``) or averaged (``"mean"``)
    over pixels, then averaged over the images of the batch.

    Args:
        logits: ``N x H x W`` logits, or a list of ``H_i x W_i`` logits (padded batches).
        targets: matching 0/1 targets.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    per_image = [
        F.binary_cross_entropy_with_logits(lg, t.to(lg.dtype), reduction=reduction)
        for lg, t in zip(logits, targets)
    ]
    return torch.stack(per_image).mean()


class PoolNetSaliency(nn.Module):
    """Res2Net backbone + PoolNet decoder; Detectron2 meta-architecture conventions.

    Args:
        backbone: a :class:`Res2Net` built with ``num_classes=0`` returning (at least) the
            stages in ``in_features``; usually with ``dilate_last_stage=True`` and frozen BN.
        in_features: backbone levels, fine to coarse; ``"stem"`` is the stride-2 first conv output.
        convert_channels: width of each level after its 1x1 reduction conv (same order).
        ppm_bins: pyramid pooling bins of the global guidance module.
        fam_pool_sizes: pooling factors of the aggregation modules.
        loss_reduction: see :func:`saliency_loss`.
        pixel_mean, pixel_std: RGB normalisation on the 0-255 scale (ImageNet's by default).
    """

    def __init__(
        self,
        backbone: Res2Net,
        in_features: Sequence[str] = ("stem", "res2", "res3", "res4", "res5"),
        convert_channels: Sequence[int] = (128, 256, 256, 512, 512),
        ppm_bins: Sequence[int] = (1, 3, 5),
        fam_pool_sizes: Sequence[int] = (2, 4, 8),
        loss_reduction: str = "sum",
        pixel_mean: Sequence[float] = (123.675, 116.28, 103.53),
        pixel_std: Sequence[float] = (58.395, 57.12, 57.375),
    ) -> None:
        super().__init__()
        in_features = tuple(in_features)
        if len(in_features) < 2:
            raise ValueError(f"in_features needs at least two levels, got {in_features}")
        order = ("stem",) + STAGE_NAMES
        unknown = [f for f in in_features if f not in order]
        if unknown:
            raise ValueError(f"unknown in_features {unknown}; choose from {order}")
        if list(in_features) != sorted(in_features, key=order.index) or len(set(in_features)) != len(in_features):
            raise ValueError(f"in_features must be distinct and ordered fine to coarse {order}, got {in_features}")
        if len(convert_channels) != len(in_features):
            raise ValueError(
                f"convert_channels {tuple(convert_channels)} must give one width per in_features level {in_features}"
            )
        missing = [f for f in in_features if f != "stem" and f not in backbone.out_features]
        if missing:
            raise ValueError(f"the backbone does not return {missing}; its out_features are {backbone.out_features}")
        if loss_reduction not in ("sum", "mean"):
            raise ValueError(f"loss_reduction must be 'sum' or 'mean', got {loss_reduction!r}")

        self.backbone = backbone
        self.in_features = in_features
        self.loss_reduction = loss_reduction
        stage_channels = {name: c for name, (c, _) in backbone.output_shape().items()}
        stage_channels["stem"] = _STEM_CHANNELS
        self.convert = nn.ModuleList(
            nn.Sequential(nn.Conv2d(stage_channels[f], c, 1, bias=False), nn.ReLU(inplace=True))
            for f, c in zip(in_features, convert_channels)
        )
        widths = list(convert_channels)[::-1]  # top-down
        self.guidance = GlobalGuidance(widths[0], ppm_bins, widths[1:])
        self.aggregate = nn.ModuleList(
            FeatureAggregation(widths[i], widths[min(i + 1, len(widths) - 1)], fam_pool_sizes, fuse=i + 1 < len(widths))
            for i in range(len(widths))
        )
        self.score = nn.Conv2d(widths[-1], 1, 1)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(3, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ------------------------------------------------------------------ tensors
    def _levels(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Backbone levels in ``in_features`` order. Runs the stem here because Res2Net's
        ``forward_features`` starts at res2 and PoolNet also uses the stride-2 stem output."""
        b = self.backbone
        b._check_input(x)
        stem = b.relu(b.bn1(b.conv1(x)))
        feats: Dict[str, torch.Tensor] = {"stem": stem}
        y = b.maxpool(stem)
        last = self.in_features[-1]
        num_stages = STAGE_NAMES.index(last) + 1 if last != "stem" else 0  # later stages unused
        for name, layer in list(zip(STAGE_NAMES, (b.layer1, b.layer2, b.layer3, b.layer4)))[:num_stages]:
            y = layer(y)
            feats[name] = y
        return [feats[f] for f in self.in_features]

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 1 x H x W`` saliency logits for a normalised ``N x 3 x H x W`` batch."""
        levels = [conv(f) for conv, f in zip(self.convert, self._levels(x))][::-1]  # top-down
        guides = self.guidance(levels[0], [f.shape[-2:] for f in levels[1:]])
        merge = levels[0]
        for i, fam in enumerate(self.aggregate):
            if i + 1 < len(levels):
                merge = fam(merge, levels[i + 1], guides[i])
            else:
                merge = fam(merge)
        return _resize(self.score(merge), x.shape[-2:])

    # ------------------------------------------------------------------ dicts
    def preprocess(self, batched_inputs: List[dict]) -> Tuple[torch.Tensor, List[Tuple[int, int]]]:
        """Normalised images padded (bottom/right, with zeros after normalisation) to one size."""
        images = []
        for d in batched_inputs:
            img = d["image"]
            if not isinstance(img, torch.Tensor) or img.dim() != 3 or img.shape[0] != 3:
                shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
                raise ValueError(f"'image' must be a 3 x H x W RGB tensor, got {shape} for {d.get('file_name', '?')}")
            images.append((img.to(self.device, torch.float32) - self.pixel_mean) / self.pixel_std)
        sizes = [tuple(im.shape[-2:]) for im in images]
        h = max(s[0] for s in sizes)
        w = max(s[1] for s in sizes)
        batch = images[0].new_zeros(len(images), 3, h, w)
        for i, im in enumerate(images):
            batch[i, :, : im.shape[1], : im.shape[2]] = im
        return batch, sizes

    def forward(self, batched_inputs: List[dict]):
        """Training: ``{"loss_sal": tensor}``. Eval: ``[{"saliency": H x W in [0, 1]}]`` at each
        input's ``"height"`` x ``"width"`` (its original size) when given, else the input size."""
        batch, sizes = self.preprocess(batched_inputs)
        logits = self.forward_logits(batch)[:, 0]
        crops = [logits[i, :h, :w] for i, (h, w) in enumerate(sizes)]
        if self.training:
            targets = []
            for d, (h, w) in zip(batched_inputs, sizes):
                target = d.get("sem_seg", d.get("mask"))
                if target is None:
                    raise KeyError(f"training input {d.get('file_name', '?')} has no 'sem_seg' (or 'mask') target")
                if tuple(target.shape) != (h, w):
                    raise ValueError(
                        f"target of {d.get('file_name', '?')} is {tuple(target.shape)}, its image is {(h, w)}"
                    )
                targets.append(target.to(self.device, torch.float32))
            return {"loss_sal": saliency_loss(crops, targets, self.loss_reduction)}
        results = []
        for d, crop in zip(batched_inputs, crops):
            out_size = (int(d.get("height", crop.shape[0])), int(d.get("width", crop.shape[1])))
            if tuple(crop.shape) != out_size:
                crop = _resize(crop[None, None], out_size)[0, 0]
            results.append({"saliency": crop.sigmoid()})
        return results

