"""Detector checkpoints in the two engines' layouts, and what a detector checkpoint leaves unloaded.

The Res2Net under the FPN has the same keys in both engines (``backbone.bottom_up.<official
Res2Net key>``); everything above it is named, and sometimes ordered, differently:

=============  ==============================================  ===============================================
part           Detectron2 engine                               torchvision engine
=============  ==============================================  ===============================================
FPN            ``backbone.fpn_lateral{L}`` / ``fpn_output{L}``  ``backbone.fpn.inner_blocks.{i}.0`` /
                                                               ``layer_blocks.{i}.0``
               ``backbone.top_block.p6`` / ``p7``              ``backbone.fpn.extra_blocks.p6`` / ``p7``
RPN            ``proposal_generator.rpn_head.conv``             ``rpn.head.conv.0.0``
               ``...objectness_logits`` / ``anchor_deltas``     ``rpn.head.cls_logits`` / ``bbox_pred``
box head       ``roi_heads.box_head.conv{k}`` / ``fc{j}``       ``roi_heads.box_head.{index}`` (a Sequential)
box predictor  ``cls_score``: background *last*                 ``cls_score``: background *first*
               ``bbox_pred``: 4 rows per class                  ``bbox_pred``: 4 more (background) rows first
mask head      ``roi_heads.mask_head.mask_fcn{k}``, ``deconv``  ``roi_heads.mask_head.{k-1}.0``,
                                                               ``mask_predictor.conv5_mask``
               ``mask_head.predictor`` (one map per class)      ``mask_predictor.mask_fcn_logits`` (+ background)
RetinaNet      ``head.cls_subnet`` / ``cls_score``              ``head.classification_head.conv`` / ``cls_logits``
               ``head.bbox_subnet`` / ``bbox_pred``             ``head.regression_head.conv`` / ``bbox_reg``
=============  ==============================================  ===============================================

Anchors: the two engines order a location's anchors differently when a level has several sizes
*and* several ratios; the converters then need the :class:`AnchorLayout` (:mod:`.anchor_layout`).

:func:`detectron2_to_torchvision` and :func:`torchvision_to_detectron2` convert a state dict;
``d2 -> tv -> d2`` gives back the original tensors (the torchvision background box rows, unused
by torchvision, are zeros). Loading a Detectron2-engine file into a torchvision-engine model with
:func:`res2net_det.modeling.weights.load_weights` converts it automatically (a registered layout);
the Detectron2 engine's checkpointer converts the other way.

:func:`unloaded_groups`, :func:`describe_detector_file` and :func:`check_fully_loaded` say which
parts of a detector a checkpoint left at their initialisation, in words ("FPN, RPN, box head"),
and what the file looks like, so that inference can refuse a half-loaded detector; they and
:func:`detect_detector_layout` live in :mod:`.detector_keys`.

Pure PyTorch: no engine is imported.
"""
from __future__ import annotations

import math
import re
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from .anchor_layout import (
    AnchorLayout,
    anchor_layout_from_cell_anchors,
    move_anchor_outputs,
    torchvision_anchor_layout,
)
from .detector_keys import (
    DETECTRON2,
    LAYOUT_NAMES,
    TORCHVISION,
    check_fully_loaded,
    describe_detector_file,
    detect_detector_layout,
    group_of,
    is_detector,
    partial_load_note,
    unloaded_groups,
)
from .weights import CheckpointError, register_layout

__all__ = [
    "DETECTRON2",
    "TORCHVISION",
    "LAYOUT_NAMES",
    "AnchorLayout",
    "anchor_layout_from_cell_anchors",
    "torchvision_anchor_layout",
    "detect_detector_layout",
    "detectron2_to_torchvision",
    "torchvision_to_detectron2",
    "convert_detector_state",
    "group_of",
    "is_detector",
    "unloaded_groups",
    "describe_detector_file",
    "partial_load_note",
    "check_fully_loaded",
]


# ---------------------------------------------------------------------------- key maps
def _indexed(state: Mapping[str, torch.Tensor], pattern: str) -> Dict[int, List[str]]:
    """``{index: [keys]}`` for keys matching ``pattern`` (its group 1 is the index)."""
    found: Dict[int, List[str]] = {}
    for key in state:
        m = re.match(pattern, key)
        if m:
            found.setdefault(int(m.group(1)), []).append(key)
    return found


def _move(state: Dict[str, torch.Tensor], out: Dict[str, torch.Tensor], old_prefix: str, new_prefix: str) -> None:
    for key in [k for k in state if k.startswith(old_prefix)]:
        out[new_prefix + key[len(old_prefix):]] = state.pop(key)


