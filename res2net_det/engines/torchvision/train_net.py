"""``tools/train_net.py`` on the torchvision engine: config set-up, training or evaluation."""
from __future__ import annotations

import argparse
import logging
import os
import random
from typing import Any, Dict

import numpy as np
import torch

from ...config.defaults import get_cfg, merge_config_file, merge_config_list
from ...config.from_scratch import check_initial_weights
from ...config.weights import check_weights_preprocessing
from ...data.builtin import register_datasets_from_cfg
from ...utils import comm
from ...utils.logger import setup_logger
from .. import check_eval_only_weights
from .checkpoint import Checkpointer
from .registry import get_task
from .support import check_torchvision_support
from .trainer import TaskLoopTrainer, model_device

logger = logging.getLogger(__name__)

__all__ = ["setup", "apply_runtime_settings", "build_trainer", "main"]


def setup(args: argparse.Namespace):
    """The frozen config of ``args`` (file + KEY VALUE options), with logging and seeding done."""
    cfg = get_cfg()
    if args.config_file:
        merge_config_file(cfg, args.config_file)
    merge_config_list(cfg, args.opts or [])
    check_torchvision_support(cfg, args.config_file or None)
    check_initial_weights(cfg, args)
    check_weights_preprocessing(cfg, args.config_file or "")
    if cfg.SEED < 0:
        # Drawn once (by the main process, shared with the others) and kept in config.yaml and in
        # every checkpoint, so the run can be repeated and resumed exactly.
        cfg.SEED = comm.all_gather(int.from_bytes(os.urandom(4), "little") % 2**31)[0]
    cfg.freeze()
    rank = comm.get_rank()
    setup_logger(cfg.OUTPUT_DIR, rank)
    logger.info("engine: torchvision; config file: %s; world size %d", args.config_file, comm.get_world_size())
    if comm.is_main_process():
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
        with open(os.path.join(cfg.OUTPUT_DIR, "config.yaml"), "w", encoding="utf-8") as f:
            f.write(cfg.dump())
    apply_runtime_settings(cfg)
    seed = cfg.SEED + rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return cfg


def apply_runtime_settings(cfg) -> None:
    """``NUM_THREADS`` (torch's CPU threads; 0 keeps PyTorch's default) and ``CUDNN_BENCHMARK``
    (cuDNN's convolution autotuner, as Detectron2's ``default_setup`` sets it)."""
    if cfg.NUM_THREADS > 0:
        torch.set_num_threads(cfg.NUM_THREADS)
    torch.backends.cudnn.benchmark = bool(cfg.CUDNN_BENCHMARK)


def build_trainer(cfg) -> TaskLoopTrainer:
    """The trainer of the config's task for a set-up config (:func:`setup`), data sets registered."""
    register_datasets_from_cfg(cfg)
    return TaskLoopTrainer(cfg, get_task(cfg.MODEL.META_ARCHITECTURE))


def main(args: argparse.Namespace) -> Dict[str, Any]:
    world = args.num_gpus * args.num_machines
    if world > 1 and int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        raise SystemExit(
            f"--num-gpus {args.num_gpus} --num-machines {args.num_machines}: the torchvision engine runs "
            "one process per GPU under torchrun, e.g.\n"
            f"  torchrun --nproc_per_node {args.num_gpus} --nnodes {args.num_machines} "
            f"--node_rank {args.machine_rank} --master_addr HOST --master_port PORT "
            "tools/train_net.py --config-file ...\n(leave out --num-gpus)."
        )
    comm.init_from_env()
    cfg = setup(args)
    if args.eval_only:
        check_eval_only_weights(args, cfg.MODEL.WEIGHTS, cfg.OUTPUT_DIR)
        register_datasets_from_cfg(cfg)
        task = get_task(cfg.MODEL.META_ARCHITECTURE)
        model = task.build_model(cfg).to(model_device(cfg))
        Checkpointer(model, cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume, allow_partial=cfg.MODEL.WEIGHTS_ALLOW_PARTIAL, inference=True,
            accept_checksum_mismatch=cfg.MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH)
        return TaskLoopTrainer.test(cfg, task, model)
    trainer = build_trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()
