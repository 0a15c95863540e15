"""torchvision's R-CNN parts with the options of Detectron2's recipe that torchvision lacks.

torchvision's Faster / Mask R-CNN hard-code two things Detectron2's configs set: RoIAlign's
half-pixel ``aligned`` flag (Detectron2's ``ROIAlignV2``: :class:`AlignedMultiScaleRoIAlign`) and
the smooth-L1 beta of the RPN's and the box head's box losses (torchvision's 1/9, Detectron2's 0 =
L1 by default: :class:`SmoothL1RPN`, :class:`SmoothL1RoIHeads`). Each subclass overrides only what
it must; :func:`specialise` turns the module torchvision's ``FasterRCNN`` built itself into one.
The builders that use them: :mod:`.detection`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops import MultiScaleRoIAlign, roi_align
from torchvision.ops import poolers as tv_poolers

__all__ = [
    "TORCHVISION_SMOOTH_L1_BETA",
    "AlignedMultiScaleRoIAlign",
    "SmoothL1RPN",
    "SmoothL1RoIHeads",
    "specialise",
]

#: The smooth-L1 beta torchvision's RPN and box head hard-code (Detectron2's default is 0: L1).
TORCHVISION_SMOOTH_L1_BETA = 1.0 / 9


class AlignedMultiScaleRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` (FPN level per box, Lin et al.'s eq. 1) with RoIAlign's
    ``aligned`` flag, which torchvision's class does not pass on (it always pools with
    ``aligned=False``). ``aligned=True`` is Detectron2's ``ROIAlignV2``: box corners shifted by
    half a pixel, no minimum box size of one cell."""

    def __init__(self, featmap_names: List[str], output_size, sampling_ratio: int, *, aligned: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(featmap_names, output_size, sampling_ratio, **kwargs)
        self.aligned = aligned

    def forward(self, x: Dict[str, torch.Tensor], boxes: List[torch.Tensor],
                image_shapes: List[Tuple[int, int]]) -> torch.Tensor:
        if not self.aligned:
            return super().forward(x, boxes, image_shapes)
        features = tv_poolers._filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = tv_poolers._setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level)
        rois = tv_poolers._convert_to_roi_format(boxes)
        pool = lambda feature, r, scale: roi_align(  # noqa: E731
            feature, r, self.output_size, spatial_scale=scale, sampling_ratio=self.sampling_ratio, aligned=True)
        if len(features) == 1:
            return pool(features[0], rois, self.scales[0])
        levels = self.map_levels(boxes)
        result = rois.new_zeros((len(rois), features[0].shape[1]) + self.output_size, dtype=features[0].dtype)
        per_level = []
        for level, (feature, scale) in enumerate(zip(features, self.scales)):
            idx = torch.where(levels == level)[0]
            pooled = pool(feature, rois[idx], scale).to(result.dtype)
            if torchvision._is_tracing():
                per_level.append(pooled)
            else:
                result[idx] = pooled
        return tv_poolers._onnx_merge_levels(levels, per_level) if torchvision._is_tracing() else result


class SmoothL1RPN(RegionProposalNetwork):
    """torchvision's RPN whose box loss takes the smooth-L1 ``smooth_l1_beta`` (torchvision
    hard-codes 1/9; Detectron2's ``MODEL.RPN.SMOOTH_L1_BETA``, 0 = L1). Nothing else changes."""

    smooth_l1_beta: float = TORCHVISION_SMOOTH_L1_BETA

    def compute_loss(self, objectness, pred_bbox_deltas, labels, regression_targets):
        # torchvision's RegionProposalNetwork.compute_loss with the beta as an attribute
        sampled_pos_inds, sampled_neg_inds = self.fg_bg_sampler(labels)
        sampled_pos_inds = torch.where(torch.cat(sampled_pos_inds, dim=0))[0]
        sampled_neg_inds = torch.where(torch.cat(sampled_neg_inds, dim=0))[0]
        sampled_inds = torch.cat([sampled_pos_inds, sampled_neg_inds], dim=0)
        objectness = objectness.flatten()
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        box_loss = F.smooth_l1_loss(pred_bbox_deltas[sampled_pos_inds], regression_targets[sampled_pos_inds],
                                    beta=self.smooth_l1_beta, reduction="sum") / sampled_inds.numel()
        objectness_loss = F.binary_cross_entropy_with_logits(objectness[sampled_inds], labels[sampled_inds])
        return objectness_loss, box_loss


class SmoothL1RoIHeads(RoIHeads):
    """torchvision's RoI heads whose box loss takes the smooth-L1 ``box_smooth_l1_beta``
    (torchvision's ``fastrcnn_loss`` hard-codes 1/9; Detectron2's ``MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA``).
    torchvision's forward runs unchanged; with another beta, ``loss_box_reg`` is recomputed from
    the box predictor's output and the sampled targets of that same forward (same normaliser: the
    number of sampled RoIs)."""

    box_smooth_l1_beta: float = TORCHVISION_SMOOTH_L1_BETA

    def select_training_samples(self, proposals, targets):
        sampled = super().select_training_samples(proposals, targets)
        if self.box_smooth_l1_beta != TORCHVISION_SMOOTH_L1_BETA:
            self._sampled_targets = (sampled[2], sampled[3])  # labels, regression targets: read once by forward
        return sampled

    def forward(self, features, proposals, image_shapes, targets=None):
        if not self.training or self.box_smooth_l1_beta == TORCHVISION_SMOOTH_L1_BETA:
            return super().forward(features, proposals, image_shapes, targets)
        predictions: List[Tuple[torch.Tensor, torch.Tensor]] = []
        hook = self.box_predictor.register_forward_hook(lambda _m, _i, out: predictions.append(out))
        try:
            result, losses = super().forward(features, proposals, image_shapes, targets)
        finally:
            hook.remove()
            labels, regression_targets = self.__dict__.pop("_sampled_targets", (None, None))
        labels = torch.cat(labels, dim=0)
        regression_targets = torch.cat(regression_targets, dim=0)
        box_regression = predictions[0][1]
        positive = torch.where(labels > 0)[0]
        box_regression = box_regression.reshape(box_regression.shape[0], -1, 4)[positive, labels[positive]]
        losses["loss_box_reg"] = F.smooth_l1_loss(box_regression, regression_targets[positive],
                                                  beta=self.box_smooth_l1_beta, reduction="sum") / labels.numel()
        return result, losses


def specialise(module: nn.Module, cls: type, **attributes: Any) -> nn.Module:
    """Makes torchvision's ``module`` (which ``FasterRCNN`` builds itself, from its arguments) an
    instance of ``cls``, a subclass that only overrides methods, and sets ``attributes``."""
    if not isinstance(module, cls.__mro__[1]):
        raise TypeError(f"{type(module).__name__} is not a {cls.__mro__[1].__name__}")
    module.__class__ = cls
    for name, value in attributes.items():
        setattr(module, name, value)
    return module