def _subnet_d2_to_tv(state, out, d2: str, tv: str) -> None:
    """Detectron2's ``Sequential(conv, [norm,] relu, ...)`` -> torchvision's ``conv.{i}.0`` / ``.1``.
    A conv bias in front of a norm has no place in torchvision (its normed convs have none): it
    must be zero, as Detectron2 initialises it, or the conversion fails."""
    modules = _indexed(state, re.escape(d2) + r"(\d+)\.")
    convs = [i for i in sorted(modules) if state[f"{d2}{i}.weight"].dim() == 4]
    normed = any(state[f"{d2}{i}.weight"].dim() == 1 for i in modules)
    for n, i in enumerate(convs):
        if normed:
            bias = state.pop(f"{d2}{i}.bias", None)
            if bias is not None and bias.abs().max() > 0:
                raise CheckpointError(
                    f"{d2}{i}.bias is not zero: torchvision's convs in front of a norm have no bias, so this "
                    "head can't be converted without changing its outputs"
                )
            _move(state, out, f"{d2}{i + 1}.", f"{tv}{n}.1.")
        _move(state, out, f"{d2}{i}.", f"{tv}{n}.0.")


def _subnet_tv_to_d2(state, out, tv: str, d2: str) -> None:
    """The reverse of :func:`_subnet_d2_to_tv` (a zero bias is added in front of a norm)."""
    layers = _indexed(state, re.escape(tv) + r"(\d+)\.")
    normed = any(k.startswith(f"{tv}{i}.1.") for i, keys in layers.items() for k in keys)
    step = 3 if normed else 2  # conv, [norm,] relu
    for n in sorted(layers):
        weight = state[f"{tv}{n}.0.weight"]
        if normed:
            out[f"{d2}{step * n}.bias"] = state.pop(f"{tv}{n}.0.bias", weight.new_zeros(weight.shape[0]))
            _move(state, out, f"{tv}{n}.1.", f"{d2}{step * n + 1}.")
        _move(state, out, f"{tv}{n}.0.", f"{d2}{step * n}.")


def _conv_norm_d2_to_tv(state, out, d2: str, tv: str) -> int:
    """Detectron2's ``{d2}{k}`` convs (``k`` from 1, norm inside as ``.norm``) -> ``{tv}{k-1}.0`` /
    ``.1``; returns the number of convs."""
    convs = _indexed(state, re.escape(d2) + r"(\d+)\.")
    for k in sorted(convs):
        _move(state, out, f"{d2}{k}.norm.", f"{tv}{k - 1}.1.")
        _move(state, out, f"{d2}{k}.", f"{tv}{k - 1}.0.")
    return len(convs)


def _conv_norm_tv_to_d2(state, out, tv: str, d2: str, conv_indices: Sequence[int]) -> None:
    for n, i in enumerate(conv_indices):
        _move(state, out, f"{tv}{i}.1.", f"{d2}{n + 1}.norm.")
        _move(state, out, f"{tv}{i}.0.", f"{d2}{n + 1}.")


def _fpn_levels_from_channels(state: Mapping[str, torch.Tensor], prefix: str, count: int) -> List[int]:
    """Detectron2's FPN names its inputs by stride (``fpn_lateral2`` for res2); a Res2Net stage's
    output has ``256 * 2 ** (level - 2)`` channels, whatever its width."""
    levels = []
    for i in range(count):
        channels = state[f"{prefix}{i}.0.weight"].shape[1]
        level = int(round(math.log2(channels / 256))) + 2
        if 256 * 2 ** (level - 2) != channels:
            raise CheckpointError(f"{prefix}{i}.0.weight takes {channels} channels, no Res2Net stage's output; "
                                  "give the FPN levels")
        levels.append(level)
    return levels


def _box_predictor_d2_to_tv(state, out) -> None:
    cls_w = "roi_heads.box_predictor.cls_score.weight"
    if cls_w not in state:
        return
    num_classes = state[cls_w].shape[0] - 1
    for kind in ("weight", "bias"):
        cls = state.pop(f"roi_heads.box_predictor.cls_score.{kind}")
        out[f"roi_heads.box_predictor.cls_score.{kind}"] = torch.cat([cls[-1:], cls[:-1]])  # background first
        box = state.pop(f"roi_heads.box_predictor.bbox_pred.{kind}")
        if box.shape[0] != 4 * num_classes:
            raise CheckpointError(
                f"roi_heads.box_predictor.bbox_pred.{kind} has {box.shape[0]} rows for {num_classes} classes: "
                "class-agnostic box regression, which torchvision's box predictor does not have"
            )
        out[f"roi_heads.box_predictor.bbox_pred.{kind}"] = torch.cat([box.new_zeros((4,) + box.shape[1:]), box])


