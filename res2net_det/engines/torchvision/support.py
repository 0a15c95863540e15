"""What the torchvision engine can honour of the config tree, and the check that refuses the rest.

The tree (:func:`res2net_det.config.get_cfg`) holds Detectron2's keys with Detectron2's defaults.
This engine builds torchvision's detectors, so some keys have only the values it implements:
:data:`TORCHVISION_SUPPORTED_VALUES` lists them (RetinaNet: :data:`TORCHVISION_SUPPORTED_VALUES_RETINANET`),
and :func:`check_torchvision_support` refuses a config that sets one of them otherwise, naming every
such key, before anything is built. :data:`TORCHVISION_NOT_APPLICABLE` lists the keys that mean
nothing here while the key they depend on keeps its supported value. Every other key is honoured;
``tests/engines/torchvision/test_every_key.py`` walks the tree and fails on a key with no decision.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from ...config.defaults import get_key, has_key

__all__ = [
    "DETECTION_ARCHITECTURES",
    "TORCHVISION_NOT_APPLICABLE",
    "TORCHVISION_SUPPORTED_VALUES",
    "TORCHVISION_SUPPORTED_VALUES_RETINANET",
    "check_torchvision_support",
]

# key -> values the torchvision engine can honour. Anything else must come with Detectron2.
TORCHVISION_SUPPORTED_VALUES: Dict[str, Tuple[Any, ...]] = {
    "VERSION": (2,),  # Detectron2 upgrades the keys of older config versions; this tree has version 2's
    "MODEL.LOAD_PROPOSALS": (False,),
    "MODEL.KEYPOINT_ON": (False,),
    "MODEL.BACKBONE.NAME": ("build_res2net_fpn_backbone", "build_res2net_backbone"),
    "MODEL.FPN.NORM": ("",),
    "MODEL.FPN.FUSE_TYPE": ("sum",),
    "MODEL.PROPOSAL_GENERATOR.NAME": ("RPN",),
    "MODEL.ANCHOR_GENERATOR.NAME": ("DefaultAnchorGenerator",),
    "MODEL.ANCHOR_GENERATOR.ANGLES": ([[-90, 0, 90]],),
    "MODEL.ANCHOR_GENERATOR.OFFSET": (0.0,),
    "MODEL.RPN.HEAD_NAME": ("StandardRPNHead",),
    "MODEL.RPN.BOUNDARY_THRESH": (-1,),
    "MODEL.RPN.IOU_LABELS": ([0, -1, 1],),
    "MODEL.RPN.BBOX_REG_LOSS_TYPE": ("smooth_l1",),
    "MODEL.RPN.CONV_DIMS": ([-1],),
    "MODEL.ROI_HEADS.NAME": ("StandardROIHeads",),
    "MODEL.ROI_HEADS.IOU_LABELS": ([0, 1],),
    "MODEL.ROI_HEADS.PROPOSAL_APPEND_GT": (True,),
    "MODEL.ROI_BOX_HEAD.NAME": ("FastRCNNConvFCHead",),
    "MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE": ("smooth_l1",),
    "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG": (False,),
    "MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES": (False,),
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE": ("ROIAlignV2", "ROIAlign"),
    "MODEL.ROI_MASK_HEAD.POOLER_TYPE": ("ROIAlignV2", "ROIAlign"),
    "MODEL.ROI_MASK_HEAD.NAME": ("MaskRCNNConvUpsampleHead",),
    "MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK": (False,),
    "INPUT.MIN_SIZE_TRAIN_SAMPLING": ("choice",),
    "INPUT.RANDOM_FLIP": ("horizontal", "none"),
    "INPUT.CROP.ENABLED": (False,),
    "INPUT.MASK_FORMAT": ("polygon",),
    "DATASETS.PROPOSAL_FILES_TRAIN": ((),),
    "DATASETS.PROPOSAL_FILES_TEST": ((),),
    "DATALOADER.SAMPLER_TRAIN": ("TrainingSampler",),
    "SOLVER.LR_SCHEDULER_NAME": ("WarmupMultiStepLR", "WarmupCosineLR"),
    "SOLVER.WARMUP_METHOD": ("linear", "constant"),
    "SOLVER.REFERENCE_WORLD_SIZE": (0,),
    "TEST.AUG.ENABLED": (False,),
    "TEST.PRECISE_BN.ENABLED": (False,),
    "TEST.EXPECTED_RESULTS": ([],),
    "VIS_PERIOD": (0,),
}


# Keys of the tree that mean nothing on the torchvision engine as long as the refused key named in
# the reason keeps its supported value (Detectron2 reads them only then, too); every other key is
# honoured or refused (tests/engines/torchvision/test_every_key.py walks them all).
TORCHVISION_NOT_APPLICABLE: Dict[str, str] = {
    "INPUT.CROP.TYPE": "read only with INPUT.CROP.ENABLED",
    "INPUT.CROP.SIZE": "read only with INPUT.CROP.ENABLED",
    "DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN": "read only with precomputed proposals, DATASETS.PROPOSAL_FILES_TRAIN",
    "DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST": "read only with precomputed proposals, DATASETS.PROPOSAL_FILES_TEST",
    "DATALOADER.REPEAT_THRESHOLD": "read only by the RepeatFactorTrainingSampler of DATALOADER.SAMPLER_TRAIN",
    "TEST.PRECISE_BN.NUM_ITER": "read only with TEST.PRECISE_BN.ENABLED",
}


# RetinaNet (torchvision's) in place of the R-CNN keys above: its focal loss, head depth and box
# coder are fixed in torchvision; smooth L1 only with beta 0 (L1, Detectron2's RetinaNet recipe).
TORCHVISION_SUPPORTED_VALUES_RETINANET: Dict[str, Tuple[Any, ...]] = {
    "MODEL.BACKBONE.NAME": ("build_retinanet_res2net_fpn_backbone",),
    "MODEL.RETINANET.NUM_CONVS": (4,),
    "MODEL.RETINANET.IOU_LABELS": ([0, -1, 1],),
    "MODEL.RETINANET.BBOX_REG_WEIGHTS": ((1.0, 1.0, 1.0, 1.0),),
    "MODEL.RETINANET.FOCAL_LOSS_GAMMA": (2.0,),
    "MODEL.RETINANET.FOCAL_LOSS_ALPHA": (0.25,),
    "MODEL.RETINANET.BBOX_REG_LOSS_TYPE": ("smooth_l1", "giou", "diou", "ciou"),
    "MODEL.RETINANET.NORM": ("", "GN"),
}
# Keys above that only the detection tasks read; other tasks (META_ARCHITECTURE) are not held to them.
_DETECTION_PREFIXES = ("MODEL.", "INPUT.", "DATASETS.PROPOSAL_FILES")
# Keys above that only R-CNN reads, and RetinaNet's own table.
_RCNN_PREFIXES = ("MODEL.BACKBONE.NAME", "MODEL.PROPOSAL_GENERATOR.", "MODEL.RPN.", "MODEL.ROI_")
DETECTION_ARCHITECTURES = ("GeneralizedRCNN", "RetinaNet")


def _same(a: Any, b: Any) -> bool:
    norm = lambda v: [norm(x) for x in v] if isinstance(v, (list, tuple)) else v  # noqa: E731
    return norm(a) == norm(b)



def check_torchvision_support(cfg, config_file: Optional[str] = None) -> None:
    """Raises ``ValueError`` naming every key the torchvision engine can't honour at its value.

    Model and input keys are checked for the detection tasks (``GeneralizedRCNN``, ``RetinaNet``)
    only; another task validates its own keys when it builds its model.
    """
    arch = cfg.MODEL.META_ARCHITECTURE
    detection = arch in DETECTION_ARCHITECTURES
    table = dict(TORCHVISION_SUPPORTED_VALUES)
    if arch == "RetinaNet":
        table = {k: v for k, v in table.items() if not k.startswith(_RCNN_PREFIXES)}
        table.update(TORCHVISION_SUPPORTED_VALUES_RETINANET)
        if cfg.MODEL.RETINANET.BBOX_REG_LOSS_TYPE == "smooth_l1":
            table["MODEL.RETINANET.SMOOTH_L1_LOSS_BETA"] = (0.0,)
    problems = []
    for key, allowed in table.items():
        if not has_key(cfg, key) or (not detection and key.startswith(_DETECTION_PREFIXES)):
            continue
        value = get_key(cfg, key)
        if not any(_same(value, a) for a in allowed):
            problems.append(f"{key} = {value!r} (supported: {', '.join(repr(a) for a in allowed)})")
    if arch == "GeneralizedRCNN" and cfg.MODEL.BACKBONE.NAME == "build_res2net_backbone" and cfg.MODEL.FPN.IN_FEATURES:
        problems.append("MODEL.FPN.IN_FEATURES is set but MODEL.BACKBONE.NAME has no FPN")
    if problems:
        where = f" in {config_file}" if config_file else ""
        raise ValueError(
            f"the torchvision engine can't honour these config values{where}:\n  "
            + "\n  ".join(problems)
            + "\nUse ENGINE: detectron2 with Detectron2 installed, or change them (docs/engines.md)."
        )
