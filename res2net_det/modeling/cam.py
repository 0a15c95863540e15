"""Class activation maps for our classifiers and torchvision's, through the ``grad-cam`` library.

* :func:`build_classifier` / :func:`parse_model_spec`: a Res2Net from :func:`res2net_det.create_model`
  or any torchvision classifier (``"torchvision:resnet50"``), optionally with a checkpoint.
* :func:`default_target_layer` / :func:`resolve_target_layer`: the layer a CAM reads, by module name.
* :class:`CamExtractor`: ``(images, classes) -> maps in [0, 1]`` for one model and one method.
* :class:`DetectorCamExtractor`: maps of a torchvision-style Faster R-CNN per FPN level and
  combined, EigenCAM on the features or a gradient method on the detections' box scores
  (the library's ``FasterRCNNBoxScoreTarget``).

The CAM methods themselves are the library's (``pytorch_grad_cam``); this module only names
them and picks layers.
"""
from __future__ import annotations

import difflib
import json
import os
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from torch import nn

from ..utils.io import read_json_file
from .res2net import create_model
from .weights import load_weights

__all__ = [
    "NameNotFoundError",
    "CAM_METHODS",
    "cam_method",
    "build_classifier",
    "parse_model_spec",
    "save_model_card",
    "default_target_layer",
    "resolve_target_layer",
    "CamExtractor",
    "align_cam_to_input",
    "DetectorCamExtractor",
    "COMBINED",
]