def _box_predictor_tv_to_d2(state, out) -> None:
    for kind in ("weight", "bias"):
        key = f"roi_heads.box_predictor.cls_score.{kind}"
        if key not in state:
            continue
        cls = state.pop(key)
        out[key] = torch.cat([cls[1:], cls[:1]])  # background last
        out[f"roi_heads.box_predictor.bbox_pred.{kind}"] = state.pop(f"roi_heads.box_predictor.bbox_pred.{kind}")[4:]


def _mask_logits_d2_to_tv(value: torch.Tensor) -> torch.Tensor:
    if value.shape[0] == 1:
        raise CheckpointError("roi_heads.mask_head.predictor has one output: a class-agnostic mask head, "
                              "which torchvision's mask predictor does not have")
    return torch.cat([value.new_zeros((1,) + value.shape[1:]), value])  # background map first, unused


def detectron2_to_torchvision(state: Mapping[str, torch.Tensor],
                              anchors: Optional[AnchorLayout] = None) -> Dict[str, torch.Tensor]:
    """A Detectron2-engine detector state dict (Faster / Mask R-CNN, RetinaNet) in the
    torchvision engine's layout. Keys it does not know are kept as they are (a loader then
    reports them). ``anchors`` is needed only when a level has several sizes and several ratios."""
    state = dict(state)
    out: Dict[str, torch.Tensor] = {}
    # FPN: inputs by level, in order; top block levels
    for kind, tv in (("lateral", "inner_blocks"), ("output", "layer_blocks")):
        by_level = _indexed(state, rf"backbone\.fpn_{kind}(\d+)\.")
        for i, level in enumerate(sorted(by_level)):
            _move(state, out, f"backbone.fpn_{kind}{level}.", f"backbone.fpn.{tv}.{i}.0.")
    _move(state, out, "backbone.top_block.", "backbone.fpn.extra_blocks.")
    if "backbone.conv1.weight" in state or "backbone.conv1.0.weight" in state:  # a Res2Net without FPN
        _move(state, out, "backbone.", "backbone.bottom_up.")
    # RPN
    rpn = "proposal_generator.rpn_head."
    if f"{rpn}conv.weight" in state:
        _move(state, out, f"{rpn}conv.", "rpn.head.conv.0.0.")
    for k in sorted(_indexed(state, rf"{re.escape(rpn)}conv\.conv(\d+)\.")):
        _move(state, out, f"{rpn}conv.conv{k}.", f"rpn.head.conv.{k}.0.")
    move_anchor_outputs(state, out, (f"{rpn}objectness_logits", "rpn.head.cls_logits"),
                         (f"{rpn}anchor_deltas", "rpn.head.bbox_pred"), anchors, TORCHVISION)
    # box head: convs, then (after torchvision's Flatten) Linear, ReLU, Linear, ReLU, ...
    num_conv = _conv_norm_d2_to_tv(state, out, "roi_heads.box_head.conv", "roi_heads.box_head.")
    for j in sorted(_indexed(state, r"roi_heads\.box_head\.fc(\d+)\.")):
        _move(state, out, f"roi_heads.box_head.fc{j}.", f"roi_heads.box_head.{num_conv + 1 + 2 * (j - 1)}.")
    _box_predictor_d2_to_tv(state, out)
    # mask head
    _conv_norm_d2_to_tv(state, out, "roi_heads.mask_head.mask_fcn", "roi_heads.mask_head.")
    _move(state, out, "roi_heads.mask_head.deconv.", "roi_heads.mask_predictor.conv5_mask.")
    for kind in ("weight", "bias"):
        key = f"roi_heads.mask_head.predictor.{kind}"
        if key in state:
            out[f"roi_heads.mask_predictor.mask_fcn_logits.{kind}"] = _mask_logits_d2_to_tv(state.pop(key))
    # RetinaNet
    _subnet_d2_to_tv(state, out, "head.cls_subnet.", "head.classification_head.conv.")
    _subnet_d2_to_tv(state, out, "head.bbox_subnet.", "head.regression_head.conv.")
    move_anchor_outputs(state, out, ("head.cls_score", "head.classification_head.cls_logits"),
                         ("head.bbox_pred", "head.regression_head.bbox_reg"), anchors, TORCHVISION)
    out.update(state)  # the backbone, and anything unknown (reported by the loader)
    return out


