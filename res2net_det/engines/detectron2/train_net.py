"""Training and evaluation with Detectron2's ``DefaultTrainer`` on a Res2Net backbone.

Behaves like Detectron2's own ``tools/train_net.py`` (checkpoints, ``--resume``, ``--eval-only``,
COCO evaluation, multi-GPU / multi-machine through ``detectron2.engine.launch``); the only
additions are the ``MODEL.RES2NET.*`` keys and our data set catalog. ``tools/train_net.py`` calls
:func:`launch_main` when the Detectron2 engine is selected; this module also runs by itself::

    python -m res2net_det.engines.detectron2.train_net --config-file configs/faster_rcnn_r2_50.yaml
"""
from __future__ import annotations

import argparse
import logging
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog as D2DatasetCatalog
from detectron2.data import DatasetMapper, MetadataCatalog
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup, hooks, launch
from detectron2.evaluation import verify_results
from detectron2.solver.build import get_default_optimizer_params, maybe_add_gradient_clipping
from detectron2.utils import comm

from ...config.defaults import add_res2net_det_config, config_file_chain
from ...config.from_scratch import check_initial_weights
from ...model_zoo import resolve_config_file
from .. import check_eval_only_weights
from ...data.builtin import register_datasets_from_cfg
from ...evaluation.coco import write_detection_pictures
from . import backbone as _registers_backbones  # noqa: F401  (fills BACKBONE_REGISTRY)
from .data import register_catalog_in_detectron2
from .evaluation import build_detection_evaluator

logger = logging.getLogger(__name__)

__all__ = ["Trainer", "trainer_class", "setup", "main", "launch_main", "build_config"]


class Trainer(DefaultTrainer):
    """Detectron2's ``DefaultTrainer`` with the COCO evaluator (box AP, and mask AP for Mask R-CNN)
    and our trainer keys: ``SOLVER.OPTIMIZER`` (Adam/AdamW on Detectron2's parameter groups) and
    ``SOLVER.LOG_PERIOD`` (Detectron2 hard-codes 20). ``NUM_THREADS``, ``TEST.VIS_IMAGES`` and
    ``DATASETS.COCO_INSTANCES`` are handled by :func:`main`."""

    def __init__(self, cfg: CfgNode) -> None:
        if cfg.SOLVER.GRAD_ACCUM_STEPS != 1:
            raise ValueError(
                f"SOLVER.GRAD_ACCUM_STEPS is {cfg.SOLVER.GRAD_ACCUM_STEPS}, but this detection trainer has no "
                "gradient accumulation; set it to 1 (and IMS_PER_BATCH to what fits) or use ENGINE torchvision"
            )
        super().__init__(cfg)

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, output_folder: str = None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_detection_evaluator(dataset_name, output_folder)  # COCO or VOC, by evaluator_type

    @classmethod
    def build_optimizer(cls, cfg: CfgNode, model: torch.nn.Module) -> torch.optim.Optimizer:
        name = cfg.SOLVER.OPTIMIZER.upper()
        if name == "SGD":
            return super().build_optimizer(cfg, model)  # exactly Detectron2's
        if name not in ("ADAM", "ADAMW"):
            raise ValueError(f"SOLVER.OPTIMIZER must be 'SGD', 'Adam' or 'AdamW', got {cfg.SOLVER.OPTIMIZER!r}")
        params = get_default_optimizer_params(
            model,
            base_lr=cfg.SOLVER.BASE_LR,
            weight_decay=cfg.SOLVER.WEIGHT_DECAY,
            weight_decay_norm=cfg.SOLVER.WEIGHT_DECAY_NORM,
            bias_lr_factor=cfg.SOLVER.BIAS_LR_FACTOR,
            weight_decay_bias=cfg.SOLVER.WEIGHT_DECAY_BIAS,
        )
        optimizer = (torch.optim.Adam if name == "ADAM" else torch.optim.AdamW)(params, lr=cfg.SOLVER.BASE_LR)
        return maybe_add_gradient_clipping(cfg, optimizer)

    def build_hooks(self):
        period = self.cfg.SOLVER.LOG_PERIOD
        return [
            hooks.PeriodicWriter(self.build_writers(), period=period) if isinstance(h, hooks.PeriodicWriter) else h
            for h in super().build_hooks()
        ]


def _instances_dict(instances) -> dict:
    """Detectron2 ``Instances`` -> the fields :func:`write_detection_pictures` draws."""
    instances = instances.to("cpu")
    out = {"pred_boxes": instances.pred_boxes.tensor, "scores": instances.scores, "pred_classes": instances.pred_classes}
    if instances.has("pred_masks"):
        out["pred_masks"] = instances.pred_masks
    return out


