"""Detectron2's own detection evaluators, chosen by the data set's ``evaluator_type`` as Detectron2's
``tools/train_net.py`` does, with their metrics written where the torchvision engine writes them
(``OUTPUT_DIR/inference/<data set>/coco_eval_results.json`` or ``voc_eval_results.json``), so
``tools/compare_runs.py`` reads runs of either engine alike."""
from __future__ import annotations

import importlib.util
import logging
import os
from typing import List, Optional

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

from ...evaluation.coco import write_coco_per_image
from ...evaluation.detection import RESULTS_FILES
from ...evaluation.per_image import per_image_path
from ...evaluation.voc import write_voc_per_image
from ...utils.io import read_json_file, write_json_file

logger = logging.getLogger(__name__)

__all__ = ["ResultsFileWriter", "build_detection_evaluator"]


class ResultsFileWriter(DatasetEvaluator):
    """Runs ``evaluator`` unchanged and writes what its ``evaluate()`` returns to ``path`` (strict JSON),
    with the per-image data a comparison resamples beside it (``<path stem>.per_image.npz``): for
    COCO, pycocotools' matches of the detections Detectron2's evaluator saved; for VOC, the devkit's
    matches (:mod:`res2net_det.evaluation.voc`) of the detections as Detectron2's evaluator rounds
    them (score to 3 decimals, box to 0.1 pixel), against our reader's records of the data set."""

    def __init__(self, evaluator: DatasetEvaluator, path: Optional[str], dataset_name: Optional[str] = None,
                 kind: str = "coco") -> None:
        self.evaluator = evaluator
        self.path = path
        self.dataset_name = dataset_name
        self.kind = kind
        self._voc: List[dict] = []

    def reset(self) -> None:
        self.evaluator.reset()
        self._voc = []

    def process(self, inputs, outputs) -> None:
        self.evaluator.process(inputs, outputs)
        if self.kind == "pascal_voc" and self.path:
            for inp, out in zip(inputs, outputs):
                inst = out["instances"].to("cpu")
                for box, score, cls in zip(inst.pred_boxes.tensor.tolist(), inst.scores.tolist(),
                                           inst.pred_classes.tolist()):
                    # as PascalVOCDetectionEvaluator writes them: 1-based xmin / ymin, one decimal
                    xyxy = [round(box[0] + 1, 1) - 1, round(box[1] + 1, 1) - 1, round(box[2], 1), round(box[3], 1)]
                    self._voc.append({"image_id": inp["image_id"], "category_id": int(cls),
                                      "score": round(float(score), 3), "bbox": xyxy})

    def evaluate(self):
        results = self.evaluator.evaluate()
        voc = [d for part in comm.gather(self._voc, dst=0) for d in part] if self.kind == "pascal_voc" else []
        if self.path and results and comm.is_main_process():
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            write_json_file(self.path, {k: dict(v) for k, v in results.items()}, indent=2)
            try:
                self._write_per_image(results, voc)
            except (OSError, KeyError, ValueError) as e:  # the metrics stand; only the intervals are lost
                logger.warning("%s: no per-image data for compare_runs' intervals (%s)", self.dataset_name, e)
        return results

    def _write_per_image(self, results, voc: List[dict]) -> None:
        out = per_image_path(self.path)
        if self.kind == "pascal_voc":
            write_voc_per_image(self.dataset_name, voc, out)
            return
        detections = os.path.join(os.path.dirname(self.path), "coco_instances_results.json")
        json_file = MetadataCatalog.get(self.dataset_name).get("json_file")
        if json_file is None:
            raise KeyError(f"data set {self.dataset_name!r} has no json_file")
        # Detectron2's COCOEvaluator scores every image of the annotation file (img_ids None)
        write_coco_per_image(json_file, read_json_file(detections, "COCO detections"),
                             [t for t in ("bbox", "segm") if t in results], None, out)


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
    return ResultsFileWriter(evaluator, path, dataset_name, "pascal_voc" if kind == "pascal_voc" else "coco")
