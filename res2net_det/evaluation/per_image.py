"""Per-image evaluation data: what the evaluators keep so that a comparison can resample images.

Every results JSON an evaluator writes (``coco_eval_results.json``, ``voc_eval_results.json``,
``saliency_results.json``, a CAM ``results.json``) gets a sibling ``<name>.per_image.npz``
(:func:`per_image_path`) holding, per *section* (an IoU type, a method x data set, a CAM row),
the arrays :mod:`res2net_det.evaluation.bootstrap` recomputes every metric from:

* **ranked detections** (COCO and VOC): per class (COCO: class x area range) the detections in
  the order the evaluator ranks them, each with its image, whether it is a true positive and
  whether it is ignored at each IoU threshold (bit ``t`` of ``tp`` / ``ign``), and the number of
  counted ground-truth boxes per class and image. For COCO these are pycocotools' own
  per-image matches (``COCOeval.evaluateImg``: maxDets 100, crowd and area-range ignore flags),
  never a re-implementation of its matching; for VOC, the devkit's greedy matching of
  :mod:`res2net_det.evaluation.voc`. A detection ignored at every threshold is left out (it
  moves no point of any precision/recall curve).
* **saliency**: per image MAE, S-measure, weighted F, adaptive F / E and the 256-threshold
  F-measure and E-measure curves (pysodmetrics' per-image values, whose data-set means are the
  reported maxF / meanF / maxE / meanE).
* **CAM**: per image the best IoU at each CAM threshold (largest contour and all contours),
  whether the class was right, the pixel histograms behind PxAP, and deletion / insertion / ROAD.

Arrays are stored as ``<section index>.<name>`` with the section names in ``sections``; every
section has ``image_ids`` (the key that pairs images across runs).
"""
from __future__ import annotations

import json
import os
import zipfile
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from ..utils.io import atomic_write

__all__ = ["per_image_path", "save_per_image", "load_per_image", "pack_bits", "unpack_bits", "ranked_detections",
           "coco_ranked_detections", "image_key"]

Section = Dict[str, np.ndarray]


def per_image_path(results_json: str) -> str:
    """``foo/coco_eval_results.json`` -> ``foo/coco_eval_results.per_image.npz``."""
    root, ext = os.path.splitext(results_json)
    return (root if ext == ".json" else results_json) + ".per_image.npz"


def image_key(name: str) -> str:
    """The pairing key of an image named by a file path: its file name without extension."""
    return os.path.splitext(os.path.basename(str(name)))[0]


def save_per_image(path: str, sections: Mapping[str, Mapping[str, np.ndarray]],
                   attributes: Optional[Mapping[str, object]] = None) -> str:
    """Writes the sections (each ``{name: array}``, with ``image_ids``) compressed, atomically."""
    arrays: Dict[str, np.ndarray] = {"sections": np.array(list(sections), dtype=str),
                                     "attributes": np.array(json.dumps(attributes or {}))}
    for i, (name, section) in enumerate(sections.items()):
        if "image_ids" not in section:
            raise ValueError(f"per-image section {name!r} has no image_ids")
        for key, value in section.items():
            arrays[f"{i}.{key}"] = np.asarray(value)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, "wb") as f:  # a file object: np.savez would add ".npz" to a name
        np.savez_compressed(f, **arrays)
    return path


def load_per_image(path: str) -> Dict[str, Section]:
    """``{section: {name: array}}`` of a file :func:`save_per_image` wrote; errors name the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"per-image results not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(s) for s in data["sections"]]
            out: Dict[str, Section] = {n: {} for n in names}
            for key in data.files:
                index, dot, name = key.partition(".")
                if dot and index.isdigit():
                    out[names[int(index)]][name] = data[key]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not a per-image results file ({e}); is it truncated? Evaluate the run again")
    return out


def pack_bits(flags: np.ndarray) -> np.ndarray:
    """``(T, D)`` booleans -> ``(D,)`` uint16 with bit ``t`` set where ``flags[t]`` (T <= 16)."""
    flags = np.asarray(flags, bool)
    if flags.shape[0] > 16:
        raise ValueError(f"at most 16 IoU thresholds fit the bit masks, got {flags.shape[0]}")
    weights = (1 << np.arange(flags.shape[0], dtype=np.uint32))[:, None]
    return (flags * weights).sum(axis=0).astype(np.uint16) if flags.size else np.zeros(flags.shape[1:], np.uint16)


def unpack_bits(bits: np.ndarray, num: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``(num, D)`` booleans."""
    return ((np.asarray(bits, np.uint32)[None, :] >> np.arange(num, dtype=np.uint32)[:, None]) & 1).astype(bool)


