"""Published weights and the config's input preprocessing must agree.

Res2Net's, timm's and torchvision's ImageNet weights were trained on RGB images normalised with
ImageNet's mean and std; Detectron2's defaults are BGR with Caffe's mean and unit std. A config
that feeds the one to the other still trains, a few points lower (Res2Net-PretrainedModels issues
#15, #43: VOC07 mAP 71.05 instead of 74.4). Both engines call :func:`check_weights_preprocessing`
when they set a config up, for training and evaluation alike.
"""
from __future__ import annotations

from typing import List

import numpy as np

from ..modeling.pretrained import weights_entry

__all__ = ["preprocessing_mismatches", "check_weights_preprocessing"]


def preprocessing_mismatches(cfg) -> List[str]:
    """``"KEY: config value, weights value"`` for each of ``INPUT.FORMAT``, ``MODEL.PIXEL_MEAN`` and
    ``MODEL.PIXEL_STD`` that differs from what ``MODEL.WEIGHTS`` was trained with (empty when they
    agree, or when the weights are not a published file of the table, e.g. a trained detector)."""
    entry = weights_entry(str(cfg.MODEL.WEIGHTS).strip()) if str(cfg.MODEL.WEIGHTS).strip() else None
    if entry is None:
        return []
    expected = entry.preprocessing
    problems = []
    if str(cfg.INPUT.FORMAT) != expected.input_format:
        problems.append(f"INPUT.FORMAT: {cfg.INPUT.FORMAT!r}, the weights' {expected.input_format!r}")
    for key, ours, theirs in (("MODEL.PIXEL_MEAN", cfg.MODEL.PIXEL_MEAN, expected.pixel_mean),
                              ("MODEL.PIXEL_STD", cfg.MODEL.PIXEL_STD, expected.pixel_std)):
        if len(ours) != len(theirs) or not np.allclose(list(ours), list(theirs), atol=1e-2):
            problems.append(f"{key}: {list(ours)}, the weights' {list(theirs)}")
    return problems


def check_weights_preprocessing(cfg, config_file: str = "") -> None:
    """Raises ``ValueError`` when the config's input preprocessing differs from the one
    ``MODEL.WEIGHTS`` was trained with, naming both sides and the keys to set, unless
    ``MODEL.WEIGHTS_ALLOW_OTHER_PREPROCESSING`` accepts it on purpose."""
    problems = preprocessing_mismatches(cfg)
    if not problems or cfg.MODEL.WEIGHTS_ALLOW_OTHER_PREPROCESSING:
        return
    expected = weights_entry(str(cfg.MODEL.WEIGHTS).strip()).preprocessing
    where = f" ({config_file})" if config_file else ""
    raise ValueError(
        f"MODEL.WEIGHTS {cfg.MODEL.WEIGHTS}{where} was trained on {expected.describe()}, but the config "
        "differs: " + "; ".join(problems) + ". These weights lose accuracy on other input. Set "
        f"INPUT.FORMAT {expected.input_format} MODEL.PIXEL_MEAN \"{list(expected.pixel_mean)}\" "
        f"MODEL.PIXEL_STD \"{list(expected.pixel_std)}\", or MODEL.WEIGHTS_ALLOW_OTHER_PREPROCESSING True "
        "to keep the config's preprocessing on purpose."
    )
