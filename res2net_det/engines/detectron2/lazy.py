"""LazyConfig twins of the YAML configs, for Detectron2's own tools.

Detectron2's ``tools/lazyconfig_train_net.py``, ``analyze_model.py`` and ``benchmark.py`` read a
Python config with ``model``, ``dataloader``, ``optimizer``, ``lr_multiplier`` and ``train``.
Each file of ``configs/lazy/`` is one line over :func:`yaml_twin`, which builds those five from
Detectron2's ``configs/common`` pieces (``common/models/mask_rcnn_fpn.py``, ``cascade_rcnn.py``,
``panoptic_fpn.py``, ``retinanet.py``, ``common/data/coco.py``, ``common/train.py``) with the
Res2Net bottom-up swapped in (``L(res2net_backbone)``) and every number read from the YAML twin
(``configs/lazy/NAME.py`` <-> ``configs/NAME.yaml``): the YAML stays the one source of the recipe,
so the two cannot drift (``tests/engines/detectron2/test_lazy_configs.py`` builds both and
compares them).

Values that Detectron2's modules take are computed the way their ``from_config`` computes them
(the leaves call it: anchor generator, RPN head, box / mask heads, box predictor, RetinaNet head,
semantic head, dataset mapper), so a key means the same in both config systems. Keys that
``lazyconfig_train_net.py`` has no place for are refused by name (``SOLVER.GRAD_ACCUM_STEPS`` > 1,
gradient clipping, ...); ``TEST.VIS_IMAGES`` and ``NUM_THREADS`` (pictures, CPU threads: no effect
on the numbers) are not carried.

Importing a LazyConfig file registers our backbones, weights names and data sets (the YAML's
``DATASETS.*`` included), as ``tools/train_net.py`` does.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import os
from typing import Any, Dict, NamedTuple, Sequence

from detectron2 import model_zoo as d2_model_zoo
from detectron2.config import CfgNode
from detectron2.config import LazyCall as L
from detectron2.data import DatasetMapper
from detectron2.data.transforms import Augmentation
from detectron2.layers import ShapeSpec
from detectron2.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2.modeling.backbone.fpn import LastLevelP6P7
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.matcher import Matcher
from detectron2.modeling.meta_arch.retinanet import RetinaNetHead
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead
from detectron2.modeling.poolers import ROIPooler
from detectron2.modeling.proposal_generator import RPN, StandardRPNHead
from detectron2.modeling.roi_heads import FastRCNNConvFCHead, FastRCNNOutputLayers, MaskRCNNConvUpsampleHead, ROIHeads
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import CosineParamScheduler, MultiStepParamScheduler
from omegaconf import DictConfig

from ...config.defaults import get_key
from ...config.detection import fpn_in_features
from ...config.solver import optimizer_class, optimizer_param_groups, param_group_kwargs
from ...modeling.res2net import stage_strides
from .backbone import last_level_max_pool, res2net_backbone, res2net_backbone_kwargs
from .evaluation import build_detection_evaluator
from .train_net import build_config, register_datasets

__all__ = ["LazyTwin", "LazyTranslationError", "lazy_config", "yaml_twin", "yaml_twin_path"]

# Detectron2's configs/common model of each meta-architecture (Cascade R-CNN: by ROI_HEADS.NAME).
COMMON_MODELS = {
    "GeneralizedRCNN": "common/models/mask_rcnn_fpn.py",
    "CascadeROIHeads": "common/models/cascade_rcnn.py",
    "PanopticFPN": "common/models/panoptic_fpn.py",
    "RetinaNet": "common/models/retinanet.py",
}
# The backbone each meta-architecture's YAML must name (the FPN the lazy model builds).
FPN_BACKBONES = {
    "GeneralizedRCNN": "build_res2net_fpn_backbone",
    "PanopticFPN": "build_res2net_fpn_backbone",
    "RetinaNet": "build_retinanet_res2net_fpn_backbone",
}
# Keys the LazyConfig training loop (Detectron2's lazyconfig_train_net.py) has no place for,
# with the value it runs as.
_LAZY_FIXED = {
    "SOLVER.GRAD_ACCUM_STEPS": 1,
    "SOLVER.CLIP_GRADIENTS.ENABLED": False,
    "SOLVER.REFERENCE_WORLD_SIZE": 0,
    "TEST.AUG.ENABLED": False,
    "TEST.PRECISE_BN.ENABLED": False,
    "MODEL.LOAD_PROPOSALS": False,
    "MODEL.KEYPOINT_ON": False,
    "DATALOADER.SAMPLER_TRAIN": "TrainingSampler",
    "MODEL.ROI_BOX_HEAD.USE_FED_LOSS": False,
    "MODEL.PANOPTIC_FPN.INSTANCE_LOSS_WEIGHT": 1.0,
}


class LazyTranslationError(ValueError):
    """A YAML value the LazyConfig twin cannot express; the message names the file and the key."""


class LazyTwin(NamedTuple):
    """What a LazyConfig file defines (the names Detectron2's LazyConfig tools read)."""

    model: DictConfig
    dataloader: DictConfig
    optimizer: DictConfig
    lr_multiplier: DictConfig
    train: DictConfig


def _lazify(value: Any) -> Any:
    """A value of a ``from_config`` dict as a LazyConfig value: Detectron2's small helper objects
    become ``LazyCall`` nodes of their constructor arguments, containers are converted inside."""
    if isinstance(value, Matcher):
        return L(Matcher)(thresholds=list(value.thresholds[1:-1]), labels=list(value.labels),
                          allow_low_quality_matches=value.allow_low_quality_matches)
    if isinstance(value, Box2BoxTransform):
        return L(Box2BoxTransform)(weights=list(value.weights), scale_clamp=value.scale_clamp)
    if isinstance(value, ShapeSpec):
        return L(ShapeSpec)(**{f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Augmentation):
        # Detectron2's augmentations keep their constructor arguments as attributes (their __repr__ reads them).
        params = [p for p in inspect.signature(type(value).__init__).parameters if p != "self"]
        return L(type(value))(**{p: _lazify(getattr(value, p)) for p in params if hasattr(value, p)})
    if isinstance(value, dict):
        return {k: _lazify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lazify(v) for v in value]
    return value


def _leaf(cls: type, cfg: CfgNode, *args: Any, drop: Sequence[str] = (), **override: Any) -> DictConfig:
    """``L(cls)`` with the arguments Detectron2's own ``cls.from_config(cfg, *args)`` computes."""
    kwargs = {k: _lazify(v) for k, v in cls.from_config(cfg, *args).items() if k not in drop}
    kwargs.update(override)
    return L(cls)(**kwargs)


class _Translator:
    """One YAML config -> the five LazyConfig nodes."""

    def __init__(self, cfg: CfgNode, config_file: str) -> None:
        self.cfg = cfg
        self.file = config_file

    def fail(self, key: str, why: str) -> LazyTranslationError:
        return LazyTranslationError(f"{self.file}: {key}={get_key(self.cfg, key)!r} {why}")

    def require(self, key: str, *allowed: Any) -> None:
        if get_key(self.cfg, key) not in allowed:
            raise self.fail(key, f"has no LazyConfig translation (supported: {', '.join(map(repr, allowed))}); "
                                 "use the YAML with tools/train_net.py")

    # ------------------------------------------------------------------ model
    def shapes(self) -> Dict[str, ShapeSpec]:
        """The FPN's outputs, as ``backbone.output_shape()`` would report them."""
        m = self.cfg.MODEL
        strides = stage_strides(m.RES2NET.RES5_DILATION == 2)
        levels = [strides[f] for f in m.FPN.IN_FEATURES]
        levels += [levels[-1] * 2 ** (k + 1) for k in range(2 if m.META_ARCHITECTURE == "RetinaNet" else 1)]
        return {f"p{int(math.log2(s))}": ShapeSpec(channels=m.FPN.OUT_CHANNELS, stride=s) for s in levels}

    def backbone(self, node: DictConfig) -> None:
        m = self.cfg.MODEL
        self.require("MODEL.BACKBONE.NAME", FPN_BACKBONES[m.META_ARCHITECTURE])
        bottom_up = res2net_backbone_kwargs(self.cfg)
        try:
            fpn_in_features(self.cfg)
        except ValueError as e:
            raise LazyTranslationError(f"{self.file}: {e}") from None
        if m.META_ARCHITECTURE == "RetinaNet":
            if "res5" not in bottom_up["out_features"]:
                raise self.fail("MODEL.RES2NET.OUT_FEATURES", "lacks res5, which RetinaNet's P6/P7 are made from")
            top = L(LastLevelP6P7)(in_channels=2048, out_channels="${..out_channels}")
        else:
            last = stage_strides(m.RES2NET.RES5_DILATION == 2)[m.FPN.IN_FEATURES[-1]]
            top = L(last_level_max_pool)(in_feature=f"p{int(math.log2(last))}")
        node.update(bottom_up=L(res2net_backbone)(**bottom_up), in_features=list(m.FPN.IN_FEATURES),
                    out_channels=m.FPN.OUT_CHANNELS, norm=m.FPN.NORM, fuse_type=m.FPN.FUSE_TYPE, top_block=top)

    def rpn(self, node: DictConfig, shapes: Dict[str, ShapeSpec]) -> None:
        self.require("MODEL.PROPOSAL_GENERATOR.NAME", "RPN")
        self.require("MODEL.RPN.HEAD_NAME", "StandardRPNHead")
        self.require("MODEL.ANCHOR_GENERATOR.NAME", "DefaultAnchorGenerator")
        levels = [shapes[f] for f in self.cfg.MODEL.RPN.IN_FEATURES]
        kwargs = RPN.from_config(self.cfg, shapes)  # builds a small head; its plain values are what we keep
        kwargs.update(head=_leaf(StandardRPNHead, self.cfg, levels),
                      anchor_generator=_leaf(DefaultAnchorGenerator, self.cfg, levels))
        node.update({k: v if isinstance(v, DictConfig) else _lazify(v) for k, v in kwargs.items()})

    def pooler(self, head: str, shapes: Dict[str, ShapeSpec]) -> DictConfig:
        h = self.cfg.MODEL[head]
        return L(ROIPooler)(output_size=h.POOLER_RESOLUTION,
                            scales=[1.0 / shapes[k].stride for k in self.cfg.MODEL.ROI_HEADS.IN_FEATURES],
                            sampling_ratio=h.POOLER_SAMPLING_RATIO, pooler_type=h.POOLER_TYPE)

    def box_head(self, shapes: Dict[str, ShapeSpec], **predictor: Any):
        """(box head, box predictor) as ``StandardROIHeads._init_box_head`` builds them."""
        self.require("MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead")
        b = self.cfg.MODEL.ROI_BOX_HEAD
        channels = shapes[self.cfg.MODEL.ROI_HEADS.IN_FEATURES[0]].channels
        res = b.POOLER_RESOLUTION
        out = (ShapeSpec(channels=b.FC_DIM) if b.NUM_FC else
               ShapeSpec(channels=b.CONV_DIM if b.NUM_CONV else channels, height=res, width=res))
        head = _leaf(FastRCNNConvFCHead, self.cfg, ShapeSpec(channels=channels, height=res, width=res))
        return head, _leaf(FastRCNNOutputLayers, self.cfg, out, drop=("get_fed_loss_cls_weights",), **predictor)

    def roi_heads(self, node: DictConfig, shapes: Dict[str, ShapeSpec]) -> None:
        m = self.cfg.MODEL
        cascade = m.ROI_HEADS.NAME == "CascadeROIHeads"
        self.require("MODEL.ROI_HEADS.NAME", "StandardROIHeads", "CascadeROIHeads")
        kwargs = _lazify(ROIHeads.from_config(self.cfg))  # sampling, classes, matcher: no module built
        kwargs.update(train_on_pred_boxes=m.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES,
                      box_in_features=list(m.ROI_HEADS.IN_FEATURES), box_pooler=self.pooler("ROI_BOX_HEAD", shapes))
        if cascade:
            c = m.ROI_BOX_CASCADE_HEAD
            if len(c.BBOX_REG_WEIGHTS) != len(c.IOUS):
                raise self.fail("MODEL.ROI_BOX_CASCADE_HEAD.IOUS",
                                f"needs one value per BBOX_REG_WEIGHTS entry ({len(c.BBOX_REG_WEIGHTS)})")
            stages = [self.box_head(shapes, box2box_transform=L(Box2BoxTransform)(weights=list(w)))
                      for w in c.BBOX_REG_WEIGHTS]
            kwargs.pop("proposal_matcher")
            kwargs.update(box_heads=[h for h, _ in stages], box_predictors=[p for _, p in stages],
                          proposal_matchers=[
                              L(Matcher)(thresholds=[iou], labels=[0, 1], allow_low_quality_matches=False)
                              for iou in c.IOUS])
        else:
            kwargs["box_head"], kwargs["box_predictor"] = self.box_head(shapes)
        if m.MASK_ON:
            self.require("MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNConvUpsampleHead")
            mh = m.ROI_MASK_HEAD
            channels = shapes[m.ROI_HEADS.IN_FEATURES[0]].channels
            kwargs.update(mask_in_features=list(m.ROI_HEADS.IN_FEATURES),
                          mask_pooler=self.pooler("ROI_MASK_HEAD", shapes) if mh.POOLER_TYPE else None,
                          mask_head=_leaf(MaskRCNNConvUpsampleHead, self.cfg,
                                          ShapeSpec(channels=channels, width=mh.POOLER_RESOLUTION,
                                                    height=mh.POOLER_RESOLUTION)))
        else:
            kwargs.update(mask_in_features=None, mask_pooler=None, mask_head=None)
        for key in [k for k in node if k not in kwargs and k != "_target_"]:
            node.pop(key)
        node.update(kwargs)
        # Keep Detectron2's interpolation: model.roi_heads.num_classes=N then reaches the predictors.
        for predictor in node.box_predictors if cascade else [node.box_predictor]:
            predictor.num_classes = "${...num_classes}" if cascade else "${..num_classes}"
        if m.MASK_ON and not m.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK:
            node.mask_head.num_classes = "${..num_classes}"

    def model(self) -> DictConfig:
        m = self.cfg.MODEL
        self.require("MODEL.META_ARCHITECTURE", *FPN_BACKBONES)
        common = COMMON_MODELS["CascadeROIHeads" if m.ROI_HEADS.NAME == "CascadeROIHeads" else m.META_ARCHITECTURE]
        model = d2_model_zoo.get_config(common).model
        self.backbone(model.backbone)
        shapes = self.shapes()
        common_keys = dict(pixel_mean=list(m.PIXEL_MEAN), pixel_std=list(m.PIXEL_STD),
                           input_format=self.cfg.INPUT.FORMAT, vis_period=self.cfg.VIS_PERIOD)
        if m.META_ARCHITECTURE == "RetinaNet":
            r = m.RETINANET
            levels = [shapes[f] for f in r.IN_FEATURES]
            model.update(
                head=_leaf(RetinaNetHead, self.cfg, levels, num_classes="${..num_classes}"),
                anchor_generator=_leaf(DefaultAnchorGenerator, self.cfg, levels),
                box2box_transform=L(Box2BoxTransform)(weights=list(r.BBOX_REG_WEIGHTS)),
                anchor_matcher=L(Matcher)(thresholds=list(r.IOU_THRESHOLDS), labels=list(r.IOU_LABELS),
                                          allow_low_quality_matches=True),
                num_classes=r.NUM_CLASSES, head_in_features=list(r.IN_FEATURES), focal_loss_alpha=r.FOCAL_LOSS_ALPHA,
                focal_loss_gamma=r.FOCAL_LOSS_GAMMA, smooth_l1_beta=r.SMOOTH_L1_LOSS_BETA,
                box_reg_loss_type=r.BBOX_REG_LOSS_TYPE, test_score_thresh=r.SCORE_THRESH_TEST,
                test_topk_candidates=r.TOPK_CANDIDATES_TEST, test_nms_thresh=r.NMS_THRESH_TEST,
                max_detections_per_image=self.cfg.TEST.DETECTIONS_PER_IMAGE, **common_keys,
            )
            return model
        self.rpn(model.proposal_generator, shapes)
        self.roi_heads(model.roi_heads, shapes)
        model.update(common_keys)
        if m.META_ARCHITECTURE == "PanopticFPN":
            self.require("MODEL.SEM_SEG_HEAD.NAME", "SemSegFPNHead")
            c = m.PANOPTIC_FPN.COMBINE
            model.update(sem_seg_head=_leaf(SemSegFPNHead, self.cfg, shapes), combine_overlap_thresh=c.OVERLAP_THRESH,
                         combine_stuff_area_thresh=c.STUFF_AREA_LIMIT,
                         combine_instances_score_thresh=c.INSTANCES_CONFIDENCE_THRESH)
        return model

    # ------------------------------------------------------------------ the rest
    def dataloader(self) -> DictConfig:
        c = self.cfg
        panoptic = c.MODEL.META_ARCHITECTURE == "PanopticFPN"
        dl = d2_model_zoo.get_config(
            "common/data/coco_panoptic_separated.py" if panoptic else "common/data/coco.py").dataloader
        if not c.DATASETS.TEST:
            raise self.fail("DATASETS.TEST", "is empty; a LazyConfig evaluates one test set (the first)")
        dl.train.dataset.update(names=list(c.DATASETS.TRAIN), filter_empty=c.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
        dl.train.mapper = L(DatasetMapper)(**_lazify(DatasetMapper.from_config(c, True)))
        dl.train.update(total_batch_size=c.SOLVER.IMS_PER_BATCH, num_workers=c.DATALOADER.NUM_WORKERS)
        if not c.DATALOADER.ASPECT_RATIO_GROUPING:
            # Only when off (on is build_detection_train_loader's default): benchmark.py --task data hands
            # these arguments to its DataLoaderBenchmark, which has no such argument.
            dl.train.aspect_ratio_grouping = False
        dl.test.dataset.update(names=c.DATASETS.TEST[0], filter_empty=False)
        dl.test.mapper = L(DatasetMapper)(**_lazify(DatasetMapper.from_config(c, False)))
        dl.test.num_workers = c.DATALOADER.NUM_WORKERS
        # Our engine's evaluator (Detectron2's, by evaluator_type), its metrics also in the results file.
        dl.evaluator = L(build_detection_evaluator)(
            dataset_name="${..test.dataset.names}",
            output_folder="${train.output_dir}/inference/${..test.dataset.names}")
        return dl

    def optimizer(self) -> DictConfig:
        """The optimizer and parameter groups of :mod:`res2net_det.config.solver`, as tools/train_net.py builds them."""
        try:
            optimizer, kwargs = optimizer_class(self.cfg)
        except ValueError as e:
            raise LazyTranslationError(f"{self.file}: {e}") from None
        return L(optimizer)(params=L(optimizer_param_groups)(**param_group_kwargs(self.cfg)), **kwargs)

    def lr_multiplier(self) -> DictConfig:
        """Detectron2's ``build_lr_scheduler`` as a LazyConfig (what ``common/coco_schedule.py`` writes out)."""
        s = self.cfg.SOLVER
        if s.LR_SCHEDULER_NAME == "WarmupMultiStepLR":
            steps = [x for x in s.STEPS if x <= s.MAX_ITER]
            schedule = L(MultiStepParamScheduler)(values=[s.GAMMA ** k for k in range(len(steps) + 1)],
                                                  milestones=steps, num_updates=s.MAX_ITER)
        elif s.LR_SCHEDULER_NAME == "WarmupCosineLR":
            schedule = L(CosineParamScheduler)(start_value=1.0, end_value=s.BASE_LR_END / s.BASE_LR)
        else:
            raise self.fail("SOLVER.LR_SCHEDULER_NAME", "is not WarmupMultiStepLR or WarmupCosineLR")
        return L(WarmupParamScheduler)(scheduler=schedule, warmup_factor=s.WARMUP_FACTOR,
                                       warmup_length=min(s.WARMUP_ITERS / s.MAX_ITER, 1.0),
                                       warmup_method=s.WARMUP_METHOD, rescale_interval=s.RESCALE_INTERVAL)

    def train(self) -> DictConfig:
        c = self.cfg
        train = d2_model_zoo.get_config("common/train.py").train
        train.update(
            output_dir=c.OUTPUT_DIR, init_checkpoint=c.MODEL.WEIGHTS, max_iter=c.SOLVER.MAX_ITER,
            eval_period=c.TEST.EVAL_PERIOD, log_period=c.SOLVER.LOG_PERIOD, device=c.MODEL.DEVICE, seed=c.SEED,
            cudnn_benchmark=c.CUDNN_BENCHMARK,
        )
        train.amp.enabled = c.SOLVER.AMP.ENABLED
        # CHECKPOINT_PERIOD 0 means "model_final only" (docs/engines.md); fvcore's checkpointer divides by
        # its period, and one of MAX_ITER writes nothing before the final one.
        train.checkpointer.period = c.SOLVER.CHECKPOINT_PERIOD or c.SOLVER.MAX_ITER
        if str(c.MODEL.DEVICE).startswith("cpu"):
            # Detectron2's create_ddp_model gives DDP the process's GPU unless told otherwise; a CPU
            # module takes none (several processes on the CPU: --num-gpus N, gloo).
            train.ddp.device_ids = None
        return train

    def check_fixed(self) -> None:
        for key, value in _LAZY_FIXED.items():
            if get_key(self.cfg, key) != value:
                raise self.fail(key, f"has no counterpart in Detectron2's LazyConfig training "
                                     f"(lazyconfig_train_net.py runs {value!r}); use the YAML with tools/train_net.py")


def lazy_config(config_file: str, opts: Sequence[str] = ()) -> LazyTwin:
    """The LazyConfig nodes of a YAML config (a path or a shipped name) plus ``KEY VALUE`` overrides;
    registers the data sets it names (our catalog and ``DATASETS.*``) in Detectron2's catalog."""
    cfg = build_config(config_file, list(opts))
    translator = _Translator(cfg, config_file)
    translator.check_fixed()
    register_datasets(cfg)
    return LazyTwin(translator.model(), translator.dataloader(), translator.optimizer(), translator.lr_multiplier(),
                    translator.train())


def yaml_twin_path(lazy_file: str) -> str:
    """``configs/lazy/NAME.py`` -> ``configs/NAME.yaml``."""
    folder, name = os.path.split(os.path.abspath(lazy_file))
    return os.path.join(os.path.dirname(folder), os.path.splitext(name)[0] + ".yaml")


def yaml_twin(lazy_file: str, opts: Sequence[str] = ()) -> LazyTwin:
    """:func:`lazy_config` of the YAML twin of a ``configs/lazy/NAME.py`` file (pass its ``__file__``)."""
    path = yaml_twin_path(lazy_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{lazy_file}: its YAML twin {path} does not exist "
                                "(configs/lazy/NAME.py reads configs/NAME.yaml)")
    return lazy_config(path, opts)

