"""The one config language: Detectron2's YAML schema plus ``MODEL.RES2NET.*``."""
from .res2net import add_res2net_config, build_res2net_from_cfg, res2net_kwargs_from_cfg
from .defaults import (
    ConfigKeyError,
    add_trainer_config,
    check_torchvision_support,
    get_cfg,
    merge_config_file,
    merge_config_list,
)
