"""Reading Res2Net checkpoints (official Res2Net-PretrainedModels ``.pth`` and timm state dicts).

Both use the same key layout as :class:`res2net_det.modeling.res2net.Res2Net`, so loading
is a check of names and shapes rather than a rename. The one rename is for torchvision's
ResNet checkpoints (``conv2``/``bn2`` are our ``convs.0``/``bns.0`` at scale 1), so that the
``resnet50`` baseline takes torchvision's weights. Every problem is reported by key.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["CheckpointError", "LoadReport", "read_state_dict", "load_weights", "describe_state_dict",
           "from_torchvision_resnet"]

_CLASSIFIER_PREFIXES = ("fc.",)


class CheckpointError(RuntimeError):
    """A checkpoint file that can't be read or doesn't fit the model."""


@dataclass
class LoadReport:
    """What :func:`load_weights` did."""

    path: str
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    skipped_classifier: List[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {self.path}"]
        if self.missing:
            lines.append(f"missing in checkpoint ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"unexpected in checkpoint ({len(self.unexpected)}): {', '.join(self.unexpected)}")
        if self.skipped_classifier:
            lines.append(
                "classifier not loaded (model has a different number of classes or none): "
                + ", ".join(self.skipped_classifier)
            )
        return "\n".join(lines)


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Reads a checkpoint file and returns a flat ``{key: tensor}`` state dict.

    Accepts a bare state dict, or one wrapped under ``state_dict`` / ``model`` (timm's and
    Detectron2's training checkpoints), with or without DataParallel's ``module.`` prefix.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"could not read checkpoint {path}: {type(e).__name__}: {e}. "
            "The file may be truncated (an interrupted download?) or not a PyTorch checkpoint."
        ) from e
    for wrapper in ("state_dict", "model", "model_state"):
        if isinstance(obj, Mapping) and wrapper in obj and isinstance(obj[wrapper], Mapping):
            obj = obj[wrapper]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"checkpoint {path} holds no state dict (got {type(obj).__name__})")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        state[key[len("module."):] if key.startswith("module.") else key] = value
    if not state:
        raise CheckpointError(f"checkpoint {path} holds no tensors")
    return state


_TORCHVISION_3X3 = re.compile(r"^(layer\d+\.\d+\.)(conv2|bn2)\.")


def from_torchvision_resnet(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Renames a torchvision ResNet state dict's block 3x3 conv keys to ours (scale 1).

    ``layerX.Y.conv2`` -> ``layerX.Y.convs.0`` and ``bn2`` -> ``bns.0``; everything else is
    already shared. A Res2Net state dict (no ``conv2`` keys) comes back unchanged.
    """
    def rename(key: str) -> str:
        return _TORCHVISION_3X3.sub(lambda m: m.group(1) + ("convs.0." if m.group(2) == "conv2" else "bns.0."), key)

    return {rename(k): v for k, v in state.items()}


def describe_state_dict(state: Mapping[str, torch.Tensor]) -> str:
    """A short guess of which Res2Net variant a state dict belongs to, for error messages."""
    try:
        blocks = [
            len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5)
        ]
        conv1 = state["layer1.0.conv1.weight"]
        conv3x3 = state["layer1.0.convs.0.weight"]
        split_width = conv3x3.shape[0]
        scale = conv1.shape[0] // split_width
        cardinality = split_width // conv3x3.shape[1]
        depth = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}.get(tuple(blocks), blocks)
        base_width = split_width // cardinality
        stem = "deep stem" if "conv1.0.weight" in state else "7x7 stem"
        groups = f", cardinality {cardinality}" if cardinality > 1 else ""
        return f"depth {depth}, {base_width}w x {scale}s{groups}, {stem}"
    except (KeyError, IndexError, ZeroDivisionError):
        return "not a Res2Net checkpoint (no layer1.0.conv1 / convs keys)"


def load_weights(model: nn.Module, path: str, strict: bool = False) -> LoadReport:
    """Loads an official Res2Net or timm checkpoint into ``model``.

    Raises :class:`CheckpointError` naming the first key whose shape differs. A classifier
    (``fc``) of another size, or one the model doesn't have, is skipped and reported, so
    ImageNet weights can start a model with other classes. With ``strict`` any missing or
    unexpected key raises too; otherwise they are logged.
    """
    state = from_torchvision_resnet(read_state_dict(path))
    own = model.state_dict()
    report = LoadReport(path=path)
    to_load: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        if key not in own:
            if key.startswith(_CLASSIFIER_PREFIXES):
                report.skipped_classifier.append(key)
            else:
                report.unexpected.append(key)
            continue
        if own[key].shape != value.shape:
            if key.startswith(_CLASSIFIER_PREFIXES):
                report.skipped_classifier.append(key)
                continue
            raise CheckpointError(
                f"checkpoint {path} does not fit this model: key {key!r} has shape "
                f"{tuple(value.shape)} in the checkpoint but {tuple(own[key].shape)} in the model. "
                f"The checkpoint looks like: {describe_state_dict(state)}; "
                f"the model is: {describe_state_dict(own)}."
            )
        to_load[key] = value
    report.missing = [
        k for k in own
        if k not in to_load and not k.endswith("num_batches_tracked") and not k.startswith(_CLASSIFIER_PREFIXES)
    ]
    report.missing += [k for k in own if k.startswith(_CLASSIFIER_PREFIXES) and k not in to_load]
    if strict and (report.missing or report.unexpected):
        raise CheckpointError(report.summary())
    model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    if report.missing or report.unexpected or report.skipped_classifier:
        logger.warning(report.summary())
    else:
        logger.info(report.summary())
    return report
