"""Weights in Detectron2: a ``PathHandler`` for Detectron2's ``PathManager`` and the checkpointer
of our trainers.

* :class:`Res2NetWeightsHandler` makes ``res2net://``, ``timm://`` and ``torchvision://`` paths
  (:mod:`res2net_det.modeling.pretrained`) work in ``detectron2.utils.file_io.PathManager``, as
  Detectron2 registers ``detectron2://``: the file is fetched once into the cache (checksummed)
  and converted into the detector layout (``backbone.bottom_up.<key>``, what
  ``tools/convert_weights.py`` writes), so any Detectron2 script that loads ``MODEL.WEIGHTS``
  through ``DetectionCheckpointer`` starts a Res2Net FPN detector from them. Registered when this
  package is imported.
* :class:`Res2NetDetectionCheckpointer` is what our Detectron2 trainers (``TaskTrainer``) and the
  ``--eval-only`` path use. It fetches names and ``http(s)://`` URLs through the package's resolver
  (checksums, mirror, ``MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH``) and reads every file with safe
  unpickling (or ``safetensors``); a plain official / timm / torchvision backbone file goes to the
  model's own Res2Net (a detector's ``backbone.bottom_up``, a saliency or classification model's
  ``backbone``), converted as ``tools/convert_weights.py`` converts it. A file in the torchvision
  engine's detector layout (``rpn.head.*``, ``backbone.fpn.inner_blocks.*``, ...) is converted to
  Detectron2's layout before loading
  (:func:`res2net_det.modeling.detector_layouts.torchvision_to_detectron2`, with this model's anchors
  and FPN levels) and the conversion is logged. With ``require_complete`` (inference), a checkpoint
  that leaves any tensor of a detector unloaded raises
  :class:`~res2net_det.modeling.weights.CheckpointError` naming the parts ("FPN, RPN, box head") and
  what the file looks like; in training a backbone-only file is fine and is said once in the log.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any, Dict, List, Optional

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils.file_io import PathHandler, PathManager
from filelock import FileLock

from ...modeling.convert import convert_file, convert_to_detection_checkpoint
from ...modeling.detector_layouts import (
    DETECTRON2,
    TORCHVISION,
    anchor_layout_from_cell_anchors,
    check_fully_loaded,
    detect_detector_layout,
    partial_load_note,
    torchvision_to_detectron2,
)
from ...modeling.pretrained import WEIGHT_SCHEMES, is_weights_name
from ...modeling.weights import backbone_of, load_checkpoint, read_state_dict, resolve_weights

logger = logging.getLogger(__name__)

__all__ = ["Res2NetDetectionCheckpointer", "Res2NetWeightsHandler"]


class Res2NetWeightsHandler(PathHandler):
    """``res2net://<variant>``, ``timm://<name>``, ``torchvision://resnet50`` in Detectron2's
    ``PathManager``: the local file of the weights in the detector layout (fetched and converted
    once, both kept in the cache)."""

    def _get_supported_prefixes(self) -> List[str]:
        return list(WEIGHT_SCHEMES)

    def _get_local_path(self, path: str, force: bool = False, **kwargs: Any) -> str:
        raw = resolve_weights(path)
        converted = os.path.splitext(raw)[0] + "_detectron2.pth"
        with FileLock(converted + ".lock"):
            if force or not os.path.isfile(converted) or os.path.getmtime(converted) < os.path.getmtime(raw):
                report = convert_file(raw, converted)
                logger.info("%s converted for Detectron2: %s\n%s", path, converted, report.summary())
        return converted

    def _open(self, path: str, mode: str = "r", buffering: int = -1, **kwargs: Any):
        return open(self._get_local_path(path), mode, buffering=buffering)

    def _exists(self, path: str, **kwargs: Any) -> bool:
        return os.path.exists(self._get_local_path(path))

    def _isfile(self, path: str, **kwargs: Any) -> bool:
        return os.path.isfile(self._get_local_path(path))


PathManager.register_handler(Res2NetWeightsHandler())


class Res2NetDetectionCheckpointer(DetectionCheckpointer):
    """Detectron2's ``DetectionCheckpointer`` (same arguments) that takes every weights argument of
    this package and converts torchvision-engine detector files.

    Args:
        require_complete: refuse a checkpoint that leaves part of a detector unloaded (for
            ``--eval-only`` and predictors); training (False) only logs it.
        allow_hint: the setting named in that refusal, which runs such a model anyway.
        accept_checksum_mismatch: ``MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH``.
    """

    def __init__(self, model, save_dir: str = "", *, require_complete: bool = False,
                 allow_hint: str = "MODEL.WEIGHTS_ALLOW_PARTIAL True", accept_checksum_mismatch: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(model, save_dir, **kwargs)
        self.require_complete = require_complete
        self.allow_hint = allow_hint
        self.accept_checksum_mismatch = accept_checksum_mismatch
        self._path: Optional[str] = None

    @classmethod
    def replacing(cls, checkpointer: DetectionCheckpointer, cfg) -> "Res2NetDetectionCheckpointer":
        """The same model, folder, writing rank and checkpointables as ``checkpointer``."""
        return cls(checkpointer.model, checkpointer.save_dir, save_to_disk=checkpointer.save_to_disk,
                   accept_checksum_mismatch=cfg.MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH,
                   **checkpointer.checkpointables)

    def load(self, path: str, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        self._path = path
        try:
            # Our names and plain URLs go through our resolver (checksums, mirror, cache); Detectron2's
            # own HTTP handler would take a URL's file without checking it.
            if path and is_weights_name(path):
                path = resolve_weights(path, accept_checksum_mismatch=self.accept_checksum_mismatch)
            return super().load(path, *args, **kwargs)
        finally:
            self._path = None

    def _load_file(self, filename: str) -> Dict[str, Any]:
        if filename.endswith((".pkl", ".pyth")):  # Detectron2's and pycls' model zoo formats
            return super()._load_file(filename)
        data = load_checkpoint(filename)  # weights_only unpickling, or safetensors
        if isinstance(data, dict) and isinstance(data.get("model"), dict):
            return data  # a training checkpoint of either engine, or tools/convert_weights.py's output
        state = read_state_dict(data)
        _, prefix = backbone_of(self.model, state)
        if not prefix:
            return {"model": state}
        checkpoint, report = convert_to_detection_checkpoint(state, prefix=prefix)
        if prefix + "fc.weight" in self.model.state_dict():
            # A classifier keeps the ImageNet fc (fvcore skips it, logged, when its size differs), as
            # the torchvision engine does; detectors have none.
            checkpoint["model"].update({prefix + k: v for k, v in state.items() if k.startswith("fc.")})
        logger.info("%s is a plain backbone file: %s", filename, report.summary())
        return checkpoint

    def _model_anchor_layout(self):
        generator = getattr(getattr(self.model, "proposal_generator", None), "anchor_generator", None)
        generator = generator or getattr(self.model, "anchor_generator", None)
        cells = getattr(generator, "cell_anchors", None)
        return anchor_layout_from_cell_anchors(next(iter(cells))) if cells is not None else None

    def _load_model(self, checkpoint):
        own = self.model.state_dict()
        state = checkpoint["model"]
        if detect_detector_layout(state) == TORCHVISION and detect_detector_layout(own) == DETECTRON2:
            levels = sorted({int(m.group(1)) for k in own for m in [re.match(r"backbone\.fpn_lateral(\d+)\.", k)] if m})
            checkpoint["model"] = torchvision_to_detectron2(
                {k: torch.as_tensor(v) for k, v in state.items()}, self._model_anchor_layout(),
                fpn_levels=levels,
                single_level_backbone="backbone.conv1.weight" in own or "backbone.conv1.0.weight" in own,
            )
            logger.info("%s: converted %d tensors from the torchvision engine's detector layout to Detectron2's",
                        self._path, len(state))
        file_keys = list(checkpoint["model"])
        incompatible = super()._load_model(checkpoint)
        missing = set(incompatible.missing_keys)
        loaded = [k for k in own if k not in missing]
        path = self._path or "the checkpoint"
        if self.require_complete:
            check_fully_loaded(list(own), loaded, file_keys, path,
                               mismatched=[k for k, *_ in incompatible.incorrect_shapes], allow_hint=self.allow_hint)
        else:
            note = partial_load_note(list(own), loaded, file_keys, path)
            if note:
                logger.info(note)
        return incompatible
