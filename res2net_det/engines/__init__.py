"""Engines run a config: Detectron2 (``engines/detectron2``) or torchvision (``engines/torchvision``).

This module is the one place that picks the engine, from the config's ``ENGINE`` key
(``"auto"``, ``"detectron2"``, ``"torchvision"``; command-line ``ENGINE x`` wins) and whether
Detectron2 imports. It imports neither engine until one is chosen.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any, Optional, Union

import yaml

from ..config.defaults import config_file_chain
from ..model_zoo import resolve_config_file

__all__ = ["ENGINES", "check_eval_only_weights", "default_argument_parser", "detectron2_available", "select_engine",
           "main"]

ENGINES = ("detectron2", "torchvision")


def detectron2_available() -> bool:
    """True when ``import detectron2`` would find a package (without importing it)."""
    return importlib.util.find_spec("detectron2") is not None


def _engine_from_config_file(config_file: str) -> str:
    """The ``ENGINE`` value of a config file and its ``_BASE_`` chain ("auto" when unset)."""
    engine = "auto"
    for path in config_file_chain(config_file):  # bases first: the last file that sets it wins
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        engine = str(data.get("ENGINE", engine)) if isinstance(data, dict) else engine
    return engine


def select_engine(cfg_or_args: Union[argparse.Namespace, Any, str, None] = None) -> str:
    """``"detectron2"`` or ``"torchvision"`` for a config, parsed arguments, or an ENGINE value.

    ``"auto"`` (or nothing) picks Detectron2 when it is importable and torchvision otherwise;
    asking for Detectron2 when it is not installed raises ``RuntimeError`` saying so.
    """
    if cfg_or_args is None:
        requested = "auto"
    elif isinstance(cfg_or_args, str):
        requested = cfg_or_args
    elif isinstance(cfg_or_args, argparse.Namespace):
        requested = "auto"
        if getattr(cfg_or_args, "config_file", ""):
            requested = _engine_from_config_file(cfg_or_args.config_file)
        opts = list(getattr(cfg_or_args, "opts", None) or [])
        for key, value in zip(opts[0::2], opts[1::2]):
            if key == "ENGINE":
                requested = value
    else:  # a CfgNode
        requested = str(getattr(cfg_or_args, "ENGINE", "auto"))
    requested = requested.strip().lower()
    if requested == "auto":
        return "detectron2" if detectron2_available() else "torchvision"
    if requested not in ENGINES:
        raise ValueError(f"ENGINE must be 'auto', 'detectron2' or 'torchvision', got {requested!r}")
    if requested == "detectron2" and not detectron2_available():
        raise RuntimeError(
            "the config asks for ENGINE detectron2 but Detectron2 is not installed; install it "
            "(https://detectron2.readthedocs.io/en/latest/tutorials/install.html) or run with "
            "ENGINE torchvision"
        )
    return requested


def default_argument_parser(description: Optional[str] = None) -> argparse.ArgumentParser:
    """The flags of Detectron2's ``tools/train_net.py``, for either engine."""
    parser = argparse.ArgumentParser(
        description=description or "Train or evaluate a model from a Detectron2-schema config.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Config options can be overridden at the end of the command line, e.g.\n"
            "  tools/train_net.py --config-file configs/quickstart.yaml SOLVER.MAX_ITER 100 ENGINE torchvision\n"
            "Multi-GPU with the torchvision engine: torchrun --nproc_per_node N tools/train_net.py ..."
        ),
    )
    parser.add_argument("--config-file", default="", metavar="FILE", type=resolve_config_file,
                        help="a config file, or the name of a shipped one (res2net_det.model_zoo.list_configs())")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUTPUT_DIR/last_checkpoint (else start from MODEL.WEIGHTS)")
    parser.add_argument("--eval-only", action="store_true",
                        help="evaluate MODEL.WEIGHTS (or, with --resume, OUTPUT_DIR's last checkpoint) only")
    parser.add_argument("--allow-untrained", action="store_true",
                        help="let --eval-only evaluate a model without weights (a smoke test of the pipeline)")
    parser.add_argument("--num-gpus", type=int, default=1, help="GPUs per machine")
    parser.add_argument("--num-machines", type=int, default=1, help="total machines")
    parser.add_argument("--machine-rank", type=int, default=0, help="this machine's rank")
    # Detectron2 derives its default port from the user id; same here.
    port = 2**15 + 2**14 + hash(os.getuid() if sys.platform != "win32" else 1) % 2**14
    parser.add_argument("--dist-url", default=f"tcp://127.0.0.1:{port}",
                        help="initialisation URL for multi-machine Detectron2 runs")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="config KEY VALUE pairs, after all flags")
    return parser


def check_eval_only_weights(args: argparse.Namespace, weights: str, output_dir: str) -> None:
    """``--eval-only`` with no ``MODEL.WEIGHTS`` (and nothing to ``--resume``) would evaluate a
    random model and report its numbers as if they meant something: refuse, unless asked."""
    if not getattr(args, "eval_only", False) or weights or getattr(args, "allow_untrained", False):
        return
    if getattr(args, "resume", False) and os.path.isfile(os.path.join(output_dir, "last_checkpoint")):
        return
    raise ValueError(
        "--eval-only without MODEL.WEIGHTS would evaluate an untrained model. Give the weights "
        "(--eval-only MODEL.WEIGHTS path/to/model_final.pth), --resume to use "
        f"{os.path.join(output_dir, 'last_checkpoint')}, or --allow-untrained for a smoke test"
    )


def main(args: argparse.Namespace) -> Any:
    """Runs ``tools/train_net.py``'s job on the selected engine."""
    engine = select_engine(args)
    if engine == "detectron2":
        from .detectron2 import train_net

        return train_net.launch_main(args)  # Detectron2's launch: --num-gpus / --num-machines
    from .torchvision import train_net

    return train_net.main(args)
