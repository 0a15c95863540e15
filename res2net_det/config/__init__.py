"""The one config language: Detectron2's YAML schema plus ``MODEL.RES2NET.*``."""
from .defaults import (
    ConfigKeyError,
    add_res2net_det_config,
    add_trainer_config,
    get_cfg,
    merge_config_file,
    merge_config_list,
)
from .from_scratch import check_initial_weights, check_trainable_from_scratch
from .res2net import add_res2net_config, build_res2net_from_cfg, res2net_kwargs_from_cfg

__all__ = [
    "ConfigKeyError",
    "add_res2net_config",
    "add_res2net_det_config",
    "add_trainer_config",
    "build_res2net_from_cfg",
    "check_initial_weights",
    "check_trainable_from_scratch",
    "get_cfg",
    "merge_config_file",
    "merge_config_list",
    "res2net_kwargs_from_cfg",
]
