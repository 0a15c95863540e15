"""The anchors of one feature-map location, and their order in each engine.

Detectron2 lists a location's anchors size by size (all ratios of the first size, then the next
size), torchvision ratio by ratio, so the RPN's and RetinaNet's per-anchor outputs are permuted
when a level has several sizes *and* several ratios. :class:`AnchorLayout` (sizes x ratios) comes
from the model being loaded (:func:`torchvision_anchor_layout`, or Detectron2's cell anchors:
:func:`anchor_layout_from_cell_anchors`) or from the config; with one size or one ratio per level
(the shipped R-CNN configs) the order is the same. :func:`move_anchor_outputs` reorders a head's
per-anchor outputs for the key maps of :mod:`.detector_layouts`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import nn

from .detector_keys import TORCHVISION
from .weights import CheckpointError

__all__ = ["AnchorLayout", "anchor_layout_from_cell_anchors", "torchvision_anchor_layout", "move_anchor_outputs"]


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


def move_anchor_outputs(state, out, scores: Tuple[str, str], deltas: Tuple[str, str],
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
