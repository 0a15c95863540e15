"""torchvision's detectors on Res2Net + FPN, built from plain arguments, as torchvision builds its own::

    from res2net_det.modeling.detection import fasterrcnn_res2net_fpn
    model = fasterrcnn_res2net_fpn("res2net50_26w_4s", num_classes=91,
                                   weights_backbone="res2net://res2net50_26w_4s")
    model.eval()
    predictions = model([torch.rand(3, 480, 640)])   # torchvision's calling convention

``variant`` is a row of :data:`res2net_det.modeling.res2net.MODEL_TABLE` (``"resnet50"`` is the
baseline). Module names follow Detectron2 where weights are shared: the Res2Net sits at
``backbone.bottom_up`` under its FPN, with the official Res2Net keys, so ImageNet checkpoints
(official, timm, torchvision's ResNet-50), ``tools/convert_weights.py`` outputs and the torchvision
engine's checkpoints all fit. The torchvision engine builds its models here; its config keys
translate to these arguments (``res2net_det.config.detection``).

The feature backbone (:func:`res2net_fpn_backbone`) is :mod:`.fpn_backbone`; the R-CNN parts that
take Detectron2's options torchvision lacks (aligned RoIAlign, the smooth-L1 beta) are
:mod:`.rcnn_parts`. This module puts them together into the three detectors.

Unlike torchvision's builders, nothing changes behind the caller's back when no weights are given:
training from scratch wants ``norm="BN"`` (or ``"GN"`` / ``"SyncBN"``) and ``trainable_backbone_layers=5``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Type

from torch import nn
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.rpn import RPNHead

from .fpn_backbone import (
    TOP_BLOCKS,
    Res2NetFPN,
    Res2NetSingleLevel,
    disable_unused_stages,
    fpn_level_names,
    res2net_fpn_backbone,
)
from .norm import NormSpec, get_norm
from .rcnn_parts import (
    TORCHVISION_SMOOTH_L1_BETA,
    AlignedMultiScaleRoIAlign,
    SmoothL1RoIHeads,
    SmoothL1RPN,
    specialise,
)
from .res2net import STAGE_NAMES
from .weights import load_weights

__all__ = [
    "TOP_BLOCKS",
    "disable_unused_stages",
    "fpn_level_names",
    "Res2NetFPN",
    "Res2NetSingleLevel",
    "res2net_fpn_backbone",
    "HEAD_INITS",
    "init_rcnn_heads_like_detectron2",
    "fasterrcnn_res2net_fpn",
    "maskrcnn_res2net_fpn",
    "retinanet_res2net_fpn",
    "TORCHVISION_SMOOTH_L1_BETA",
    "AlignedMultiScaleRoIAlign",
    "SmoothL1RPN",
    "SmoothL1RoIHeads",
]


def _per_level(values: Sequence[Sequence[float]], num_levels: int, name: str) -> Tuple[Tuple[float, ...], ...]:
    """Detectron2's broadcast rule: one tuple for every level, or one tuple per level."""
    values = [tuple(v) for v in values]
    if len(values) == 1:
        return tuple(values * num_levels)
    if len(values) != num_levels:
        raise ValueError(f"{name} has {len(values)} entries but the backbone has {num_levels} feature levels")
    return tuple(values)


def _anchor_generator(
    backbone: nn.Module, sizes: Optional[Sequence[Sequence[float]]], aspect_ratios: Sequence[Sequence[float]]
) -> AnchorGenerator:
    """Anchors per feature level, by default Detectron2's: ``2 ** (level + 3)`` pixels at ``p<level>``
    of an FPN (32 at p2), and 32 to 512 on a single level."""
    num_levels = len(backbone.out_features)
    if sizes is None:
        if isinstance(backbone, Res2NetFPN):
            sizes = [(2.0 ** (int(name[1:]) + 3),) for name in backbone.out_features]
        else:
            sizes = [(32.0, 64.0, 128.0, 256.0, 512.0)]
    generator = AnchorGenerator(
        sizes=_per_level(sizes, num_levels, "anchor_sizes"),
        aspect_ratios=_per_level(aspect_ratios, num_levels, "aspect_ratios"),
    )
    if len(set(generator.num_anchors_per_location())) != 1:
        raise ValueError("every feature level needs the same number of anchors (sizes x aspect ratios)")
    return generator


