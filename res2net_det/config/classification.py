"""Keys of the image-classification task (``MODEL.META_ARCHITECTURE: Res2NetClassifier``).

The network itself is described by the same ``MODEL.RES2NET.*`` keys as the detection backbone
(width, scale, deep stem, norm, ``RES5_DILATION``); these keys add what a classifier needs.
"""
from __future__ import annotations

from typing import Any, Dict

from fvcore.common.config import CfgNode as CN

from ..modeling.res2net import stage_blocks
from .res2net import res2net_kwargs_from_cfg

__all__ = ["add_classification_config", "classifier_kwargs_from_cfg"]


def add_classification_config(cfg: CN) -> CN:
    """Adds ``MODEL.CLASSIFIER.*``, ``INPUT.CLASSIFIER.RESIZE`` and ``DATASETS.WSOL_SPLITS`` in place."""
    cfg.MODEL.CLASSIFIER = type(cfg)()  # the config's own node class (Detectron2 refuses to merge into fvcore nodes)
    cfg.MODEL.CLASSIFIER.NUM_CLASSES = 1000
    # Blocks per stage, e.g. [1, 1, 1, 1] for a small network; empty: those of MODEL.RES2NET.DEPTH.
    cfg.MODEL.CLASSIFIER.BLOCKS_PER_STAGE = []
    # Zero-init the last norm of every block: helps training from scratch (Goyal et al. 2017).
    cfg.MODEL.CLASSIFIER.ZERO_INIT_LAST = False
    # (height, width) every image is resized to, train and test alike. No crop, so the object
    # boxes stay whole for the localisation metrics that CAMs are judged by.
    cfg.INPUT.CLASSIFIER = type(cfg)()
    cfg.INPUT.CLASSIFIER.RESIZE = (224, 224)
    # Data sets in this project's WSOL layout (ILSVRC-style XML, res2net_det/data/wsol.py),
    # registered by name before training: [[name, root, split], ...].
    cfg.DATASETS.WSOL_SPLITS = []
    return cfg


def classifier_kwargs_from_cfg(cfg: CN) -> Dict[str, Any]:
    """Keyword arguments of :class:`res2net_det.modeling.res2net.Res2Net` for the classifier.

    JSON-serialisable, so a model card can store them for :func:`res2net_det.create_model`.
    """
    kwargs = res2net_kwargs_from_cfg(cfg)
    depth = kwargs.pop("depth")
    kwargs.pop("out_features")  # the classifier uses its last stage
    blocks = list(cfg.MODEL.CLASSIFIER.BLOCKS_PER_STAGE)
    if blocks and (len(blocks) != 4 or min(blocks) < 1):
        raise ValueError(f"MODEL.CLASSIFIER.BLOCKS_PER_STAGE must list 4 positive counts, got {blocks}")
    kwargs["layers"] = blocks or list(stage_blocks(depth))
    kwargs["num_classes"] = cfg.MODEL.CLASSIFIER.NUM_CLASSES
    kwargs["zero_init_last"] = bool(cfg.MODEL.CLASSIFIER.ZERO_INIT_LAST)
    return kwargs
