"""PoolNet salient object detection on the Res2Net backbone, as the Res2Net authors built it.

PoolNet (Liu et al., "A Simple Pooling-Based Design for Real-Time Salient Object Detection",
CVPR 2019) in the Res2Net authors' version (Res2Net/Res2Net-PoolNet, ``networks/poolnet_res2net.py``
and ``networks/deeplab_res2net.py``), part for part, in the same order of operations, so that
the authors' released weights give the authors' maps (the mapping of their checkpoint keys to
ours is :func:`official_poolnet_to_ours`):

* backbone: Res2Net with the stem's max pool in ceil mode and res5 at stride 16 (dilation 2
  in every res5 block), batch norm frozen; levels stem (stride 2), res2..res5;
* each level reduced by a 1x1 conv + ReLU (``convert``);
* global guidance (:class:`GlobalGuidance`) from the raw res5 feature;
* feature aggregation modules (:class:`FeatureAggregation`) fusing the levels top-down;
* a 1x1 conv scores the finest level; the logits are upsampled to the input size.

Every resize is bilinear with ``align_corners=True``; images go through at any size, unpadded
one at a time (images of different sizes batched together are padded, see :meth:`preprocess`).

The meta-architecture follows Detectron2's conventions: ``model(list_of_dicts)`` returns
``{"loss_sal": ...}`` in training mode and ``[{"saliency": H x W in [0, 1]}]`` in eval mode.
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ..utils.tracing import is_tracing_or_exporting
from .res2net import STAGE_NAMES, Res2Net
from .weights import CheckpointError, register_layout

__all__ = [
    "FeatureAggregation",
    "GlobalGuidance",
    "LAYOUT_RES2NET_POOLNET",
    "LAYOUT_RESNET_POOLNET",
    "OFFICIAL_LAYOUT_CONFIGS",
    "PoolNetSaliency",
    "detect_poolnet_layout",
    "is_unused_official_key",
    "official_layout_conflicts",
    "official_poolnet_to_ours",
    "ours_to_official_poolnet",
    "saliency_loss",
]

_STEM_CHANNELS = 64


def _conv3x3_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.ReLU(inplace=True))


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
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
        pyramid = [reduced] + [_resize(branch(reduced), size) for branch in self.branches]
        context = self.fuse(torch.cat(pyramid, dim=1))
        return [guide(_resize(context, s)) for guide, s in zip(self.guides, sizes)]


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
            out = out + _resize(conv(_avg_pool(x, k)), size)
        out = F.relu(out)
        if self.conv_fuse is None:
            return self.conv_sum(out)
        if finer is None or guide is None:
            raise ValueError("a fusing FeatureAggregation needs the finer level and its guidance")
        out = self.conv_sum(_resize(out, finer.shape[-2:]))
        return self.conv_fuse(out + finer + guide)


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
        pixel_mean, pixel_std: normalisation on the 0-255 scale, in ``input_format``'s channel
            order (ImageNet's RGB statistics by default).
        input_format: "RGB", or "BGR" for weights trained on BGR input (PoolNet's ResNet-50);
            the ``"image"`` of each input dict is RGB either way (the mappers' convention).
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
        input_format: str = "RGB",
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
        if input_format not in ("RGB", "BGR"):
            raise ValueError(f"input_format must be 'RGB' or 'BGR', got {input_format!r}")

        self.backbone = backbone
        self.in_features = in_features
        self.loss_reduction = loss_reduction
        self.input_format = input_format
        self.ppm_bins = tuple(ppm_bins)
        self.fam_pool_sizes = tuple(fam_pool_sizes)
        stage_channels = {name: c for name, (c, _) in backbone.output_shape().items()}
        stage_channels["stem"] = _STEM_CHANNELS
        self.convert = nn.ModuleList(
            nn.Sequential(nn.Conv2d(stage_channels[f], c, 1, bias=False), nn.ReLU(inplace=True))
            for f, c in zip(in_features, convert_channels)
        )
        widths = list(convert_channels)[::-1]  # top-down
        self.guidance = GlobalGuidance(stage_channels[in_features[-1]], widths[0], ppm_bins, widths[1:])
        self.aggregate = nn.ModuleList(
            FeatureAggregation(widths[i], widths[min(i + 1, len(widths) - 1)], fam_pool_sizes, fuse=i + 1 < len(widths))
            for i in range(len(widths))
        )
        self.score = nn.Conv2d(widths[-1], 1, 1)
        # as given, for official_layout_conflicts (the buffers may live on another device)
        self.pixel_mean_std = (tuple(float(v) for v in pixel_mean), tuple(float(v) for v in pixel_std))
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
        features = self._levels(x)
        levels = [conv(f) for conv, f in zip(self.convert, features)][::-1]  # top-down
        # The guidance starts from the raw top feature, not its reduced copy (as in the authors' code).
        guides = self.guidance(features[-1], [f.shape[-2:] for f in levels[1:]])
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
            img = img.to(self.device, torch.float32)
            if self.input_format == "BGR":
                img = img.flip(0)
            images.append((img - self.pixel_mean) / self.pixel_std)
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



# ---------------------------------------------------------------------- the authors' checkpoints
# Whole-model state dicts the loaders recognise besides ours, by their module trees:
# Res2Net-PoolNet (networks/poolnet_res2net.py) and PoolNet's ResNet-50 (backseason/PoolNet,
# networks/poolnet.py; its backbone blocks name the 3x3 conv conv2/bn2).
LAYOUT_RES2NET_POOLNET = "Res2Net-PoolNet (Res2Net authors' release)"
LAYOUT_RESNET_POOLNET = "PoolNet ResNet-50 (PoolNet authors' release)"

# (authors' prefix, our prefix): their PoolNet module tree -> ours.
_OFFICIAL_PREFIXES: Tuple[Tuple[str, str], ...] = (
    ("base.resnet.", "backbone."),
    ("base.ppms_pre.", "guidance.reduce."),
    ("base.ppms.", "guidance.branches."),
    ("base.ppm_cat.", "guidance.fuse."),
    ("base.infos.", "guidance.guides."),
    ("convert.convert0.", "convert."),
    ("deep_pool.", "aggregate."),
    ("score.score.", "score."),
)
# (pattern, replacement) applied after the prefix swap: FAM's last conv, and the ResNet-50 layout's 3x3.
_OFFICIAL_FAM_FUSE = (re.compile(r"^(aggregate\.\d+\.)conv_sum_c\."), r"\1conv_fuse.")
_OURS_FAM_FUSE = (re.compile(r"^(deep_pool\.\d+\.)conv_fuse\."), r"\1conv_sum_c.")
_OFFICIAL_RESNET_3X3 = (re.compile(r"^(backbone\.layer\d+\.\d+\.)(conv2|bn2)\."),
                        lambda m: m.group(1) + ("convs.0." if m.group(2) == "conv2" else "bns.0."))
_OURS_RESNET_3X3 = (re.compile(r"^(base\.resnet\.layer\d+\.\d+\.)(convs|bns)\.0\."),
                    lambda m: m.group(1) + ("conv2." if m.group(2) == "convs" else "bn2."))
# Kept out of our layout: the ImageNet classifier their Res2Net carries but PoolNet never runs,
# and batch norm step counters (unused at inference and by frozen batch norm).
_OFFICIAL_UNUSED = re.compile(r"^base\.resnet\.fc\.|num_batches_tracked$")


def is_unused_official_key(key: str) -> bool:
    """True for the authors' keys that our layout leaves out (``_OFFICIAL_UNUSED``)."""
    return _OFFICIAL_UNUSED.search(key) is not None