def _head_norm(norm: Optional[str]):
    return None if not norm else (lambda channels: get_norm(norm, channels))


def _load_detector_weights(model: nn.Module, weights: Optional[str]) -> None:
    if weights is not None:
        # A detector checkpoint must describe this detector completely (strict): a partial load
        # would leave random heads behind a "pretrained" name.
        load_weights(model, weights, strict=True)


#: Initialisations of the R-CNN heads: torchvision's (its modules' defaults) or Detectron2's.
HEAD_INITS = ("torchvision", "detectron2")


def init_rcnn_heads_like_detectron2(model: FasterRCNN) -> None:
    """Re-initialise what torchvision initialises differently from Detectron2, so that one config
    starts from the same distribution on both engines: the box head's fully connected layers
    (Detectron2's ``c2_xavier_fill``: Kaiming-uniform with a=1, zero bias, where ``nn.Linear``
    draws a three times smaller variance and a random bias), the box predictor (normal std 0.01
    for the class scores and 0.001 for the deltas, zero biases), the mask logits (normal std
    0.001) and the bias of the mask up-convolution (zero; torchvision leaves it random). The FPN,
    the RPN head and the convs of both heads already match.
    """
    for layer in model.roi_heads.box_head.modules():
        if isinstance(layer, nn.Linear):
            nn.init.kaiming_uniform_(layer.weight, a=1)
            nn.init.zeros_(layer.bias)
    predictor = model.roi_heads.box_predictor
    for layer, std in ((predictor.cls_score, 0.01), (predictor.bbox_pred, 0.001)):
        nn.init.normal_(layer.weight, std=std)
        nn.init.zeros_(layer.bias)
    if model.roi_heads.has_mask():
        logits = model.roi_heads.mask_predictor.mask_fcn_logits
        nn.init.normal_(logits.weight, std=0.001)
        nn.init.zeros_(logits.bias)
        nn.init.zeros_(model.roi_heads.mask_predictor.conv5_mask.bias)


def _rcnn_kwargs(
    backbone: nn.Module,
    num_classes: int,
    anchor_sizes: Optional[Sequence[Sequence[float]]],
    aspect_ratios: Sequence[Sequence[float]],
    roi_features: Optional[Sequence[str]],
    box_pooler_resolution: int,
    box_pooler_sampling_ratio: int,
    box_head_conv_dims: Sequence[int],
    box_head_fc_dims: Sequence[int],
    box_head_norm: Optional[str],
    box_pooler_aligned: bool = False,
) -> Dict[str, Any]:
    """The R-CNN parts that Faster and Mask R-CNN share, as torchvision's constructor arguments."""
    anchor_generator = _anchor_generator(backbone, anchor_sizes, aspect_ratios)
    if roi_features is None:  # Detectron2's p2-p5: every level but the FPN's top block
        roi_features = backbone.out_features[: len(backbone.out_features) - getattr(backbone, "top_levels", 0)]
    unknown = [f for f in roi_features if f not in backbone.out_features]
    if unknown:
        raise ValueError(f"roi_features names {unknown}; the backbone outputs {backbone.out_features}")
    if not box_head_fc_dims:
        raise ValueError("box_head_fc_dims must list at least one fully connected layer (the predictor's input)")
    res = box_pooler_resolution
    return dict(
        num_classes=None,
        rpn_anchor_generator=anchor_generator,
        rpn_head=RPNHead(backbone.out_channels, anchor_generator.num_anchors_per_location()[0]),
        box_roi_pool=AlignedMultiScaleRoIAlign(list(roi_features), output_size=res,
                                               sampling_ratio=box_pooler_sampling_ratio, aligned=box_pooler_aligned),
        box_head=FastRCNNConvFCHead((backbone.out_channels, res, res), list(box_head_conv_dims),
                                    list(box_head_fc_dims), norm_layer=_head_norm(box_head_norm)),
        box_predictor=FastRCNNPredictor(box_head_fc_dims[-1], num_classes),
    )


