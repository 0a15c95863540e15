"""``MODEL.RES2NET.*``: the Res2Net keys of the one config language (Detectron2's YAML schema).

Works on Detectron2's ``CfgNode`` and on our own defaults alike; it imports no engine.
"""
from __future__ import annotations

from typing import Any, Dict

from fvcore.common.config import CfgNode as CN

from ..modeling.deform import make_stages_deformable
from ..modeling.res2net import Res2Net, build_res2net

__all__ = ["add_res2net_config", "res2net_kwargs_from_cfg", "build_res2net_from_cfg", "apply_deform_from_cfg"]


def add_res2net_config(cfg: CN) -> CN:
    """Adds the Res2Net keys (and ``ENGINE``) to ``cfg`` in place and returns it."""
    _C = cfg
    # A node of the config's own class: Detectron2's CfgNode refuses to merge YAML into a
    # plain fvcore node ("Type mismatch ... for config key: MODEL.RES2NET").
    _C.MODEL.RES2NET = type(cfg)()
    _C.MODEL.RES2NET.DEPTH = 50  # 50, 101 or 152
    _C.MODEL.RES2NET.WIDTH_PER_GROUP = 26  # base width: the "26w" of "26w_4s"
    _C.MODEL.RES2NET.SCALE = 4  # number of splits: the "4s"; 1 with width 64 is ResNet
    _C.MODEL.RES2NET.NUM_GROUPS = 1  # cardinality of the split 3x3 convs; 8 for Res2NeXt-50
    _C.MODEL.RES2NET.DEEP_STEM = False  # v1b / "d": three 3x3 convs
    _C.MODEL.RES2NET.STEM_WIDTH = 32
    _C.MODEL.RES2NET.AVG_DOWN = False  # v1b / "d": average-pool shortcuts
    _C.MODEL.RES2NET.NORM = "FrozenBN"  # "FrozenBN", "BN", "SyncBN", "GN"
    _C.MODEL.RES2NET.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    _C.MODEL.RES2NET.RES5_DILATION = 1  # 2: res5 at stride 16 (saliency, segmentation)
    # True: the stem's max pool rounds up (Caffe's rounding, kept by PoolNet and Res2Net-PoolNet).
    _C.MODEL.RES2NET.MAXPOOL_CEIL_MODE = False
    # True: the stride on each block's first 1x1 conv (Caffe / MSRA ResNets, e.g. PoolNet's
    # released ResNet-50); SCALE 1 only.
    _C.MODEL.RES2NET.STRIDE_IN_1X1 = False
    # Deformable split 3x3 convs per stage res2..res5, as Detectron2's MODEL.RESNETS.DEFORM_*.
    _C.MODEL.RES2NET.DEFORM_ON_PER_STAGE = [False, False, False, False]
    _C.MODEL.RES2NET.DEFORM_MODULATED = False  # DCNv2: a learned mask per sampling point
    _C.MODEL.RES2NET.DEFORM_NUM_GROUPS = 1  # channel groups with their own offsets
    # Training speed / memory options of the backbone (same results): torch.compile (inductor) of its
    # forward, falling back to eager with a warning; recompute each block's activations in the
    # backward pass instead of storing them (less memory, ~one more backbone forward); weights and
    # activations in channels-last memory format (the FPN and heads follow; faster on CPU and on
    # tensor-core GPUs, see the README's detector benchmark).
    _C.MODEL.RES2NET.COMPILE = False
    _C.MODEL.RES2NET.CHECKPOINT_ACTIVATIONS = False
    _C.MODEL.RES2NET.CHANNELS_LAST = False
    # Which engine runs tools/train_net.py: "auto" (Detectron2 when importable),
    # "detectron2" or "torchvision".
    _C.ENGINE = "auto"
    # User COCO-format data sets, registered under their names before training by both engines
    # (res2net_det.data.coco.register_datasets_from_cfg): [[name, json_file, image_root], ...].
    # From the command line: DATASETS.COCO_INSTANCES "[['my_train', 'ann.json', 'images/']]"
    _C.DATASETS.COCO_INSTANCES = []
    # User PASCAL VOC folders (Annotations/, JPEGImages/, ImageSets/Main/<split>.txt), the same way:
    # [[name, dirname, split, year (2007: 11-point AP, 2012: all-point)(, [class names])], ...]
    _C.DATASETS.PASCAL_VOC = []
    return cfg


def res2net_kwargs_from_cfg(cfg: CN) -> Dict[str, Any]:
    """Keyword arguments of :func:`res2net_det.modeling.res2net.build_res2net` from a config."""
    r = cfg.MODEL.RES2NET
    if r.RES5_DILATION not in (1, 2):
        raise ValueError(f"MODEL.RES2NET.RES5_DILATION must be 1 or 2, got {r.RES5_DILATION}")
    if r.DEPTH not in (50, 101, 152):
        raise ValueError(f"MODEL.RES2NET.DEPTH must be 50, 101 or 152, got {r.DEPTH}")
    if r.STRIDE_IN_1X1 and r.SCALE != 1:
        raise ValueError(f"MODEL.RES2NET.STRIDE_IN_1X1 is for plain ResNets (SCALE 1), got SCALE {r.SCALE}")
    for key in ("WIDTH_PER_GROUP", "SCALE", "NUM_GROUPS", "STEM_WIDTH"):
        value = r[key]
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"MODEL.RES2NET.{key} must be a positive integer, got {value!r} (it would build "
                             "a convolution without channels)")
    return dict(
        depth=r.DEPTH,
        base_width=r.WIDTH_PER_GROUP,
        scale=r.SCALE,
        cardinality=r.NUM_GROUPS,
        deep_stem=r.DEEP_STEM,
        stem_width=r.STEM_WIDTH,
        avg_down=r.AVG_DOWN,
        norm=r.NORM,
        out_features=tuple(r.OUT_FEATURES),
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        dilate_last_stage=r.RES5_DILATION == 2,
        maxpool_ceil_mode=bool(r.MAXPOOL_CEIL_MODE),
        stride_in_1x1=bool(r.STRIDE_IN_1X1),
        num_classes=0,
        compile=bool(r.COMPILE),
        checkpoint_activations=bool(r.CHECKPOINT_ACTIVATIONS),
        channels_last=bool(r.CHANNELS_LAST),
    )


def apply_deform_from_cfg(model: Res2Net, cfg: CN) -> Res2Net:
    """Makes the stages flagged in ``MODEL.RES2NET.DEFORM_ON_PER_STAGE`` deformable (in place)."""
    r = cfg.MODEL.RES2NET
    if any(r.DEFORM_ON_PER_STAGE):
        make_stages_deformable(model, r.DEFORM_ON_PER_STAGE, r.DEFORM_MODULATED, r.DEFORM_NUM_GROUPS)
    return model


def build_res2net_from_cfg(cfg: CN) -> Res2Net:
    """The feature backbone (no classifier) a config describes."""
    return apply_deform_from_cfg(build_res2net(**res2net_kwargs_from_cfg(cfg)), cfg)
