"""The detection evaluator of a data set, chosen by its ``evaluator_type`` metadata as Detectron2's
``tools/train_net.py`` chooses: ``"coco"`` -> COCO AP (pycocotools), ``"pascal_voc"`` -> VOC AP.

Each writes its metrics to ``<output_dir>/<RESULTS_FILES[type]>`` (``{"bbox": {...}}``), the file
``tools/compare_runs.py`` reads; the Detectron2 engine writes the same files from Detectron2's
own evaluators.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

from ..data.catalog import DatasetCatalog
from .coco import COCOEvaluator
from .voc import PascalVOCEvaluator

__all__ = ["DETECTION_EVALUATORS", "RESULTS_FILES", "build_detection_evaluator"]

# evaluator_type -> (dataset_name, output_dir) -> evaluator
DETECTION_EVALUATORS: Dict[str, Callable[[str, Optional[str]], object]] = {
    "coco": COCOEvaluator,
    "pascal_voc": PascalVOCEvaluator,
}
# evaluator_type -> the metrics file its evaluator writes into OUTPUT_DIR/inference/<data set>/
RESULTS_FILES: Dict[str, str] = {
    "coco": "coco_eval_results.json",
    "pascal_voc": "voc_eval_results.json",
    # Panoptic FPN (Detectron2 engine only): box / mask AP, stuff mIoU and PQ in one file.
    "coco_panoptic_seg": "panoptic_eval_results.json",
}


def build_detection_evaluator(dataset_name: str, output_dir: Optional[str] = None):
    """The evaluator of ``dataset_name``'s ``evaluator_type`` (``"coco"`` when unset)."""
    kind = DatasetCatalog.metadata(dataset_name).get("evaluator_type", "coco")
    if kind not in DETECTION_EVALUATORS:
        raise ValueError(f"data set {dataset_name!r} has evaluator_type {kind!r}; detection evaluators: "
                         f"{sorted(DETECTION_EVALUATORS)}")
    return DETECTION_EVALUATORS[kind](dataset_name, output_dir)