def _finish_rcnn(model: FasterRCNN, rpn_bbox_reg_weights: Optional[Sequence[float]], weights: Optional[str],
                 rpn_smooth_l1_beta: float, box_smooth_l1_beta: float, rpn_min_size: float, head_init: str):
    # What torchvision's constructor has no argument for.
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init {head_init!r} is not one of {HEAD_INITS}")
    if head_init == "detectron2":
        init_rcnn_heads_like_detectron2(model)
    if rpn_bbox_reg_weights is not None:
        model.rpn.box_coder = det_utils.BoxCoder(weights=tuple(rpn_bbox_reg_weights))
    model.rpn.min_size = rpn_min_size
    specialise(model.rpn, SmoothL1RPN, smooth_l1_beta=rpn_smooth_l1_beta)
    specialise(model.roi_heads, SmoothL1RoIHeads, box_smooth_l1_beta=box_smooth_l1_beta)
    _load_detector_weights(model, weights)
    return model


def fasterrcnn_res2net_fpn(
    variant: str = "res2net50_26w_4s",
    *,
    num_classes: int = 91,
    weights: Optional[str] = None,
    weights_backbone: Optional[str] = None,
    trainable_backbone_layers: int = 3,
    norm: NormSpec = "FrozenBN",
    out_features: Sequence[str] = STAGE_NAMES,
    fpn: bool = True,
    fpn_channels: int = 256,
    dilate_last_stage: bool = False,
    deformable_stages: Sequence[str] = (),
    deform_modulated: bool = False,
    deform_groups: int = 1,
    backbone_kwargs: Optional[Mapping[str, Any]] = None,
    anchor_sizes: Optional[Sequence[Sequence[float]]] = None,
    aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
    rpn_bbox_reg_weights: Optional[Sequence[float]] = None,
    roi_features: Optional[Sequence[str]] = None,
    box_pooler_resolution: int = 7,
    box_pooler_sampling_ratio: int = 2,
    box_head_conv_dims: Sequence[int] = (),
    box_head_fc_dims: Sequence[int] = (1024, 1024),
    box_head_norm: Optional[str] = None,
    box_pooler_aligned: bool = False,
    rpn_smooth_l1_beta: float = TORCHVISION_SMOOTH_L1_BETA,
    box_smooth_l1_beta: float = TORCHVISION_SMOOTH_L1_BETA,
    rpn_min_size: float = 1e-3,
    head_init: str = "torchvision",
    model_class: Type[FasterRCNN] = FasterRCNN,
    **kwargs: Any,
) -> FasterRCNN:
    """Faster R-CNN with a Res2Net-FPN backbone (Ren et al., NeurIPS 2015; Lin et al., CVPR 2017).

    The model takes and returns what torchvision's ``FasterRCNN`` does: a list of ``3 x H x W``
    float images in [0, 1] (and, in training, targets with ``boxes`` and ``labels``); losses in
    training, ``[{"boxes", "labels", "scores"}]`` in eval.

    Args:
        variant: the Res2Net variant (:func:`res2net_det.list_models`); ``"resnet50"`` is the baseline.
        num_classes: outputs of the box classifier, background included (91 for COCO's category ids).
        weights: a checkpoint of this detector (e.g. a torchvision-engine run's ``model_final.pth``);
            every key must fit.
        weights_backbone: an ImageNet checkpoint of the variant or its name (``res2net://``, official Res2Net, timm, or
            torchvision's ResNet-50), loaded into ``backbone.bottom_up`` before freezing.
        trainable_backbone_layers: backbone stages trained, counted from res5 (0-5; 3 freezes the stem and res2).
        norm: the backbone's norm (``"FrozenBN"``, ``"BN"``, ``"SyncBN"``, ``"GN"`` or ``channels -> module``).
        out_features, fpn, fpn_channels, dilate_last_stage, deformable_stages, deform_modulated,
            deform_groups, backbone_kwargs: the backbone, see :func:`res2net_fpn_backbone`.
        anchor_sizes: anchor sizes per feature level (or one tuple for all); default 32 at p2,
            doubling per level (``((32,), (64,), (128,), (256,), (512,))`` for p2-p6).
        aspect_ratios: anchor aspect ratios per level (or one tuple for all).
        rpn_bbox_reg_weights: the RPN box coder's (dx, dy, dw, dh) weights (default torchvision's 1, 1, 1, 1).
        roi_features: feature levels the RoI heads pool from (default every FPN level but the top one).
        box_pooler_resolution: RoIAlign output size of the box head.
        box_pooler_sampling_ratio: RoIAlign sampling points per bin (0: adaptive, as Detectron2).
        box_head_conv_dims: convs of the box head before its fully connected layers.
        box_head_fc_dims: fully connected layers of the box head (at least one).
        box_head_norm: norm of the box head's convs (``None``, ``"GN"``, ``"BN"``, ...).
        box_pooler_aligned: RoIAlign with the half-pixel ``aligned=True`` (Detectron2's ``ROIAlignV2``);
            False is torchvision's (and Detectron2's ``ROIAlign``).
        rpn_smooth_l1_beta, box_smooth_l1_beta: smooth-L1 beta of the RPN's and the box head's box
            losses (torchvision's 1/9 by default; 0 is L1, Detectron2's default).
        rpn_min_size: proposals narrower or lower than this (pixels) are dropped (torchvision's 1e-3).
        head_init: ``"torchvision"`` (its modules' own initialisation) or ``"detectron2"``
            (:func:`init_rcnn_heads_like_detectron2`, what the torchvision engine builds from a config).
        model_class: ``FasterRCNN`` or a subclass to instantiate (the torchvision engine's takes
            Detectron2's input dicts).
        **kwargs: arguments of torchvision's ``FasterRCNN`` (``min_size``, ``max_size``,
            ``image_mean``, ``rpn_nms_thresh``, ``box_score_thresh``, ``box_detections_per_img``, ...).
    """
    backbone = res2net_fpn_backbone(
        variant, weights_backbone=weights_backbone, trainable_layers=trainable_backbone_layers, norm=norm,
        out_features=out_features, fpn=fpn, fpn_channels=fpn_channels, dilate_last_stage=dilate_last_stage,
        deformable_stages=deformable_stages, deform_modulated=deform_modulated, deform_groups=deform_groups,
        backbone_kwargs=backbone_kwargs,
    )
    parts = _rcnn_kwargs(backbone, num_classes, anchor_sizes, aspect_ratios, roi_features, box_pooler_resolution,
                         box_pooler_sampling_ratio, box_head_conv_dims, box_head_fc_dims, box_head_norm,
                         box_pooler_aligned)
    model = model_class(backbone, **parts, **kwargs)
    return _finish_rcnn(model, rpn_bbox_reg_weights, weights, rpn_smooth_l1_beta, box_smooth_l1_beta, rpn_min_size,
                        head_init)


