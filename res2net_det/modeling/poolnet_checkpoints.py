"""The authors' PoolNet checkpoints: their key layouts mapped to ours and back.

Whole-model state dicts the loaders recognise besides ours, by their module trees: Res2Net-PoolNet
(Res2Net/Res2Net-PoolNet, ``networks/poolnet_res2net.py``) and PoolNet's ResNet-50
(backseason/PoolNet, ``networks/poolnet.py``; its backbone blocks name the 3x3 conv
``conv2``/``bn2``). :func:`detect_poolnet_layout` tells them apart, :func:`official_poolnet_to_ours`
and :func:`ours_to_official_poolnet` map the keys; :data:`OFFICIAL_LAYOUT_CONFIGS` names the config
of this repository that builds each network. What a configured model must match before their
weights load into it, and the registration with the weight loader: :mod:`.saliency`.
"""
from __future__ import annotations

import re
from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch

from .weights import CheckpointError

__all__ = [
    "LAYOUT_RES2NET_POOLNET",
    "LAYOUT_RESNET_POOLNET",
    "OFFICIAL_LAYOUT_CONFIGS",
    "OFFICIAL_LAYOUT_INPUT",
    "detect_poolnet_layout",
    "is_unused_official_key",
    "official_poolnet_to_ours",
    "ours_to_official_poolnet",
]

LAYOUT_RES2NET_POOLNET = "Res2Net-PoolNet (Res2Net authors' release)"
LAYOUT_RESNET_POOLNET = "PoolNet ResNet-50 (PoolNet authors' release)"

# (authors' prefix, our prefix): their PoolNet module tree -> ours.
_OFFICIAL_PREFIXES: Tuple[Tuple[str, str], ...] = (
    ("base.resnet.", "backbone."),
    ("base.ppms_pre.", "guidance.reduce."),
    ("base.ppms.", "guidance.branches."),
    ("base.ppm_cat.", "guidance.fuse."),
    ("base.infos.", "guidance.guides."),
    ("convert.convert0.", "convert."),
    ("deep_pool.", "aggregate."),
    ("score.score.", "score."),
)
# (pattern, replacement) applied after the prefix swap: FAM's last conv, and the ResNet-50 layout's 3x3.
_OFFICIAL_FAM_FUSE = (re.compile(r"^(aggregate\.\d+\.)conv_sum_c\."), r"\1conv_fuse.")
_OURS_FAM_FUSE = (re.compile(r"^(deep_pool\.\d+\.)conv_fuse\."), r"\1conv_sum_c.")
_OFFICIAL_RESNET_3X3 = (re.compile(r"^(backbone\.layer\d+\.\d+\.)(conv2|bn2)\."),
                        lambda m: m.group(1) + ("convs.0." if m.group(2) == "conv2" else "bns.0."))
_OURS_RESNET_3X3 = (re.compile(r"^(base\.resnet\.layer\d+\.\d+\.)(convs|bns)\.0\."),
                    lambda m: m.group(1) + ("conv2." if m.group(2) == "convs" else "bn2."))
# Kept out of our layout: the ImageNet classifier their Res2Net carries but PoolNet never runs,
# and batch norm step counters (unused at inference and by frozen batch norm).
_OFFICIAL_UNUSED = re.compile(r"^base\.resnet\.fc\.|num_batches_tracked$")


def is_unused_official_key(key: str) -> bool:
    """True for the authors' keys that our layout leaves out (``_OFFICIAL_UNUSED``)."""
    return _OFFICIAL_UNUSED.search(key) is not None


def detect_poolnet_layout(state: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The authors' layout a whole-model state dict is in (:data:`LAYOUT_RES2NET_POOLNET` or
    :data:`LAYOUT_RESNET_POOLNET`), or None (ours, a backbone, or anything else)."""
    if "base.ppms_pre.weight" not in state or not any(k.startswith("base.resnet.layer1.") for k in state):
        return None
    if any(re.match(r"^base\.resnet\.layer\d+\.\d+\.conv2\.weight$", k) for k in state):
        return LAYOUT_RESNET_POOLNET
    return LAYOUT_RES2NET_POOLNET


def _swap_prefix(key: str, pairs: Sequence[Tuple[str, str]]) -> Optional[str]:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def official_poolnet_to_ours(state: Mapping[str, torch.Tensor],
                             source: str = "the state dict") -> Dict[str, torch.Tensor]:
    """The authors' PoolNet state dict (either layout of :func:`detect_poolnet_layout`) in our
    :class:`PoolNetSaliency` key layout; the tensors themselves are shared, not copied.

    ``base.resnet.fc.*`` and ``num_batches_tracked`` are left out (see ``_OFFICIAL_UNUSED``).
    Raises :class:`CheckpointError` naming ``source`` and the keys that belong to no part.
    """
    resnet = detect_poolnet_layout(state) == LAYOUT_RESNET_POOLNET
    out: Dict[str, torch.Tensor] = {}
    foreign = []
    for key, value in state.items():
        if is_unused_official_key(key):
            continue
        new = _swap_prefix(key, _OFFICIAL_PREFIXES)
        if new is None:
            foreign.append(key)
            continue
        new = _OFFICIAL_FAM_FUSE[0].sub(_OFFICIAL_FAM_FUSE[1], new)
        if resnet:
            new = _OFFICIAL_RESNET_3X3[0].sub(_OFFICIAL_RESNET_3X3[1], new)
        out[new] = value
    if foreign:
        raise CheckpointError(
            f"{source} looks like the authors' PoolNet (base.resnet.*, base.ppms_pre) but {len(foreign)} keys "
            f"belong to none of its parts, first {sorted(foreign)[:5]}"
        )
    return out


def ours_to_official_poolnet(state: Mapping[str, torch.Tensor], resnet_layout: bool = False) -> Dict[str, torch.Tensor]:
    """Our :class:`PoolNetSaliency` state dict in the authors' layout (the inverse of
    :func:`official_poolnet_to_ours`; ``resnet_layout`` names the 3x3 convs ``conv2``/``bn2``
    as PoolNet's ResNet-50 does). Our normalisation buffers have no counterpart and are left out."""
    back = [(ours, theirs) for theirs, ours in _OFFICIAL_PREFIXES]
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = _swap_prefix(key, back)
        if new is None:
            raise CheckpointError(f"key {key!r} is no part of PoolNetSaliency")
        new = _OURS_FAM_FUSE[0].sub(_OURS_FAM_FUSE[1], new)
        if resnet_layout:
            new = _OURS_RESNET_3X3[0].sub(_OURS_RESNET_3X3[1], new)
        out[new] = value
    return out


#: (INPUT.FORMAT, MODEL.PIXEL_MEAN, MODEL.PIXEL_STD) of each authors' network: what a config could set
#: otherwise without changing a tensor shape.
OFFICIAL_LAYOUT_INPUT = {
    # Res2Net-PoolNet: RGB, ImageNet mean/std (dataset/dataset.py load_image_test)
    LAYOUT_RES2NET_POOLNET: ("RGB", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
    # PoolNet: BGR as OpenCV reads it, Caffe mean, no std
    LAYOUT_RESNET_POOLNET: ("BGR", (104.00699, 116.66877, 122.67892), (1.0, 1.0, 1.0)),
}


# The config of this repository that builds each of the authors' networks.
OFFICIAL_LAYOUT_CONFIGS = {
    LAYOUT_RES2NET_POOLNET: "configs/sod/poolnet_r2_50_duts.yaml",
    LAYOUT_RESNET_POOLNET: "configs/sod/poolnet_r_50_released.yaml",
}
