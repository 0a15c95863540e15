"""Compare models x CAM methods on a WSOL data set: one table, one JSON-ready dict.

For every model and method: CAMs of the true class on every image (GT-known protocol), the
localisation metrics of :mod:`res2net_det.evaluation.wsol`, and, on the first
``faithfulness_images`` images, deletion / insertion AUC and ROAD from
:mod:`res2net_det.evaluation.faithfulness`. Two rows need no model and come with every run:
the whole image as the box, and the best centred box (:func:`~res2net_det.evaluation.wsol.centre_prior_cam`).
"""
from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.wsol import WSOLDataset, check_labels, collate_wsol, read_image_rgb
from ..modeling.cam import CamExtractor, default_target_layer
from .faithfulness import deletion_insertion, road_combined
from .wsol import DEFAULT_CAM_THRESHOLDS, WSOLEvaluator, centre_prior_cam

logger = logging.getLogger(__name__)

__all__ = ["evaluate_cam_methods", "baseline_rows", "format_table"]


def baseline_rows(
    records: Sequence[dict], image_size: Tuple[int, int], cam_thresholds: Sequence[float] = DEFAULT_CAM_THRESHOLDS
) -> List[dict]:
    """Rows for the whole-image box and the best centred box, which use no model."""
    prior = centre_prior_cam(*image_size)
    evaluator = WSOLEvaluator(cam_thresholds)
    for record in records:
        h, w = record["height"], record["width"]
        if h is None:  # CUB stores no size: take it from the image
            h, w = read_image_rgb(record).shape[:2]
        boxes = np.array([a["bbox"] for a in record["annotations"]], np.float32).reshape(-1, 4)
        boxes *= np.array([image_size[1] / w, image_size[0] / h] * 2, np.float32)
        evaluator.process(prior[None], [boxes])
    whole = evaluator.evaluate(loc_cam_threshold=0.0)
    centre = evaluator.evaluate()
    return [
        {"model": "baseline", "method": "whole image", "gt_known_loc": whole["gt_known_loc"],
         "loc_cam_threshold": 0.0, "num_images": whole["num_images"]},
        {"model": "baseline", "method": "centre box", **centre},
    ]


