"""Data sets registered once in :data:`res2net_det.data.catalog.DatasetCatalog` serve Detectron2 too."""
from __future__ import annotations

import logging
from typing import Iterable, List, Optional

from detectron2.data import DatasetCatalog as D2DatasetCatalog
from detectron2.data import MetadataCatalog as D2MetadataCatalog
from detectron2.structures import BoxMode

from ...data.catalog import DatasetCatalog

logger = logging.getLogger(__name__)

__all__ = ["register_catalog_in_detectron2"]


def _copy_metadata(name: str) -> None:
    """Our metadata of ``name`` into Detectron2's. Loaders may refine it when they read the files
    (``thing_dataset_id_to_contiguous_id``, class names from the JSON): the files win."""
    target = D2MetadataCatalog.get(name)
    for key, value in DatasetCatalog.metadata(name).items():
        if key == "name":
            continue
        if hasattr(target, key) and getattr(target, key) != value:
            # Detectron2's Metadata refuses to change a value in place; replace it explicitly.
            logger.debug("metadata %r of %r changed on loading; using the new value", key, name)
            delattr(target, key)
        setattr(target, key, value)


def _with_box_modes(dicts: List[dict]) -> List[dict]:
    """Our records may name the box mode ("XYWH_ABS": the core has no Detectron2 enum); Detectron2
    compares ``bbox_mode`` with its ``BoxMode``, an ``IntEnum``, so names become members. Copies:
    the catalog's own records stay as they are for the other engine."""

    def convert(annotation: dict, file_name: str) -> dict:
        mode = annotation.get("bbox_mode")
        if not isinstance(mode, str):
            return annotation
        if mode not in BoxMode.__members__:
            raise ValueError(f"{file_name}: unknown bbox_mode {mode!r}; use one of {list(BoxMode.__members__)}")
        return dict(annotation, bbox_mode=BoxMode[mode])

    return [
        dict(record, annotations=[convert(a, record.get("file_name")) for a in record["annotations"]])
        if "annotations" in record else record
        for record in dicts
    ]


def _loader(name: str):
    def load() -> List[dict]:
        dicts = _with_box_modes(DatasetCatalog.get(name))
        _copy_metadata(name)  # after loading, so what the loader learnt reaches the evaluator
        return dicts

    return load


def register_catalog_in_detectron2(names: Optional[Iterable[str]] = None) -> List[str]:
    """Copies our catalog's registrations into Detectron2's ``DatasetCatalog`` / ``MetadataCatalog``.

    Args:
        names: data sets to copy; all of ours by default. A name Detectron2 already knows
            (e.g. its builtin ``coco_2017_train``) is left to Detectron2 and logged.

    Returns:
        the names newly registered in Detectron2. Loading stays lazy: Detectron2 calls our
        loader when it first needs the dicts (same list-of-dicts format in both catalogs) and
        then receives the metadata the loader filled in (e.g. the COCO category id map that
        ``COCOEvaluator`` needs).
    """
    added = []
    for name in DatasetCatalog.names() if names is None else names:
        if name not in DatasetCatalog:
            raise KeyError(f"unknown data set {name!r}; registered: {DatasetCatalog.names()}")
        if name in D2DatasetCatalog.list():
            logger.debug("data set %r is already registered in Detectron2; keeping Detectron2's", name)
            continue
        D2DatasetCatalog.register(name, _loader(name))
        _copy_metadata(name)
        added.append(name)
    return added
