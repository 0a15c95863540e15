"""Where does a detector look? Class activation maps of Faster R-CNNs, scored on ground-truth boxes.

For every image, model and CAM method, :class:`~res2net_det.modeling.cam.DetectorCamExtractor`
gives a map per feature level and their combination; each map is scored against the image's
ground-truth boxes (:func:`box_scores`, percent):

* **energy**: the share of the map's mass on pixels inside a ground-truth box (a uniform map
  scores the boxes' share of the image, ``box_area``, reported beside it as the floor); an image
  without boxes, or a map that is zero everywhere (a gradient that does not reach the level),
  has no score (NaN, left out of the means);
* **pointing**: 100 when the map's maximum lies inside a box, else 0 (the pointing game of
  Zhang et al., ECCV 2016, without class: a detector's map is not class-specific);
* the same restricted to the boxes of one COCO size (``_small`` / ``_medium`` / ``_large``:
  area below 32², below 96², above, in original-image pixels): mass inside that size's boxes,
  and whether the maximum falls in one; undefined (NaN) for images without such a box.

Every score is an image mean, so the Δ between two models gets the paired bootstrap interval of
:mod:`res2net_det.evaluation.bootstrap` over the images. A gradient method's target is the
model's own detections scoring at least ``score_threshold`` (the top one when none does).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..modeling.cam import COMBINED, DetectorCamExtractor
from .bootstrap import DEFAULT_RESAMPLES, nan_weighted_mean, paired_interval, resample_weights
from .cam_figure import save_cam_grid

__all__ = ["SIZE_RANGES", "DetectorForCam", "box_scores", "evaluate_detector_cams", "format_detector_cam_table",
           "save_detector_cam_figures"]

#: COCO's object sizes (area in original-image pixels): name -> [low, high)
SIZE_RANGES = OrderedDict(small=(0.0, 32.0 ** 2), medium=(32.0 ** 2, 96.0 ** 2), large=(96.0 ** 2, float("inf")))
SCORE_NAMES = ("energy", "pointing", "box_area") + tuple(
    f"{m}_{s}" for s in SIZE_RANGES for m in ("energy", "pointing"))


@dataclass
class DetectorForCam:
    """A detector and how an image reaches it.

    ``prepare(record) -> (input 3 x H x W as the detector takes it, RGB uint8 H x W x 3 image at
    that size, scale)``: ``scale`` maps the record's boxes (original pixels) to the input's.
    """

    model: nn.Module
    prepare: Callable[[dict], Tuple[torch.Tensor, np.ndarray, float]]


def _box_mask(shape: Tuple[int, int], boxes: np.ndarray) -> np.ndarray:
    """Pixels whose centre lies in any of the XYXY ``boxes``."""
    h, w = shape
    ys, xs = np.arange(h) + 0.5, np.arange(w) + 0.5
    mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in np.asarray(boxes, np.float64).reshape(-1, 4):
        mask |= ((ys >= y0) & (ys <= y1))[:, None] & ((xs >= x0) & (xs <= x1))[None, :]
    return mask


def box_scores(cam: np.ndarray, boxes: np.ndarray, areas: Sequence[float]) -> Dict[str, float]:
    """The scores of one map (H x W, >= 0) on one image's ground-truth boxes (XYXY in the map's
    pixels; ``areas`` in original pixels pick the size), in percent (module docstring)."""
    cam = np.asarray(cam, np.float64)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    areas = np.asarray(areas, np.float64).reshape(-1)
    total = cam.sum()
    peak = np.unravel_index(int(np.argmax(cam)), cam.shape)

    def on(mask: np.ndarray) -> Tuple[float, float]:
        if total <= 0 or not mask.any():  # an empty map, or no box (of this size): nothing to score
            return float("nan"), float("nan")
        return 100.0 * float(cam[mask].sum() / total), 100.0 * float(mask[peak])

    everything = _box_mask(cam.shape, boxes)
    out = dict(zip(("energy", "pointing"), on(everything)))
    out["box_area"] = 100.0 * float(everything.mean())
    for size, (low, high) in SIZE_RANGES.items():
        chosen = (areas >= low) & (areas < high)
        out[f"energy_{size}"], out[f"pointing_{size}"] = on(_box_mask(cam.shape, boxes[chosen]))
    return out


def _targets(detections: Dict[str, torch.Tensor], score_threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    scores = detections["scores"].cpu().numpy()
    keep = scores >= score_threshold
    if not keep.any() and len(scores):
        keep = scores == scores.max()
    return detections["boxes"].cpu().numpy()[keep], detections["labels"].cpu().numpy()[keep]


def evaluate_detector_cams(
    detectors: Dict[str, DetectorForCam],
    records: Sequence[dict],
    methods: Sequence[str] = ("eigencam", "gradcam"),
    score_threshold: float = 0.5,
    align_to_input: bool = True,
    bootstrap: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    keep_maps: int = 0,
) -> Tuple[dict, dict]:
    """CAMs of every detector x method on ``records`` (dataset dicts with boxes, ``XYWH_ABS``),
    scored on their boxes.

    Returns ``(result, maps)``: ``result`` is JSON-ready (``settings``, ``images`` with each
    image's scores per model / method / level, ``summary``: image means, ``comparison``: the Δ of
    every later model against the first with its paired bootstrap 95% interval, ``bootstrap``
    resamples of the images, ``n_images``); ``maps`` keeps the first ``keep_maps`` images' maps
    and pictures for :func:`save_detector_cam_figures`.
    """
    if not records:
        raise ValueError("no images to evaluate")
    if not detectors:
        raise ValueError("no detector given")
    labels = list(detectors)
    images: List[dict] = [{"file_name": r["file_name"], "image_id": r.get("image_id"),
                           "num_boxes": len(r.get("annotations", [])), "scores": {}} for r in records]
    maps: dict = {"pictures": {}, "boxes": {}, "maps": {}, "levels": {}}
    for label, det in detectors.items():
        model = det.model.eval()
        for method in methods:
            with DetectorCamExtractor(model, method, align_to_input=align_to_input) as extractor:
                maps["levels"][label] = extractor.levels + [COMBINED]
                for i, record in enumerate(records):
                    inputs, picture, scale = det.prepare(record)
                    anns = record.get("annotations", [])
                    xywh = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
                    boxes = np.c_[xywh[:, :2], xywh[:, :2] + xywh[:, 2:]] * scale
                    areas = [a.get("area", a["bbox"][2] * a["bbox"][3]) for a in anns]
                    if extractor.uses_gradients:  # the detections whose box scores the gradient explains
                        target_boxes, target_labels = _targets(extractor.detect(inputs), score_threshold)
                        images[i].setdefault("targets", {})[label] = len(target_boxes)
                    else:  # the features alone: no target, no detection pass
                        target_boxes, target_labels = np.zeros((0, 4)), np.zeros(0)
                    if extractor.uses_gradients and not len(target_boxes):
                        level_maps = None  # nothing detected: no box score to take the gradient of
                    else:
                        level_maps = extractor(inputs, target_boxes, target_labels)
                    levels = extractor.levels + [COMBINED]
                    images[i]["scores"].setdefault(label, {})[method] = {
                        lv: box_scores(level_maps[lv], boxes, areas) if level_maps is not None
                        else dict.fromkeys(SCORE_NAMES, float("nan")) for lv in levels}
                    if i < keep_maps:
                        maps["pictures"].setdefault(label, {})[i] = picture
                        maps["boxes"].setdefault(label, {})[i] = boxes
                        maps["maps"].setdefault((label, method), {})[i] = level_maps
    summary: dict = {}
    per_image: Dict[Tuple[str, str, str, str], np.ndarray] = {}
    for label in labels:
        for method in methods:
            for level in maps["levels"][label]:
                for name in SCORE_NAMES:
                    values = np.array([im["scores"][label][method][level][name] for im in images], np.float64)
                    per_image[(label, method, level, name)] = values
                    finite = values[np.isfinite(values)]
                    summary.setdefault(label, {}).setdefault(method, {}).setdefault(level, {})[name] = \
                        float(finite.mean()) if finite.size else None
    comparison: dict = {}
    if bootstrap and len(labels) > 1:
        weights = resample_weights(len(records), bootstrap, seed)
        first = labels[0]
        for other in labels[1:]:
            for method in methods:
                for level in maps["levels"][other]:
                    if level not in maps["levels"][first]:
                        continue
                    for name in SCORE_NAMES:
                        a, b = per_image[(first, method, level, name)], per_image[(other, method, level, name)]
                        both = np.isfinite(a) & np.isfinite(b)
                        entry = {"delta": None, "ci95": None, "n_images": int(both.sum()), "significant": None}
                        if both.any():
                            entry["delta"] = float(b[both].mean() - a[both].mean())
                            low, high, _ = paired_interval(nan_weighted_mean(np.where(both, a, np.nan), weights),
                                                           nan_weighted_mean(np.where(both, b, np.nan), weights))
                            if low is not None:
                                entry["ci95"], entry["significant"] = [low, high], bool(low > 0 or high < 0)
                        comparison.setdefault(other, {}).setdefault(method, {}).setdefault(level, {})[name] = entry
    result = {
        "settings": {"models": labels, "methods": list(methods), "num_images": len(records),
                     "score_threshold": score_threshold, "align_to_input": align_to_input, "bootstrap": bootstrap,
                     "seed": seed, "units": "percent", "sizes": {k: list(v) for k, v in SIZE_RANGES.items()}},
        "images": images, "summary": summary, "comparison": comparison,
    }
    return result, maps


_TABLE_COLUMNS = ("energy", "box_area", "pointing", "energy_small", "energy_medium", "energy_large",
                  "pointing_small", "pointing_medium", "pointing_large")


def format_detector_cam_table(result: dict) -> str:
    """Image means per model / method / level (percent), and each later model's Δ with its
    interval (``*``: the interval excludes 0)."""
    head = ["model", "method", "level", *_TABLE_COLUMNS]
    rows = []
    for label, per_method in result["summary"].items():
        for method, per_level in per_method.items():
            for level, scores in per_level.items():
                rows.append([label, method, level] + ["-" if scores[c] is None else f"{scores[c]:.1f}"
                                                      for c in _TABLE_COLUMNS])
                delta = result["comparison"].get(label, {}).get(method, {}).get(level)
                if delta:
                    cells = []
                    for c in _TABLE_COLUMNS:
                        e = delta[c]
                        cells.append("-" if e["ci95"] is None else
                                     f"{e['delta']:+.1f} [{e['ci95'][0]:+.1f},{e['ci95'][1]:+.1f}]"
                                     + ("*" if e["significant"] else ""))
                    rows.append(["", "", f"Δ vs {result['settings']['models'][0]}"] + cells)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head] + rows]
    lines.insert(1, "-" * len(lines[0]))
    note = (f"scores in % of the map's mass (energy) / of images (pointing) on ground-truth boxes; box_area: the "
            f"boxes' share of the image (a uniform map's energy); Δ [95% interval]: paired bootstrap over the "
            f"{result['settings']['num_images']} images ({result['settings']['bootstrap']} resamples)")
    return "\n".join(lines + [note])


def save_detector_cam_figures(output_dir: str, result: dict, maps: dict) -> List[str]:
    """One figure per method, ``cams_<method>.png``: rows = images, columns = model x level
    (levels, then the combined map), the map over the image with the ground-truth boxes (green)."""
    paths = []
    rows = sorted({i for per in maps["pictures"].values() for i in per})
    if not rows:
        return paths
    first = next(iter(maps["pictures"]))
    for method in result["settings"]["methods"]:
        columns = OrderedDict()
        for label in result["settings"]["models"]:
            per_image = maps["maps"].get((label, method), {})
            for level in maps["levels"][label]:
                cams, captions = [], []
                for i in rows:
                    level_maps = per_image.get(i)
                    picture = maps["pictures"][label][i]
                    cams.append(np.zeros(picture.shape[:2], np.float32) if level_maps is None else level_maps[level])
                    scores = result["images"][i]["scores"][label][method][level]
                    if level_maps is None:
                        captions.append("no detection to explain")
                    elif not np.isfinite(scores["energy"]):
                        captions.append("no box" if not scores["box_area"] else "map empty (no gradient here)")
                    else:
                        captions.append(f"E {scores['energy']:.0f}% (box {scores['box_area']:.0f}%)"
                                        f"{'  hit' if scores['pointing'] == 100 else ''}")
                columns[f"{label} / {level}"] = {"cams": cams, "captions": captions,
                                                 "pictures": [maps["pictures"][label][i] for i in rows],
                                                 "boxes": [maps["boxes"][label][i] for i in rows]}
        row_labels = [os.path.splitext(os.path.basename(result["images"][i]["file_name"]))[0] for i in rows]
        paths.append(save_cam_grid(
            os.path.join(output_dir, f"cams_{method}.png"), [maps["pictures"][first][i] for i in rows], columns,
            [maps["boxes"][first][i] for i in rows], cam_threshold=None, row_labels=row_labels,
            footer=f"{method}: map of each feature level and their mean (combined); green: ground-truth boxes\n"
                   "E: share of the map's mass in the boxes (box: the boxes' share of the image); "
                   "hit: maximum in a box"))
    return paths
