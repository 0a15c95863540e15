"""The Detectron2 engine: Res2Net backbones in ``BACKBONE_REGISTRY``, a ``DefaultTrainer``, and our
data set catalog mirrored into Detectron2's.

Importing this package needs Detectron2 (built from its source:
https://github.com/facebookresearch/detectron2); the rest of ``res2net_det`` never imports it.
Importing registers the backbones, so ``MODEL.BACKBONE.NAME: build_res2net_fpn_backbone`` works
in any Detectron2 script after ``import res2net_det.engines.detectron2``; :func:`res2net_backbone` builds
the same backbone from plain values for LazyConfig files (``configs/lazy/``, :mod:`.lazy`).
"""
try:
    import detectron2  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "res2net_det.engines.detectron2 needs Detectron2, which is not importable "
        f"({e}). Install it from source (see README.md, section Detectron2) or use the "
        "torchvision engine (ENGINE: torchvision)."
    ) from e

from .backbone import (
    Res2NetBackbone,
    build_res2net_backbone,
    build_res2net_fpn_backbone,
    build_retinanet_res2net_fpn_backbone,
    last_level_max_pool,
    res2net_backbone,
)
from .checkpoint import Res2NetDetectionCheckpointer, Res2NetWeightsHandler  # registers res2net:// ... in PathManager
from .data import register_catalog_in_detectron2

__all__ = [
    "Res2NetBackbone",
    "Res2NetDetectionCheckpointer",
    "Res2NetWeightsHandler",
    "build_res2net_backbone",
    "build_res2net_fpn_backbone",
    "build_retinanet_res2net_fpn_backbone",
    "last_level_max_pool",
    "register_catalog_in_detectron2",
    "res2net_backbone",
]
