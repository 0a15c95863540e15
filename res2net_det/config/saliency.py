"""Salient object detection keys of the one config language (Detectron2's YAML schema).

:func:`add_saliency_config` works on Detectron2's ``CfgNode`` (after ``add_res2net_config``)
and on our own defaults alike; it imports no engine.
"""
from __future__ import annotations

import os
from typing import List, Sequence

from fvcore.common.config import CfgNode as CN

from ..data.builtin import register_datasets_from_cfg
from ..data.saliency import SaliencyDatasetMapper, get_saliency_dicts
from ..evaluation.saliency import SaliencyEvaluator
from ..modeling.saliency import PoolNetSaliency
from .res2net import build_res2net_from_cfg

__all__ = ["add_saliency_config", "build_saliency_model", "saliency_dicts_from_cfg", "build_saliency_mapper",
           "build_saliency_evaluator"]


def add_saliency_config(cfg: CN) -> CN:
    """Adds ``MODEL.SALIENCY.*``, ``INPUT.SALIENCY.*``, ``DATASETS.SALIENCY_FOLDERS`` and
    ``SOLVER.GRAD_ACCUM_STEPS`` (when absent) to ``cfg`` in place and returns it.

    Our ``get_cfg()`` applies it (:func:`res2net_det.config.defaults.add_res2net_det_config`); with Detectron2, call
    it after ``add_res2net_config``."""
    _C = cfg
    _C.MODEL.SALIENCY = type(cfg)()  # the config's own node class (Detectron2 refuses to merge into fvcore nodes)
    # Backbone levels the decoder aggregates, fine to coarse. "stem" is the stride-2 output of
    # the first conv (PoolNet's finest level); res5 is at stride 16 with RES5_DILATION 2.
    _C.MODEL.SALIENCY.IN_FEATURES = ["stem", "res2", "res3", "res4", "res5"]
    # Channels each level is reduced to by a 1x1 conv (PoolNet's ResNet-50 setting); the
    # decoder's channels follow: each aggregation module outputs the next finer level's width.
    _C.MODEL.SALIENCY.CONVERT_CHANNELS = [128, 256, 256, 512, 512]
    # Global guidance module: pyramid pooling bins on the top level.
    _C.MODEL.SALIENCY.PPM_BINS = [1, 3, 5]
    # Feature aggregation modules: average-pooling factors of their three branches.
    _C.MODEL.SALIENCY.FAM_POOL_SIZES = [2, 4, 8]
    # "sum": binary cross-entropy summed over pixels, averaged over images (PoolNet's). Adam
    # ignores the loss scale except through its coupled L2 weight decay, so the recipe's
    # weight decay 5e-4 only means what it meant in PoolNet with this reduction.
    # "mean": averaged over pixels too (scale-free; pair it with a smaller weight decay).
    _C.MODEL.SALIENCY.LOSS_REDUCTION = "sum"

    _C.INPUT.SALIENCY = type(cfg)()
    # [] keeps every image at full size (PoolNet, batch 1); [H, W] resizes (batched recipe).
    # Test-time too: predictions are resized back to each image's original size.
    _C.INPUT.SALIENCY.RESIZE = []
    _C.INPUT.SALIENCY.HFLIP = True
    # Fraction of grey (neither 0 nor 255) mask pixels accepted as anti-aliased edges; graded
    # masks with few grey levels (PASCAL-S) pass regardless. See res2net_det.data.saliency.read_mask.
    _C.INPUT.SALIENCY.MASK_TOLERANCE = 0.05

    # Extra image folder + mask folder data sets by explicit paths: [[name, image_dir, mask_dir], ...]
    _C.DATASETS.SALIENCY_FOLDERS = []

    # Gradient accumulation: one iteration = one optimizer step over GRAD_ACCUM_STEPS micro-batches
    # of IMS_PER_BATCH / GRAD_ACCUM_STEPS images. Added only if the trainer's defaults don't define it.
    if "GRAD_ACCUM_STEPS" not in _C.SOLVER:
        _C.SOLVER.GRAD_ACCUM_STEPS = 1
    return cfg


def build_saliency_model(cfg) -> PoolNetSaliency:
    """The saliency model a config describes (``MODEL.RES2NET.*`` + ``MODEL.SALIENCY.*``), on the
    CPU: the engine moves it to ``MODEL.DEVICE`` (Detectron2's ``build_model`` and the torchvision
    trainer both do)."""
    backbone = build_res2net_from_cfg(cfg)
    s = cfg.MODEL.SALIENCY
    return PoolNetSaliency(
        backbone,
        in_features=s.IN_FEATURES,
        convert_channels=s.CONVERT_CHANNELS,
        ppm_bins=s.PPM_BINS,
        fam_pool_sizes=s.FAM_POOL_SIZES,
        loss_reduction=s.LOSS_REDUCTION,
        pixel_mean=cfg.MODEL.PIXEL_MEAN,
        pixel_std=cfg.MODEL.PIXEL_STD,
        input_format=cfg.INPUT.FORMAT,
    )


def saliency_dicts_from_cfg(cfg, names: Sequence[str]) -> List[dict]:
    """The records of saliency data sets ``names`` (builtin, or ``DATASETS.SALIENCY_FOLDERS``)."""
    register_datasets_from_cfg(cfg)
    return get_saliency_dicts(names)


def build_saliency_mapper(cfg, is_train: bool) -> SaliencyDatasetMapper:
    return SaliencyDatasetMapper.from_config(cfg, is_train)


def build_saliency_evaluator(cfg, dataset_name: str, output_dir: str) -> SaliencyEvaluator:
    """The saliency metrics of one test set; the run's folder name labels the method in its tables."""
    return SaliencyEvaluator(dataset_name, output_dir=output_dir, mask_tolerance=cfg.INPUT.SALIENCY.MASK_TOLERANCE,
                             method_name=os.path.basename(os.path.normpath(cfg.OUTPUT_DIR)))
