"""The torchvision engine's detectors: the core builders (:mod:`res2net_det.modeling.detection`) with
Detectron2's calling convention, built from Detectron2-schema config keys.

The model speaks Detectron2's interface: ``model(list of input dicts)`` returns a loss dict in
training (Detectron2's loss names) and ``[{"instances": {...}}]`` in eval, with boxes in the
original image's coordinates. The architecture is the builders'; the config keys become their
arguments in :mod:`res2net_det.config.detection`. Module names follow Detectron2 where weights are
shared (``backbone.bottom_up.<official Res2Net key>``), so checkpoints from
``tools/convert_weights.py`` load in both engines.
"""
from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from ...config.detection import backbone_args_from_cfg, rcnn_args_from_cfg, retinanet_args_from_cfg
from ...modeling.detection import (
    fasterrcnn_res2net_fpn,
    maskrcnn_res2net_fpn,
    res2net_fpn_backbone,
    retinanet_res2net_fpn,
)

__all__ = ["build_backbone", "build_rcnn", "build_retinanet", "Res2NetFasterRCNN", "Res2NetMaskRCNN",
           "Res2NetRetinaNet"]


def build_backbone(cfg) -> nn.Module:
    """The backbone of ``MODEL.BACKBONE.NAME`` (``build_res2net_fpn_backbone``,
    ``build_retinanet_res2net_fpn_backbone`` or ``build_res2net_backbone``)."""
    return res2net_fpn_backbone(**backbone_args_from_cfg(cfg))


class _NoResizeTransform(GeneralizedRCNNTransform):
    """Normalises and batches only: resizing is the data mapper's job, as in Detectron2."""

    def resize(self, image, target=None):
        return image, target


# torchvision loss names -> Detectron2's
_LOSS_NAMES = {
    "loss_objectness": "loss_rpn_cls",
    "loss_rpn_box_reg": "loss_rpn_loc",
    "loss_classifier": "loss_cls",
    "loss_box_reg": "loss_box_reg",
    "loss_mask": "loss_mask",
    # RetinaNet
    "classification": "loss_cls",
    "bbox_regression": "loss_box_reg",
}


class _DictIO:
    """Detectron2's calling convention on top of torchvision's GeneralizedRCNN."""

    loss_weights: Dict[str, float] = {}
    # torchvision's R-CNN labels count the background as 0; Detectron2's classes start at 0.
    label_offset = 1

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
                t = {"boxes": inst["gt_boxes"].to(device).float(),
                     "labels": inst["gt_classes"].to(device) + self.label_offset}
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
            inst = {"pred_boxes": boxes, "scores": det["scores"], "pred_classes": det["labels"] - self.label_offset}
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


class Res2NetRetinaNet(_DictIO, RetinaNet):
    """torchvision ``RetinaNet`` with Detectron2's input/output dicts; its sigmoid classes are
    Detectron2's (no background)."""

    label_offset = 0


def _detectron2_io(cfg, model: nn.Module) -> nn.Module:
    """What Detectron2's convention needs besides the dicts: the mapper resizes (not the model)."""
    model.transform = _NoResizeTransform(
        cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST,
        image_mean=list(cfg.MODEL.PIXEL_MEAN), image_std=list(cfg.MODEL.PIXEL_STD),
        size_divisible=model.backbone.size_divisibility,
    )
    return model


def build_rcnn(cfg) -> nn.Module:
    """Faster R-CNN (or Mask R-CNN when ``MODEL.MASK_ON``) from a ``GeneralizedRCNN`` config."""
    m = cfg.MODEL
    args = rcnn_args_from_cfg(cfg)
    if m.MASK_ON:
        model: nn.Module = maskrcnn_res2net_fpn(model_class=Res2NetMaskRCNN, **args)
    else:
        model = fasterrcnn_res2net_fpn(model_class=Res2NetFasterRCNN, **args)
    model.loss_weights = {
        "loss_rpn_cls": m.RPN.LOSS_WEIGHT,
        "loss_rpn_loc": m.RPN.LOSS_WEIGHT * m.RPN.BBOX_REG_LOSS_WEIGHT,
        "loss_box_reg": m.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT,
    }
    return _detectron2_io(cfg, model)


def build_retinanet(cfg) -> nn.Module:
    """RetinaNet from a ``RetinaNet`` config (``MODEL.RETINANET.*``)."""
    return _detectron2_io(cfg, retinanet_res2net_fpn(model_class=Res2NetRetinaNet, **retinanet_args_from_cfg(cfg)))
