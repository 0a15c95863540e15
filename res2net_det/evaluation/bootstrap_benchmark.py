"""A generated COCO-val-sized comparison for ``tools/benchmark.py bootstrap`` and the tests.

:func:`generated_coco_comparison` makes a COCO ground truth (80 categories, ~7 boxes per image
of every size, some crowd regions) and two runs' detections (``dets_per_image`` each: jittered
copies of the boxes, duplicates and background boxes, the second run localising a little
better), so the bootstrap sees matches, duplicates, crowd and area-range ignores as on COCO.
"""
from __future__ import annotations

import contextlib
import io
import time
from typing import Dict, List, Tuple

import numpy as np

from .bootstrap import coco_metrics, paired_interval, resample_weights
from .per_image import coco_ranked_detections

__all__ = ["generated_coco_comparison", "coco_eval_matches", "benchmark_coco_bootstrap"]

_IMAGE_SIZE = (640, 480)


def _boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` XYWH boxes with log-uniform sides from 4 to 400 px (small, medium and large)."""
    w, h = np.exp(rng.uniform(np.log(4), np.log(400), (2, n)))
    w, h = np.minimum(w, _IMAGE_SIZE[0] - 1), np.minimum(h, _IMAGE_SIZE[1] - 1)
    x, y = rng.uniform(0, _IMAGE_SIZE[0] - w), rng.uniform(0, _IMAGE_SIZE[1] - h)
    return np.stack([x, y, w, h], axis=1)


def generated_coco_comparison(
    num_images: int = 5000, dets_per_image: int = 100, num_categories: int = 80, boxes_per_image: float = 7.3,
    seed: int = 0, jitter: Tuple[float, float] = (0.12, 0.10), score_decimals: int = 5,
) -> Tuple[dict, List[dict], List[dict]]:
    """``(ground truth dict, detections of run A, detections of run B)`` in COCO's formats.

    ``jitter``: each run's relative box noise (smaller localises better); scores are rounded to
    ``score_decimals`` as the evaluators write them (None: unrounded, no ties)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(boxes_per_image, num_images)
    image_of = np.repeat(np.arange(num_images), counts)
    gt_boxes = _boxes(rng, len(image_of))
    gt_cats = rng.integers(1, num_categories + 1, len(image_of))
    crowd = rng.random(len(image_of)) < 0.01
    gt = {
        "images": [{"id": i + 1, "width": _IMAGE_SIZE[0], "height": _IMAGE_SIZE[1], "file_name": f"{i:06d}.jpg"}
                   for i in range(num_images)],
        "categories": [{"id": c, "name": f"class{c}"} for c in range(1, num_categories + 1)],
        "annotations": [{"id": j + 1, "image_id": int(image_of[j]) + 1, "category_id": int(gt_cats[j]),
                         "bbox": gt_boxes[j].tolist(), "area": float(gt_boxes[j, 2] * gt_boxes[j, 3]),
                         "iscrowd": int(crowd[j])} for j in range(len(image_of))],
    }
    starts = np.r_[0, np.cumsum(counts)]

    def run(run_seed: int, noise: float) -> List[dict]:
        r = np.random.default_rng(run_seed)
        image, boxes, cats, scores = [], [], [], []
        for i in range(num_images):
            own = np.arange(starts[i], starts[i + 1])
            hits = own[r.random(len(own)) < 0.8]
            copies = np.repeat(hits, r.integers(1, 4, len(hits)))  # a true box and its duplicates
            noisy = gt_boxes[copies] * (1 + r.normal(0, noise, (len(copies), 4)))
            noisy[:, :2] = gt_boxes[copies, :2] + r.normal(0, noise, (len(copies), 2)) * gt_boxes[copies, 2:]
            rest = max(dets_per_image - len(copies), 0)
            background = _boxes(r, rest)
            own_cats = gt_cats[own] if len(own) else np.array([1])
            bg_cats = np.where(r.random(rest) < 0.5, r.choice(own_cats, rest), r.integers(1, num_categories + 1, rest))
            image.append(np.full(min(len(copies) + rest, dets_per_image), i + 1))
            boxes.append(np.vstack([np.abs(noisy), background])[:dets_per_image])
            cats.append(np.r_[gt_cats[copies], bg_cats][:dets_per_image])
            scores.append(np.r_[r.uniform(0.3, 1.0, len(copies)), r.uniform(0.0, 0.7, rest)][:dets_per_image])
        image, boxes, cats, scores = (np.concatenate(v) for v in (image, boxes, cats, scores))
        if score_decimals is not None:
            scores = np.round(scores, score_decimals)
        return [{"image_id": int(i), "category_id": int(c), "bbox": b.tolist(), "score": float(s)}
                for i, c, b, s in zip(image, cats, boxes, scores)]

    return gt, run(seed + 1, jitter[0]), run(seed + 2, jitter[1])


def coco_eval_matches(gt: dict, detections: List[dict], iou_type: str = "bbox") -> Tuple[Dict[str, np.ndarray], dict]:
    """pycocotools' per-image matches of ``detections`` (``COCOeval.evaluate``) as a ranked-detections
    section, and its summary (``accumulate`` + ``summarize``: AP ... APl in percent)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(detections), iou_type)
        ev.evaluate()
        section = coco_ranked_detections(ev)
        ev.accumulate()
        ev.summarize()
    names = ("AP", "AP50", "AP75", "APs", "APm", "APl")
    return section, {n: float(ev.stats[i] * 100) for i, n in enumerate(names)}


def benchmark_coco_bootstrap(num_images: int = 5000, dets_per_image: int = 100, resamples: int = 1000,
                             seed: int = 0, log=print) -> Dict[str, float]:
    """Generates the comparison, matches it once with pycocotools (timed apart: the evaluator does
    it when a run is evaluated), then times ``resamples`` paired resamples of the six COCO box
    metrics of both runs. Returns the timings and the AP intervals."""
    t0 = time.perf_counter()
    gt, run_a, run_b = generated_coco_comparison(num_images, dets_per_image, seed=seed)
    t1 = time.perf_counter()
    log(f"generated {num_images} images, {len(gt['annotations'])} boxes, {len(run_a)} + {len(run_b)} detections "
        f"in {t1 - t0:.1f} s")
    (section_a, summary_a), (section_b, summary_b) = coco_eval_matches(gt, run_a), coco_eval_matches(gt, run_b)
    t2 = time.perf_counter()
    log(f"pycocotools COCOeval.evaluate (per-image matches, once per run, at evaluation time): {t2 - t1:.1f} s "
        f"for both runs; {len(section_a['det_group'])} + {len(section_b['det_group'])} ranked entries")
    weights = resample_weights(num_images, resamples, seed)
    resampled_a = coco_metrics(section_a, weights)
    resampled_b = coco_metrics(section_b, weights)
    t3 = time.perf_counter()
    full = np.ones((1, num_images), np.float32)
    point = {k: float(coco_metrics(section_b, full)[k][0] - coco_metrics(section_a, full)[k][0]) for k in resampled_a}
    for name in resampled_a:
        low, high, n = paired_interval(resampled_a[name], resampled_b[name])
        log(f"  {name}: A {summary_a[name]:.2f}  B {summary_b[name]:.2f}  Δ {point[name]:+.2f} "
            f"[{low:+.2f}, {high:+.2f}] ({n} resamples)")
    log(f"bootstrap: {resamples} resamples x 2 runs x 6 metrics of {num_images} images: {t3 - t2:.1f} s")
    return {"generate_s": t1 - t0, "match_s": t2 - t1, "bootstrap_s": t3 - t2}