def maskrcnn_res2net_fpn(
    variant: str = "res2net50_26w_4s",
    *,
    num_classes: int = 91,
    weights: Optional[str] = None,
    weights_backbone: Optional[str] = None,
    trainable_backbone_layers: int = 3,
    norm: NormSpec = "FrozenBN",
    out_features: Sequence[str] = STAGE_NAMES,
    fpn: bool = True,
    fpn_channels: int = 256,
    dilate_last_stage: bool = False,
    deformable_stages: Sequence[str] = (),
    deform_modulated: bool = False,
    deform_groups: int = 1,
    backbone_kwargs: Optional[Mapping[str, Any]] = None,
    anchor_sizes: Optional[Sequence[Sequence[float]]] = None,
    aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
    rpn_bbox_reg_weights: Optional[Sequence[float]] = None,
    roi_features: Optional[Sequence[str]] = None,
    box_pooler_resolution: int = 7,
    box_pooler_sampling_ratio: int = 2,
    box_head_conv_dims: Sequence[int] = (),
    box_head_fc_dims: Sequence[int] = (1024, 1024),
    box_head_norm: Optional[str] = None,
    box_pooler_aligned: bool = False,
    rpn_smooth_l1_beta: float = TORCHVISION_SMOOTH_L1_BETA,
    box_smooth_l1_beta: float = TORCHVISION_SMOOTH_L1_BETA,
    rpn_min_size: float = 1e-3,
    mask_pooler_resolution: int = 14,
    mask_pooler_sampling_ratio: int = 2,
    mask_head_conv_dims: Sequence[int] = (256, 256, 256, 256),
    mask_head_norm: Optional[str] = None,
    mask_predictor_dim: int = 256,
    mask_pooler_aligned: bool = False,
    head_init: str = "torchvision",
    model_class: Type[MaskRCNN] = MaskRCNN,
    **kwargs: Any,
) -> MaskRCNN:
    """Mask R-CNN with a Res2Net-FPN backbone (He et al., ICCV 2017).

    Takes and returns what torchvision's ``MaskRCNN`` does (targets and outputs add ``masks``).

    Args:
        variant, num_classes, weights, weights_backbone, trainable_backbone_layers, norm, out_features,
            fpn, fpn_channels, dilate_last_stage, deformable_stages, deform_modulated, deform_groups,
            backbone_kwargs, anchor_sizes, aspect_ratios, rpn_bbox_reg_weights, roi_features,
            box_pooler_resolution, box_pooler_sampling_ratio, box_head_conv_dims, box_head_fc_dims,
            box_head_norm, box_pooler_aligned, rpn_smooth_l1_beta, box_smooth_l1_beta, rpn_min_size,
            head_init: as for :func:`fasterrcnn_res2net_fpn`.
        mask_pooler_resolution: RoIAlign output size of the mask head.
        mask_pooler_sampling_ratio: RoIAlign sampling points per bin (0: adaptive).
        mask_head_conv_dims: the mask head's 3x3 convs.
        mask_head_norm: norm of the mask head's convs.
        mask_predictor_dim: channels of the mask predictor's 2x up-convolution.
        mask_pooler_aligned: the mask head's RoIAlign with ``aligned=True`` (``ROIAlignV2``).
        model_class: ``MaskRCNN`` or a subclass to instantiate.
        **kwargs: arguments of torchvision's ``MaskRCNN`` (``min_size``, ``rpn_nms_thresh``, ...).
    """
    backbone = res2net_fpn_backbone(
        variant, weights_backbone=weights_backbone, trainable_layers=trainable_backbone_layers, norm=norm,
        out_features=out_features, fpn=fpn, fpn_channels=fpn_channels, dilate_last_stage=dilate_last_stage,
        deformable_stages=deformable_stages, deform_modulated=deform_modulated, deform_groups=deform_groups,
        backbone_kwargs=backbone_kwargs,
    )
    parts = _rcnn_kwargs(backbone, num_classes, anchor_sizes, aspect_ratios, roi_features, box_pooler_resolution,
                         box_pooler_sampling_ratio, box_head_conv_dims, box_head_fc_dims, box_head_norm,
                         box_pooler_aligned)
    mask_features = parts["box_roi_pool"].featmap_names
    model = model_class(
        backbone,
        mask_roi_pool=AlignedMultiScaleRoIAlign(mask_features, output_size=mask_pooler_resolution,
                                                sampling_ratio=mask_pooler_sampling_ratio, aligned=mask_pooler_aligned),
        mask_head=MaskRCNNHeads(backbone.out_channels, list(mask_head_conv_dims), 1,
                                norm_layer=_head_norm(mask_head_norm)),
        mask_predictor=MaskRCNNPredictor(
            mask_head_conv_dims[-1] if mask_head_conv_dims else backbone.out_channels, mask_predictor_dim, num_classes
        ),
        **parts,
        **kwargs,
    )
    return _finish_rcnn(model, rpn_bbox_reg_weights, weights, rpn_smooth_l1_beta, box_smooth_l1_beta, rpn_min_size,
                        head_init)


