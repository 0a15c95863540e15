"""Compare models x CAM methods on a WSOL data set: one table, one JSON-ready dict.

For every model and method: CAMs of the true class on every image (GT-known protocol), the
localisation metrics of :mod:`res2net_det.evaluation.wsol` under one named protocol (default
``"wsol"``, the published one: bicubic resize of the raw map, 8-bit thresholds, inclusive
boxes; or ``"continuous"``), PxAP / PIoU when the records carry pixel masks, and, on the first
``faithfulness_images`` images, deletion / insertion AUC and ROAD from
:mod:`res2net_det.evaluation.faithfulness`. Two rows need no model and come with every run:
the whole image as the box, and the best centred box (:func:`~res2net_det.evaluation.wsol_scoremaps.centre_prior_cam`).
With ``align_to_input`` each model and method gets a second row, labelled ``(aligned)``, whose
maps are shifted half a feature stride onto the evidence: not part of either protocol.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.wsol import WSOLDataError, WSOLDataset, check_labels, collate_wsol, original_image_size
from ..data.wsol_metadata import load_wsol_masks
from ..modeling.cam import CamExtractor, align_cam_to_input, default_target_layer
from ..utils.io import write_json_file
from .faithfulness import deletion_insertion, road_combined
from .per_image import image_key, per_image_path, save_per_image
from .wsol import PixelEvaluator, WSOLEvaluator
from .wsol_scoremaps import (
    DEFAULT_CAM_THRESHOLDS,
    cam_threshold_grid,
    centre_prior_cam,
    library_upsample,
    resize_scoremap,
)

logger = logging.getLogger(__name__)

__all__ = ["evaluate_cam_methods", "evaluate_scoremaps", "write_cam_results", "image_ids", "read_scoremap",
           "baseline_rows", "format_table", "PROTOCOL_TITLES"]

#: The table title of each protocol, so no table is read as the other protocol's.
PROTOCOL_TITLES = {
    "wsol": "protocol wsol: the published WSOL protocol (Choe et al., CVPR 2020; clovaai/wsolevaluation)",
    "continuous": "protocol continuous: our earlier definitions (float thresholds, continuous boxes); "
                  "NOT comparable with published WSOL numbers",
}
_ALIGNED_NOTE = "rows marked (aligned): maps shifted half a feature stride onto the evidence, not part of the protocol"


def _targets(records: Sequence[dict]) -> Tuple[bool, bool]:
    """``(has_boxes, has_masks)``: what every record carries."""
    has_boxes = all(r["annotations"] for r in records)
    has_masks = all(r.get("mask_files") for r in records)
    if not (has_boxes or has_masks):
        missing = next(r for r in records if not r["annotations"] and not r.get("mask_files"))
        raise WSOLDataError(f"{missing.get('annotation_file', missing['file_name'])}: the image has no box and no "
                            "mask (every evaluated image needs one of them)")
    return has_boxes, has_masks


def _original_boxes(record: dict) -> np.ndarray:
    return np.array([a["bbox"] for a in record["annotations"]], np.float64).reshape(-1, 4)


def baseline_rows(
    records: Sequence[dict], image_size: Tuple[int, int], cam_thresholds: Sequence[float] = DEFAULT_CAM_THRESHOLDS,
    protocol: str = "wsol", image_sizes: Optional[Sequence[Tuple[int, int]]] = None,
) -> List[dict]:
    """Rows for the whole-image box and the best centred box, which use no model.

    ``image_sizes``: ``(H, W)`` of each record's original image (default: read from the records).
    """
    has_boxes, has_masks = _targets(records)
    if image_sizes is None and has_boxes:
        image_sizes = [original_image_size(r) for r in records]
    prior = centre_prior_cam(*image_size)
    evaluator = WSOLEvaluator(cam_thresholds, protocol=protocol)
    whole_pixels, centre_pixels = PixelEvaluator(cam_thresholds), PixelEvaluator(cam_thresholds)
    for i, record in enumerate(records):
        if has_boxes:
            evaluator.process(prior[None], [_original_boxes(record)], image_sizes=[image_sizes[i]])
        if has_masks:
            foreground, ignore = load_wsol_masks(record, image_size)
            centre_pixels.process(prior[None], [foreground], [ignore])
            whole_pixels.process(np.zeros((1, *image_size), np.float32), [foreground], [ignore])
    whole = {"model": "baseline", "method": "whole image", "protocol": protocol, "num_images": len(records)}
    centre = {"model": "baseline", "method": "centre box", "protocol": protocol, "num_images": len(records)}
    if has_boxes:
        whole.update(gt_known_loc=evaluator.evaluate(loc_cam_threshold=0.0)["gt_known_loc"], loc_cam_threshold=0.0)
        centre.update(evaluator.evaluate())
    if has_masks:
        whole.update(whole_pixels.evaluate())
        centre.update(centre_pixels.evaluate())
    return [whole, centre]


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
    protocol: str,
    image_sizes: Optional[Sequence[Tuple[int, int]]],
    has_boxes: bool,
    has_masks: bool,
) -> List[dict]:
    """The method's row, and its ``(aligned)`` row when ``align_to_input``."""
    records = loader.dataset.records
    size = loader.dataset.image_size
    make_map = resize_scoremap if protocol == "wsol" else library_upsample
    variants = ["plain"] + (["aligned"] if align_to_input else [])
    boxes_eval = {v: WSOLEvaluator(cam_thresholds, protocol=protocol) for v in variants}
    pixels_eval = {v: PixelEvaluator(cam_thresholds) for v in variants}
    deletion: List[float] = []
    insertion: List[float] = []
    road_scores: List[float] = []
    start = time.perf_counter()
    with CamExtractor(model, method, target_layer, cam_batch_size, align_to_input=False, upsample=False) as extractor:
        for images, labels, _, indices in tqdm(loader, desc=f"{method}", disable=not progress, leave=False):
            raw = extractor(images, labels.tolist())  # at the target layer's resolution
            predicted = extractor.last_logits.argmax(dim=1)
            plain = np.stack([make_map(m, size) for m in raw])
            maps = {"plain": plain}
            if align_to_input:
                maps["aligned"] = np.stack([align_cam_to_input(m, raw.shape[-2:]) for m in plain])
            batch = [records[i] for i in indices]
            masks = [load_wsol_masks(r, size) for r in batch] if has_masks else None
            for variant, cams in maps.items():
                if has_boxes:
                    boxes_eval[variant].process(cams, [_original_boxes(r) for r in batch], labels.tolist(),
                                                predicted.tolist(), [image_sizes[i] for i in indices])
                if has_masks:
                    pixels_eval[variant].process(cams, [m[0] for m in masks], [m[1] for m in masks])
            take = min(len(images), faithfulness_images - len(deletion))
            if take > 0:
                scores = deletion_insertion(model, images[:take], plain[:take], labels[:take].tolist(),
                                            num_steps=faithfulness_steps)
                deletion += scores["deletion"].tolist()
                insertion += scores["insertion"].tolist()
                if road:
                    road_scores += road_combined(model, images[:take], plain[:take], labels[:take].tolist()).tolist()
        layer = extractor.layer_names[0]
    rows, sections = [], []
    ids = image_ids(records)
    for variant in variants:
        row: Dict[str, object] = {"protocol": protocol, "num_images": len(records)}
        section = _per_image(ids, boxes_eval[variant] if has_boxes else None,
                             pixels_eval[variant] if has_masks else None, loc_cam_threshold)
        if has_boxes:
            row.update(boxes_eval[variant].evaluate(loc_cam_threshold))
        if has_masks:
            row.update(pixels_eval[variant].evaluate())
        row["target_layer"] = layer
        if variant == "aligned":
            row["aligned"] = True
        elif deletion:
            row.update(deletion_auc=float(np.mean(deletion)), insertion_auc=float(np.mean(insertion)),
                       faithfulness_images=len(deletion))
            for key, values in (("deletion", deletion), ("insertion", insertion), ("road", road_scores)):
                if values:  # the first images only: NaN for the others
                    section[key] = np.r_[np.asarray(values, np.float64), np.full(len(ids) - len(values), np.nan)]
            if road_scores:
                row["road"] = float(np.mean(road_scores))
        rows.append(row)
        sections.append(section)
    rows[0]["seconds"] = round(time.perf_counter() - start, 2)
    return rows, sections


