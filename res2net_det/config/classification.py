"""Keys of the image-classification task (``MODEL.META_ARCHITECTURE: Res2NetClassifier``) and
the one translation of them into the core's model, mapper, records and evaluator, which both
engines' adapters call.

The network itself is described by the same ``MODEL.RES2NET.*`` keys as the detection backbone
(width, scale, deep stem, norm, ``RES5_DILATION``); these keys add what a classifier needs.

CAM localisation is not part of training: ``tools/train_net.py`` trains and reports top-1 accuracy
(plus, with ``TEST.VIS_IMAGES``, each test image's CAM), and ``tools/cam_eval.py`` /
``tools/cam_visualize.py --config-file`` evaluate and draw the classifier that run wrote
(:mod:`res2net_det.engines.trained_classifier`). Why not a post-training hook in the trainer: the CAM comparison
is an analysis of a finished network, not a training step. It compares the network with other
models (torchvision ResNets, official Res2Nets) and model-free baselines, with methods whose cost
differs by orders of magnitude (Grad-CAM vs Score-CAM) and options (alignment, thresholds,
faithfulness) that one may want to change without retraining; and it is the same whichever
engine wrote the checkpoint. Kept out of the trainers, both engines stay generic and the
comparison has one entry point.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
from fvcore.common.config import CfgNode as CN

from ..data.builtin import register_datasets_from_cfg
from ..data.classification import ClassificationMapper, get_classification_dicts
from ..data.wsol import IMAGENET_MEAN, IMAGENET_STD
from ..evaluation.classification import ClassificationEvaluator
from ..modeling.classification import Res2NetClassifier
from ..modeling.res2net import Res2Net, stage_blocks
from .res2net import res2net_kwargs_from_cfg

# Images per test batch on both engines (every image has INPUT.CLASSIFIER.RESIZE, so they batch).
TEST_BATCH_SIZE = 32

__all__ = [
    "TEST_BATCH_SIZE",
    "add_classification_config",
    "classifier_kwargs_from_cfg",
    "check_classification_input",
    "build_classifier_model",
    "build_classification_mapper",
    "classification_dicts_from_cfg",
    "build_classification_evaluator",
]


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


def check_classification_input(cfg: CN) -> None:
    """The CAM tools normalise with ImageNet's RGB mean/std (``data.wsol``); a config that says
    otherwise would train a network they then feed differently, so it is refused."""
    mean = [255.0 * m for m in IMAGENET_MEAN]
    std = [255.0 * s for s in IMAGENET_STD]
    problems = []
    if cfg.INPUT.FORMAT != "RGB":
        problems.append(f"INPUT.FORMAT = {cfg.INPUT.FORMAT!r} (supported: 'RGB')")
    if not np.allclose(cfg.MODEL.PIXEL_MEAN, mean, atol=1e-2):
        problems.append(f"MODEL.PIXEL_MEAN = {list(cfg.MODEL.PIXEL_MEAN)} (supported: {mean}, ImageNet RGB)")
    if not np.allclose(cfg.MODEL.PIXEL_STD, std, atol=1e-2):
        problems.append(f"MODEL.PIXEL_STD = {list(cfg.MODEL.PIXEL_STD)} (supported: {std}, ImageNet RGB)")
    if cfg.INPUT.RANDOM_FLIP not in ("horizontal", "none"):
        problems.append(f"INPUT.RANDOM_FLIP = {cfg.INPUT.RANDOM_FLIP!r} (supported: 'horizontal', 'none')")
    if len(cfg.INPUT.CLASSIFIER.RESIZE) != 2 or min(cfg.INPUT.CLASSIFIER.RESIZE) < 8:
        problems.append(f"INPUT.CLASSIFIER.RESIZE = {cfg.INPUT.CLASSIFIER.RESIZE!r} "
                        "(must be (height, width), each >= 8)")
    if problems:
        raise ValueError("the Res2NetClassifier task can't honour these config values:\n  " + "\n  ".join(problems))


def build_classifier_model(cfg: CN) -> Res2NetClassifier:
    """``MODEL.META_ARCHITECTURE: Res2NetClassifier``, on the CPU (the engine moves it)."""
    check_classification_input(cfg)
    return Res2NetClassifier(Res2Net(**classifier_kwargs_from_cfg(cfg)))


def build_classification_mapper(cfg: CN, is_train: bool) -> ClassificationMapper:
    return ClassificationMapper(cfg.INPUT.CLASSIFIER.RESIZE, flip=is_train and cfg.INPUT.RANDOM_FLIP == "horizontal")


def classification_dicts_from_cfg(cfg: CN, names: Sequence[str]) -> List[dict]:
    """The records of data sets ``names`` (builtin or declared by the config, e.g.
    ``DATASETS.WSOL_SPLITS``), checked against ``MODEL.CLASSIFIER.NUM_CLASSES``."""
    register_datasets_from_cfg(cfg)
    return get_classification_dicts(names, cfg.MODEL.CLASSIFIER.NUM_CLASSES)


def build_classification_evaluator(cfg: CN, dataset_name: str, output_dir: str) -> ClassificationEvaluator:
    return ClassificationEvaluator(dataset_name, output_dir)
