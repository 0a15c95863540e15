"""Salient object detection keys of the one config language (Detectron2's YAML schema).

:func:`add_saliency_config` works on Detectron2's ``CfgNode`` (after ``add_res2net_config``)
and on our own defaults alike; it imports no engine.
"""
from __future__ import annotations

from fvcore.common.config import CfgNode as CN

__all__ = ["add_saliency_config", "get_saliency_cfg", "load_saliency_cfg", "IMAGENET_PIXEL_MEAN", "IMAGENET_PIXEL_STD"]

# ImageNet statistics on the 0-255 scale, RGB: what Res2Net's ImageNet weights were trained with.
IMAGENET_PIXEL_MEAN = [123.675, 116.28, 103.53]
IMAGENET_PIXEL_STD = [58.395, 57.12, 57.375]


def add_saliency_config(cfg: CN) -> CN:
    """Adds ``MODEL.SALIENCY.*``, ``INPUT.SALIENCY.*``, ``DATASETS.SALIENCY_FOLDERS`` and
    ``SOLVER.GRAD_ACCUM_STEPS`` (when absent) to ``cfg`` in place and returns it."""
    _C = cfg
    _C.MODEL.SALIENCY = CN()
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

    _C.INPUT.SALIENCY = CN()
    # [] keeps every image at full size (PoolNet, batch 1); [H, W] resizes (batched recipe).
    # Test-time too: predictions are resized back to each image's original size.
    _C.INPUT.SALIENCY.RESIZE = []
    _C.INPUT.SALIENCY.HFLIP = True
    # Fraction of grey (neither 0 nor 255) mask pixels accepted as anti-aliased edges; graded
    # masks with few grey levels (PASCAL-S) pass regardless. See res2net_det.data.saliency.read_mask.
    _C.INPUT.SALIENCY.MASK_TOLERANCE = 0.05

    # Extra image folder + mask folder data sets by explicit paths: [[name, image_dir, mask_dir], ...]
    _C.DATASETS.SALIENCY_FOLDERS = []

    # Gradient accumulation: one iteration = one optimizer step over IMS_PER_BATCH x
    # GRAD_ACCUM_STEPS images. Added only if the trainer's defaults don't define it.
    if "GRAD_ACCUM_STEPS" not in _C.SOLVER:
        _C.SOLVER.GRAD_ACCUM_STEPS = 1
    return cfg


def get_saliency_cfg() -> CN:
    """Our engine-free defaults with the Res2Net and saliency keys (what the SOD tools start from)."""
    try:
        from .defaults import get_cfg  # the torchvision engine's defaults (Detectron2's schema)
    except ImportError:  # TEMPORARY until res2net_det.config.defaults lands on main
        return _minimal_base_cfg()
    cfg = get_cfg()
    if "RES2NET" not in cfg.MODEL:
        from .res2net import add_res2net_config

        add_res2net_config(cfg)
    return add_saliency_config(cfg)


def _minimal_base_cfg() -> CN:
    from .res2net import add_res2net_config

    c = CN()
    c.MODEL = CN()
    c.MODEL.META_ARCHITECTURE = "PoolNetSaliency"
    c.MODEL.DEVICE = "cpu"
    c.MODEL.WEIGHTS = ""
    c.MODEL.BACKBONE = CN()
    c.MODEL.BACKBONE.FREEZE_AT = 0
    c.MODEL.PIXEL_MEAN = list(IMAGENET_PIXEL_MEAN)
    c.MODEL.PIXEL_STD = list(IMAGENET_PIXEL_STD)
    c.INPUT = CN()
    c.INPUT.FORMAT = "RGB"
    c.DATASETS = CN()
    c.DATASETS.TRAIN = ()
    c.DATASETS.TEST = ()
    c.DATALOADER = CN()
    c.DATALOADER.NUM_WORKERS = 0
    c.SOLVER = CN()
    c.SOLVER.IMS_PER_BATCH = 1
    c.SOLVER.OPTIMIZER = "SGD"
    c.SOLVER.BASE_LR = 0.001
    c.SOLVER.WEIGHT_DECAY = 0.0001
    c.SOLVER.MAX_ITER = 40000
    c.SOLVER.STEPS = (30000,)
    c.SOLVER.GAMMA = 0.1
    c.SOLVER.WARMUP_ITERS = 1000
    c.SOLVER.CHECKPOINT_PERIOD = 5000
    c.SOLVER.LOG_PERIOD = 20
    c.TEST = CN()
    c.TEST.EVAL_PERIOD = 0
    c.VERSION = 2
    c.SEED = -1
    c.OUTPUT_DIR = "output"
    add_res2net_config(c)
    return add_saliency_config(c)


def load_saliency_cfg(config_file: str, opts=()) -> CN:
    """:func:`get_saliency_cfg` merged with a config file (``_BASE_`` allowed) and ``KEY VALUE`` options."""
    cfg = get_saliency_cfg()
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts or []))
    return cfg