def torchvision_to_detectron2(state: Mapping[str, torch.Tensor], anchors: Optional[AnchorLayout] = None,
                              fpn_levels: Optional[Sequence[int]] = None,
                              single_level_backbone: bool = False) -> Dict[str, torch.Tensor]:
    """A torchvision-engine detector state dict in the Detectron2 engine's layout (the reverse of
    :func:`detectron2_to_torchvision`). ``fpn_levels`` names Detectron2's FPN inputs
    (``fpn_lateral{level}``; default: from each input's channels, those of a Res2Net stage);
    ``single_level_backbone``: the Res2Net goes to ``backbone.`` (Detectron2's detectors on
    ``build_res2net_backbone``) instead of ``backbone.bottom_up.``."""
    state = dict(state)
    out: Dict[str, torch.Tensor] = {}
    inputs = len(_indexed(state, r"backbone\.fpn\.inner_blocks\.(\d+)\."))
    levels = list(fpn_levels) if fpn_levels is not None else _fpn_levels_from_channels(
        state, "backbone.fpn.inner_blocks.", inputs)
    if len(levels) != inputs:
        raise CheckpointError(f"the file's FPN has {inputs} inputs but the model's has {len(levels)} ({levels})")
    for i, level in enumerate(levels):
        _move(state, out, f"backbone.fpn.inner_blocks.{i}.0.", f"backbone.fpn_lateral{level}.")
        _move(state, out, f"backbone.fpn.layer_blocks.{i}.0.", f"backbone.fpn_output{level}.")
    _move(state, out, "backbone.fpn.extra_blocks.", "backbone.top_block.")
    if single_level_backbone:
        _move(state, out, "backbone.bottom_up.", "backbone.")
    # RPN
    convs = sorted(_indexed(state, r"rpn\.head\.conv\.(\d+)\.0\."))
    for k in convs:
        _move(state, out, f"rpn.head.conv.{k}.0.",
              "proposal_generator.rpn_head.conv." + (f"conv{k}." if len(convs) > 1 else ""))
    move_anchor_outputs(state, out, ("rpn.head.cls_logits", "proposal_generator.rpn_head.objectness_logits"),
                         ("rpn.head.bbox_pred", "proposal_generator.rpn_head.anchor_deltas"), anchors, DETECTRON2)
    # box head: 4-D weights are convs, 2-D ones the fully connected layers, in order
    layers = _indexed(state, r"roi_heads\.box_head\.(\d+)\.")
    conv_layers = [i for i in sorted(layers) if f"roi_heads.box_head.{i}.0.weight" in state]
    fc_layers = [i for i in sorted(layers) if f"roi_heads.box_head.{i}.weight" in state]
    _conv_norm_tv_to_d2(state, out, "roi_heads.box_head.", "roi_heads.box_head.conv", conv_layers)
    for j, i in enumerate(fc_layers):
        _move(state, out, f"roi_heads.box_head.{i}.", f"roi_heads.box_head.fc{j + 1}.")
    _box_predictor_tv_to_d2(state, out)
    # mask head
    mask_layers = sorted(_indexed(state, r"roi_heads\.mask_head\.(\d+)\."))
    _conv_norm_tv_to_d2(state, out, "roi_heads.mask_head.", "roi_heads.mask_head.mask_fcn", mask_layers)
    _move(state, out, "roi_heads.mask_predictor.conv5_mask.", "roi_heads.mask_head.deconv.")
    for kind in ("weight", "bias"):
        key = f"roi_heads.mask_predictor.mask_fcn_logits.{kind}"
        if key in state:
            out[f"roi_heads.mask_head.predictor.{kind}"] = state.pop(key)[1:]  # no background map
    # RetinaNet
    _subnet_tv_to_d2(state, out, "head.classification_head.conv.", "head.cls_subnet.")
    _subnet_tv_to_d2(state, out, "head.regression_head.conv.", "head.bbox_subnet.")
    move_anchor_outputs(state, out, ("head.classification_head.cls_logits", "head.cls_score"),
                         ("head.regression_head.bbox_reg", "head.bbox_pred"), anchors, DETECTRON2)
    out.update(state)
    return out


def convert_detector_state(state: Mapping[str, torch.Tensor], to: str, anchors: Optional[AnchorLayout] = None,
                           **options) -> Dict[str, torch.Tensor]:
    """``state`` in the layout ``to`` (:data:`DETECTRON2` or :data:`TORCHVISION`); a state dict
    already in it comes back as it is, one in neither raises :class:`CheckpointError`."""
    if to not in LAYOUT_NAMES:
        raise ValueError(f"to must be {DETECTRON2!r} or {TORCHVISION!r}, got {to!r}")
    layout = detect_detector_layout(state)
    if layout is None:
        raise CheckpointError(f"not a detector of either engine ({describe_detector_file(state)})")
    if layout == to:
        return dict(state)
    if to == TORCHVISION:
        return detectron2_to_torchvision(state, anchors)
    return torchvision_to_detectron2(state, anchors, **options)


def _detectron2_file_for_torchvision_model(state: Mapping[str, torch.Tensor], model: nn.Module) -> bool:
    return detect_detector_layout(state) == DETECTRON2 and detect_detector_layout(model.state_dict()) == TORCHVISION


register_layout("Detectron2-engine detector", _detectron2_file_for_torchvision_model,
                lambda state, model: detectron2_to_torchvision(state, torchvision_anchor_layout(model)),
                with_model=True)
