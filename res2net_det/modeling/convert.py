"""Backbone checkpoints -> detection checkpoints (``backbone.bottom_up.<official key>``).

Reads an official Res2Net-PretrainedModels ``.pth``, a timm state dict, torchvision's (or
timm's) ResNet-50 or one of our detection checkpoints, brings the keys to the official
Res2Net layout (which our :class:`Res2Net` uses) and writes what Detectron2's
``DetectionCheckpointer`` loads through ``MODEL.WEIGHTS`` with no name-matching heuristics and no
missing backbone key. The torchvision engine's backbone has the same ``bottom_up`` names.

Pure PyTorch: no engine is imported.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import safetensors.torch
import torch

from ..utils.io import atomic_path
from .anchor_layout import AnchorLayout
from .detector_keys import LAYOUT_NAMES, describe_detector_file, detect_detector_layout
from .detector_layouts import convert_detector_state
from .poolnet_checkpoints import detect_poolnet_layout, is_unused_official_key, official_poolnet_to_ours
from .res2net import Res2Net
from .variants import DEPTHS, resolve_name, variant_args
from .weights import CheckpointError, describe_state_dict, from_torchvision_resnet, infer_res2net_args, read_state_dict

__all__ = [
    "BACKBONE_PREFIX",
    "ConversionReport",
    "to_official_keys",
    "official_to_detectron2_resnet",
    "convert_to_detection_checkpoint",
    "convert_official_poolnet",
    "convert_file",
    "convert_detector_file",
]

BACKBONE_PREFIX = "backbone.bottom_up."

# (official Res2Net name, Detectron2 ResNet name) prefixes inside a scale-1 block and the stem,
# to compare with Detectron2's own ResNet (tests, benchmarks).
# Detectron2's BottleneckBlock keeps each norm inside its conv ("conv1.norm").
_D2_BLOCK_NAMES: List[Tuple[str, str]] = [
    ("conv1.weight", "conv1.weight"),
    ("bn1.", "conv1.norm."),
    ("convs.0.weight", "conv2.weight"),
    ("bns.0.", "conv2.norm."),
    ("conv3.weight", "conv3.weight"),
    ("bn3.", "conv3.norm."),
    ("downsample.0.weight", "shortcut.weight"),
    ("downsample.1.", "shortcut.norm."),
]
_D2_STEM_NAMES: List[Tuple[str, str]] = [("conv1.weight", "stem.conv1.weight"), ("bn1.", "stem.conv1.norm.")]
_OFFICIAL_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.(.+)$")


def _swap_prefix(name: str, pairs: List[Tuple[str, str]]) -> Optional[str]:
    for official, d2 in pairs:
        if name == official or (official.endswith(".") and name.startswith(official)):
            return d2 + name[len(official):]
    return None


def _detectron2_name(key: str) -> Optional[str]:
    m = _OFFICIAL_BLOCK.match(key)
    if m is None:
        return _swap_prefix(key, _D2_STEM_NAMES)
    renamed = _swap_prefix(m.group(3), _D2_BLOCK_NAMES)
    # official layer1..layer4 are Detectron2's res2..res5
    return None if renamed is None else f"res{int(m.group(1)) + 1}.{m.group(2)}.{renamed}"


def official_to_detectron2_resnet(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Renames a scale-1 (ResNet) state dict from official names to Detectron2's ``ResNet`` names.

    Only the plain ResNet layout has a Detectron2 counterpart (one 3x3 conv per block, 7x7 stem,
    conv shortcuts); ``fc`` and ``num_batches_tracked`` are dropped.
    """
    out = {}
    for key, value in state.items():
        if key.startswith("fc.") or key.endswith("num_batches_tracked"):
            continue
        new = _detectron2_name(key)
        if new is None:
            raise CheckpointError(
                f"key {key!r} has no Detectron2 ResNet counterpart; only scale-1 ResNets "
                "(one 3x3 conv per block, 7x7 stem) map to Detectron2's ResNet"
            )
        out[new] = value
    return out


