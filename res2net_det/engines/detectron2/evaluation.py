"""Detectron2's own detection evaluators, chosen by the data set's ``evaluator_type`` as Detectron2's
``tools/train_net.py`` does, with their metrics written where the torchvision engine writes them
(``OUTPUT_DIR/inference/<data set>/coco_eval_results.json`` or ``voc_eval_results.json``), so
``tools/compare_runs.py`` reads runs of either engine alike."""
from __future__ import annotations

import importlib.util
import os
from typing import Optional

from detectron2.data import MetadataCatalog
from detectron2.evaluation import (
    COCOEvaluator,
    COCOPanopticEvaluator,
    DatasetEvaluator,
    DatasetEvaluators,
    PascalVOCDetectionEvaluator,
    SemSegEvaluator,
)
from detectron2.utils import comm

from ...evaluation.detection import RESULTS_FILES
from ...utils.io import write_json_file

__all__ = ["ResultsFileWriter", "build_detection_evaluator"]


class ResultsFileWriter(DatasetEvaluator):
    """Runs ``evaluator`` unchanged and writes what its ``evaluate()`` returns to ``path`` (strict JSON)."""

    def __init__(self, evaluator: DatasetEvaluator, path: Optional[str]) -> None:
        self.evaluator = evaluator
        self.path = path

    def reset(self) -> None:
        self.evaluator.reset()

    def process(self, inputs, outputs) -> None:
        self.evaluator.process(inputs, outputs)

    def evaluate(self):
        results = self.evaluator.evaluate()
        if self.path and results and comm.is_main_process():
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            write_json_file(self.path, {k: dict(v) for k, v in results.items()}, indent=2)
        return results


def build_detection_evaluator(dataset_name: str, output_folder: Optional[str]) -> DatasetEvaluator:
    """``PascalVOCDetectionEvaluator`` for ``evaluator_type "pascal_voc"`` (Detectron2's builtin
    ``voc_*`` names and ours); for ``"coco_panoptic_seg"`` (Panoptic FPN) the three evaluators of
    Detectron2's ``tools/train_net.py`` (stuff mIoU, box / mask AP, PQ); else ``COCOEvaluator``. Its
    metrics also go to the results file."""
    kind = MetadataCatalog.get(dataset_name).get("evaluator_type", "coco")
    if kind == "pascal_voc":
        evaluator = PascalVOCDetectionEvaluator(dataset_name)
    elif kind == "coco_panoptic_seg":
        if importlib.util.find_spec("panopticapi") is None:
            raise ImportError(
                f"evaluating the panoptic data set {dataset_name!r} (PQ) needs panopticapi, which Detectron2's "
                "COCOPanopticEvaluator calls; install it from https://github.com/cocodataset/panopticapi"
            )
        evaluator = DatasetEvaluators([
            SemSegEvaluator(dataset_name, distributed=True, output_dir=output_folder),
            COCOEvaluator(dataset_name, output_dir=output_folder),
            COCOPanopticEvaluator(dataset_name, output_folder),
        ])
    else:
        evaluator = COCOEvaluator(dataset_name, output_dir=output_folder)
    path = os.path.join(output_folder, RESULTS_FILES.get(kind, RESULTS_FILES["coco"])) if output_folder else None
    return ResultsFileWriter(evaluator, path)