def ranked_detections(
    image_ids: Sequence, groups: Sequence[str], thresholds: Sequence[float],
    det_group: np.ndarray, det_image: np.ndarray, tp: np.ndarray, ignored: np.ndarray,
    pos_group: np.ndarray, pos_image: np.ndarray, pos_count: np.ndarray,
) -> Section:
    """A ranked-detections section. Detections must already be in the evaluator's order within
    each group (groups in any order: they are sorted here, stably); ``tp`` / ``ignored`` are
    ``(T, D)``; the ``pos_*`` triples count the ground truth each (group, image) contributes to
    recall. Detections ignored at every threshold are dropped."""
    tp = np.asarray(tp, bool).reshape(len(thresholds), -1)
    ignored = np.asarray(ignored, bool).reshape(len(thresholds), -1)
    keep = ~ignored.all(axis=0)
    det_group = np.asarray(det_group, np.int64)[keep]
    order = np.argsort(det_group, kind="stable")
    keep_idx = np.flatnonzero(keep)[order]
    return {
        "image_ids": np.asarray(image_ids),
        "groups": np.asarray(groups, dtype=str),
        "thresholds": np.asarray(thresholds, np.float64),
        "det_group": det_group[order].astype(np.int32),
        "det_image": np.asarray(det_image, np.int64)[keep_idx].astype(np.int32),
        "tp": pack_bits(tp[:, keep_idx]),
        "ign": pack_bits(ignored[:, keep_idx]),
        "pos_group": np.asarray(pos_group, np.int32),
        "pos_image": np.asarray(pos_image, np.int32),
        "pos_count": np.asarray(pos_count, np.int32),
    }


def coco_ranked_detections(ev) -> Section:
    """The ranked detections of a pycocotools ``COCOeval`` after ``evaluate()``: its per-image
    matches (``evalImgs``) at the largest ``maxDets`` (100), concatenated per category and area
    range in image order and sorted by score exactly as ``COCOeval.accumulate`` sorts them
    (mergesort on ``-score``), so the full sample reproduces its precision table. Group
    ``k * A + a`` is category ``k``, area range ``a`` (``all, small, medium, large``)."""
    p = ev.params
    if not p.useCats:
        raise ValueError("per-image COCO data needs per-category evaluation (params.useCats = 1)")
    cat_ids, areas, img_ids = list(p.catIds), [tuple(a) for a in p.areaRng], list(p.imgIds)
    num_k, num_a, num_i, num_t = len(cat_ids), len(areas), len(img_ids), len(p.iouThrs)
    max_det = p.maxDets[-1]
    det_group, det_image, tps, igs = [], [], [], []
    pos_group, pos_image, pos_count = [], [], []
    for k in range(num_k):
        for a in range(num_a):
            group = k * num_a + a
            scores, images, matched, ignored = [], [], [], []
            for i in range(num_i):
                e = ev.evalImgs[k * num_a * num_i + a * num_i + i]
                if e is None:
                    continue
                npig = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
                if npig:
                    pos_group.append(group)
                    pos_image.append(i)
                    pos_count.append(npig)
                d = len(e["dtScores"][:max_det])
                if d:
                    scores.append(np.asarray(e["dtScores"][:max_det], np.float64))
                    images.append(np.full(d, i))
                    matched.append(np.asarray(e["dtMatches"])[:, :max_det])
                    ignored.append(np.asarray(e["dtIgnore"])[:, :max_det])
            if not scores:
                continue
            order = np.argsort(-np.concatenate(scores), kind="mergesort")  # as accumulate() sorts
            dtm = np.concatenate(matched, axis=1)[:, order]
            dt_ig = np.concatenate(ignored, axis=1)[:, order].astype(bool)
            det_group.append(np.full(len(order), group))
            det_image.append(np.concatenate(images)[order])
            tps.append(np.logical_and(dtm, ~dt_ig))  # a match is a non-zero gt id, as in accumulate()
            igs.append(dt_ig)
    empty = np.zeros((num_t, 0), bool)
    return ranked_detections(
        img_ids, [f"{c}/{'all small medium large'.split()[a] if len(areas) == 4 else a}"
                  for c in cat_ids for a in range(num_a)],
        p.iouThrs,
        np.concatenate(det_group) if det_group else np.zeros(0, np.int64),
        np.concatenate(det_image) if det_image else np.zeros(0, np.int64),
        np.concatenate(tps, axis=1) if tps else empty, np.concatenate(igs, axis=1) if igs else empty,
        np.array(pos_group, np.int64), np.array(pos_image, np.int64), np.array(pos_count, np.int64),
    ) | {"categories": np.asarray(cat_ids), "area_ranges": np.asarray(areas, np.float64),
         "rec_thresholds": np.asarray(p.recThrs, np.float64), "num_areas": np.array(num_a)}
