"""Training from scratch must not be a trap: a frozen norm or frozen stages keep the random
initialisation's statistics and weights, and the losses explode (Mask R-CNN reached 8e9 in two
iterations from scratch with the shipped FrozenBN / FREEZE_AT 2). Both engines call
:func:`check_trainable_from_scratch` before training; the missing-weights errors quote
:data:`FROM_SCRATCH_HINT`.
"""
from __future__ import annotations

import os
from typing import List, Optional

__all__ = ["FROM_SCRATCH_HINT", "WEIGHTS_HINT", "from_scratch_problems", "check_trainable_from_scratch",
           "check_weights_file", "check_initial_weights"]

FROM_SCRATCH_HINT = (
    'To train from scratch instead, set MODEL.WEIGHTS "" together with MODEL.RES2NET.NORM BN (or SyncBN '
    "on several GPUs) and MODEL.BACKBONE.FREEZE_AT 0: frozen batch norm and frozen stages keep a random "
    "initialisation's statistics and weights, and the losses diverge"
)

WEIGHTS_HINT = (
    "Name published weights instead of a file (res2net://res2net50_26w_4s, timm://res2net50d, "
    "torchvision://resnet50, or an http(s):// URL: downloaded once into the cache and checked; "
    "tools/download_weights.py --list shows them all), or convert a file you have with "
    "`python tools/convert_weights.py <file> <out.pth>`."
)

# Norms whose statistics and affine parameters never train.
_FROZEN_NORMS = ("FrozenBN",)


# Our tasks' models always build their Res2Net from MODEL.RES2NET.*; MODEL.BACKBONE.NAME (whose
# Detectron2 default names Detectron2's ResNet) means something only to Detectron2's detectors.
_RES2NET_TASKS = ("PoolNetSaliency", "Res2NetClassifier")


def _norm_key(cfg) -> str:
    """The key holding the backbone's norm: ours, or Detectron2's own ResNet's when that builds it."""
    name = str(cfg.MODEL.BACKBONE.NAME)
    if cfg.MODEL.META_ARCHITECTURE in _RES2NET_TASKS:
        return "MODEL.RES2NET.NORM"
    if "resnet" in name and "res2net" not in name and "RESNETS" in cfg.MODEL:
        return "MODEL.RESNETS.NORM"
    return "MODEL.RES2NET.NORM"


def from_scratch_problems(cfg) -> List[str]:
    """What makes ``cfg`` untrainable without weights (empty when it trains from scratch fine, or
    when it loads weights)."""
    if str(cfg.MODEL.WEIGHTS).strip():
        return []
    problems = []
    key = _norm_key(cfg)
    node = cfg
    for part in key.split("."):
        node = node[part]
    if str(node) in _FROZEN_NORMS:
        problems.append(f"{key} is {node} (frozen statistics of a random initialisation)")
    if int(cfg.MODEL.BACKBONE.FREEZE_AT) > 0:
        problems.append(f"MODEL.BACKBONE.FREEZE_AT is {cfg.MODEL.BACKBONE.FREEZE_AT} (random stages that never train)")
    return problems


def check_trainable_from_scratch(cfg, config_file: Optional[str] = None) -> None:
    """Raises ``ValueError`` when ``MODEL.WEIGHTS`` is empty and the backbone's norm is frozen or
    ``FREEZE_AT`` > 0, saying what to set. Call it before training (not for ``--eval-only``, nor
    when ``--resume`` finds a checkpoint to continue)."""
    problems = from_scratch_problems(cfg)
    if problems:
        where = f" ({config_file})" if config_file else ""
        raise ValueError(
            f"MODEL.WEIGHTS is empty{where}, so the backbone starts from a random initialisation, but "
            + " and ".join(problems) + ". Give pretrained weights (MODEL.WEIGHTS res2net://res2net50_26w_4s, "
            "torchvision://resnet50 or a file; tools/download_weights.py --list), or train from scratch with "
            "MODEL.RES2NET.NORM BN (SyncBN on several GPUs) and MODEL.BACKBONE.FREEZE_AT 0."
        )


def check_weights_file(cfg) -> None:
    """A local ``MODEL.WEIGHTS`` file that doesn't exist fails before any model is built, saying
    how to get weights and how to train from scratch instead (weights names, URLs and Detectron2's
    ``detectron2://`` names are fetched by the checkpointer)."""
    path = str(cfg.MODEL.WEIGHTS).strip()
    if not path or "://" in path or os.path.isfile(path):
        return
    raise FileNotFoundError(f"MODEL.WEIGHTS file not found: {path}. {WEIGHTS_HINT} {FROM_SCRATCH_HINT}.")


def check_initial_weights(cfg, args) -> None:
    """Both engines' set-up check before training (``args``: ``tools/train_net.py``'s): the weights
    file exists, or the config trains from scratch. Skipped for ``--eval-only`` and for a
    ``--resume`` that finds ``OUTPUT_DIR/last_checkpoint`` (MODEL.WEIGHTS is not read then)."""
    if getattr(args, "eval_only", False):
        return
    if getattr(args, "resume", False) and os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")):
        return
    check_trainable_from_scratch(cfg, getattr(args, "config_file", None) or None)
    check_weights_file(cfg)
