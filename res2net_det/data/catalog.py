"""A data set catalog with Detectron2's names and list-of-dicts format, for use without Detectron2.

The Detectron2 engine copies these registrations into Detectron2's own ``DatasetCatalog`` /
``MetadataCatalog``, so a data set is registered once for both engines.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List

__all__ = ["DatasetCatalog", "datasets_root"]


def datasets_root() -> str:
    """``$DETECTRON2_DATASETS`` or ``datasets/`` (Detectron2's convention), for every task."""
    return os.path.expanduser(os.environ.get("DETECTRON2_DATASETS", "datasets"))


class _Catalog:
    def __init__(self) -> None:
        self._loaders: Dict[str, Callable[[], List[dict]]] = {}
        self._metadata: Dict[str, Dict[str, Any]] = {}

    def register(self, name: str, loader: Callable[[], List[dict]], **metadata: Any) -> None:
        """Registers ``loader() -> [dataset dict]`` under ``name`` with its metadata."""
        if name in self._loaders:
            raise KeyError(f"data set {name!r} is already registered")
        self._loaders[name] = loader
        self._metadata[name] = dict(metadata, name=name)

    def get(self, name: str) -> List[dict]:
        """Loads the data set dicts of ``name``."""
        if name not in self._loaders:
            raise KeyError(f"unknown data set {name!r}; registered: {sorted(self._loaders)}")
        return self._loaders[name]()

    def metadata(self, name: str) -> Dict[str, Any]:
        if name not in self._metadata:
            raise KeyError(f"unknown data set {name!r}; registered: {sorted(self._loaders)}")
        return self._metadata[name]

    def names(self) -> List[str]:
        return sorted(self._loaders)

    def __contains__(self, name: str) -> bool:
        return name in self._loaders

    def remove(self, name: str) -> None:
        self._loaders.pop(name, None)
        self._metadata.pop(name, None)


DatasetCatalog = _Catalog()