def detect_poolnet_layout(state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The authors' layout a whole-model state dict is in (:data:`LAYOUT_RES2NET_POOLNET` or
    :data:`LAYOUT_RESNET_POOLNET`), or None (ours, a backbone, or anything else)."""
    if "base.ppms_pre.weight" not in state or not any(k.startswith("base.resnet.layer1.") for k in state):
        return None
    if any(re.match(r"^base\.resnet\.layer\d+\.\d+\.conv2\.weight$", k) for k in state):
        return LAYOUT_RESNET_POOLNET
    return LAYOUT_RES2NET_POOLNET


def _swap_prefix(key: str, pairs: Sequence[Tuple[str, str]]) -> Optional[str]:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def official_poolnet_to_ours(state: Mapping[str, torch.Tensor],
                             source: str = "the state dict") -> Dict[str, torch.Tensor]:
    """The authors' PoolNet state dict (either layout of :func:`detect_poolnet_layout`) in our
    :class:`PoolNetSaliency` key layout; the tensors themselves are shared, not copied.

    ``base.resnet.fc.*`` and ``num_batches_tracked`` are left out (see ``_OFFICIAL_UNUSED``).
    Raises :class:`CheckpointError` naming ``source`` and the keys that belong to no part.
    """
    resnet = detect_poolnet_layout(state) == LAYOUT_RESNET_POOLNET
    out: Dict[str, torch.Tensor] = {}
    foreign = []
    for key, value in state.items():
        if is_unused_official_key(key):
            continue
        new = _swap_prefix(key, _OFFICIAL_PREFIXES)
        if new is None:
            foreign.append(key)
            continue
        new = _OFFICIAL_FAM_FUSE[0].sub(_OFFICIAL_FAM_FUSE[1], new)
        if resnet:
            new = _OFFICIAL_RESNET_3X3[0].sub(_OFFICIAL_RESNET_3X3[1], new)
        out[new] = value
    if foreign:
        raise CheckpointError(
            f"{source} looks like the authors' PoolNet (base.resnet.*, base.ppms_pre) but {len(foreign)} keys "
            f"belong to none of its parts, first {sorted(foreign)[:5]}"
        )
    return out


def ours_to_official_poolnet(state: Mapping[str, torch.Tensor], resnet_layout: bool = False) -> Dict[str, torch.Tensor]:
    """Our :class:`PoolNetSaliency` state dict in the authors' layout (the inverse of
    :func:`official_poolnet_to_ours`; ``resnet_layout`` names the 3x3 convs ``conv2``/``bn2``
    as PoolNet's ResNet-50 does). Our normalisation buffers have no counterpart and are left out."""
    back = [(ours, theirs) for theirs, ours in _OFFICIAL_PREFIXES]
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = _swap_prefix(key, back)
        if new is None:
            raise CheckpointError(f"key {key!r} is no part of PoolNetSaliency")
        new = _OURS_FAM_FUSE[0].sub(_OURS_FAM_FUSE[1], new)
        if resnet_layout:
            new = _OURS_RESNET_3X3[0].sub(_OURS_RESNET_3X3[1], new)
        out[new] = value
    return out


