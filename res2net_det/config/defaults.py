"""``get_cfg()`` without Detectron2: Detectron2's key names and default values, for the subset of
keys the torchvision engine reads (plus a few it checks), and ``MODEL.RES2NET.*``.

A config file written for Detectron2 merges into this tree unchanged as long as it only uses keys
listed here; any other key raises :class:`ConfigKeyError` naming the key and the file. Which keys
each engine honours is documented in ``docs/engines.md``; which values of them the torchvision engine
can honour is that engine's business (:mod:`res2net_det.engines.torchvision.support`).
"""
from __future__ import annotations

import os
from typing import Any, Iterable, List, Sequence

import yaml
from fvcore.common.config import CfgNode as CN

from ..model_zoo import resolve_config_file
from .classification import add_classification_config
from .res2net import add_res2net_config
from .saliency import add_saliency_config

__all__ = [
    "CN",
    "ConfigKeyError",
    "get_cfg",
    "add_trainer_config",
    "add_res2net_det_config",
    "merge_config_file",
    "config_file_chain",
    "merge_config_list",
    "has_key",
    "get_key",
]


class ConfigKeyError(KeyError):
    """A config file or command-line option names a key that this config tree doesn't have."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


# --------------------------------------------------------------------------- Detectron2's defaults
# Values copied from Detectron2's detectron2/config/defaults.py (v0.6) for the keys kept here, so a
# config merged here means the same thing as with Detectron2.
_C = CN()
_C.VERSION = 2

_C.MODEL = CN()
_C.MODEL.LOAD_PROPOSALS = False
_C.MODEL.MASK_ON = False
_C.MODEL.KEYPOINT_ON = False
_C.MODEL.DEVICE = "cuda"
_C.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
_C.MODEL.WEIGHTS = ""
_C.MODEL.PIXEL_MEAN = [103.530, 116.280, 123.675]
_C.MODEL.PIXEL_STD = [1.0, 1.0, 1.0]

_C.INPUT = CN()
_C.INPUT.MIN_SIZE_TRAIN = (800,)
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
_C.INPUT.MAX_SIZE_TRAIN = 1333
_C.INPUT.MIN_SIZE_TEST = 800
_C.INPUT.MAX_SIZE_TEST = 1333
_C.INPUT.RANDOM_FLIP = "horizontal"
_C.INPUT.CROP = CN({"ENABLED": False})
_C.INPUT.CROP.TYPE = "relative_range"
_C.INPUT.CROP.SIZE = [0.9, 0.9]
_C.INPUT.FORMAT = "BGR"
_C.INPUT.MASK_FORMAT = "polygon"

_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()
_C.DATASETS.PROPOSAL_FILES_TRAIN = ()
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN = 2000
_C.DATASETS.TEST = ()
_C.DATASETS.PROPOSAL_FILES_TEST = ()
_C.DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST = 1000

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
_C.DATALOADER.ASPECT_RATIO_GROUPING = True
_C.DATALOADER.SAMPLER_TRAIN = "TrainingSampler"
_C.DATALOADER.REPEAT_THRESHOLD = 0.0
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "build_resnet_backbone"
_C.MODEL.BACKBONE.FREEZE_AT = 2

_C.MODEL.FPN = CN()
_C.MODEL.FPN.IN_FEATURES = []
_C.MODEL.FPN.OUT_CHANNELS = 256
_C.MODEL.FPN.NORM = ""
_C.MODEL.FPN.FUSE_TYPE = "sum"

_C.MODEL.PROPOSAL_GENERATOR = CN()
_C.MODEL.PROPOSAL_GENERATOR.NAME = "RPN"
_C.MODEL.PROPOSAL_GENERATOR.MIN_SIZE = 0

_C.MODEL.ANCHOR_GENERATOR = CN()
_C.MODEL.ANCHOR_GENERATOR.NAME = "DefaultAnchorGenerator"
_C.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64, 128, 256, 512]]
_C.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
_C.MODEL.ANCHOR_GENERATOR.ANGLES = [[-90, 0, 90]]
_C.MODEL.ANCHOR_GENERATOR.OFFSET = 0.0

_C.MODEL.RPN = CN()
_C.MODEL.RPN.HEAD_NAME = "StandardRPNHead"
_C.MODEL.RPN.IN_FEATURES = ["res4"]
_C.MODEL.RPN.BOUNDARY_THRESH = -1
_C.MODEL.RPN.IOU_THRESHOLDS = [0.3, 0.7]
_C.MODEL.RPN.IOU_LABELS = [0, -1, 1]
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
_C.MODEL.RPN.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.RPN.BBOX_REG_LOSS_WEIGHT = 1.0
_C.MODEL.RPN.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_C.MODEL.RPN.SMOOTH_L1_BETA = 0.0
_C.MODEL.RPN.LOSS_WEIGHT = 1.0
_C.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOPK_TEST = 6000
_C.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
_C.MODEL.RPN.NMS_THRESH = 0.7
_C.MODEL.RPN.CONV_DIMS = [-1]

_C.MODEL.ROI_HEADS = CN()
_C.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
_C.MODEL.ROI_HEADS.NUM_CLASSES = 80
_C.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
_C.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
_C.MODEL.ROI_HEADS.IOU_LABELS = [0, 1]
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
_C.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
_C.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5
_C.MODEL.ROI_HEADS.PROPOSAL_APPEND_GT = True

_C.MODEL.ROI_BOX_HEAD = CN()
_C.MODEL.ROI_BOX_HEAD.NAME = ""
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT = 1.0
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_C.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = 0.0
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_BOX_HEAD.POOLER_TYPE = "ROIAlignV2"
_C.MODEL.ROI_BOX_HEAD.NUM_FC = 0
_C.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.NUM_CONV = 0
_C.MODEL.ROI_BOX_HEAD.CONV_DIM = 256
_C.MODEL.ROI_BOX_HEAD.NORM = ""
_C.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG = False
_C.MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES = False

_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.NAME = "MaskRCNNConvUpsampleHead"
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
_C.MODEL.ROI_MASK_HEAD.NUM_CONV = 0
_C.MODEL.ROI_MASK_HEAD.NORM = ""
_C.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = False
_C.MODEL.ROI_MASK_HEAD.POOLER_TYPE = "ROIAlignV2"

_C.MODEL.RETINANET = CN()
_C.MODEL.RETINANET.NUM_CLASSES = 80
_C.MODEL.RETINANET.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
_C.MODEL.RETINANET.NUM_CONVS = 4
_C.MODEL.RETINANET.IOU_THRESHOLDS = [0.4, 0.5]
_C.MODEL.RETINANET.IOU_LABELS = [0, -1, 1]
_C.MODEL.RETINANET.PRIOR_PROB = 0.01
_C.MODEL.RETINANET.SCORE_THRESH_TEST = 0.05
_C.MODEL.RETINANET.TOPK_CANDIDATES_TEST = 1000
_C.MODEL.RETINANET.NMS_THRESH_TEST = 0.5
_C.MODEL.RETINANET.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_C.MODEL.RETINANET.FOCAL_LOSS_GAMMA = 2.0
_C.MODEL.RETINANET.FOCAL_LOSS_ALPHA = 0.25
_C.MODEL.RETINANET.SMOOTH_L1_LOSS_BETA = 0.1
_C.MODEL.RETINANET.BBOX_REG_LOSS_TYPE = "smooth_l1"
_C.MODEL.RETINANET.NORM = ""

_C.SOLVER = CN()
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupMultiStepLR"
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.001
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False
_C.SOLVER.WEIGHT_DECAY = 0.0001
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000,)
_C.SOLVER.WARMUP_FACTOR = 1.0 / 1000
_C.SOLVER.WARMUP_ITERS = 1000
_C.SOLVER.WARMUP_METHOD = "linear"
_C.SOLVER.CHECKPOINT_PERIOD = 5000
_C.SOLVER.IMS_PER_BATCH = 16
_C.SOLVER.REFERENCE_WORLD_SIZE = 0
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.WEIGHT_DECAY_BIAS = None
_C.SOLVER.CLIP_GRADIENTS = CN({"ENABLED": False})
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "value"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
_C.SOLVER.AMP = CN({"ENABLED": False})

_C.TEST = CN()
_C.TEST.EXPECTED_RESULTS = []
_C.TEST.EVAL_PERIOD = 0
_C.TEST.DETECTIONS_PER_IMAGE = 100
_C.TEST.AUG = CN({"ENABLED": False})
_C.TEST.PRECISE_BN = CN({"ENABLED": False})
_C.TEST.PRECISE_BN.NUM_ITER = 200

_C.OUTPUT_DIR = "./output"
_C.SEED = -1
_C.CUDNN_BENCHMARK = False
_C.VIS_PERIOD = 0


def add_trainer_config(cfg: CN) -> CN:
    """Keys of our trainer that Detectron2 doesn't have (both engines may read them)."""
    # "SGD" (Detectron2's only choice) or "Adam" / "AdamW" (the saliency recipe uses Adam).
    cfg.SOLVER.OPTIMIZER = "SGD"
    # Micro-batches per optimizer step; IMS_PER_BATCH counts the images of all micro-batches of
    # all processes, so the schedule (MAX_ITER, STEPS) counts optimizer steps either way.
    cfg.SOLVER.GRAD_ACCUM_STEPS = 1
    # Iterations between two lines of metrics.json / TensorBoard (Detectron2 hard-codes 20).
    cfg.SOLVER.LOG_PERIOD = 20
    # Load only what fits of MODEL.WEIGHTS. Off: a checkpoint whose backbone tensors have other
    # shapes (another variant or width) fails instead of training a half-loaded backbone, and
    # --eval-only, predictors and export refuse a detector the file leaves partly unloaded (a
    # backbone-only file, another task's model). Training skips heads of another shape (another
    # number of classes) and starts from a backbone-only file either way.
    cfg.MODEL.WEIGHTS_ALLOW_PARTIAL = False
    # Keep a downloaded MODEL.WEIGHTS file whose sha256 disagrees with the one expected of it (its
    # file name's hash prefix, or the digest recorded at its first download): for a file you trust.
    # Logged as a warning; off, such a file is refused and nothing is cached.
    cfg.MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH = False
    # Train / evaluate published weights (res2net://, timm://, torchvision://, their file names)
    # with INPUT.FORMAT / MODEL.PIXEL_MEAN / PIXEL_STD other than those the weights were trained
    # with. Off: such a config is refused before anything runs (config/weights.py).
    cfg.MODEL.WEIGHTS_ALLOW_OTHER_PREPROCESSING = False
    # Periodic checkpoints kept on disk (the newest ones; model_final always stays); 0 keeps all.
    cfg.SOLVER.CHECKPOINT_KEEP = 0
    # torch intra-op threads on the CPU; 0 leaves PyTorch's default (one per core). Small models
    # on a shared machine run far faster on 1 thread: spinning OpenMP threads wait on each other.
    cfg.NUM_THREADS = 0
    # After training, draw the predictions on this many images of each test set (OUTPUT_DIR/vis/).
    cfg.TEST.VIS_IMAGES = 0
    return cfg


