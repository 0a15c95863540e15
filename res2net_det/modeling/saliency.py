"""PoolNet salient object detection on the Res2Net backbone, as the Res2Net authors built it.

PoolNet (Liu et al., "A Simple Pooling-Based Design for Real-Time Salient Object Detection",
CVPR 2019) in the Res2Net authors' version (Res2Net/Res2Net-PoolNet, ``networks/poolnet_res2net.py``
and ``networks/deeplab_res2net.py``), part for part, in the same order of operations, so that
the authors' released weights give the authors' maps (the mapping of their checkpoint keys to
ours is :func:`official_poolnet_to_ours`, in :mod:`.poolnet_checkpoints`):

* backbone: Res2Net with the stem's max pool in ceil mode and res5 at stride 16 (dilation 2
  in every res5 block), batch norm frozen; levels stem (stride 2), res2..res5;
* each level reduced by a 1x1 conv + ReLU (``convert``);
* global guidance (:class:`GlobalGuidance`) from the raw res5 feature;
* feature aggregation modules (:class:`FeatureAggregation`) fusing the levels top-down
  (both modules: :mod:`.poolnet_modules`);
* a 1x1 conv scores the finest level; the logits are upsampled to the input size.

Every resize is bilinear with ``align_corners=True``; images go through at any size, unpadded
one at a time (images of different sizes batched together are padded, see :meth:`preprocess`).

The meta-architecture follows Detectron2's conventions: ``model(list_of_dicts)`` returns
``{"loss_sal": ...}`` in training mode and ``[{"saliency": H x W in [0, 1]}]`` in eval mode.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .poolnet_checkpoints import (
    LAYOUT_RES2NET_POOLNET,
    LAYOUT_RESNET_POOLNET,
    OFFICIAL_LAYOUT_CONFIGS,
    OFFICIAL_LAYOUT_INPUT,
    detect_poolnet_layout,
    is_unused_official_key,
    official_poolnet_to_ours,
    ours_to_official_poolnet,
)
from .poolnet_modules import FeatureAggregation, GlobalGuidance, resize
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
        return resize(self.score(merge), x.shape[-2:])

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
                crop = resize(crop[None, None], out_size)[0, 0]
            results.append({"saliency": crop.sigmoid()})
        return results


# ---------------------------------------------------------------------- the authors' checkpoints
# Their key layouts and the maps to ours: .poolnet_checkpoints. Here: what a configured model must
# match before their weights load into it, and the registration with the one weight loader.
def official_layout_conflicts(model: PoolNetSaliency, layout: str) -> List[str]:
    """Settings of ``model`` that differ from the network the authors' ``layout`` weights were
    trained in and that no tensor shape would reveal (their maps would silently differ).
    :data:`OFFICIAL_LAYOUT_CONFIGS` names the config that has none."""
    if not isinstance(model, PoolNetSaliency):
        return [f"the model is a {type(model).__name__}, not the PoolNetSaliency of MODEL.META_ARCHITECTURE"]
    b = model.backbone
    fmt, mean, std = OFFICIAL_LAYOUT_INPUT[layout]
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
