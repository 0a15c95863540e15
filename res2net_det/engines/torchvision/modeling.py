"""torchvision's Faster / Mask R-CNN on our Res2Net + FPN, built from Detectron2-schema config keys.

The model speaks Detectron2's interface: ``model(list of input dicts)`` returns a loss dict in
training (Detectron2's loss names) and ``[{"instances": {...}}]`` in eval, with boxes in the
original image's coordinates. Module names follow Detectron2 where weights are shared:
``backbone.bottom_up.<official Res2Net key>``, so checkpoints from ``tools/convert_weights.py``
load in both engines.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection import FasterRCNN, MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ...config.res2net import build_res2net_from_cfg
from ...modeling.norm import get_norm
from ...modeling.res2net import STAGE_NAMES, Res2Net

__all__ = ["Res2NetFPN", "Res2NetBackbone", "build_backbone", "build_rcnn", "Res2NetFasterRCNN", "Res2NetMaskRCNN"]


def _disable_unused_stages(bottom_up: Res2Net) -> None:
    """Stages after the last output feature never run (``forward_features`` stops there); they keep
    their weights, so checkpoints keep every key, but take no gradient: DDP and the optimizer
    would otherwise wait for gradients that never come."""
    last = max(STAGE_NAMES.index(f) for f in bottom_up.out_features)
    for i in range(last + 1, 4):
        for p in getattr(bottom_up, f"layer{i + 1}").parameters():
            p.requires_grad_(False)


class Res2NetFPN(nn.Module):
    """Res2Net + FPN (+ max-pooled top level), outputs ``{"p2": ..., "p6": ...}``.

    Args:
        bottom_up: the Res2Net feature extractor (its ``out_features`` are fed to the FPN).
        in_features: Res2Net stages fed to the FPN, e.g. ``["res2", "res3", "res4", "res5"]``.
        out_channels: FPN channels (``MODEL.FPN.OUT_CHANNELS``).
    """

    def __init__(self, bottom_up: Res2Net, in_features: Sequence[str], out_channels: int = 256) -> None:
        super().__init__()
        shapes = bottom_up.output_shape()
        missing = [f for f in in_features if f not in shapes]
        if missing:
            raise ValueError(
                f"MODEL.FPN.IN_FEATURES {list(in_features)} names {missing}, which "
                f"MODEL.RES2NET.OUT_FEATURES {list(shapes)} does not produce"
            )
        _disable_unused_stages(bottom_up)
        self.bottom_up = bottom_up
        self.in_features = list(in_features)
        self.fpn = FeaturePyramidNetwork(
            [shapes[f][0] for f in self.in_features], out_channels, extra_blocks=LastLevelMaxPool()
        )
        strides = [shapes[f][1] for f in self.in_features]
        levels = [int(s).bit_length() - 1 for s in strides]  # stride 4 -> p2
        self.out_features = [f"p{lvl}" for lvl in levels] + [f"p{levels[-1] + 1}"]
        self.out_channels = out_channels
        self.size_divisibility = 2 ** (levels[-1] + 1)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        feats = self.bottom_up.forward_features(x)
        outs = self.fpn(OrderedDict((f, feats[f]) for f in self.in_features))
        return OrderedDict(zip(self.out_features, outs.values()))


class Res2NetBackbone(nn.Module):
    """Res2Net without FPN (``build_res2net_backbone``); one output feature, as torchvision needs."""

    def __init__(self, bottom_up: Res2Net) -> None:
        super().__init__()
        shapes = bottom_up.output_shape()
        if len(shapes) != 1:
            raise ValueError(
                "build_res2net_backbone with the torchvision engine needs exactly one "
                f"MODEL.RES2NET.OUT_FEATURES, got {list(shapes)}"
            )
        _disable_unused_stages(bottom_up)
        self.bottom_up = bottom_up
        (name, (channels, stride)), = shapes.items()
        self.out_features = [name]
        self.out_channels = channels
        self.size_divisibility = stride

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return OrderedDict(self.bottom_up.forward_features(x))


def build_backbone(cfg) -> nn.Module:
    """``MODEL.BACKBONE.NAME``: ``build_res2net_fpn_backbone`` or ``build_res2net_backbone``."""
    name = cfg.MODEL.BACKBONE.NAME
    bottom_up = build_res2net_from_cfg(cfg)
    if name == "build_res2net_fpn_backbone":
        return Res2NetFPN(bottom_up, cfg.MODEL.FPN.IN_FEATURES, cfg.MODEL.FPN.OUT_CHANNELS)
    if name == "build_res2net_backbone":
        return Res2NetBackbone(bottom_up)
    raise ValueError(
        f"MODEL.BACKBONE.NAME {name!r} is not known to the torchvision engine; "
        "use build_res2net_fpn_backbone or build_res2net_backbone"
    )


class _NoResizeTransform(GeneralizedRCNNTransform):
    """Normalises and batches only: resizing is the data mapper's job, as in Detectron2."""

    def resize(self, image, target=None):
        return image, target


