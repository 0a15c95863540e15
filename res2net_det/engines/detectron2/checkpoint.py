"""Detectron2's ``DetectionCheckpointer`` that reads the torchvision engine's detector checkpoints too,
and refuses to evaluate a half-loaded detector.

:class:`Res2NetDetectionCheckpointer` is what our Detectron2 trainers (``TaskTrainer``) and the
``--eval-only`` path use. A file in the torchvision engine's layout (``rpn.head.*``,
``backbone.fpn.inner_blocks.*``, ...) is converted to Detectron2's layout before loading
(:func:`res2net_det.modeling.detector_layouts.torchvision_to_detectron2`, with this model's
anchors and FPN levels) and the conversion is logged. With ``require_complete`` (inference), a
checkpoint that leaves any tensor of a detector unloaded raises
:class:`~res2net_det.modeling.weights.CheckpointError` naming the parts ("FPN, RPN, box head")
and what the file looks like; in training a backbone-only file is fine and is said once in the log.
"""
from __future__ import annotations

import logging
import re
from typing import Optional

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ...modeling.detector_layouts import (
    DETECTRON2,
    TORCHVISION,
    anchor_layout_from_cell_anchors,
    check_fully_loaded,
    detect_detector_layout,
    partial_load_note,
    torchvision_to_detectron2,
)

logger = logging.getLogger(__name__)

__all__ = ["Res2NetDetectionCheckpointer"]


class Res2NetDetectionCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` (same arguments) that converts torchvision-engine detector files.

    Args:
        require_complete: refuse a checkpoint that leaves part of a detector unloaded (for
            ``--eval-only`` and predictors); training (False) only logs it.
        allow_hint: the setting named in that refusal, which runs such a model anyway.
    """

    def __init__(self, model, save_dir: str = "", *, require_complete: bool = False,
                 allow_hint: str = "MODEL.WEIGHTS_ALLOW_PARTIAL True", **kwargs) -> None:
        super().__init__(model, save_dir, **kwargs)
        self.require_complete = require_complete
        self.allow_hint = allow_hint
        self._path: Optional[str] = None

    def load(self, path, *args, **kwargs):
        self._path = path
        try:
            return super().load(path, *args, **kwargs)
        finally:
            self._path = None

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
                fpn_levels=levels, single_level_backbone="backbone.conv1.weight" in own or "backbone.conv1.0.weight" in own,
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
