"""Every data set name the project knows without being told, and the ones a config declares.

Detectron2 registers its builtin names in one module (``detectron2/data/datasets/builtin.py``);
this is ours. It sits above the per-format modules (coco, saliency, wsol and the generators) so
none of them has to import another to register names: that used to make import cycles.
"""
from __future__ import annotations

from typing import List, Optional

from .coco import register_builtin_coco, register_coco_instances_from_cfg
from .saliency import register_saliency_folders_from_cfg, register_standard_saliency_datasets
from .shapes_wsol import register_shapes_wsol
from .synthetic import register_shapes
from .synthetic_panoptic import register_shapes_panoptic
from .synthetic_saliency import register_synthetic_saliency
from .voc import register_builtin_voc, register_pascal_voc_from_cfg, register_shapes_voc
from .wsol import register_wsol_splits_from_cfg

__all__ = ["register_builtin_datasets", "register_datasets_from_cfg"]


def register_builtin_datasets(root: Optional[str] = None) -> None:
    """Registers (once) Detectron2's COCO and PASCAL VOC names, the six SOD benchmarks and DUTS, and
    the embedded generated sets (``shapes_*``, ``shapes_voc_*``, ``shapes_panoptic_*_separated``, ``sod_synthetic_*``,
    ``wsol_shapes_*``); files are read or
    generated only when a data set is loaded."""
    register_builtin_coco(root)
    register_builtin_voc(root)
    register_shapes(root)
    register_shapes_panoptic(root)
    register_shapes_voc(root)
    register_standard_saliency_datasets(root)
    register_synthetic_saliency(root)
    register_shapes_wsol()


def register_datasets_from_cfg(cfg) -> List[str]:
    """The builtin names plus the config's own data sets (``DATASETS.COCO_INSTANCES``, ``DATASETS.PASCAL_VOC``,
    ``DATASETS.SALIENCY_FOLDERS``, ``DATASETS.WSOL_SPLITS``); returns the COCO names registered
    from the config. Registering the same files again is a no-op, so callers may call it freely."""
    register_builtin_datasets()
    names = register_coco_instances_from_cfg(cfg)
    register_pascal_voc_from_cfg(cfg)
    register_saliency_folders_from_cfg(cfg)
    register_wsol_splits_from_cfg(cfg)
    return names