def image_ids(records: Sequence[dict]) -> List[str]:
    """The key pairing a record's image across runs: its WSOL id, else its file stem."""
    return [str(r.get("wsol_id") or image_key(r["file_name"])) for r in records]


def _per_image(ids: Sequence[str], boxes: Optional[WSOLEvaluator], pixels: Optional[PixelEvaluator],
               loc_cam_threshold: Optional[float]) -> Dict[str, np.ndarray]:
    section: Dict[str, np.ndarray] = {"image_ids": np.asarray(ids)}
    if boxes is not None:
        section.update(boxes.per_image(ids, loc_cam_threshold))
    if pixels is not None:
        section.update(pixels.per_image(ids))
    return section


def evaluate_cam_methods(
    models: Dict[str, nn.Module],
    methods: Sequence[str],
    records: Sequence[dict],
    image_size: Tuple[int, int] = (224, 224),
    batch_size: int = 16,
    target_layers: Optional[Dict[str, str]] = None,
    cam_thresholds: Optional[Sequence[float]] = None,
    loc_cam_threshold: Optional[float] = None,
    faithfulness_images: int = 32,
    faithfulness_steps: int = 16,
    road: bool = True,
    cam_batch_size: int = 64,
    progress: bool = True,
    align_to_input: bool = False,
    protocol: str = "wsol",
    cam_curve_interval: float = 0.01,
    per_image: Optional[Dict[str, Dict[str, np.ndarray]]] = None,
) -> dict:
    """Evaluates every ``(model, method)`` pair on ``records`` (dataset dicts with boxes or masks).

    Args:
        models: ``{label: classifier}``; every image's class must be one of its outputs.
        methods: CAM method names (:data:`res2net_det.modeling.cam.CAM_METHODS`).
        records: from :func:`res2net_det.data.wsol.load_ilsvrc_wsol`, ``load_cub_wsol`` or
            :func:`res2net_det.data.wsol_metadata.load_wsol_metadata`.
        image_size: ``(H, W)`` the images are resized to (no crop): the evaluation crop.
        target_layers: ``{model label: module name}``; default the last block of ``layer4``.
        cam_thresholds: the CAM threshold grid (default ``np.arange(0, 1, cam_curve_interval)``).
        loc_cam_threshold: CAM threshold of GT-known / Top-1 Loc; default the best one.
        faithfulness_images: deletion / insertion / ROAD on this many first images (0: off).
        faithfulness_steps: deletion / insertion steps per image.
        road: compute the library's ROAD score as well.
        cam_batch_size: masked copies per forward pass in Score-CAM / Ablation-CAM.
        align_to_input: also give each method a row ``"<method> (aligned)"`` whose maps are
            shifted back by half a feature stride onto the evidence
            (:func:`res2net_det.modeling.cam.align_cam_to_input`); not part of either protocol.
        protocol: ``"wsol"`` (the published protocol) or ``"continuous"`` (see
            :mod:`res2net_det.evaluation.wsol`).
        cam_curve_interval: step of the default threshold grid (the paper's tables: 0.01).
        per_image: a dict that receives each row's per-image data under the row's ``per_image``
            key (``"<model>|<method>"``), for :func:`write_cam_results`.

    Returns ``{"settings": ..., "rows": [...]}`` (JSON-ready); every row has ``model``, ``method``,
    ``protocol`` and the metrics.
    """
    if not records:
        raise ValueError("no images to evaluate")
    if cam_thresholds is None:
        cam_thresholds = cam_threshold_grid(cam_curve_interval)
    target_layers = dict(target_layers or {})
    unknown = sorted(set(target_layers) - set(models))
    if unknown:
        raise KeyError(f"target layers given for unknown models {unknown}; models: {sorted(models)}")
    has_boxes, has_masks = _targets(records)
    # the original sizes the ground-truth boxes are rescaled from (CUB's are read from the images once)
    image_sizes = [original_image_size(r) for r in records] if has_boxes else None
    loader = torch.utils.data.DataLoader(
        WSOLDataset(records, image_size), batch_size=batch_size, shuffle=False, collate_fn=collate_wsol
    )
    rows = baseline_rows(records, image_size, cam_thresholds, protocol, image_sizes)
    per_image = {} if per_image is None else per_image
    for label, model in models.items():
        model.eval()
        with torch.no_grad():
            num_classes = model(next(iter(loader))[0][:1]).shape[1]
        check_labels(records, num_classes)
        layer = target_layers.get(label) or default_target_layer(model)
        for method in methods:
            logger.info("evaluating %s / %s at %s (protocol %s)", label, method, layer, protocol)
            method_rows, sections = _evaluate_one(
                model, method, loader, layer, cam_thresholds, loc_cam_threshold, faithfulness_images,
                faithfulness_steps, road, cam_batch_size, progress, align_to_input, protocol, image_sizes,
                has_boxes, has_masks)
            names = [method] + [f"{method} (aligned)"] * (len(method_rows) - 1)
            for name, row, section in zip(names, method_rows, sections):
                per_image[f"{label}|{name}"] = section
                rows.append({"model": label, "method": name, **row, "per_image": f"{label}|{name}"})
    settings = dict(
        protocol=protocol, image_size=list(image_size), num_images=len(records), methods=list(methods),
        models=list(models), loc_cam_threshold=loc_cam_threshold, faithfulness_images=faithfulness_images,
        faithfulness_steps=faithfulness_steps, road=road, align_to_input=align_to_input,
        cam_thresholds=[float(cam_thresholds[0]), float(cam_thresholds[-1]), len(cam_thresholds)],
        boxes=has_boxes, masks=has_masks,
    )
    return {"settings": settings, "rows": rows}