def to_official_keys(state: Mapping[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], str]:
    """Brings a backbone state dict to the official Res2Net key layout.

    Returns ``(state, source)`` where ``source`` names the layout found: ``"official/timm"``,
    ``"torchvision/timm resnet"`` (``conv2``/``bn2`` become ``convs.0``/``bns.0``) or
    ``"detection checkpoint"`` (``backbone.bottom_up.*``; detection heads are dropped).
    """
    if any(k.startswith(BACKBONE_PREFIX) for k in state):
        return {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}, (
            "detection checkpoint"
        )
    if "stem.conv1.weight" in state:
        # Same shapes as ours but not always the same network: Detectron2's MSRA weights put the
        # stride in the 1x1 conv (STRIDE_IN_1X1) and take BGR input, which a rename can't tell.
        raise CheckpointError(
            "Detectron2-named ResNet weights (stem.*, res2..res5) are not converted: Detectron2's "
            "MSRA ResNets stride in the 1x1 conv and take BGR input, unlike ours; convert "
            "torchvision's resnet50 file instead"
        )
    if any(re.match(r"^layer\d+\.\d+\.conv2\.weight$", k) for k in state):
        return from_torchvision_resnet(state), "torchvision/timm resnet"
    return dict(state), "official/timm"


def _res2net_args(state: Mapping[str, torch.Tensor]) -> dict:
    """:func:`~res2net_det.modeling.weights.infer_res2net_args`, limited to the depths :class:`Res2Net` builds."""
    args = infer_res2net_args(state)
    if args["layers"] not in DEPTHS.values():
        raise CheckpointError(f"blocks per stage {args['layers']} match no supported depth ({sorted(DEPTHS)})")
    return args


def _check_variant(args: dict, variant: str, state: Mapping[str, torch.Tensor]) -> None:
    """Raises unless the architecture ``args`` inferred from ``state`` is ``variant``'s."""
    expected = variant_args(variant)
    expected.setdefault("cardinality", 1)
    expected.setdefault("deep_stem", False)
    expected.setdefault("avg_down", False)
    expected.setdefault("stem_width", 32)
    diff = {k: (args[k], expected[k]) for k in expected if k in args and args[k] != expected[k]}
    if diff:
        raise CheckpointError(
            f"the checkpoint is not a {resolve_name(variant)}: "
            + ", ".join(f"{k} is {got} in the file but {want} in the variant" for k, (got, want) in diff.items())
            + f" (the file looks like: {describe_state_dict(state)})"
        )


@dataclass
class ConversionReport:
    """What :func:`convert_to_detection_checkpoint` kept and dropped."""

    source: str
    architecture: str
    converted: List[str] = field(default_factory=list)
    dropped: Dict[str, str] = field(default_factory=dict)  # key -> why
    prefix: str = BACKBONE_PREFIX

    def summary(self) -> str:
        lines = [
            f"read a {self.source} checkpoint ({self.architecture}); "
            f"{len(self.converted)} backbone tensors -> {self.prefix}<key>, no backbone key missing"
        ]
        reasons: Dict[str, List[str]] = {}
        for key, why in self.dropped.items():
            reasons.setdefault(why, []).append(key)
        for why, keys in reasons.items():
            shown = ", ".join(keys[:4]) + (f", ... ({len(keys)} in all)" if len(keys) > 4 else "")
            lines.append(f"not converted: {shown}: {why}")
        lines.append(
            "left unloaded in a detector: FPN, RPN and ROI heads (not in an ImageNet backbone; "
            "they start from Detectron2's initialisation) and, with MODEL.RES2NET.DEFORM_ON_PER_STAGE, "
            "the offset convs *.conv_offset.* (zero-initialised: the network starts as the plain one)"
        )
        return "\n".join(lines)