def visualize_predictions(cfg: CfgNode, model: torch.nn.Module, dataset_name: str, output_dir: str,
                          num_images: int) -> list:
    """Draws the predictions on the first ``num_images`` images of a data set as PNGs (the same
    pictures as the torchvision engine's); returns the paths."""
    if not comm.is_main_process() or num_images <= 0:
        return []
    mapper = DatasetMapper(cfg, is_train=False)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        paths = write_detection_pictures(
            D2DatasetCatalog.get(dataset_name)[:num_images],
            lambda record, _image: _instances_dict(model([mapper(record)])[0]["instances"]),
            output_dir, MetadataCatalog.get(dataset_name).get("thing_classes"),
        )
    model.train(was_training)
    return paths


def build_config(config_file: str = "", opts=()) -> CfgNode:
    """Detectron2's ``get_cfg()`` + our keys (``MODEL.RES2NET.*``, trainer and task keys, the same
    as :func:`res2net_det.config.get_cfg` adds) + a YAML file + ``KEY VALUE`` overrides.

    Unknown keys fail here with Detectron2's error naming the key. On a machine without CUDA,
    ``MODEL.DEVICE "cuda"`` falls back to the CPU with a warning, so the same config runs anywhere.
    """
    cfg = add_res2net_det_config(get_cfg())
    if config_file:
        config_file = resolve_config_file(config_file)
        config_file_chain(config_file)  # a missing file or _BASE_ fails here, naming it
        # Detectron2's CfgNode defaults to allow_unsafe=True (yaml.unsafe_load can run code).
        cfg.merge_from_file(config_file, allow_unsafe=False)
    cfg.merge_from_list(list(opts))
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("MODEL.DEVICE is %r but CUDA is not available: using the CPU", cfg.MODEL.DEVICE)
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def setup(args: argparse.Namespace) -> CfgNode:
    """The frozen config for ``args`` (``config_file``, ``opts``) and Detectron2's ``default_setup``
    (output dir, logger, config dump, seed)."""
    cfg = build_config(args.config_file, args.opts)
    check_initial_weights(cfg, args)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def trainer_class(cfg: CfgNode) -> type:
    """The ``DefaultTrainer`` for the config's task: saliency (``PoolNetSaliency``) or detection."""
    if cfg.MODEL.META_ARCHITECTURE == "PoolNetSaliency":
        from .saliency import SaliencyTrainer  # registers the meta-architecture

        return SaliencyTrainer
    return Trainer


def main(args: argparse.Namespace):
    """One worker: trains (or evaluates with ``--eval-only``) and returns the evaluation results
    ``{dataset: {"bbox": {"AP": ..., "AP50": ...}}}`` (None when nothing was evaluated)."""
    cfg = setup(args)
    if cfg.NUM_THREADS > 0:
        torch.set_num_threads(cfg.NUM_THREADS)
    # Data sets registered in our catalog (the embedded synthetic set, DATASETS.COCO_INSTANCES)
    # become visible to Detectron2's data loaders and evaluators in every worker process.
    register_datasets_from_cfg(cfg)
    register_catalog_in_detectron2()

    trainer_cls = trainer_class(cfg)
    if args.eval_only:
        check_eval_only_weights(args, cfg.MODEL.WEIGHTS, cfg.OUTPUT_DIR)
        model = trainer_cls.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results = trainer_cls.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
        return results

    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    for name in cfg.DATASETS.TEST if trainer_cls is Trainer else ():
        visualize_predictions(cfg, trainer.model, name, os.path.join(cfg.OUTPUT_DIR, "vis", name), cfg.TEST.VIS_IMAGES)
    # DefaultTrainer.train() returns results only with TEST.EXPECTED_RESULTS; its final
    # evaluation (EvalHook) is always kept here, so callers get the metrics either way.
    return getattr(trainer, "_last_eval_results", None)


def launch_main(args: argparse.Namespace):
    """Runs :func:`main` on ``num_gpus`` processes per machine across ``num_machines`` machines.

    ``args`` is a Detectron2-style namespace: ``config_file``, ``resume``, ``eval_only``,
    ``num_gpus``, ``num_machines``, ``machine_rank``, ``dist_url``, ``opts``. With one process in
    all (``num_gpus`` 0 or 1 on one machine) :func:`main` runs in this process and its results
    are returned; with several, ``detectron2.engine.launch`` spawns them and returns nothing
    (the metrics are in the log and ``OUTPUT_DIR/metrics.json``).
    """
    if max(args.num_gpus, 1) * args.num_machines <= 1:
        return main(args)  # what launch() does for one process, keeping the results
    return launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    cli_args = default_argument_parser().parse_args()
    print("Command Line Args:", cli_args)
    launch_main(cli_args)