def _per_level(values: Sequence[Sequence[float]], num_levels: int, key: str) -> Tuple[Tuple[float, ...], ...]:
    """Detectron2's broadcast rule: one list for all levels, or one list per level."""
    values = [tuple(v) for v in values]
    if len(values) == 1:
        return tuple(values * num_levels)
    if len(values) != num_levels:
        raise ValueError(f"{key} has {len(values)} lists but the backbone has {num_levels} feature levels")
    return tuple(values)


# torchvision loss names -> Detectron2's
_LOSS_NAMES = {
    "loss_objectness": "loss_rpn_cls",
    "loss_rpn_box_reg": "loss_rpn_loc",
    "loss_classifier": "loss_cls",
    "loss_box_reg": "loss_box_reg",
    "loss_mask": "loss_mask",
}


class _DictIO:
    """Detectron2's calling convention on top of torchvision's GeneralizedRCNN."""

    loss_weights: Dict[str, float]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, batched_inputs: List[dict]):  # type: ignore[override]
        device = self.device
        images = [x["image"].to(device, non_blocking=True).float() for x in batched_inputs]
        if self.training:
            if any("instances" not in x for x in batched_inputs):
                raise ValueError("training inputs need 'instances' (gt_boxes, gt_classes)")
            targets = []
            for x in batched_inputs:
                inst = x["instances"]
                t = {"boxes": inst["gt_boxes"].to(device).float(), "labels": inst["gt_classes"].to(device) + 1}
                if "gt_masks" in inst:
                    t["masks"] = inst["gt_masks"].to(device)
                targets.append(t)
            losses = super().forward(images, targets)
            return {_LOSS_NAMES.get(k, k): v * self.loss_weights.get(_LOSS_NAMES.get(k, k), 1.0)
                    for k, v in losses.items()}
        detections = super().forward(images)
        results = []
        for x, img, det in zip(batched_inputs, images, detections):
            ih, iw = img.shape[-2:]
            h, w = int(x.get("height", ih)), int(x.get("width", iw))
            boxes = det["boxes"] * torch.tensor([w / iw, h / ih, w / iw, h / ih], device=device)
            boxes[:, 0::2].clamp_(0, w)
            boxes[:, 1::2].clamp_(0, h)
            inst = {"pred_boxes": boxes, "scores": det["scores"], "pred_classes": det["labels"] - 1}
            if "masks" in det:
                masks = det["masks"]
                if masks.numel() and (h, w) != (ih, iw):
                    masks = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)
                inst["pred_masks"] = masks[:, 0] > 0.5 if masks.numel() else torch.zeros((0, h, w), dtype=torch.bool)
            results.append({"instances": inst})
        return results


class Res2NetFasterRCNN(_DictIO, FasterRCNN):
    """torchvision ``FasterRCNN`` with Detectron2's input/output dicts."""


class Res2NetMaskRCNN(_DictIO, MaskRCNN):
    """torchvision ``MaskRCNN`` with Detectron2's input/output dicts."""


def _head_norm(name: str):
    return None if not name else (lambda c: get_norm(name, c))


