"""Res2Net backbones registered in Detectron2's ``BACKBONE_REGISTRY``.

``MODEL.BACKBONE.NAME`` values:

* ``build_res2net_backbone``: the plain Res2Net (``res2`` .. ``res5``), e.g. for C4 heads;
* ``build_res2net_fpn_backbone``: Res2Net + Detectron2's FPN + ``LastLevelMaxPool`` (P2-P6);
* ``build_retinanet_res2net_fpn_backbone``: Res2Net + FPN + ``LastLevelP6P7`` (P3-P7, RetinaNet).

LazyConfig files (``configs/lazy/``) build the same modules without a ``CfgNode``:
:func:`res2net_backbone` takes the ``MODEL.RES2NET.*`` values as keyword arguments
(:func:`res2net_backbone_kwargs` reads them from a config), and :func:`last_level_max_pool` is
the FPN's extra level pooled from any level.

The Detectron2 :class:`Backbone` *is* our :class:`Res2Net` (subclass), not a wrapper around
it, so the FPN model's parameters are ``backbone.bottom_up.<official Res2Net key>``: official
and timm checkpoints convert by adding a prefix only (``tools/convert_weights.py``), and the
torchvision engine's backbone uses the same names.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Sequence

from detectron2.layers import ShapeSpec, get_norm
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool, LastLevelP6P7
from torch import nn

from ...config.detection import fpn_in_features
from ...config.res2net import res2net_kwargs_from_cfg
from ...modeling.deform import make_stages_deformable
from ...modeling.detection import disable_unused_stages
from ...modeling.norm import NormSpec
from ...modeling.norm import get_norm as core_get_norm
from ...modeling.res2net import Res2Net
from ...modeling.variants import DEPTHS

__all__ = [
    "Res2NetBackbone",
    "build_res2net_backbone",
    "build_res2net_fpn_backbone",
    "build_retinanet_res2net_fpn_backbone",
    "last_level_max_pool",
    "res2net_backbone",
    "res2net_backbone_kwargs",
]


class Res2NetBackbone(Res2Net, Backbone):
    """Our :class:`Res2Net` (no classifier) with Detectron2's :class:`Backbone` interface.

    Args:
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)`` for depth 50.
        size_divisibility: what :attr:`size_divisibility` reports. 0 (as Detectron2's ResNet):
            a plain Res2Net takes any input size; an FPN on top asks for its own (32).
        **kwargs: any other :class:`Res2Net` argument (``base_width``, ``scale``, ``norm``,
            ``out_features``, ``freeze_at``, ...); ``num_classes`` is always 0.
    """

    def __init__(self, layers, size_divisibility: int = 0, **kwargs) -> None:
        kwargs["num_classes"] = 0
        super().__init__(layers, **kwargs)
        self._size_divisibility = size_divisibility
        # Stages after the last output never run: no gradient (DDP would wait for one), as on torchvision.
        disable_unused_stages(self)

    def forward(self, x):
        """``{"res2": ..., "res5": ...}`` for ``out_features``, as Detectron2's ResNet returns."""
        return self.forward_features(x)

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(channels=channels, stride=stride)
            for name, (channels, stride) in Res2Net.output_shape(self).items()
        }

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility


