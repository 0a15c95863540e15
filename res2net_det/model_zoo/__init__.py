"""The configs that ship with the package, by name, as Detectron2's ``model_zoo`` offers its own::

    from res2net_det import model_zoo
    model_zoo.get_config_file("faster_rcnn_r2_50.yaml")      # a path inside the installed package
    model_zoo.get_config_file("sod/poolnet_r2_50_duts.yaml")
    model_zoo.get_config("lazy/faster_rcnn_r2_50.py")           # the loaded LazyConfig (needs Detectron2)

The repository's ``configs/`` folder is the source; ``res2net_det/model_zoo/configs`` points at it
in a checkout and is copied into the package by ``pip install .`` (setup.py's package data), so
the names work from any directory, with or without a checkout. Tools taking ``--config-file``
accept either a path or one of these names.

``configs/lazy/NAME.py`` are the LazyConfig twins of ``configs/NAME.yaml`` for Detectron2's own tools
(``lazyconfig_train_net.py``, ``analyze_model.py``, ``benchmark.py``; docs/detectron2.md).
"""
from __future__ import annotations

import os
from typing import List

__all__ = ["CONFIG_DIR", "get_config", "get_config_file", "list_configs", "resolve_config_file"]

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def list_configs(lazy: bool = False) -> List[str]:
    """Every shipped YAML config name, e.g. ``"faster_rcnn_r2_50.yaml"``, ``"sod/quickstart.yaml"``;
    with ``lazy`` the LazyConfig files (``"lazy/faster_rcnn_r2_50.py"``) instead."""
    names = []
    for folder, _, files in os.walk(CONFIG_DIR, followlinks=True):
        rel = os.path.relpath(folder, CONFIG_DIR).replace(os.sep, "/")
        if lazy != (rel == "lazy" or rel.startswith("lazy/")):
            continue
        names += [f if rel == "." else f"{rel}/{f}" for f in files if f.endswith(".py" if lazy else ".yaml")]
    return sorted(names)


def get_config_file(name: str) -> str:
    """The path of the shipped config ``name`` (relative to ``configs/``, ``configs/`` prefix allowed)."""
    rel = name[len("configs/"):] if name.startswith("configs/") else name
    path = os.path.join(CONFIG_DIR, *rel.split("/"))
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{name!r} is not a config of the model zoo ({CONFIG_DIR}); available: "
            f"{', '.join(list_configs() + list_configs(lazy=True))}"
        )
    return path


def get_config(name: str):
    """The loaded LazyConfig of a shipped ``lazy/NAME.py`` file (Detectron2's ``LazyConfig.load``), as
    Detectron2's ``model_zoo.get_config`` returns its own: ``cfg.model``, ``cfg.dataloader``,
    ``cfg.optimizer``, ``cfg.lr_multiplier``, ``cfg.train``. Needs Detectron2."""
    path = get_config_file(name)
    if not path.endswith(".py"):
        raise ValueError(
            f"{name!r} is a YAML config; get_config loads the LazyConfig files (lazy/*.py: "
            f"{', '.join(list_configs(lazy=True))}). For the YAML: get_config_file({name!r}) with "
            "res2net_det.engines.detectron2.train_net.build_config, or tools/train_net.py --config-file"
        )
    try:
        from detectron2.config import LazyConfig  # optional dependency: only LazyConfig files need it
    except ImportError as e:
        raise ImportError(
            f"model_zoo.get_config({name!r}) loads a Detectron2 LazyConfig and needs Detectron2, which is not "
            f"importable ({e}); install it from source (README.md, section Detectron2) or use the YAML twin "
            "with tools/train_net.py (either engine)"
        ) from e
    return LazyConfig.load(path)

def resolve_config_file(path_or_name: str) -> str:
    """``path_or_name`` when it is an existing file (or no zoo name), else the shipped config of
    that name. Whoever opens the result reports a missing file."""
    if not path_or_name or os.path.isfile(path_or_name):
        return path_or_name
    try:
        return get_config_file(path_or_name)
    except FileNotFoundError:
        return path_or_name
