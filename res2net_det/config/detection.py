"""Detection configs (Detectron2's keys) as arguments of the detection builders
(:mod:`res2net_det.modeling.detection`): what the torchvision engine builds for a config.

Every check here names config keys; the builders' own checks name their arguments.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from fvcore.common.config import CfgNode as CN

from ..modeling.anchor_layout import AnchorLayout
from ..modeling.fpn_backbone import fpn_level_names
from ..modeling.res2net import STAGE_NAMES, find_variant, stage_blocks, stage_strides, variant_args
from .res2net import res2net_kwargs_from_cfg

__all__ = ["POOLER_ALIGNED", "anchor_layout_from_cfg", "backbone_args_from_cfg", "fpn_in_features",
           "rcnn_args_from_cfg", "retinanet_args_from_cfg"]

_FPN_BACKBONES = {"build_res2net_fpn_backbone": "maxpool", "build_retinanet_res2net_fpn_backbone": "p6p7"}
_BACKBONES = (*_FPN_BACKBONES, "build_res2net_backbone")


def fpn_in_features(cfg: CN) -> List[str]:
    """``MODEL.FPN.IN_FEATURES``, checked against the stages the Res2Net returns
    (``MODEL.RES2NET.OUT_FEATURES``); both engines build their FPN from it."""
    in_features, out_features = list(cfg.MODEL.FPN.IN_FEATURES), list(cfg.MODEL.RES2NET.OUT_FEATURES)
    missing = [f for f in in_features if f not in out_features]
    if missing or not in_features:
        raise ValueError(f"MODEL.FPN.IN_FEATURES {in_features} names {missing or 'nothing'}, which "
                         f"MODEL.RES2NET.OUT_FEATURES {out_features} does not produce")
    return in_features


def _variant_from_arch(arch: Dict[str, Any]) -> Dict[str, Any]:
    """``variant``: the table's row for the architecture of :func:`res2net_kwargs_from_cfg`
    (``res2net50_26w_4s`` when none matches), and ``backbone_kwargs``: the Res2Net arguments where
    the config differs from that row."""
    hyper = {k: arch[k] for k in ("depth", "base_width", "scale", "cardinality", "deep_stem", "avg_down")}
    variant = find_variant(**hyper) or "res2net50_26w_4s"
    wanted = {k: arch[k] for k in ("base_width", "scale", "cardinality", "deep_stem", "avg_down")}
    wanted["layers"] = stage_blocks(arch["depth"])
    if arch["deep_stem"]:  # the stem width means nothing without a deep stem
        wanted["stem_width"] = arch["stem_width"]
    overrides = {k: v for k, v in wanted.items() if variant_args(variant)[k] != v}
    # Speed / memory options change no weight or output; Caffe-layout options are rare: passed only when on.
    overrides.update({k: True for k in ("compile", "checkpoint_activations", "channels_last", "maxpool_ceil_mode",
                                        "stride_in_1x1") if arch[k]})
    return {"variant": variant, "backbone_kwargs": overrides}


def backbone_args_from_cfg(cfg: CN) -> Dict[str, Any]:
    """Arguments of :func:`~res2net_det.modeling.detection.res2net_fpn_backbone` for
    ``MODEL.BACKBONE.*``, ``MODEL.RES2NET.*`` and ``MODEL.FPN.*``."""
    m = cfg.MODEL
    name = m.BACKBONE.NAME
    if name not in _BACKBONES:
        raise ValueError(f"MODEL.BACKBONE.NAME {name!r} is not known to the torchvision engine; "
                         f"use one of {_BACKBONES}")
    r = m.RES2NET
    arch = res2net_kwargs_from_cfg(cfg)  # validates MODEL.RES2NET.*
    fpn = name in _FPN_BACKBONES
    if fpn:
        in_features = fpn_in_features(cfg)
    else:
        in_features = list(r.OUT_FEATURES)
        if len(in_features) != 1:
            raise ValueError(
                "build_res2net_backbone with the torchvision engine needs exactly one "
                f"MODEL.RES2NET.OUT_FEATURES, got {in_features}"
            )
    if not 0 <= m.BACKBONE.FREEZE_AT <= 5:
        raise ValueError(f"MODEL.BACKBONE.FREEZE_AT must be in 0..5, got {m.BACKBONE.FREEZE_AT}")
    return dict(
        **_variant_from_arch(arch),
        trainable_layers=5 - m.BACKBONE.FREEZE_AT,
        norm=arch["norm"],
        out_features=tuple(in_features),
        fpn=fpn,
        fpn_channels=m.FPN.OUT_CHANNELS,
        top_block=_FPN_BACKBONES.get(name, "none"),
        dilate_last_stage=arch["dilate_last_stage"],
        deformable_stages=tuple(s for s, on in zip(STAGE_NAMES, r.DEFORM_ON_PER_STAGE) if on),
        deform_modulated=r.DEFORM_MODULATED,
        deform_groups=r.DEFORM_NUM_GROUPS,
    )


def _detector_backbone_args(cfg: CN) -> Tuple[Dict[str, Any], List[str]]:
    """:func:`backbone_args_from_cfg` spelt as the detection builders' arguments (each builder picks
    its FPN top block), and the names of the backbone's outputs."""
    args = backbone_args_from_cfg(cfg)
    args["trainable_backbone_layers"] = args.pop("trainable_layers")
    top_block = args.pop("top_block")
    levels = list(args["out_features"])
    if args["fpn"]:
        strides = stage_strides(args["dilate_last_stage"])
        levels = fpn_level_names([strides[f] for f in levels], top_block)
    return args, levels