def res2net_norm(name: str) -> NormSpec:
    """The norm for ``MODEL.RES2NET.NORM``.

    Names the core knows (``FrozenBN``, ``BN``, ``SyncBN``, ``GN``) go to the core, so a config
    builds the same Res2Net in both engines; Detectron2's other names (``naiveSyncBN``,
    ``naiveSyncBN_N``, ``nnSyncBN``, ``LN``) come from Detectron2's ``get_norm``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"MODEL.RES2NET.NORM must name a norm (FrozenBN, BN, SyncBN, GN, ...), got {name!r}; "
            "Res2Net has no norm-free variant"
        )
    try:
        core_get_norm(name, 64)
        return name
    except ValueError:
        pass
    try:
        get_norm(name, 64)
    except KeyError:
        raise ValueError(
            f"MODEL.RES2NET.NORM={name!r} is not a norm of res2net_det or Detectron2; "
            "use FrozenBN, BN, SyncBN, GN, naiveSyncBN or LN"
        ) from None
    return lambda channels: get_norm(name, channels)


def _check_input(input_shape: ShapeSpec) -> None:
    if input_shape.channels != 3:
        raise ValueError(
            f"Res2Net takes 3-channel RGB input, but MODEL.PIXEL_MEAN has {input_shape.channels} "
            "values; set MODEL.PIXEL_MEAN / PIXEL_STD to 3 values each"
        )


def res2net_backbone(
    depth: int = 50,
    *,
    norm: str = "FrozenBN",
    deform_on_per_stage: Sequence[bool] = (False, False, False, False),
    deform_modulated: bool = False,
    deform_num_groups: int = 1,
    **kwargs: Any,
) -> Res2NetBackbone:
    """The Detectron2 backbone of ``MODEL.RES2NET.*`` from plain values, for LazyConfig files.

    Args:
        depth: 50, 101 or 152.
        norm: a norm name (:func:`res2net_norm`: ``FrozenBN``, ``BN``, ``SyncBN``, ``GN``, or one
            of Detectron2's).
        deform_on_per_stage, deform_modulated, deform_num_groups: ``MODEL.RES2NET.DEFORM_*``.
        **kwargs: any other :class:`Res2NetBackbone` argument (``base_width``, ``scale``,
            ``out_features``, ``freeze_at``, ...), as :func:`res2net_backbone_kwargs` names them.
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth (MODEL.RES2NET.DEPTH) must be one of {sorted(DEPTHS)}, got {depth}")
    model = Res2NetBackbone(DEPTHS[depth], norm=res2net_norm(norm), **kwargs)
    if any(deform_on_per_stage):
        make_stages_deformable(model, list(deform_on_per_stage), deform_modulated, deform_num_groups)
    return model


def res2net_backbone_kwargs(cfg) -> Dict[str, Any]:
    """The :func:`res2net_backbone` arguments of a config's ``MODEL.RES2NET.*`` and
    ``MODEL.BACKBONE.FREEZE_AT`` (checked as the torchvision engine checks them)."""
    kwargs = res2net_kwargs_from_cfg(cfg)
    kwargs.pop("num_classes")
    r = cfg.MODEL.RES2NET
    kwargs["out_features"] = list(kwargs["out_features"])
    kwargs.update(deform_on_per_stage=list(r.DEFORM_ON_PER_STAGE), deform_modulated=bool(r.DEFORM_MODULATED),
                  deform_num_groups=int(r.DEFORM_NUM_GROUPS))
    return kwargs


@BACKBONE_REGISTRY.register()
def build_res2net_backbone(cfg, input_shape: ShapeSpec) -> Res2NetBackbone:
    """The plain Res2Net described by ``MODEL.RES2NET.*`` and ``MODEL.BACKBONE.FREEZE_AT``."""
    _check_input(input_shape)
    return res2net_backbone(**res2net_backbone_kwargs(cfg))


def last_level_max_pool(in_feature: str = "p5") -> LastLevelMaxPool:
    """Detectron2's ``LastLevelMaxPool`` pooling ``in_feature`` (it hard-codes ``"p5"``), so FPNs that
    stop earlier (``FPN.IN_FEATURES`` ending at res3 or res4) still get their extra level."""
    top = LastLevelMaxPool()
    top.in_feature = in_feature
    return top


def _fpn(cfg, input_shape: ShapeSpec, top_block: Callable[[Res2NetBackbone], nn.Module]) -> FPN:
    in_features = fpn_in_features(cfg)
    bottom_up = build_res2net_backbone(cfg, input_shape)
    return FPN(
        bottom_up=bottom_up,
        in_features=in_features,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=top_block(bottom_up),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )


@BACKBONE_REGISTRY.register()
def build_res2net_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """Res2Net + FPN with one more level max-pooled from the last (Faster / Mask R-CNN):
    P2-P6 (strides 4-64) from res2-res5; from res3-res4 (small models) P3-P5."""

    def max_pool(bottom_up: Res2NetBackbone) -> nn.Module:
        last_stride = bottom_up.output_shape()[cfg.MODEL.FPN.IN_FEATURES[-1]].stride
        return last_level_max_pool(f"p{int(math.log2(last_stride))}")

    return _fpn(cfg, input_shape, max_pool)


@BACKBONE_REGISTRY.register()
def build_retinanet_res2net_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """Res2Net + FPN with P6/P7 convolved from res5 (RetinaNet): P3-P7, strides 8-128."""

    def p6p7(bottom_up: Res2NetBackbone) -> nn.Module:
        if "res5" not in bottom_up.out_features:
            raise ValueError("build_retinanet_res2net_fpn_backbone needs res5 in MODEL.RES2NET.OUT_FEATURES")
        return LastLevelP6P7(bottom_up.output_shape()["res5"].channels, cfg.MODEL.FPN.OUT_CHANNELS)

    return _fpn(cfg, input_shape, p6p7)
