"""Detector state-dict keys in words: which engine's layout a checkpoint is in, which part of a
detector each key belongs to, and what a checkpoint leaves unloaded.

:func:`detect_detector_layout` tells the Detectron2 engine's keys from the torchvision engine's
(the table of both: :mod:`.detector_layouts`). :func:`group_of` names the part of a key ("FPN",
"RPN", "box head", ...); :func:`unloaded_groups`, :func:`describe_detector_file`,
:func:`partial_load_note` and :func:`check_fully_loaded` say which parts a checkpoint left at their
initialisation and what the file looks like, so that inference can refuse a half-loaded detector.

Pure PyTorch: no engine is imported.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .weights import CheckpointError

__all__ = [
    "DETECTRON2",
    "TORCHVISION",
    "LAYOUT_NAMES",
    "detect_detector_layout",
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
