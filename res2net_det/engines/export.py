"""Export specs for the models a config describes (``tools/export_model.py --config-file``).

The model is built by the torchvision engine's task for ``MODEL.META_ARCHITECTURE`` (its
checkpoints share Detectron2's key layout, so weights trained by either engine load), on the
CPU, in eval mode; :mod:`res2net_det.modeling.export` exports and checks it.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import torch
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from ..modeling.export import ExportSpec, detector_spec, saliency_spec
from ..modeling.saliency import PoolNetSaliency
from .torchvision.checkpoint import load_model_weights
from .torchvision.registry import get_task
from .torchvision.support import check_torchvision_support

__all__ = ["export_spec_from_config"]

logger = logging.getLogger(__name__)


def export_spec_from_config(cfg, weights: Optional[str] = None, size: Optional[Sequence[int]] = None,
                            batch: int = 2, seed: int = 0) -> ExportSpec:
    """The :class:`ExportSpec` of the config's detector (``GeneralizedRCNN``) or saliency model
    (``PoolNetSaliency``), with ``weights`` (else ``MODEL.WEIGHTS``; neither: random weights
    drawn with ``seed``, for trying the export out) and an example input of ``size`` (default: the
    spec's own, 224 x 224 for a detector, ``SALIENCY_EXPORT_SIZE`` for a saliency model)."""
    check_torchvision_support(cfg)
    torch.manual_seed(seed)
    model = get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg)
    weights = weights or cfg.MODEL.WEIGHTS
    if weights:
        load_model_weights(model, weights, allow_partial=cfg.MODEL.WEIGHTS_ALLOW_PARTIAL, inference=True)
    else:
        logger.warning("no --weights and no MODEL.WEIGHTS: exporting random weights (seed %d)", seed)
    model.eval()
    sized = {"size": size} if size else {}  # else each spec's own default example size
    if isinstance(model, PoolNetSaliency):
        return saliency_spec(model, batch=batch, **sized)
    if isinstance(model, GeneralizedRCNN):
        return detector_spec(model, **sized)
    raise ValueError(
        f"MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r} builds a {type(model).__name__}, which has no "
        "export: export a GeneralizedRCNN (detection) or PoolNetSaliency config, or a backbone with --variant"
    )