def convert_to_detection_checkpoint(
    source, variant: Optional[str] = None, prefix: str = BACKBONE_PREFIX
) -> Tuple[dict, ConversionReport]:
    """Converts a backbone checkpoint into ``{"model": {"backbone.bottom_up.<key>": tensor}, ...}``.

    Args:
        source: a checkpoint path or weights name (``res2net://...``; errors from
            :func:`res2net_det.modeling.weights.read_state_dict` for missing, truncated or foreign
            files) or a state dict.
        variant: optional variant name (``"res2net50_26w_4s"``, ``"resnet50"``, ...) the file must
            be; a file of another architecture raises an error naming both.
        prefix: where the Res2Net sits in the model: a detector's ``backbone.bottom_up.``, the
            saliency and classification models' ``backbone.``.

    Every key the Res2Net backbone has must be in the file with the right shape, so
    ``MODEL.WEIGHTS`` then loads with no missing backbone key. The ImageNet classifier (``fc``)
    and batch norm step counters are dropped and reported; any other extra key is an error.
    """
    raw = read_state_dict(source) if isinstance(source, str) else dict(source)
    state, source_format = to_official_keys(raw)
    args = _res2net_args(state)
    if variant is not None:
        _check_variant(args, variant, state)
    with torch.device("meta"):  # shapes only, no memory
        reference = Res2Net(num_classes=0, norm="BN", **args).state_dict()

    report = ConversionReport(source=source_format, architecture=describe_state_dict(state), prefix=prefix)
    for key in raw:
        if key.startswith("fc."):
            report.dropped[key] = "ImageNet classifier; detection heads replace it"
    model: Dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            report.dropped[key] = "batch norm step counter; frozen batch norm has none and BN does not use it"
        elif key.startswith("fc.") or (source_format == "detection checkpoint" and key not in reference):
            continue
        elif key not in reference:
            unknown.append(key)
        elif reference[key].shape != value.shape:
            raise CheckpointError(
                f"key {key!r} has shape {tuple(value.shape)} but {tuple(reference[key].shape)} in a "
                f"Res2Net built from the file's own layout ({describe_state_dict(state)})"
            )
        else:
            model[prefix + key] = value.detach().clone()
    missing = [k for k in reference if not k.endswith("num_batches_tracked") and prefix + k not in model]
    if unknown or missing:
        raise CheckpointError(
            f"the checkpoint does not fit a Res2Net ({describe_state_dict(state)}): "
            + (f"unknown keys {unknown[:8]}" if unknown else "")
            + ("; " if unknown and missing else "")
            + (f"missing keys {missing[:8]}" if missing else "")
        )
    report.converted = sorted(model)
    checkpoint = {"model": model, "__author__": "res2net-det", "matching_heuristics": False}
    return checkpoint, report


@dataclass
class PoolNetConversionReport:
    """What :func:`convert_official_poolnet` did."""

    layout: str
    architecture: str
    converted: int
    dropped: List[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"read a {self.layout} checkpoint (backbone: {self.architecture}); {self.converted} tensors "
                 "in our PoolNetSaliency layout, for MODEL.WEIGHTS or predict_saliency.py --weights"]
        if self.dropped:
            lines.append(f"not converted ({len(self.dropped)}): {', '.join(self.dropped[:4])}"
                         f"{' ...' if len(self.dropped) > 4 else ''}: the backbone's ImageNet classifier (PoolNet "
                         "never runs it) and batch norm step counters")
        return "\n".join(lines)


def convert_official_poolnet(
    source, variant: Optional[str] = None, name: Optional[str] = None
) -> Tuple[dict, PoolNetConversionReport]:
    """The authors' released PoolNet (Res2Net-PoolNet or PoolNet's ResNet-50), a path or a state
    dict, as a checkpoint of our ``PoolNetSaliency`` (``{"model": state dict}``), which either
    engine loads with no key missing. ``variant`` checks the backbone; ``name`` is the file for messages."""
    name = name or (source if isinstance(source, str) else "the state dict")
    raw = read_state_dict(source) if isinstance(source, str) else dict(source)
    layout = detect_poolnet_layout(raw)
    if layout is None:
        raise CheckpointError(f"{name} is not the authors' PoolNet (no base.resnet.* / base.ppms_pre keys); "
                              f"first keys {sorted(raw)[:5]}")
    state = official_poolnet_to_ours(raw, name)
    backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    if variant is not None:
        _check_variant(_res2net_args(backbone), variant, backbone)
    report = PoolNetConversionReport(layout=layout, architecture=describe_state_dict(backbone),
                                     converted=len(state), dropped=sorted(k for k in raw if is_unused_official_key(k)))
    return {"model": {k: v.detach().clone() for k, v in state.items()}, "__author__": "res2net-det"}, report