def rcnn_args_from_cfg(cfg: CN) -> Dict[str, Any]:
    """Arguments of ``fasterrcnn_res2net_fpn`` (or ``maskrcnn_res2net_fpn`` with ``MODEL.MASK_ON``)
    for a ``GeneralizedRCNN`` config. ``num_classes`` counts the background, as torchvision's."""
    m = cfg.MODEL
    if m.BACKBONE.NAME == "build_retinanet_res2net_fpn_backbone":
        raise ValueError("MODEL.BACKBONE.NAME build_retinanet_res2net_fpn_backbone is RetinaNet's; "
                         "GeneralizedRCNN takes build_res2net_fpn_backbone or build_res2net_backbone")
    args, levels = _detector_backbone_args(cfg)
    if list(m.RPN.IN_FEATURES) != levels:
        raise ValueError(
            f"MODEL.RPN.IN_FEATURES {list(m.RPN.IN_FEATURES)} must list every backbone output "
            f"{levels} with the torchvision engine (its RPN runs on all levels)"
        )
    unknown = [f for f in m.ROI_HEADS.IN_FEATURES if f not in levels]
    if unknown:
        raise ValueError(f"MODEL.ROI_HEADS.IN_FEATURES names {unknown}; the backbone outputs {levels}")
    _check_levels(m.ANCHOR_GENERATOR.SIZES, levels, "MODEL.ANCHOR_GENERATOR.SIZES")
    _check_levels(m.ANCHOR_GENERATOR.ASPECT_RATIOS, levels, "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS")
    box = m.ROI_BOX_HEAD
    if box.NUM_FC < 1:
        raise ValueError("MODEL.ROI_BOX_HEAD.NUM_FC must be >= 1 with the torchvision engine")
    if len(m.ROI_HEADS.IOU_THRESHOLDS) != 1:
        raise ValueError(f"MODEL.ROI_HEADS.IOU_THRESHOLDS {list(m.ROI_HEADS.IOU_THRESHOLDS)} must hold one value "
                         "(foreground at or above it) with the torchvision engine, "
                         "as for MODEL.ROI_HEADS.IOU_LABELS [0, 1]")
    args.update(
        num_classes=m.ROI_HEADS.NUM_CLASSES + 1,  # torchvision counts the background
        anchor_sizes=[tuple(s) for s in m.ANCHOR_GENERATOR.SIZES],
        aspect_ratios=[tuple(r) for r in m.ANCHOR_GENERATOR.ASPECT_RATIOS],
        rpn_bbox_reg_weights=tuple(m.RPN.BBOX_REG_WEIGHTS),
        roi_features=list(m.ROI_HEADS.IN_FEATURES),
        box_pooler_resolution=box.POOLER_RESOLUTION,
        box_pooler_sampling_ratio=box.POOLER_SAMPLING_RATIO,
        box_head_conv_dims=[box.CONV_DIM] * box.NUM_CONV,
        box_head_fc_dims=[box.FC_DIM] * box.NUM_FC,
        box_head_norm=box.NORM or None,
        box_pooler_aligned=_pooler_aligned(cfg, "ROI_BOX_HEAD"),
        rpn_smooth_l1_beta=m.RPN.SMOOTH_L1_BETA,
        box_smooth_l1_beta=box.SMOOTH_L1_BETA,
        # Detectron2 keeps proposals wider and higher than MIN_SIZE (0: any non-empty one)
        rpn_min_size=float(m.PROPOSAL_GENERATOR.MIN_SIZE) or 1e-3,
        head_init="detectron2",  # one config, one model: the heads start as Detectron2's do
        # torchvision's FasterRCNN arguments
        rpn_pre_nms_top_n_train=m.RPN.PRE_NMS_TOPK_TRAIN,
        rpn_pre_nms_top_n_test=m.RPN.PRE_NMS_TOPK_TEST,
        rpn_post_nms_top_n_train=m.RPN.POST_NMS_TOPK_TRAIN,
        rpn_post_nms_top_n_test=m.RPN.POST_NMS_TOPK_TEST,
        rpn_nms_thresh=m.RPN.NMS_THRESH,
        rpn_fg_iou_thresh=m.RPN.IOU_THRESHOLDS[1],
        rpn_bg_iou_thresh=m.RPN.IOU_THRESHOLDS[0],
        rpn_batch_size_per_image=m.RPN.BATCH_SIZE_PER_IMAGE,
        rpn_positive_fraction=m.RPN.POSITIVE_FRACTION,
        box_score_thresh=m.ROI_HEADS.SCORE_THRESH_TEST,
        box_nms_thresh=m.ROI_HEADS.NMS_THRESH_TEST,
        box_detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
        box_fg_iou_thresh=m.ROI_HEADS.IOU_THRESHOLDS[0],
        box_bg_iou_thresh=m.ROI_HEADS.IOU_THRESHOLDS[0],
        box_batch_size_per_image=m.ROI_HEADS.BATCH_SIZE_PER_IMAGE,
        box_positive_fraction=m.ROI_HEADS.POSITIVE_FRACTION,
        bbox_reg_weights=tuple(box.BBOX_REG_WEIGHTS),
        **_transform_args(cfg),
    )
    if m.MASK_ON:
        mask = m.ROI_MASK_HEAD
        args.update(
            mask_pooler_resolution=mask.POOLER_RESOLUTION,
            mask_pooler_sampling_ratio=mask.POOLER_SAMPLING_RATIO,
            mask_head_conv_dims=[mask.CONV_DIM] * mask.NUM_CONV,
            mask_head_norm=mask.NORM or None,
            mask_predictor_dim=mask.CONV_DIM,
            mask_pooler_aligned=_pooler_aligned(cfg, "ROI_MASK_HEAD"),
        )
    return args


