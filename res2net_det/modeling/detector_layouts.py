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

Anchors: Detectron2 lists a location's anchors size by size (all ratios of the first size, then
the next size), torchvision ratio by ratio, so the RPN's and RetinaNet's per-anchor outputs are
permuted when a level has several sizes *and* several ratios. The converters need that
:class:`AnchorLayout` then (from the model being loaded, or from the config); with one size or
one ratio per level (the shipped R-CNN configs) the order is the same.

:func:`detectron2_to_torchvision` and :func:`torchvision_to_detectron2` convert a state dict;
``d2 -> tv -> d2`` gives back the original tensors (the torchvision background box rows, unused
by torchvision, are zeros). Loading a Detectron2-engine file into a torchvision-engine model with
:func:`res2net_det.modeling.weights.load_weights` converts it automatically (a registered layout);
the Detectron2 engine's checkpointer converts the other way.

:func:`unloaded_groups`, :func:`describe_detector_file` and :func:`check_fully_loaded` say which
parts of a detector a checkpoint left at their initialisation, in words ("FPN, RPN, box head"),
and what the file looks like, so that inference can refuse a half-loaded detector.

Pure PyTorch: no engine is imported.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

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

DETECTRON2 = "detectron2"
TORCHVISION = "torchvision"
#: How messages name each layout.
LAYOUT_NAMES = {DETECTRON2: "Detectron2-engine", TORCHVISION: "torchvision-engine"}

# Keys only one layout has (the shared backbone.bottom_up and roi_heads.box_predictor say nothing).
_D2_MARKERS = ("proposal_generator.", "backbone.fpn_lateral", "backbone.fpn_output", "backbone.top_block.",
               "roi_heads.box_head.fc", "roi_heads.box_head.conv", "roi_heads.mask_head.mask_fcn",
               "roi_heads.mask_head.deconv.", "roi_heads.mask_head.predictor.", "head.cls_subnet.",
               "head.bbox_subnet.", "head.cls_score.", "head.bbox_pred.")
_TV_MARKERS = ("rpn.head.", "backbone.fpn.", "roi_heads.mask_predictor.", "head.classification_head.",
               "head.regression_head.")
_TV_BOX_HEAD = re.compile(r"^roi_heads\.(box|mask)_head\.\d+\.")


def detect_detector_layout(keys: Iterable[str]) -> Optional[str]:
    """:data:`DETECTRON2`, :data:`TORCHVISION` or None (no detector key, or both kinds: not a
    detector of either engine) for the keys of a state dict or a model."""
    d2 = tv = False
    for key in keys:
        d2 = d2 or key.startswith(_D2_MARKERS)
        tv = tv or key.startswith(_TV_MARKERS) or bool(_TV_BOX_HEAD.match(key))
    if d2 != tv:
        return DETECTRON2 if d2 else TORCHVISION
    return None


# ---------------------------------------------------------------------------- anchors
@dataclass(frozen=True)
class AnchorLayout:
    """Anchors per location: ``sizes`` x ``ratios`` (of the first level; every level has as many)."""

    sizes: int
    ratios: int

    @property
    def count(self) -> int:
        return self.sizes * self.ratios