def add_res2net_det_config(cfg: CN) -> CN:
    """Adds all of our keys (``MODEL.RES2NET.*``, trainer and task keys) to a Detectron2-schema
    config in place: to our defaults here, to Detectron2's ``get_cfg()`` in the Detectron2 engine."""
    add_res2net_config(cfg)
    add_trainer_config(cfg)
    # The tasks' own keys; a new task adds its add_*_config call here.
    add_classification_config(cfg)
    add_saliency_config(cfg)
    return cfg


def get_cfg() -> CN:
    """A fresh config with Detectron2's defaults, ``MODEL.RES2NET.*``, trainer and task keys."""
    return add_res2net_det_config(_C.clone())


# --------------------------------------------------------------------------- merging with errors
def _flat_keys(tree: Any, prefix: str = "") -> Iterable[str]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == "_BASE_" and not prefix:
                continue
            yield from _flat_keys(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1]


def _base_chain(filename: str) -> List[str]:
    """``filename`` and every file it pulls in with ``_BASE_`` (depth first, bases first)."""
    with open(filename, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    chain: List[str] = []
    base = data.get("_BASE_") if isinstance(data, dict) else None
    if base:
        bases = [base] if isinstance(base, str) else list(base)
        for b in bases:
            if not (b.startswith("/") or "://" in b):
                b = os.path.join(os.path.dirname(filename), os.path.expanduser(b))
            chain += _base_chain(b)
    return chain + [filename]


def has_key(cfg: CN, dotted: str) -> bool:
    """Whether the config tree has the dotted key, e.g. ``"MODEL.RPN.NMS_THRESH"``."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def get_key(cfg: CN, dotted: str) -> Any:
    """The value of the dotted key (``KeyError`` naming the part the tree lacks)."""
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def config_file_chain(filename: str) -> List[str]:
    """``filename`` and its ``_BASE_`` files, bases first; a missing file (the config or a base)
    or invalid YAML raises an error naming the file that is missing or broken and who asked for it.
    Both engines call it before their own merge."""
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f"config file not found: {filename} (neither a file nor a config of res2net_det.model_zoo)"
        )
    try:
        return _base_chain(filename)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{filename}: a _BASE_ file is missing: {e.filename}") from e
    except yaml.YAMLError as e:
        raise ValueError(f"config file {filename} (or one of its _BASE_ files) is not valid YAML: {e}") from e


def merge_config_file(cfg: CN, filename: str) -> CN:
    """``cfg.merge_from_file(filename)`` with ``_BASE_``; an unknown key raises
    :class:`ConfigKeyError` naming the key and the file that sets it."""
    filename = resolve_config_file(filename)
    for path in config_file_chain(filename):
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a mapping, got {type(data).__name__}")
        for key in _flat_keys(data):
            if not has_key(cfg, key):
                raise ConfigKeyError(
                    f"config file {path} sets {key}, which this config does not have. "
                    + _unknown_key_hint(key)
                )
    cfg.merge_from_file(filename)
    return cfg


def merge_config_list(cfg: CN, opts: Sequence[str]) -> CN:
    """``cfg.merge_from_list(opts)`` (command-line ``KEY VALUE`` pairs) with clear errors."""
    opts = list(opts or [])
    if len(opts) % 2:
        raise ValueError(f"command-line config options must be KEY VALUE pairs, got {opts}")
    for key in opts[0::2]:
        if not has_key(cfg, key):
            raise ConfigKeyError(
                f"command-line option {key} is not a config key. " + _unknown_key_hint(key)
            )
    cfg.merge_from_list(opts)
    return cfg


def _unknown_key_hint(key: str) -> str:
    if not has_key(_C, key):
        return (
            "Check the spelling; if it is a Detectron2 key, the torchvision engine does not honour "
            "it (see docs/engines.md) and the config needs ENGINE: detectron2 with Detectron2 installed."
        )
    return "It is added by a task config function that was not applied."
