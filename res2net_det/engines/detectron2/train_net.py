"""Training and evaluation with Detectron2's ``DefaultTrainer`` on a Res2Net backbone.

Behaves like Detectron2's own ``tools/train_net.py`` (checkpoints, ``--resume``, ``--eval-only``,
COCO evaluation, multi-GPU / multi-machine through ``detectron2.engine.launch``); the only
additions are the ``MODEL.RES2NET.*`` keys, our trainer keys (:mod:`.trainer`), the saliency and
classification tasks, and our data set catalog. ``tools/train_net.py`` calls
:func:`launch_main` when the Detectron2 engine is selected; this module also runs by itself::

    python -m res2net_det.engines.detectron2.train_net --config-file configs/faster_rcnn_r2_50.yaml
"""
from __future__ import annotations

import argparse
import logging
from typing import Dict

import torch
from detectron2.config import CfgNode, get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ...config.defaults import add_res2net_det_config, config_file_chain
from ...config.from_scratch import check_initial_weights
from ...config.weights import check_weights_preprocessing
from ...data.builtin import register_datasets_from_cfg
from ...model_zoo import resolve_config_file
from ...utils.device import resolve_device
from .. import check_eval_only_weights
from . import backbone as _registers_backbones  # noqa: F401  (fills BACKBONE_REGISTRY)
from .checkpoint import Res2NetDetectionCheckpointer
from .data import register_catalog_in_detectron2
from .detection import DetectionTrainer
from .tasks import ClassifierTrainer, SaliencyTrainer
from .trainer import TaskTrainer

logger = logging.getLogger(__name__)

__all__ = ["TRAINERS", "trainer_class", "setup", "build_trainer", "main", "launch_main", "build_config"]


def build_config(config_file: str = "", opts=()) -> CfgNode:
    """Detectron2's ``get_cfg()`` + our keys (``MODEL.RES2NET.*``, trainer and task keys, the same
    as :func:`res2net_det.config.get_cfg` adds) + a YAML file + ``KEY VALUE`` overrides.

    Unknown keys fail here with Detectron2's error naming the key. ``MODEL.DEVICE`` is resolved
    by :func:`res2net_det.utils.device.resolve_device` (``auto``: the GPU if there is one; an
    explicit ``cuda`` without one falls back to the CPU with a warning), so the same config runs anywhere.
    """
    cfg = add_res2net_det_config(get_cfg())
    if config_file:
        config_file = resolve_config_file(config_file)
        config_file_chain(config_file)  # a missing file or _BASE_ fails here, naming it
        # Detectron2's CfgNode defaults to allow_unsafe=True (yaml.unsafe_load can run code).
        cfg.merge_from_file(config_file, allow_unsafe=False)
    cfg.merge_from_list(list(opts))
    cfg.MODEL.DEVICE = str(resolve_device(cfg.MODEL.DEVICE))
    return cfg


def setup(args: argparse.Namespace) -> CfgNode:
    """The frozen config for ``args`` (``config_file``, ``opts``), Detectron2's ``default_setup``
    (output dir, logger, config dump, seed) and ``NUM_THREADS``."""
    cfg = build_config(args.config_file, args.opts)
    check_initial_weights(cfg, args)
    check_weights_preprocessing(cfg, args.config_file or "")
    cfg.freeze()
    default_setup(cfg, args)
    # Our modules' messages (weights fetched, their digests, data sets) in the same console and log.txt.
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="res2net_det", abbrev_name="r2")
    if cfg.NUM_THREADS > 0:
        torch.set_num_threads(cfg.NUM_THREADS)
    return cfg


# MODEL.META_ARCHITECTURE -> its trainer; any other meta-architecture is a detector.
TRAINERS: Dict[str, type] = {
    "PoolNetSaliency": SaliencyTrainer,
    "Res2NetClassifier": ClassifierTrainer,
}


def trainer_class(cfg: CfgNode) -> type:
    """The ``TaskTrainer`` of the config's task (:data:`TRAINERS`, else :class:`~.detection.DetectionTrainer`)."""
    return TRAINERS.get(cfg.MODEL.META_ARCHITECTURE, DetectionTrainer)


def register_datasets(cfg: CfgNode) -> None:
    """Data sets registered in our catalog (the embedded synthetic sets, ``DATASETS.COCO_INSTANCES``)
    become visible to Detectron2's data loaders and evaluators, in every worker process."""
    register_datasets_from_cfg(cfg)
    register_catalog_in_detectron2()


def build_trainer(cfg: CfgNode) -> TaskTrainer:
    """The task's trainer for a set-up config (:func:`setup`), data sets registered."""
    register_datasets(cfg)
    return trainer_class(cfg)(cfg)


def main(args: argparse.Namespace):
    """One worker: trains (or evaluates with ``--eval-only``) and returns the evaluation results
    ``{dataset: {"bbox": {"AP": ..., "AP50": ...}}}`` (None when nothing was evaluated)."""
    cfg = setup(args)
    if args.eval_only:
        check_eval_only_weights(args, cfg.MODEL.WEIGHTS, cfg.OUTPUT_DIR)
        register_datasets(cfg)
        trainer_cls = trainer_class(cfg)
        model = trainer_cls.build_model(cfg)
        # A half-loaded detector (a backbone-only file, another task's model) is refused, naming what is missing.
        Res2NetDetectionCheckpointer(
            model, save_dir=cfg.OUTPUT_DIR, require_complete=not cfg.MODEL.WEIGHTS_ALLOW_PARTIAL,
            accept_checksum_mismatch=cfg.MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH,
        ).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        results = trainer_cls.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
        return results

    trainer = build_trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
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