# What the authors' networks do that a config could do otherwise without changing a tensor shape.
_OFFICIAL_INPUT = {
    # Res2Net-PoolNet: RGB, ImageNet mean/std (dataset/dataset.py load_image_test)
    LAYOUT_RES2NET_POOLNET: ("RGB", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    # PoolNet: BGR as OpenCV reads it, Caffe mean, no std
    LAYOUT_RESNET_POOLNET: ("BGR", (104.00699, 116.66877, 122.67892), (1.0, 1.0, 1.0)),
}


# The config of this repository that builds each of the authors' networks.
OFFICIAL_LAYOUT_CONFIGS = {
    LAYOUT_RES2NET_POOLNET: "configs/sod/poolnet_r2_50_duts.yaml",
    LAYOUT_RESNET_POOLNET: "configs/sod/poolnet_r_50_released.yaml",
}


def official_layout_conflicts(model: PoolNetSaliency, layout: str) -> List[str]:
    """Settings of ``model`` that differ from the network the authors' ``layout`` weights were
    trained in and that no tensor shape would reveal (their maps would silently differ).
    :data:`OFFICIAL_LAYOUT_CONFIGS` names the config that has none."""
    if not isinstance(model, PoolNetSaliency):
        return [f"the model is a {type(model).__name__}, not the PoolNetSaliency of MODEL.META_ARCHITECTURE"]
    b = model.backbone
    fmt, mean, std = _OFFICIAL_INPUT[layout]
    expected = {
        "MODEL.SALIENCY.IN_FEATURES": (model.in_features, ("stem",) + STAGE_NAMES),
        "MODEL.SALIENCY.PPM_BINS": (model.ppm_bins, (1, 3, 5)),
        "MODEL.SALIENCY.FAM_POOL_SIZES": (model.fam_pool_sizes, (2, 4, 8)),
        "MODEL.RES2NET.RES5_DILATION": (2 if b.dilate_last_stage else 1, 2),
        "MODEL.RES2NET.MAXPOOL_CEIL_MODE": (bool(b.maxpool.ceil_mode), True),
        "MODEL.RES2NET.STRIDE_IN_1X1": (bool(getattr(b, "stride_in_1x1", False)), layout == LAYOUT_RESNET_POOLNET),
        "INPUT.FORMAT": (model.input_format, fmt),
        "MODEL.PIXEL_MEAN": (tuple(round(v, 3) for v in model.pixel_mean_std[0]), tuple(round(v, 3) for v in mean)),
        "MODEL.PIXEL_STD": (tuple(round(v, 3) for v in model.pixel_mean_std[1]), tuple(round(v, 3) for v in std)),
    }
    return [f"{key} is {got} here but {want} in their network" for key, (got, want) in expected.items() if got != want]



def _official_layout_applies(layout: str):
    def applies(state: Mapping[str, torch.Tensor], model: nn.Module) -> bool:
        if detect_poolnet_layout(state) != layout:
            return False
        conflicts = official_layout_conflicts(model, layout)
        if conflicts:  # same shapes, other maps: refused rather than loaded
            raise CheckpointError(f"it holds {layout} weights, but the configured model differs from their network: "
                                  f"{'; '.join(conflicts)}. Use {OFFICIAL_LAYOUT_CONFIGS[layout]}.")
        return True

    return applies


# The package's one weight loader (modeling.weights.load_weights: predict_saliency.py --weights,
# MODEL.WEIGHTS) recognises the authors' files, maps them to ours and names the layout in its log.
for _layout in (LAYOUT_RES2NET_POOLNET, LAYOUT_RESNET_POOLNET):
    register_layout(_layout, _official_layout_applies(_layout), official_poolnet_to_ours)