class NameNotFoundError(KeyError):
    """An unknown method, model or layer name; the message lists the valid or close names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


def _method_table() -> Dict[str, type]:
    import pytorch_grad_cam as pgc

    return {
        "gradcam": pgc.GradCAM,
        "gradcam++": pgc.GradCAMPlusPlus,
        "xgradcam": pgc.XGradCAM,
        "scorecam": pgc.ScoreCAM,
        "layercam": pgc.LayerCAM,
        "eigencam": pgc.EigenCAM,
        "eigengradcam": pgc.EigenGradCAM,
        "hirescam": pgc.HiResCAM,
        "ablationcam": pgc.AblationCAM,
        # Random channel weights: a sanity floor for the metrics.
        "randomcam": pgc.RandomCAM,
    }


#: Canonical method names (lower case, no dashes); :func:`cam_method` also accepts "Grad-CAM++" etc.
CAM_METHODS: Tuple[str, ...] = (
    "gradcam", "gradcam++", "xgradcam", "scorecam", "layercam", "eigencam",
    "eigengradcam", "hirescam", "ablationcam", "randomcam",
)


def _canonical_method(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "").replace("plusplus", "++")


def cam_method(name: str) -> type:
    """The ``pytorch_grad_cam`` class for a method name such as ``"Grad-CAM++"`` or ``"scorecam"``."""
    key = _canonical_method(name)
    table = _method_table()
    if key not in table:
        raise NameNotFoundError(f"unknown CAM method {name!r}; available: {', '.join(CAM_METHODS)}")
    return table[key]


# ---------------------------------------------------------------------------- models
def build_classifier(
    name: str, weights: Optional[str] = None, num_classes: int = 1000, **kwargs
) -> nn.Module:
    """A classifier by name: a Res2Net variant (:func:`res2net_det.create_model`, ``kwargs`` go
    to :class:`~res2net_det.modeling.res2net.Res2Net`) or ``"torchvision:<name>"`` for a
    torchvision classifier such as ``"torchvision:resnet50"``, the baseline.

    ``weights`` is a checkpoint path; a classifier head of another size is skipped on load.
    """
    if name.startswith("torchvision:"):
        import torchvision

        tv_name = name.split(":", 1)[1]
        if tv_name not in torchvision.models.list_models(module=torchvision.models):
            close = difflib.get_close_matches(tv_name, torchvision.models.list_models(module=torchvision.models))
            raise NameNotFoundError(f"unknown torchvision classifier {tv_name!r}; close names: {close}")
        model = torchvision.models.get_model(tv_name, weights=None, num_classes=num_classes, **kwargs)
        if weights is not None:
            load_weights(model, weights)
        return model
    return create_model(name, weights=weights, num_classes=num_classes, **kwargs)


def parse_model_spec(spec: str, num_classes: int = 1000) -> Tuple[str, nn.Module]:
    """``(label, model)`` for a command-line model spec.

    A spec is ``NAME`` (random weights), ``NAME=WEIGHTS.pth``, or the path of a JSON model card
    ``{"name": ..., "weights": ..., "num_classes": ..., "kwargs": {...}, "label": ...}`` (what
    :func:`save_model_card` writes; a relative ``weights`` path
    is relative to the card).
    """
    if spec.endswith(".json"):
        card = read_json_file(spec, "model card")
        if "name" not in card:
            raise ValueError(f"model card {spec} has no 'name'")
        weights = card.get("weights")
        if weights is not None and not os.path.isabs(weights):
            weights = os.path.join(os.path.dirname(os.path.abspath(spec)), weights)
        model = build_classifier(card["name"], weights=weights, num_classes=card.get("num_classes", num_classes),
                                 **card.get("kwargs", {}))
        return card.get("label", os.path.splitext(os.path.basename(spec))[0]), model
    name, _, weights = spec.partition("=")
    return name, build_classifier(name, weights=weights or None, num_classes=num_classes)


# ---------------------------------------------------------------------------- target layers
def save_model_card(
    path: str, model: nn.Module, name: str, num_classes: int, kwargs: Optional[dict] = None,
    label: Optional[str] = None, extra: Optional[dict] = None,
) -> str:
    """Saves ``model``'s state dict next to a JSON model card that
    :func:`res2net_det.modeling.cam.parse_model_spec` reads back; returns the card's path.

    ``path`` is the card (``*.json``); the weights go to the same name with ``.pth``.
    """
    if not path.endswith(".json"):
        raise ValueError(f"a model card path ends with .json, got {path}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    weights = os.path.splitext(path)[0] + ".pth"
    torch.save(model.state_dict(), weights)
    card = {"name": name, "weights": os.path.basename(weights), "num_classes": num_classes,
            "kwargs": kwargs or {}, "label": label or os.path.splitext(os.path.basename(path))[0]}
    card.update(extra or {})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(card, f, indent=1)
    return path


def default_target_layer(model: nn.Module) -> str:
    """The module name a CAM reads by default: the last block of ``layer4``.

    That is the last residual block (its output, after the residual addition and ReLU) for both
    :class:`~res2net_det.modeling.res2net.Res2Net` and torchvision's ResNets, the layer the
    Grad-CAM paper and the Res2Net paper's figure use.
    """
    layer4 = getattr(model, "layer4", None)
    if isinstance(layer4, nn.Sequential) and len(layer4) > 0:
        return f"layer4.{len(layer4) - 1}"
    raise ValueError(
        f"no default CAM target layer for {type(model).__name__} (it has no layer4); "
        f"pass one by name, e.g. one of: {', '.join(_block_names(model)[-5:])}"
    )


def _block_names(model: nn.Module) -> List[str]:
    """Names of modules at most two levels deep (stages and blocks), in order."""
    return [n for n, _ in model.named_modules() if n and n.count(".") <= 1]


def resolve_target_layer(model: nn.Module, name: Optional[str] = None) -> nn.Module:
    """The module called ``name`` (default: :func:`default_target_layer`).

    An unknown name raises :class:`NameNotFoundError` (a ``KeyError``) listing close names and
    the valid stage and block names.
    """
    if name is None:
        name = default_target_layer(model)
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=5, cutoff=0.5)
    raise NameNotFoundError(
        f"{type(model).__name__} has no module named {name!r}. "
        + (f"Close names: {', '.join(close)}. " if close else "")
        + f"Stages and blocks: {', '.join(_block_names(model))}"
    )


# ---------------------------------------------------------------------------- extraction
def align_cam_to_input(cam: np.ndarray, feature_size: Tuple[int, int]) -> np.ndarray:
    """Moves a CAM upsampled by plain image resizing to where its features look.

    In a CNN whose convs and pools pad symmetrically ("same" padding, odd kernels), feature
    cell ``i`` of a stride-``s`` map is centred on input pixel ``s * i``; resizing the map
    (``cv2.resize``, what the ``grad-cam`` library and the WSOL papers' code do) puts it at
    ``s * i + (s - 1) / 2`` instead, so every map lands half a stride right of and below the
    evidence: 7.5 pixels at stride 16, 15.5 at stride 32 (ResNet-50 at 224 px). This shifts
    the map back by ``(s - 1) / 2`` (bilinear, edges repeated) and rescales it to [0, 1].
    """
    h, w = cam.shape
    shift_y = (h / feature_size[0] - 1) / 2
    shift_x = (w / feature_size[1] - 1) / 2
    matrix = np.float32([[1, 0, -shift_x], [0, 1, -shift_y]])
    moved = cv2.warpAffine(cam, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    low, high = float(moved.min()), float(moved.max())
    return (moved - low) / (high - low) if high > low else np.zeros_like(moved)


class CamExtractor:
    """Class activation maps of one model with one method.

    Args:
        model: a classifier returning ``(N, classes)`` logits.
        method: a name accepted by :func:`cam_method`.
        target_layers: module names (default: :func:`default_target_layer`); several are averaged.
        batch_size: images per forward pass for Score-CAM / Ablation-CAM's masked copies.
        align_to_input: shift each upsampled map by ``-(stride - 1) / 2`` pixels so it sits
            on the evidence (see :func:`align_cam_to_input`). False gives the library's plain
            upsampling, the protocol of published WSOL numbers. With several target layers the
            first one's stride is used.
        upsample: False returns each raw map at its target layer's resolution (the method's
            map after the library's ReLU, not scaled, resized or aligned), for evaluation
            protocols that resize maps their own way
            (:func:`res2net_det.evaluation.wsol_scoremaps.resize_scoremap`); needs one target layer.

    ``extractor(images, classes)`` returns ``(N, H, W)`` float32 maps, each scaled to [0, 1]
    (the library's min-max scaling) at the input's resolution; ``last_logits`` keeps the
    logits of that call's forward pass. Call :meth:`close` (or use ``with``) to remove the
    hooks from the model.
    """

    def __init__(
        self,
        model: nn.Module,
        method: str,
        target_layers: Optional[Union[str, Sequence[str]]] = None,
        batch_size: int = 32,
        align_to_input: bool = True,
        upsample: bool = True,
    ) -> None:
        if isinstance(target_layers, str) or target_layers is None:
            target_layers = [target_layers]
        if not upsample and len(target_layers) != 1:
            raise ValueError(f"maps at the feature resolution need one target layer, got {list(target_layers)}")
        self.method = _canonical_method(method)
        self.layer_names = [n if n is not None else default_target_layer(model) for n in target_layers]
        layers = [resolve_target_layer(model, n) for n in self.layer_names]
        self.model = model
        self.cam = cam_method(method)(model=model, target_layers=layers)
        self.cam.batch_size = batch_size  # read by ScoreCAM and AblationCAM
        self.align_to_input = align_to_input and upsample
        self.upsample = upsample
        self._raw: List[np.ndarray] = []
        if not upsample:
            # Keep the library's map before its float32 min-max scaling and resize (after its
            # ReLU, as the library computes it): evaluation protocols start from that raw map.
            compute = self.cam.get_cam_image

            def keep_raw(*args, **kwargs):
                cam = compute(*args, **kwargs)
                self._raw.append(np.maximum(cam, 0))
                return cam

            self.cam.get_cam_image = keep_raw

    def __call__(self, images: torch.Tensor, classes: Sequence[int]) -> np.ndarray:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        targets = [ClassifierOutputTarget(int(c)) for c in classes]
        self._raw.clear()
        with torch.enable_grad():
            maps = self.cam(input_tensor=images, targets=targets)
        # The logits of the same forward pass, so callers need not run the model again.
        self.last_logits = self.cam.outputs.detach()
        if not self.upsample:
            return np.asarray(self._raw[-1], dtype=np.float32)
        maps = np.asarray(maps, dtype=np.float32)
        if self.align_to_input:
            activations = self.cam.activations_and_grads.activations
            if activations:  # the stride of the (first) target layer
                feature_size = tuple(activations[0].shape[-2:])
                maps = np.stack([align_cam_to_input(m, feature_size) for m in maps])
        return maps

    def close(self) -> None:
        self.cam.activations_and_grads.release()

    def __enter__(self) -> "CamExtractor":
        return self

    def __exit__(self, *exc) -> None:
        # Unlike the library's own __exit__, never swallow an exception.
        self.close()


# ---------------------------------------------------------------------------- detectors
#: The key of the map averaged over every level.
COMBINED = "combined"


class _LevelTaps(nn.Module):
    """The detector's backbone with an identity module after each output level: a module per
    level is what the CAM library hooks (FPN levels such as the max-pooled top one are no
    module's output)."""

    def __init__(self, backbone: nn.Module, levels: Sequence[str]) -> None:
        super().__init__()
        self.inner = backbone
        self.taps = nn.ModuleDict({level: nn.Identity() for level in levels})
        self.out_channels = getattr(backbone, "out_channels", None)

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        features = self.inner(x)
        self.last = OrderedDict((k, self.taps[k](v) if k in self.taps else v) for k, v in features.items())
        return self.last


class _BatchedDetector(nn.Module):
    """``(N, 3, H, W) -> [{"boxes", "labels", "scores"}]``: torchvision's detection call, what the
    library's detection targets read, for torchvision's R-CNNs and the torchvision engine's
    (whose own ``forward`` takes Detectron2's dicts)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor):
        from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

        outputs = GeneralizedRCNN.forward(self.detector, list(images))
        if torch.is_grad_enabled():
            # A level no detection is pooled from (the max-pooled top level feeds only the RPN,
            # whose proposals are detached) would get no gradient at all, and the library fails on
            # a missing one: tie every level to the scores with weight 0, so its gradient is 0.
            anchor = sum(f.sum() for f in self.detector.backbone.last.values()) * 0.0
            outputs = [dict(o, scores=o["scores"] + anchor) for o in outputs]
        return outputs


class DetectorCamExtractor:
    """Class activation maps of a Faster R-CNN's feature levels, through the ``grad-cam`` library.

    Works on torchvision's ``GeneralizedRCNN`` family (:func:`res2net_det.modeling.detection.fasterrcnn_res2net_fpn`,
    the torchvision engine's models, torchvision's own). Each level the backbone returns (FPN
    ``p2`` ... and the max-pooled top level) is a target layer of its own library call; the
    combined map is their mean, scaled as the library combines layers. (One call with every level
    as a target layer would be cheaper, but the library pairs the i-th activation with the i-th
    gradient to arrive in the backward pass, and a detector's levels do not send their gradients
    back in the order they were computed: Grad-CAM would weight one level's features with
    another's gradients.)

    Args:
        model: the detector, in eval mode while used.
        method: a name of :func:`cam_method`: ``"eigencam"`` (the first principal component of a
            level's features; no target) or a gradient method such as ``"gradcam"``, whose target is
            the sum over the given boxes of (IoU + score) of the best-matching detection of the
            same class (``FasterRCNNBoxScoreTarget``).
        levels: level names (default: every level of the backbone's output).
        align_to_input: shift each level's upsampled map by half its stride onto the evidence
            (:func:`align_cam_to_input`), before the combined mean.
        iou_threshold: the target's IoU for a detection to count as the box's.

    ``extractor(image, boxes, labels)`` takes one image as the detector takes it (``3 x H x W``
    float, the model's scale and channel order) and the boxes / labels (the detector's own label
    space) the target scores; returns ``{level: H x W map in [0, 1], ..., "combined": ...}``; a
    level the target does not reach (no gradient, or none positive) gives zeros.
    ``extractor.detect(image)`` runs the detector (no gradient): its boxes, labels and scores.
    """

    def __init__(self, model: nn.Module, method: str, levels: Optional[Sequence[str]] = None,
                 align_to_input: bool = True, iou_threshold: float = 0.5) -> None:
        if not hasattr(model, "backbone") or not hasattr(model, "roi_heads"):
            raise TypeError(f"{type(model).__name__} is not a torchvision-style R-CNN (no backbone / roi_heads)")
        self.model = model
        self.method = _canonical_method(method)
        self.align_to_input = align_to_input
        self.iou_threshold = iou_threshold
        known = list(getattr(model.backbone, "out_features", []) or [])
        if levels is None:
            if not known:
                raise ValueError(f"{type(model.backbone).__name__} does not list its output levels (out_features); "
                                 "pass levels=[...]")
            levels = known
        unknown = [lv for lv in levels if known and lv not in known]
        if unknown:
            raise NameNotFoundError(f"unknown detector levels {unknown}; the backbone returns {known}")
        self.levels = list(levels)
        self._backbone = model.backbone
        model.backbone = _LevelTaps(self._backbone, self.levels)
        self._runner = _BatchedDetector(model)
        method_class = cam_method(method)
        self.cams = OrderedDict((lv, method_class(model=self._runner, target_layers=[model.backbone.taps[lv]]))
                                for lv in self.levels)
        self.uses_gradients = next(iter(self.cams.values())).uses_gradients

    @torch.no_grad()
    def detect(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        self.model.eval()
        return {k: v.detach() for k, v in self._runner(image[None])[0].items()}

    def __call__(self, image: torch.Tensor, boxes, labels) -> Dict[str, np.ndarray]:
        from pytorch_grad_cam.utils.image import scale_cam_image
        from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

        self.model.eval()
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = [int(v) for v in np.asarray(labels).reshape(-1)]
        if self.uses_gradients and not len(boxes):
            raise ValueError("a gradient CAM of a detector needs at least one box to score (no detection?)")
        target = FasterRCNNBoxScoreTarget(labels=labels, bounding_boxes=boxes, iou_threshold=self.iou_threshold)
        maps: "OrderedDict[str, np.ndarray]" = OrderedDict()
        for level, cam in self.cams.items():
            with torch.enable_grad():
                level_map = np.asarray(cam(input_tensor=image[None].float(), targets=[target])[0], np.float32)
            if self.align_to_input:
                level_map = align_cam_to_input(level_map, tuple(cam.activations_and_grads.activations[0].shape[-2:]))
            maps[level] = level_map
        # the library's combination of layers: the mean of the scaled maps, scaled
        maps[COMBINED] = scale_cam_image(np.mean(list(maps.values()), axis=0)[None])[0].astype(np.float32)
        return maps

    def close(self) -> None:
        for cam in self.cams.values():
            cam.activations_and_grads.release()
        self.model.backbone = self._backbone

    def __enter__(self) -> "DetectorCamExtractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