def _evaluate_one(
    model: nn.Module,
    method: str,
    loader: torch.utils.data.DataLoader,
    target_layer: Optional[str],
    cam_thresholds: Sequence[float],
    loc_cam_threshold: Optional[float],
    faithfulness_images: int,
    faithfulness_steps: int,
    road: bool,
    cam_batch_size: int,
    progress: bool,
    align_to_input: bool,
) -> dict:
    evaluator = WSOLEvaluator(cam_thresholds)
    deletion: List[float] = []
    insertion: List[float] = []
    road_scores: List[float] = []
    start = time.perf_counter()
    with CamExtractor(model, method, target_layer, cam_batch_size, align_to_input) as extractor:
        for images, labels, boxes, _ in tqdm(loader, desc=f"{method}", disable=not progress, leave=False):
            cams = extractor(images, labels.tolist())
            predicted = extractor.last_logits.argmax(dim=1)
            evaluator.process(cams, [b.numpy() for b in boxes], labels.tolist(), predicted.tolist())
            take = min(len(images), faithfulness_images - len(deletion))
            if take > 0:
                scores = deletion_insertion(model, images[:take], cams[:take], labels[:take].tolist(),
                                            num_steps=faithfulness_steps)
                deletion += scores["deletion"].tolist()
                insertion += scores["insertion"].tolist()
                if road:
                    road_scores += road_combined(model, images[:take], cams[:take], labels[:take].tolist()).tolist()
        layer = extractor.layer_names[0]
    row = evaluator.evaluate(loc_cam_threshold)
    row["target_layer"] = layer
    if deletion:
        row.update(deletion_auc=float(np.mean(deletion)), insertion_auc=float(np.mean(insertion)),
                   faithfulness_images=len(deletion))
    if road_scores:
        row["road"] = float(np.mean(road_scores))
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def evaluate_cam_methods(
    models: Dict[str, nn.Module],
    methods: Sequence[str],
    records: Sequence[dict],
    image_size: Tuple[int, int] = (224, 224),
    batch_size: int = 16,
    target_layers: Optional[Dict[str, str]] = None,
    cam_thresholds: Sequence[float] = DEFAULT_CAM_THRESHOLDS,
    loc_cam_threshold: Optional[float] = None,
    faithfulness_images: int = 32,
    faithfulness_steps: int = 16,
    road: bool = True,
    cam_batch_size: int = 64,
    progress: bool = True,
    align_to_input: bool = True,
) -> dict:
    """Evaluates every ``(model, method)`` pair on ``records`` (dataset dicts with boxes).

    Args:
        models: ``{label: classifier}``; every image's class must be one of its outputs.
        methods: CAM method names (:data:`res2net_det.modeling.cam.CAM_METHODS`).
        records: from :func:`res2net_det.data.wsol.load_ilsvrc_wsol` or ``load_cub_wsol``.
        image_size: ``(H, W)`` the images are resized to (no crop).
        target_layers: ``{model label: module name}``; default the last block of ``layer4``.
        loc_cam_threshold: CAM threshold of GT-known / Top-1 Loc; default the best one.
        faithfulness_images: deletion / insertion / ROAD on this many first images (0: off).
        faithfulness_steps: deletion / insertion steps per image.
        road: compute the library's ROAD score as well.
        cam_batch_size: masked copies per forward pass in Score-CAM / Ablation-CAM.
        align_to_input: shift maps back by half a feature stride onto the evidence
            (:func:`res2net_det.modeling.cam.align_cam_to_input`); False is the plain upsampling
            of the library and of published WSOL numbers.

    Returns ``{"settings": ..., "rows": [...]}``; every row has ``model``, ``method`` and the metrics.
    """
    if not records:
        raise ValueError("no images to evaluate")
    target_layers = dict(target_layers or {})
    unknown = sorted(set(target_layers) - set(models))
    if unknown:
        raise KeyError(f"target layers given for unknown models {unknown}; models: {sorted(models)}")
    loader = torch.utils.data.DataLoader(
        WSOLDataset(records, image_size), batch_size=batch_size, shuffle=False, collate_fn=collate_wsol
    )
    rows = baseline_rows(records, image_size, cam_thresholds)
    for label, model in models.items():
        model.eval()
        with torch.no_grad():
            num_classes = model(next(iter(loader))[0][:1]).shape[1]
        check_labels(records, num_classes)
        layer = target_layers.get(label) or default_target_layer(model)
        for method in methods:
            logger.info("evaluating %s / %s at %s", label, method, layer)
            row = _evaluate_one(model, method, loader, layer, cam_thresholds, loc_cam_threshold,
                                faithfulness_images, faithfulness_steps, road, cam_batch_size, progress,
                                align_to_input)
            rows.append({"model": label, "method": method, **row})
    settings = dict(
        image_size=list(image_size), num_images=len(records), methods=list(methods), models=list(models),
        loc_cam_threshold=loc_cam_threshold, faithfulness_images=faithfulness_images,
        faithfulness_steps=faithfulness_steps, road=road, align_to_input=align_to_input,
        cam_thresholds=[float(cam_thresholds[0]), float(cam_thresholds[-1]), len(cam_thresholds)],
    )
    return {"settings": settings, "rows": rows}


_COLUMNS = (
    ("model", "model", "s"),
    ("method", "method", "s"),
    ("top1_cls", "Top-1 Cls", ".1f"),
    ("top1_loc", "Top-1 Loc", ".1f"),
    ("gt_known_loc", "GT-known Loc", ".1f"),
    ("max_box_acc", "MaxBoxAcc", ".1f"),
    ("max_box_acc_v2", "MaxBoxAccV2", ".1f"),
    ("max_box_acc_v2_iou30", "@IoU.3", ".1f"),
    ("max_box_acc_v2_iou50", "@IoU.5", ".1f"),
    ("max_box_acc_v2_iou70", "@IoU.7", ".1f"),
    ("deletion_auc", "Deletion(low)", ".3f"),
    ("insertion_auc", "Insertion(high)", ".3f"),
    ("road", "ROAD(high)", ".3f"),
    ("seconds", "s", ".1f"),
)


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table of the rows (accuracies in percent, AUCs and ROAD in [0, 1])."""
    header = [title for _, title, _ in _COLUMNS]
    body = [
        [format(row[key], fmt) if row.get(key) is not None else "-" for key, _, fmt in _COLUMNS]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in body])
