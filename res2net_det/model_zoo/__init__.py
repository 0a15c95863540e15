"""The configs that ship with the package, by name, as Detectron2's ``model_zoo`` offers its own::

    from res2net_det import model_zoo
    model_zoo.get_config_file("faster_rcnn_r2_50.yaml")      # a path inside the installed package
    model_zoo.get_config_file("sod/poolnet_r2_50_duts.yaml")

The repository's ``configs/`` folder is the source; ``res2net_det/model_zoo/configs`` points at it
in a checkout and is copied into the package by ``pip install .`` (setup.py's package data), so
the names work from any directory, with or without a checkout. Tools taking ``--config-file``
accept either a path or one of these names.
"""
from __future__ import annotations

import os
from typing import List

__all__ = ["CONFIG_DIR", "get_config_file", "list_configs", "resolve_config_file"]

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def list_configs() -> List[str]:
    """Every shipped config name, e.g. ``"faster_rcnn_r2_50.yaml"``, ``"sod/quickstart.yaml"``."""
    names = []
    for folder, _, files in os.walk(CONFIG_DIR, followlinks=True):
        rel = os.path.relpath(folder, CONFIG_DIR)
        names += [f if rel == "." else f"{rel}/{f}" for f in files if f.endswith(".yaml")]
    return sorted(names)


def get_config_file(name: str) -> str:
    """The path of the shipped config ``name`` (relative to ``configs/``, ``configs/`` prefix allowed)."""
    rel = name[len("configs/"):] if name.startswith("configs/") else name
    path = os.path.join(CONFIG_DIR, *rel.split("/"))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{name!r} is not a config of the model zoo ({CONFIG_DIR}); available: {', '.join(list_configs())}"
        )
    return path


def resolve_config_file(path_or_name: str) -> str:
    """``path_or_name`` when it is an existing file (or no zoo name), else the shipped config of
    that name. Whoever opens the result reports a missing file."""
    if not path_or_name or os.path.isfile(path_or_name):
        return path_or_name
    try:
        return get_config_file(path_or_name)
    except FileNotFoundError:
        return path_or_name