def build_rcnn(cfg) -> nn.Module:
    """Faster R-CNN (or Mask R-CNN when ``MODEL.MASK_ON``) from a config."""
    m = cfg.MODEL
    backbone = build_backbone(cfg)
    levels = backbone.out_features
    if list(m.RPN.IN_FEATURES) != levels:
        raise ValueError(
            f"MODEL.RPN.IN_FEATURES {list(m.RPN.IN_FEATURES)} must list every backbone output "
            f"{levels} with the torchvision engine (its RPN runs on all levels)"
        )
    unknown = [f for f in m.ROI_HEADS.IN_FEATURES if f not in levels]
    if unknown:
        raise ValueError(f"MODEL.ROI_HEADS.IN_FEATURES names {unknown}; the backbone outputs {levels}")
    sizes = _per_level(m.ANCHOR_GENERATOR.SIZES, len(levels), "MODEL.ANCHOR_GENERATOR.SIZES")
    ratios = _per_level(m.ANCHOR_GENERATOR.ASPECT_RATIOS, len(levels), "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS")
    anchor_generator = AnchorGenerator(sizes=sizes, aspect_ratios=ratios)
    num_anchors = anchor_generator.num_anchors_per_location()
    if len(set(num_anchors)) != 1:
        raise ValueError("every feature level needs the same number of anchors (sizes x aspect ratios)")
    rpn_head = RPNHead(backbone.out_channels, num_anchors[0])

    res = m.ROI_BOX_HEAD.POOLER_RESOLUTION
    if m.ROI_BOX_HEAD.NUM_FC < 1:
        raise ValueError("MODEL.ROI_BOX_HEAD.NUM_FC must be >= 1 with the torchvision engine")
    box_head = FastRCNNConvFCHead(
        (backbone.out_channels, res, res),
        [m.ROI_BOX_HEAD.CONV_DIM] * m.ROI_BOX_HEAD.NUM_CONV,
        [m.ROI_BOX_HEAD.FC_DIM] * m.ROI_BOX_HEAD.NUM_FC,
        norm_layer=_head_norm(m.ROI_BOX_HEAD.NORM),
    )
    num_classes = m.ROI_HEADS.NUM_CLASSES + 1  # torchvision counts the background
    kwargs = dict(
        num_classes=None,
        rpn_anchor_generator=anchor_generator,
        rpn_head=rpn_head,
        rpn_pre_nms_top_n_train=m.RPN.PRE_NMS_TOPK_TRAIN,
        rpn_pre_nms_top_n_test=m.RPN.PRE_NMS_TOPK_TEST,
        rpn_post_nms_top_n_train=m.RPN.POST_NMS_TOPK_TRAIN,
        rpn_post_nms_top_n_test=m.RPN.POST_NMS_TOPK_TEST,
        rpn_nms_thresh=m.RPN.NMS_THRESH,
        rpn_fg_iou_thresh=m.RPN.IOU_THRESHOLDS[1],
        rpn_bg_iou_thresh=m.RPN.IOU_THRESHOLDS[0],
        rpn_batch_size_per_image=m.RPN.BATCH_SIZE_PER_IMAGE,
        rpn_positive_fraction=m.RPN.POSITIVE_FRACTION,
        box_roi_pool=MultiScaleRoIAlign(
            featmap_names=list(m.ROI_HEADS.IN_FEATURES), output_size=res,
            sampling_ratio=m.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO,
        ),
        box_head=box_head,
        box_predictor=FastRCNNPredictor(m.ROI_BOX_HEAD.FC_DIM, num_classes),
        box_score_thresh=m.ROI_HEADS.SCORE_THRESH_TEST,
        box_nms_thresh=m.ROI_HEADS.NMS_THRESH_TEST,
        box_detections_per_img=cfg.TEST.DETECTIONS_PER_IMAGE,
        box_fg_iou_thresh=m.ROI_HEADS.IOU_THRESHOLDS[0],
        box_bg_iou_thresh=m.ROI_HEADS.IOU_THRESHOLDS[0],
        box_batch_size_per_image=m.ROI_HEADS.BATCH_SIZE_PER_IMAGE,
        box_positive_fraction=m.ROI_HEADS.POSITIVE_FRACTION,
        bbox_reg_weights=tuple(m.ROI_BOX_HEAD.BBOX_REG_WEIGHTS),
        # unused: _NoResizeTransform replaces the transform below
        min_size=cfg.INPUT.MIN_SIZE_TEST, max_size=cfg.INPUT.MAX_SIZE_TEST,
    )
    if m.MASK_ON:
        mres = m.ROI_MASK_HEAD.POOLER_RESOLUTION
        conv_dim = m.ROI_MASK_HEAD.CONV_DIM
        model: nn.Module = Res2NetMaskRCNN(
            backbone,
            mask_roi_pool=MultiScaleRoIAlign(
                featmap_names=list(m.ROI_HEADS.IN_FEATURES), output_size=mres,
                sampling_ratio=m.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO,
            ),
            mask_head=MaskRCNNHeads(backbone.out_channels, [conv_dim] * m.ROI_MASK_HEAD.NUM_CONV, 1,
                                    norm_layer=_head_norm(m.ROI_MASK_HEAD.NORM)),
            mask_predictor=MaskRCNNPredictor(
                conv_dim if m.ROI_MASK_HEAD.NUM_CONV else backbone.out_channels, conv_dim, num_classes
            ),
            **kwargs,
        )
    else:
        model = Res2NetFasterRCNN(backbone, **kwargs)
    model.rpn.box_coder = det_utils.BoxCoder(weights=tuple(m.RPN.BBOX_REG_WEIGHTS))
    model.transform = _NoResizeTransform(
        cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST,
        image_mean=list(m.PIXEL_MEAN), image_std=list(m.PIXEL_STD),
        size_divisible=backbone.size_divisibility,
    )
    model.loss_weights = {
        "loss_rpn_cls": m.RPN.LOSS_WEIGHT,
        "loss_rpn_loc": m.RPN.LOSS_WEIGHT * m.RPN.BBOX_REG_LOSS_WEIGHT,
        "loss_box_reg": m.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT,
    }
    return model