def anchor_layout_from_cell_anchors(cell: torch.Tensor) -> AnchorLayout:
    """The layout of Detectron2's cell anchors (``A x 4`` boxes around the origin, size by size):
    the number of distinct sizes (square roots of the areas) and of ratios."""
    w = cell[:, 2] - cell[:, 0]
    h = cell[:, 3] - cell[:, 1]
    sizes = torch.sqrt(w * h)
    distinct: List[float] = []
    for s in sizes.tolist():
        if not any(math.isclose(s, d, rel_tol=1e-3) for d in distinct):
            distinct.append(s)
    if len(cell) % len(distinct):
        raise ValueError(f"{len(cell)} anchors per location are not sizes x ratios ({len(distinct)} sizes)")
    return AnchorLayout(len(distinct), len(cell) // len(distinct))


def torchvision_anchor_layout(model: nn.Module) -> Optional[AnchorLayout]:
    """The anchor layout of a torchvision detector (its RPN's or RetinaNet's ``AnchorGenerator``)."""
    rpn = getattr(model, "rpn", None)
    generator = getattr(rpn, "anchor_generator", None) or getattr(model, "anchor_generator", None)
    if generator is None or not hasattr(generator, "sizes"):
        return None
    return AnchorLayout(len(generator.sizes[0]), len(generator.aspect_ratios[0]))


def _anchor_order(anchors: Optional[AnchorLayout], count: int, key: str, to: str) -> Optional[torch.Tensor]:
    """Index ``perm`` with ``target[a] = source[perm[a]]`` for the anchors of one location, or None
    when both engines order them alike."""
    if anchors is None:
        if any(count % f == 0 for f in range(2, int(math.isqrt(count)) + 1)):
            raise CheckpointError(
                f"{key} has {count} anchors per location, which can be several sizes x several aspect ratios, "
                "ordered differently by the two engines; give the anchor layout (the model's config: "
                "MODEL.ANCHOR_GENERATOR.SIZES / ASPECT_RATIOS; tools/convert_weights.py --config-file or --anchors)"
            )
        return None
    if anchors.count != count:
        raise CheckpointError(
            f"{key} has {count} anchors per location but the anchor layout has {anchors.sizes} sizes x "
            f"{anchors.ratios} ratios = {anchors.count}: the checkpoint was trained with other anchors"
        )
    if anchors.sizes == 1 or anchors.ratios == 1:
        return None
    s, r = torch.meshgrid(torch.arange(anchors.sizes), torch.arange(anchors.ratios), indexing="ij")
    d2_index = (s * anchors.ratios + r)  # [size, ratio] -> Detectron2's position
    tv_index = (r * anchors.sizes + s)  # [size, ratio] -> torchvision's position
    perm = torch.empty(count, dtype=torch.long)
    if to == TORCHVISION:
        perm[tv_index.flatten()] = d2_index.flatten()
    else:
        perm[d2_index.flatten()] = tv_index.flatten()
    return perm


def _permute_anchors(value: torch.Tensor, perm: Optional[torch.Tensor], per_anchor: int) -> torch.Tensor:
    """Reorders the output channels (dim 0) of a per-anchor conv: ``per_anchor`` rows per anchor."""
    if perm is None:
        return value
    rows = (perm[:, None] * per_anchor + torch.arange(per_anchor)[None, :]).flatten()
    return value[rows]


def _move_anchor_outputs(state, out, scores: Tuple[str, str], deltas: Tuple[str, str],
                         anchors: Optional[AnchorLayout], to: str) -> None:
    """Moves a head's per-anchor scores and box deltas (``(source, target)`` module names),
    reordering the anchors of a location for the layout ``to``."""
    if f"{deltas[0]}.weight" not in state:
        return
    count = state[f"{deltas[0]}.weight"].shape[0] // 4
    perm = _anchor_order(anchors, count, deltas[0], to)
    per_anchor = state[f"{scores[0]}.weight"].shape[0] // count  # 1 objectness, or one score per class
    for kind in ("weight", "bias"):
        out[f"{scores[1]}.{kind}"] = _permute_anchors(state.pop(f"{scores[0]}.{kind}"), perm, per_anchor)
        out[f"{deltas[1]}.{kind}"] = _permute_anchors(state.pop(f"{deltas[0]}.{kind}"), perm, 4)


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
    _move_anchor_outputs(state, out, (f"{rpn}objectness_logits", "rpn.head.cls_logits"),
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
    _move_anchor_outputs(state, out, ("head.cls_score", "head.classification_head.cls_logits"),
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
    _move_anchor_outputs(state, out, ("rpn.head.cls_logits", "proposal_generator.rpn_head.objectness_logits"),
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
    _move_anchor_outputs(state, out, ("head.classification_head.cls_logits", "head.cls_score"),
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


# ---------------------------------------------------------------------------- what is loaded
# (key prefix, group), first match wins; both layouts.
_GROUPS: Tuple[Tuple[str, str], ...] = (
    ("backbone.bottom_up.", "backbone"),
    ("backbone.fpn", "FPN"),
    ("backbone.top_block.", "FPN"),
    ("backbone.", "backbone"),
    ("rpn.", "RPN"),
    ("proposal_generator.", "RPN"),
    ("roi_heads.box_head.", "box head"),
    ("roi_heads.box_predictor.", "box predictor"),
    ("roi_heads.mask_", "mask head"),
    ("roi_heads.keypoint_", "keypoint head"),
    ("head.classification_head.", "RetinaNet classification head"),
    ("head.cls_", "RetinaNet classification head"),
    ("head.regression_head.", "RetinaNet box head"),
    ("head.bbox_", "RetinaNet box head"),
)
_HEAD_GROUPS = ("RPN", "box head", "box predictor", "RetinaNet classification head", "RetinaNet box head")


def group_of(key: str) -> str:
    """The part of a detector a key belongs to (``"FPN"``, ``"RPN"``, ``"box head"``, ...)."""
    for prefix, group in _GROUPS:
        if key.startswith(prefix):
            return group
    return key.split(".")[0]


def is_detector(keys: Iterable[str]) -> bool:
    """True for the keys of a detector (an RPN, RoI heads or RetinaNet head) of either engine."""
    return any(group_of(k) in _HEAD_GROUPS for k in keys)


def unloaded_groups(model_keys: Iterable[str], loaded: Iterable[str]) -> Dict[str, List[str]]:
    """``{group: [model keys]}`` of the model's tensors that ``loaded`` does not cover, in the
    model's order (batch norm step counters don't count)."""
    done = set(loaded)
    groups: Dict[str, List[str]] = {}
    for key in model_keys:
        if key not in done and not key.endswith("num_batches_tracked"):
            groups.setdefault(group_of(key), []).append(key)
    return groups


def _detector_kind(groups: Iterable[str]) -> str:
    groups = set(groups)
    if {"RetinaNet box head", "RetinaNet classification head"} & groups:
        return "RetinaNet"
    if "mask head" in groups:
        return "Mask R-CNN"
    if {"RPN", "box predictor"} & groups:
        return "Faster R-CNN"
    return "detector (" + ", ".join(sorted(groups)) + ")"


def describe_detector_file(keys: Iterable[str]) -> str:
    """What a checkpoint's keys look like, in words, for error messages: a detector of one engine's
    layout (Faster R-CNN, Mask R-CNN, RetinaNet), a backbone-only file, another task's model."""
    keys = [k for k in keys if not k.endswith("num_batches_tracked")]
    layout = detect_detector_layout(keys)
    if layout is not None or is_detector(keys):
        where = f" in the {LAYOUT_NAMES[layout]} layout" if layout else ""
        return f"a {_detector_kind(group_of(k) for k in keys)}{where}"
    top = {k.split(".")[0] for k in keys}
    if keys and all(k.startswith("backbone.bottom_up.") for k in keys) or "layer1" in top and "backbone" not in top:
        return ("a backbone-only Res2Net file (ImageNet weights or a tools/convert_weights.py output: "
                "no FPN, RPN or heads)")
    if {"guidance", "aggregate"} & top:
        return "a PoolNet saliency model (MODEL.META_ARCHITECTURE PoolNetSaliency)"
    if top == {"backbone"} and any(k.startswith("backbone.fc.") for k in keys):
        return "a Res2Net classifier (MODEL.META_ARCHITECTURE Res2NetClassifier)"
    return f"not a detector (keys like {sorted(keys)[:3]})"


def partial_load_note(model_keys: Sequence[str], loaded: Iterable[str], file_keys: Iterable[str],
                      path: str) -> Optional[str]:
    """One log line for training from a checkpoint that leaves parts of a detector unloaded (an
    ImageNet backbone, say): which parts start from their initialisation, and what the file is.
    None when everything is loaded or the model is no detector."""
    model_keys = list(model_keys)
    groups = unloaded_groups(model_keys, loaded) if is_detector(model_keys) else {}
    if not groups:
        return None
    return (f"{path} is {describe_detector_file(file_keys)}: the {', '.join(groups)} of this "
            f"{_detector_kind(group_of(k) for k in model_keys)} ({sum(map(len, groups.values()))} tensors) "
            "start from their initialisation")


def check_fully_loaded(model_keys: Sequence[str], loaded: Iterable[str], file_keys: Iterable[str], path: str,
                       mismatched: Iterable[str] = (), allow_hint: str = "MODEL.WEIGHTS_ALLOW_PARTIAL True") -> None:
    """Raises :class:`CheckpointError` when ``loaded`` leaves any tensor of a detector unset (for
    inference: a half-loaded detector gives meaningless predictions), naming the groups left at
    their initialisation, how many tensors, which of them the file has with another shape
    (``mismatched``), and what the file looks like; ``allow_hint`` is the setting that runs it
    anyway. Models that are not detectors pass (their tasks check their own weights)."""
    model_keys = list(model_keys)
    if not is_detector(model_keys):
        return
    groups = unloaded_groups(model_keys, loaded)
    if not groups:
        return
    total = sum(len(v) for v in groups.values())
    first = next(iter(groups.values()))[0]
    own = set(model_keys)
    mismatched = [k for k in mismatched if k in own]
    shapes = (f"; {len(mismatched)} of them have another shape in the file (e.g. {mismatched[0]}: another number "
              "of classes or another head)") if mismatched else ""
    raise CheckpointError(
        f"{path} leaves the {', '.join(groups)} of this {_detector_kind(group_of(k) for k in model_keys)} "
        f"unloaded ({total} tensors, e.g. {first}{shapes}); the file looks like {describe_detector_file(file_keys)}. "
        "A half-loaded detector's predictions are meaningless, so it is not run. Give the checkpoint of a "
        f"trained detector of this config (either engine's), or set {allow_hint} to run it anyway."
    )
