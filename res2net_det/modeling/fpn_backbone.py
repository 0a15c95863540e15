"""Res2Net feature backbones for torchvision's detectors: Res2Net + FPN, or one Res2Net stage.

:func:`res2net_fpn_backbone` is what torchvision's ``resnet_fpn_backbone`` is for ResNets: a
variant by name, its ImageNet weights, frozen stages counted torchvision's way, optional
deformable stages, and :class:`Res2NetFPN` on top (outputs named by stride as Detectron2's:
``p2`` .. ``p6``) or :class:`Res2NetSingleLevel` (one stage, for a C4 / C5 head). The Res2Net sits at
``bottom_up`` with the official keys, as in Detectron2, so every checkpoint of it fits. The
detectors built on them: :mod:`.detection`.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, List, Mapping, Optional, Sequence

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool, LastLevelP6P7

from .deform import make_stages_deformable
from .norm import NormSpec
from .res2net import STAGE_NAMES, Res2Net, create_model

__all__ = [
    "TOP_BLOCKS",
    "disable_unused_stages",
    "fpn_level_names",
    "Res2NetFPN",
    "Res2NetSingleLevel",
    "res2net_fpn_backbone",
]

#: FPN top blocks: extra levels above the last input level, and how many.
TOP_BLOCKS = {"maxpool": 1, "p6p7": 2, "none": 0}


def disable_unused_stages(bottom_up: Res2Net) -> None:
    """Stages after the last output feature never run (``forward_features`` stops there); they keep
    their weights, so checkpoints keep every key, but take no gradient: DDP and the optimizer
    would otherwise wait for gradients that never come. Both engines' backbones do this."""
    last = max(STAGE_NAMES.index(f) for f in bottom_up.out_features)
    for i in range(last + 1, 4):
        for p in getattr(bottom_up, f"layer{i + 1}").parameters():
            p.requires_grad_(False)


def fpn_level_names(strides: Sequence[int], top_block: str = "maxpool") -> List[str]:
    """Names of an FPN's outputs, Detectron2's ``p<log2 stride>``, for its inputs' strides and top block
    (``[4, 8, 16, 32]`` with ``"maxpool"``: ``p2`` .. ``p6``)."""
    levels = [int(s).bit_length() - 1 for s in strides]
    levels += [levels[-1] + i for i in range(1, TOP_BLOCKS[top_block] + 1)]
    return [f"p{lvl}" for lvl in levels]


class Res2NetFPN(nn.Module):
    """Res2Net + torchvision's FPN, outputs ``{"p2": ..., "p6": ...}`` named by stride as Detectron2's.

    Args:
        bottom_up: the Res2Net feature extractor; its ``out_features`` feed the FPN.
        out_channels: FPN channels.
        top_block: levels above the last input: ``"maxpool"`` (one, max-pooled from the last FPN
            level: Faster / Mask R-CNN), ``"p6p7"`` (two, convolved from the last input stage,
            res5: RetinaNet) or ``"none"``.
    """

    def __init__(self, bottom_up: Res2Net, out_channels: int = 256, top_block: str = "maxpool") -> None:
        super().__init__()
        if top_block not in TOP_BLOCKS:
            raise ValueError(f"top_block must be one of {sorted(TOP_BLOCKS)}, got {top_block!r}")
        shapes = bottom_up.output_shape()
        if not shapes:
            raise ValueError("the Res2Net returns no feature (out_features is empty)")
        disable_unused_stages(bottom_up)
        self.bottom_up = bottom_up
        self.in_features = list(shapes)
        channels = [c for c, _ in shapes.values()]
        extra: Optional[ExtraFPNBlock] = None
        if top_block == "maxpool":
            extra = LastLevelMaxPool()
        elif top_block == "p6p7":
            extra = LastLevelP6P7(channels[-1], out_channels)
        self.fpn = FeaturePyramidNetwork(channels, out_channels, extra_blocks=extra)
        self.out_features = fpn_level_names([s for _, s in shapes.values()], top_block)
        self.out_channels = out_channels
        self.top_levels = TOP_BLOCKS[top_block]
        # Every level's feature map must tile the input: pad to the coarsest stride.
        self.size_divisibility = 2 ** int(self.out_features[-1][1:])

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        feats = self.bottom_up.forward_features(x)
        outs = self.fpn(OrderedDict((f, feats[f]) for f in self.in_features))
        return OrderedDict(zip(self.out_features, outs.values()))