def convert_file(src: str, dst: str, variant: Optional[str] = None):
    """Converts the checkpoint ``src`` (a path, or a weights name / URL, fetched first) and writes
    ``dst`` atomically (a partly written file never sits at ``dst``, so ``MODEL.WEIGHTS`` can't read
    a torn one): a detection checkpoint from a backbone, or our saliency checkpoint from the authors'
    released PoolNet (layout in the report). A ``dst`` ending in ``.safetensors`` holds the model's
    tensors in that format (no pickle at all), which every loader of the package reads too."""
    raw = read_state_dict(src)
    if detect_poolnet_layout(raw) is not None:
        checkpoint, report = convert_official_poolnet(raw, variant=variant, name=src)
    else:
        checkpoint, report = convert_to_detection_checkpoint(raw, variant=variant)
    _save_atomically(checkpoint, dst, src)
    return report


def _save_atomically(checkpoint: dict, dst: str, src: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with atomic_path(dst) as tmp:  # safetensors writes to a file name
        if dst.endswith(".safetensors"):
            safetensors.torch.save_file({k: v.contiguous() for k, v in checkpoint["model"].items()}, tmp,
                                        metadata={"format": "pt", "converted_from": os.path.basename(src)})
        else:
            torch.save(checkpoint, tmp)


@dataclass
class DetectorConversionReport:
    """What :func:`convert_detector_file` did."""

    source: str  # the file, in words (describe_detector_file)
    to: str
    tensors: int
    anchors: Optional[AnchorLayout]

    def summary(self) -> str:
        anchors = (f"; anchors {self.anchors.sizes} sizes x {self.anchors.ratios} ratios per location"
                   + (" (reordered)" if self.anchors.sizes > 1 and self.anchors.ratios > 1 else " (same order)")
                   if self.anchors else "")
        return (f"read {self.source}; wrote its {self.tensors} tensors in the {LAYOUT_NAMES[self.to]} layout "
                f"(MODEL.WEIGHTS of that engine){anchors}")


def convert_detector_file(src: str, dst: str, to: str, anchors: Optional[AnchorLayout] = None
                          ) -> DetectorConversionReport:
    """Converts a detector checkpoint of either engine (Faster / Mask R-CNN, RetinaNet) into the
    layout of ``to`` (``"detectron2"`` or ``"torchvision"``) and writes ``dst`` atomically, every
    tensor mapped (:mod:`res2net_det.modeling.detector_layouts`). ``anchors`` (sizes x ratios
    per location, from the model's config) is needed when the RPN or RetinaNet head has a
    number of anchors that could be several sizes x several ratios."""
    state = read_state_dict(src)
    layout = detect_detector_layout(state)
    if layout is None:
        raise CheckpointError(f"{src} is {describe_detector_file(state)}, not a detector checkpoint of either engine; "
                              "without --to, tools/convert_weights.py converts backbones")
    if layout == to:
        raise CheckpointError(f"{src} is already in the {LAYOUT_NAMES[to]} layout")
    try:
        converted = convert_detector_state(state, to, anchors)
    except CheckpointError as e:
        raise CheckpointError(f"{src}: {e}") from None
    report = DetectorConversionReport(describe_detector_file(state), to, len(converted), anchors)
    _save_atomically({"model": converted, "__author__": "res2net-det", "matching_heuristics": False}, dst, src)
    return report