def write_cam_results(result: dict, path: str, per_image: Optional[Dict[str, Dict[str, np.ndarray]]] = None) -> str:
    """Writes the rows and settings as JSON at ``path`` and the rows' per-image data beside it
    (:func:`~res2net_det.evaluation.per_image.per_image_path`), the file a comparison resamples.
    Returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json_file(path, result, indent=1)
    if per_image:
        save_per_image(per_image_path(path), per_image)
    return path


def read_scoremap(scoremap_dir: str, record: dict, image_size: Tuple[int, int]) -> np.ndarray:
    """A saved score map of ``record`` at the crop size ``image_size`` ``(H, W)``.

    Files are named as the authors' evaluator reads them: ``<dir>/<image id>.npy`` (their
    inference code saves ``val/x.JPEG`` as ``val/x.JPEG.npy``; ``val/x.npy`` is accepted too).
    A map of the crop's size is used as it is (it must lie in [0, 1]); a smaller one is taken as
    a raw map and resized by the protocol (:func:`~res2net_det.evaluation.wsol_scoremaps.resize_scoremap`).
    """
    image_id = record.get("wsol_id") or os.path.basename(record["file_name"])
    candidates = [os.path.join(scoremap_dir, image_id + ".npy"),
                  os.path.join(scoremap_dir, os.path.splitext(image_id)[0] + ".npy")]
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        raise FileNotFoundError(f"no score map for image {image_id!r}: looked for {' and '.join(candidates)}")
    scoremap = np.load(path)
    if scoremap.ndim != 2:
        raise ValueError(f"{path}: a score map is 2-D (H, W), got shape {scoremap.shape}")
    if tuple(scoremap.shape) != tuple(image_size):
        return resize_scoremap(scoremap, image_size)
    if not np.issubdtype(scoremap.dtype, np.floating) or scoremap.min() < 0 or scoremap.max() > 1:
        raise ValueError(f"{path}: a map of the crop's size must be float in [0, 1], got {scoremap.dtype} "
                         f"in [{scoremap.min()}, {scoremap.max()}]")
    return scoremap


def evaluate_scoremaps(
    scoremap_dir: str,
    records: Sequence[dict],
    image_size: Tuple[int, int] = (224, 224),
    cam_thresholds: Optional[Sequence[float]] = None,
    loc_cam_threshold: Optional[float] = None,
    protocol: str = "wsol",
    cam_curve_interval: float = 0.01,
    per_image: Optional[Dict[str, Dict[str, np.ndarray]]] = None,
) -> dict:
    """The localisation metrics of saved score maps (e.g. the authors' ``scoremaps/`` folder,
    :func:`read_scoremap`) with the baseline rows: the way to recompute a published number from
    the maps it was computed on. Returns ``{"settings", "rows"}`` like :func:`evaluate_cam_methods`."""
    if not records:
        raise ValueError("no images to evaluate")
    if cam_thresholds is None:
        cam_thresholds = cam_threshold_grid(cam_curve_interval)
    has_boxes, has_masks = _targets(records)
    image_sizes = [original_image_size(r) for r in records] if has_boxes else None
    boxes_eval = WSOLEvaluator(cam_thresholds, protocol=protocol)
    pixels_eval = PixelEvaluator(cam_thresholds)
    for i, record in enumerate(tqdm(records, desc="score maps", leave=False)):
        scoremap = read_scoremap(scoremap_dir, record, image_size)[None]
        if has_boxes:
            boxes_eval.process(scoremap, [_original_boxes(record)], image_sizes=[image_sizes[i]])
        if has_masks:
            foreground, ignore = load_wsol_masks(record, image_size)
            pixels_eval.process(scoremap, [foreground], [ignore])
    row: Dict[str, object] = {"model": "score maps", "method": os.path.basename(os.path.normpath(scoremap_dir)),
                              "protocol": protocol, "num_images": len(records)}
    row["per_image"] = f"{row['model']}|{row['method']}"
    per_image = {} if per_image is None else per_image
    per_image[row["per_image"]] = (_per_image(image_ids(records), boxes_eval if has_boxes else None,
                                              pixels_eval if has_masks else None, loc_cam_threshold))
    if has_boxes:
        row.update(boxes_eval.evaluate(loc_cam_threshold))
    if has_masks:
        row.update(pixels_eval.evaluate())
    rows = baseline_rows(records, image_size, cam_thresholds, protocol, image_sizes) + [row]
    settings = dict(protocol=protocol, image_size=list(image_size), num_images=len(records), scoremaps=scoremap_dir,
                    loc_cam_threshold=loc_cam_threshold, boxes=has_boxes, masks=has_masks,
                    cam_thresholds=[float(cam_thresholds[0]), float(cam_thresholds[-1]), len(cam_thresholds)])
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
    ("pxap", "PxAP", ".1f"),
    ("piou", "PIoU", ".1f"),
    ("deletion_auc", "Deletion(low)", ".3f"),
    ("insertion_auc", "Insertion(high)", ".3f"),
    ("road", "ROAD(high)", ".3f"),
    ("seconds", "s", ".1f"),
)


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table of the rows (accuracies in percent, AUCs and ROAD in [0, 1]), under a
    title naming the protocol that produced it; columns no row fills are left out."""
    columns = [c for i, c in enumerate(_COLUMNS) if i < 2 or any(r.get(c[0]) is not None for r in rows)]
    header = [title for _, title, _ in columns]
    body = [
        [format(row[key], fmt) if row.get(key) is not None else "-" for key, _, fmt in columns]
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    protocols = sorted({r["protocol"] for r in rows if r.get("protocol")})
    titles = [PROTOCOL_TITLES.get(p, f"protocol {p}") for p in protocols]
    if any(r.get("aligned") for r in rows):
        titles.append(_ALIGNED_NOTE)
    return "\n".join(titles + [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in body])