class Res2NetSingleLevel(nn.Module):
    """Res2Net without FPN: one stage's output is the detector's only feature level (a C4 or C5 head).

    Args:
        bottom_up: the Res2Net feature extractor, with exactly one ``out_features``.
    """

    def __init__(self, bottom_up: Res2Net) -> None:
        super().__init__()
        shapes = bottom_up.output_shape()
        if len(shapes) != 1:
            raise ValueError(f"a backbone without FPN takes exactly one Res2Net output feature, got {list(shapes)}")
        disable_unused_stages(bottom_up)
        self.bottom_up = bottom_up
        (name, (channels, stride)), = shapes.items()
        self.out_features = [name]
        self.out_channels = channels
        self.size_divisibility = stride

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict(self.bottom_up.forward_features(x))


def _freeze_at(trainable_layers: int) -> int:
    """torchvision's count of trainable stages from the top (5 = all) -> Detectron2's FREEZE_AT."""
    if not 0 <= trainable_layers <= 5:
        raise ValueError(f"trainable backbone layers must be in 0..5 (5: all trainable), got {trainable_layers}")
    return 5 - trainable_layers


def res2net_fpn_backbone(
    variant: str = "res2net50_26w_4s",
    *,
    weights_backbone: Optional[str] = None,
    trainable_layers: int = 3,
    norm: NormSpec = "FrozenBN",
    out_features: Sequence[str] = STAGE_NAMES,
    fpn: bool = True,
    fpn_channels: int = 256,
    top_block: str = "maxpool",
    dilate_last_stage: bool = False,
    deformable_stages: Sequence[str] = (),
    deform_modulated: bool = False,
    deform_groups: int = 1,
    backbone_kwargs: Optional[Mapping[str, Any]] = None,
) -> nn.Module:
    """A Res2Net (+ FPN) feature backbone for torchvision's detectors, like torchvision's ``resnet_fpn_backbone``.

    Args:
        variant: a Res2Net variant (:func:`res2net_det.list_models`) or alias; ``"resnet50"`` is the baseline.
        weights_backbone: an ImageNet checkpoint of that variant (official Res2Net, timm, or
            torchvision's ResNet-50 file, ``.pth`` or ``.safetensors``), or its name
            (``res2net://<variant>``, ``timm://<name>``, ``torchvision://resnet50``, a URL), loaded
            before freezing.
        trainable_layers: stages trained, counted from res5 (torchvision's convention): 5 trains all,
            3 freezes the stem and res2 (Detectron2's ``FREEZE_AT`` 2), 0 freezes everything.
        norm: the Res2Net's norm: ``"FrozenBN"``, ``"BN"``, ``"SyncBN"``, ``"GN"`` or ``channels -> module``.
        out_features: Res2Net stages fed to the FPN (``"res2"`` .. ``"res5"``); later stages never run.
        fpn: False: no FPN, the single stage in ``out_features`` is the only feature level.
        fpn_channels: channels of every FPN level.
        top_block: FPN levels above the last input, see :class:`Res2NetFPN`.
        dilate_last_stage: res5 with stride 1 and dilation 2 (output stride 16).
        deformable_stages: stages whose split 3x3 convs become deformable, e.g. ``("res3", "res4", "res5")``.
        deform_modulated: modulated deformable convs (DCNv2).
        deform_groups: channel groups with their own offsets.
        backbone_kwargs: other :class:`~res2net_det.modeling.res2net.Res2Net` arguments over the
            variant's own (``base_width``, ``scale``, ``layers``, ``stem_width``, ...), e.g. a narrow test model.

    Returns:
        :class:`Res2NetFPN` (outputs ``p2`` .. ``p6`` by default), or :class:`Res2NetSingleLevel`.
    """
    unknown = [s for s in deformable_stages if s not in STAGE_NAMES]
    if unknown:
        raise ValueError(f"deformable_stages names {unknown}; choose from {STAGE_NAMES}")
    freeze_at = _freeze_at(trainable_layers)
    bottom_up = create_model(
        variant, weights=weights_backbone, num_classes=0, norm=norm, out_features=tuple(out_features),
        freeze_at=freeze_at, dilate_last_stage=dilate_last_stage, **dict(backbone_kwargs or {}),
    )
    if deformable_stages:
        make_stages_deformable(bottom_up, [s in deformable_stages for s in STAGE_NAMES], deform_modulated,
                               deform_groups)
    return Res2NetFPN(bottom_up, fpn_channels, top_block) if fpn else Res2NetSingleLevel(bottom_up)