# torchvision's RetinaNet regression losses (RetinaNetRegressionHead._loss_type).
RETINANET_BOX_LOSSES = ("l1", "smooth_l1", "giou", "diou", "ciou")


def retinanet_res2net_fpn(
    variant: str = "res2net50_26w_4s",
    *,
    num_classes: int = 91,
    weights: Optional[str] = None,
    weights_backbone: Optional[str] = None,
    trainable_backbone_layers: int = 3,
    norm: NormSpec = "FrozenBN",
    out_features: Sequence[str] = ("res3", "res4", "res5"),
    fpn_channels: int = 256,
    dilate_last_stage: bool = False,
    deformable_stages: Sequence[str] = (),
    deform_modulated: bool = False,
    deform_groups: int = 1,
    backbone_kwargs: Optional[Mapping[str, Any]] = None,
    anchor_sizes: Optional[Sequence[Sequence[float]]] = None,
    aspect_ratios: Sequence[Sequence[float]] = ((0.5, 1.0, 2.0),),
    prior_probability: float = 0.01,
    head_norm: Optional[str] = None,
    box_loss: str = "l1",
    model_class: Type[RetinaNet] = RetinaNet,
    **kwargs: Any,
) -> RetinaNet:
    """RetinaNet with a Res2Net-FPN backbone, P3-P7 (Lin et al., ICCV 2017).

    The FPN runs on res3-res5 and adds P6 and P7 convolved from res5, as Detectron2's and
    torchvision's RetinaNet. Takes and returns what torchvision's ``RetinaNet`` does.

    Args:
        variant, weights, weights_backbone, trainable_backbone_layers, norm, fpn_channels,
            dilate_last_stage, deformable_stages, deform_modulated, deform_groups, backbone_kwargs:
            as for :func:`fasterrcnn_res2net_fpn`.
        num_classes: sigmoid outputs per anchor (no background class; 91 for COCO's category ids,
            as torchvision's ``retinanet_resnet50_fpn``).
        out_features: Res2Net stages fed to the FPN; P6/P7 come from the last one.
        anchor_sizes: anchor sizes per level (or one tuple for all); default three octave scales
            ``2 ** (0, 1/3, 2/3)`` of 32 at p3, doubling per level (torchvision's and Detectron2's).
        aspect_ratios: anchor aspect ratios per level (or one tuple for all).
        prior_probability: initial foreground probability of the classifier (its bias).
        head_norm: norm of the heads' convs (``None`` or ``"GN"``, shared across levels).
        box_loss: regression loss, one of ``RETINANET_BOX_LOSSES`` (``"l1"`` is Detectron2's smooth L1
            with beta 0, its RetinaNet recipe).
        model_class: ``RetinaNet`` or a subclass to instantiate.
        **kwargs: arguments of torchvision's ``RetinaNet`` (``min_size``, ``score_thresh``,
            ``nms_thresh``, ``detections_per_img``, ``fg_iou_thresh``, ``bg_iou_thresh``,
            ``topk_candidates``, ...).
    """
    if box_loss not in RETINANET_BOX_LOSSES:
        raise ValueError(f"box_loss must be one of {RETINANET_BOX_LOSSES}, got {box_loss!r}")
    if not 0 < prior_probability < 1:
        raise ValueError(f"prior_probability must be in (0, 1), got {prior_probability}")
    backbone = res2net_fpn_backbone(
        variant, weights_backbone=weights_backbone, trainable_layers=trainable_backbone_layers, norm=norm,
        out_features=out_features, fpn_channels=fpn_channels, top_block="p6p7", dilate_last_stage=dilate_last_stage,
        deformable_stages=deformable_stages, deform_modulated=deform_modulated, deform_groups=deform_groups,
        backbone_kwargs=backbone_kwargs,
    )
    if anchor_sizes is None:  # torchvision's: 32 at p3, as (x, x * 2^(1/3), x * 2^(2/3)) rounded down
        levels = [int(name[1:]) for name in backbone.out_features]
        anchor_sizes = [tuple(int(2 ** (lvl + 2) * 2 ** (i / 3)) for i in range(3)) for lvl in levels]
    anchor_generator = _anchor_generator(backbone, anchor_sizes, aspect_ratios)
    head = RetinaNetHead(backbone.out_channels, anchor_generator.num_anchors_per_location()[0], num_classes,
                         norm_layer=_head_norm(head_norm))
    nn.init.constant_(head.classification_head.cls_logits.bias, -math.log((1 - prior_probability) / prior_probability))
    head.regression_head._loss_type = box_loss  # how torchvision's retinanet_resnet50_fpn_v2 picks GIoU
    model = model_class(backbone, num_classes, anchor_generator=anchor_generator, head=head, **kwargs)
    _load_detector_weights(model, weights)
    return model
