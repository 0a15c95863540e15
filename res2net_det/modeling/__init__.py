"""Models: the Res2Net family and the heads built on it."""
from . import detector_layouts  # noqa: F401  (registers the Detectron2-engine detector layout with load_weights)
from .norm import convert_frozen_batchnorm, get_norm
from .res2net import (
    ALIASES,
    MODEL_TABLE,
    VARIANTS,
    Bottle2neck,
    Res2Net,
    build_res2net,
    create_model,
    list_models,
    official_checkpoint,
    resolve_name,
    variant_args,
)
from .weights import CheckpointError, LoadReport, UnsafeCheckpointError, load_weights, read_state_dict

__all__ = [
    "ALIASES",
    "MODEL_TABLE",
    "VARIANTS",
    "Bottle2neck",
    "CheckpointError",
    "LoadReport",
    "Res2Net",
    "UnsafeCheckpointError",
    "build_res2net",
    "convert_frozen_batchnorm",
    "create_model",
    "get_norm",
    "list_models",
    "load_weights",
    "official_checkpoint",
    "read_state_dict",
    "resolve_name",
    "variant_args",
]
