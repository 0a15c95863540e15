"""The classifier a ``tools/train_net.py`` run of a classification config wrote (either engine),
loaded back for the CAM jobs (``tools/cam_eval.py`` / ``tools/cam_visualize.py --config-file``).

It lives with the jobs, not in ``config/``: the config only says how to build the network
(:func:`res2net_det.config.classification.build_classifier_model`); finding a run's checkpoint
and its evaluation data is what the CAM jobs do with it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from fvcore.common.config import CfgNode as CN
from torch import nn

from ..config.classification import build_classifier_model, classification_dicts_from_cfg
from ..config.defaults import get_cfg, merge_config_file, merge_config_list
from ..data.catalog import DatasetCatalog
from ..modeling.weights import load_weights

__all__ = ["TrainedClassifier", "build_trained_classifier", "load_trained_classifier", "trained_classifier_of_config"]


def build_trained_classifier(cfg: CN, weights: Optional[str] = None) -> nn.Module:
    """The network ``tools/train_net.py --config-file`` trained with ``cfg`` (either engine), in
    eval mode, for the CAM tools.

    Args:
        weights: a checkpoint of that run; default ``OUTPUT_DIR/model_final.pth``. (Not
            ``MODEL.WEIGHTS``: that is where training started, e.g. ImageNet weights.)
    """
    path = weights or os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no trained classifier at {path}: train it first (tools/train_net.py "
                                "--config-file ...) or name its checkpoint")
    model = build_classifier_model(cfg)
    load_weights(model, path, strict=True)
    return model.backbone.eval()


@dataclass
class TrainedClassifier:
    """What the CAM tools need of a classifier trained from a config."""

    label: str
    net: nn.Module  # in eval mode
    records: List[dict]  # of the evaluation data set
    class_names: List[str]
    image_size: Tuple[int, int]  # INPUT.CLASSIFIER.RESIZE


def load_trained_classifier(cfg: CN, label: str, weights: Optional[str] = None,
                            dataset: Optional[str] = None) -> TrainedClassifier:
    """The classifier ``tools/train_net.py`` trained with ``cfg`` (:func:`build_trained_classifier`),
    with the first of its ``DATASETS.TEST`` (or ``dataset``); ``label`` names it in tables."""
    if cfg.MODEL.META_ARCHITECTURE != "Res2NetClassifier":
        raise ValueError(f"{label}: MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE!r}; "
                         "CAMs need a classifier (Res2NetClassifier)")
    name = dataset or (cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else None)
    if name is None:
        raise ValueError(f"{label}: DATASETS.TEST is empty; name the data set to evaluate on")
    records = classification_dicts_from_cfg(cfg, [name])
    return TrainedClassifier(
        label=label, net=build_trained_classifier(cfg, weights), records=records,
        class_names=list(DatasetCatalog.metadata(name)["thing_classes"]),
        image_size=tuple(int(v) for v in cfg.INPUT.CLASSIFIER.RESIZE),
    )


def trained_classifier_of_config(config_file: str, opts: Sequence[str] = (),
                                 weights: Optional[str] = None) -> TrainedClassifier:
    """:func:`load_trained_classifier` of a config file plus ``KEY VALUE`` overrides (what the CAM
    jobs' ``--config-file`` takes), labelled by the file's name (``configs/cam/quickstart.yaml`` ->
    ``quickstart``)."""
    cfg = merge_config_list(merge_config_file(get_cfg(), config_file), list(opts))
    return load_trained_classifier(cfg, os.path.splitext(os.path.basename(config_file))[0], weights)