# Detectron2's RoI poolers that torchvision's RoIAlign runs: ROIAlignV2 is aligned=True.
POOLER_ALIGNED = {"ROIAlignV2": True, "ROIAlign": False}


def _pooler_aligned(cfg: CN, head: str) -> bool:
    kind = cfg.MODEL[head].POOLER_TYPE
    if kind not in POOLER_ALIGNED:
        raise ValueError(f"MODEL.{head}.POOLER_TYPE {kind!r}: "
                         f"the torchvision engine pools with {sorted(POOLER_ALIGNED)}")
    return POOLER_ALIGNED[kind]


# Detectron2's RetinaNet regression losses -> torchvision's (smooth L1 with beta 0 is L1).
_RETINANET_LOSSES = {"giou": "giou", "diou": "diou", "ciou": "ciou"}


def retinanet_args_from_cfg(cfg: CN) -> Dict[str, Any]:
    """Arguments of ``retinanet_res2net_fpn`` for a ``RetinaNet`` config (``MODEL.RETINANET.*``).
    ``num_classes`` is ``MODEL.RETINANET.NUM_CLASSES``: RetinaNet has no background output."""
    m = cfg.MODEL
    rn = m.RETINANET
    if m.BACKBONE.NAME != "build_retinanet_res2net_fpn_backbone":
        raise ValueError(f"MODEL.BACKBONE.NAME {m.BACKBONE.NAME!r}: RetinaNet on the torchvision engine takes "
                         "build_retinanet_res2net_fpn_backbone (Res2Net + FPN + P6/P7)")
    args, levels = _detector_backbone_args(cfg)
    if list(rn.IN_FEATURES) != levels:
        raise ValueError(
            f"MODEL.RETINANET.IN_FEATURES {list(rn.IN_FEATURES)} must list every backbone output {levels} "
            "with the torchvision engine (its RetinaNet head runs on all levels)"
        )
    _check_levels(m.ANCHOR_GENERATOR.SIZES, levels, "MODEL.ANCHOR_GENERATOR.SIZES")
    _check_levels(m.ANCHOR_GENERATOR.ASPECT_RATIOS, levels, "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS")
    if rn.BBOX_REG_LOSS_TYPE == "smooth_l1":
        if rn.SMOOTH_L1_LOSS_BETA != 0:
            raise ValueError(
                f"MODEL.RETINANET.SMOOTH_L1_LOSS_BETA {rn.SMOOTH_L1_LOSS_BETA}: torchvision's RetinaNet has smooth L1 "
                "with beta 0 only (L1, Detectron2's RetinaNet recipe); set it to 0.0"
            )
        box_loss = "l1"
    elif rn.BBOX_REG_LOSS_TYPE in _RETINANET_LOSSES:
        box_loss = _RETINANET_LOSSES[rn.BBOX_REG_LOSS_TYPE]
    else:
        raise ValueError(f"MODEL.RETINANET.BBOX_REG_LOSS_TYPE {rn.BBOX_REG_LOSS_TYPE!r} is not one of "
                         f"{['smooth_l1', *_RETINANET_LOSSES]}")
    bg_iou, fg_iou = rn.IOU_THRESHOLDS
    args.update(
        num_classes=rn.NUM_CLASSES,
        anchor_sizes=[tuple(s) for s in m.ANCHOR_GENERATOR.SIZES],
        aspect_ratios=[tuple(r) for r in m.ANCHOR_GENERATOR.ASPECT_RATIOS],
        prior_probability=rn.PRIOR_PROB,
        head_norm=rn.NORM or None,
        box_loss=box_loss,
        # torchvision's RetinaNet arguments
        score_thresh=rn.SCORE_THRESH_TEST,
        nms_thresh=rn.NMS_THRESH_TEST,
        topk_candidates=rn.TOPK_CANDIDATES_TEST,
        detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
        fg_iou_thresh=fg_iou,
        bg_iou_thresh=bg_iou,
        **_transform_args(cfg),
    )
    return args


def _transform_args(cfg: CN) -> Dict[str, Any]:
    """torchvision's transform arguments: pixel statistics in the config's 0-255 scale."""
    return dict(min_size=cfg.INPUT.MIN_SIZE_TEST, max_size=cfg.INPUT.MAX_SIZE_TEST,
                image_mean=list(cfg.MODEL.PIXEL_MEAN), image_std=list(cfg.MODEL.PIXEL_STD))


def _check_levels(values, levels, key: str) -> None:
    """Detectron2's broadcast rule for per-level lists, checked with the key's name."""
    if len(values) not in (1, len(levels)):
        raise ValueError(f"{key} has {len(values)} lists but the backbone has {len(levels)} feature levels {levels}")


def anchor_layout_from_cfg(cfg: CN) -> AnchorLayout:
    """Anchors per location (sizes x ratios of the first level) of ``MODEL.ANCHOR_GENERATOR``,
    which orders a detector's per-anchor outputs (see :mod:`res2net_det.modeling.anchor_layout`)."""
    g = cfg.MODEL.ANCHOR_GENERATOR
    return AnchorLayout(len(g.SIZES[0]), len(g.ASPECT_RATIOS[0]))
