"""Paired bootstrap over test images: how much of a Δ between two runs is test-set sampling.

Runs of a comparison share a test set, so one resample of the images (``B`` rows of image
multiplicities, :func:`resample_weights`) is applied to every run, each metric is recomputed
on it, and the Δ of each resample gives the interval (:func:`paired_interval`: the 2.5 and
97.5 percentiles of the resampled Δ). Each resample is the data set with image ``i`` counted
``W[b, i]`` times, i.e. exactly the metric of a data set in which that image is duplicated
``W[b, i]`` times (a test checks COCO AP against ``COCOeval`` on such a data set).

Metrics recomputed from the per-image data of :mod:`res2net_det.evaluation.per_image`:

* image means (MAE, S-measure, weighted F, adaptive F / E, deletion / insertion / ROAD, Top-1
  Cls): weighted means;
* curves over thresholds (maxF / meanF / maxE / meanE; MaxBoxAcc, MaxBoxAccV2, GT-known and
  Top-1 Loc at the best threshold of each resample; PxAP / PIoU from per-image pixel
  histograms): the data-set curve is rebuilt from the resampled per-image curves or
  histograms, then maximised / integrated;
* detection AP (COCO AP, AP50, AP75, APs / APm / APl, box and mask; VOC AP50 11-point and
  all-point, AP, AP75): :func:`ranked_ap`, from the evaluator's per-image matches.

Why :func:`ranked_ap` is hand-written. pycocotools' ``COCOeval.accumulate`` takes ~10 s on COCO
val; 1,000 resamples of it would take hours. The matches do not change under resampling
(they are per image), only how often each image counts, so the detections are ranked once and
each resample is a vector of image multiplicities: cumulative true/false positive counts are
weighted sums, computed for all resamples at once with sparse matrix products. Two facts keep
it small and exact: (1) COCO's interpolated precision at recall ``r`` is
``max{precision_j : recall_j >= r}`` (the running maximum from the end, read where recall first
reaches ``r``), and a false positive or ignored detection never raises that maximum, so only
true-positive positions need a precision; (2) a detection counted ``w`` times forms a block of
``w`` ranks whose interior never beats the block's end, so the compressed ranking gives the same
curve as the duplicated one. Precision and recall are then the same float64 expressions
pycocotools evaluates (``tp / (tp + fp + spacing(1))``, ``tp / npig``, compared against its
``recThrs``), so the full sample reproduces ``COCOeval``'s numbers (to summation order).
Ties in score between different images are ordered by image, as pycocotools orders them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from .per_image import Section, unpack_bits

__all__ = ["DEFAULT_RESAMPLES", "resample_weights", "paired_interval", "nan_weighted_mean", "ranked_ap", "coco_metrics",
           "voc_metrics", "saliency_metrics", "cam_metrics", "BOOTSTRAP_METRICS", "align_images"]

DEFAULT_RESAMPLES = 1000
# Resamples per block: keeps the (positions x resamples) arrays of one category near 100 MB.
_BLOCK_ELEMENTS = 12_000_000


def resample_weights(num_images: int, num_resamples: int, seed: int = 0) -> np.ndarray:
    """``(B, N)`` float32 multiplicities: row ``b`` counts how often each image is drawn in the
    ``b``-th resample of ``N`` images with replacement (each row sums to ``N``)."""
    if num_images <= 0:
        raise ValueError("no images to resample")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_images, size=(num_resamples, num_images))
    flat = (draws + (np.arange(num_resamples) * num_images)[:, None]).ravel()
    return np.bincount(flat, minlength=num_resamples * num_images).reshape(num_resamples, num_images).astype(np.float32)


def paired_interval(resampled_a: np.ndarray, resampled_b: np.ndarray, level: float = 0.95
                    ) -> Tuple[Optional[float], Optional[float], int]:
    """``(low, high, n)``: the percentile interval of ``b - a`` over the resamples where both are
    defined (``n`` of them); ``(None, None, 0)`` when none is."""
    delta = np.asarray(resampled_b, np.float64) - np.asarray(resampled_a, np.float64)
    delta = delta[np.isfinite(delta)]
    if not delta.size:
        return None, None, 0
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(delta, [tail, 100 - tail])
    return float(low), float(high), int(delta.size)


def align_images(ids_a: np.ndarray, ids_b: np.ndarray, what_a: str, what_b: str) -> np.ndarray:
    """The permutation putting ``b``'s images in ``a``'s order; runs must share their test images."""
    ids_a, ids_b = [str(i) for i in ids_a], [str(i) for i in ids_b]
    if len(set(ids_a)) != len(ids_a):
        raise ValueError(f"{what_a}: image ids repeat; a per-image file needs one entry per image")
    if set(ids_a) != set(ids_b):
        only_a, only_b = sorted(set(ids_a) - set(ids_b)), sorted(set(ids_b) - set(ids_a))
        raise ValueError(f"{what_a} and {what_b} were evaluated on different images ({len(only_a)} only in the "
                         f"first, e.g. {only_a[:3]}; {len(only_b)} only in the second, e.g. {only_b[:3]}): a paired "
                         "bootstrap needs one test set")
    where = {k: j for j, k in enumerate(ids_b)}
    return np.array([where[k] for k in ids_a], np.int64)


# ---------------------------------------------------------------------------- ranked detections
@dataclass
class _Group:
    image: np.ndarray          # (D,) image index of each kept detection, in rank order
    tp: np.ndarray             # (T, D) bool
    ign: np.ndarray            # (T, D) bool


def _groups(section: Section) -> Dict[int, _Group]:
    det_group = section["det_group"]
    num_t = len(section["thresholds"])
    tp_all, ig_all = unpack_bits(section["tp"], num_t), unpack_bits(section["ign"], num_t)
    bounds = np.flatnonzero(np.diff(det_group)) + 1
    out = {}
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(det_group)]):
        if stop > start:
            out[int(det_group[start])] = _Group(section["det_image"][start:stop], tp_all[:, start:stop],
                                                ig_all[:, start:stop])
    return out


def _segment_matrix(rows: np.ndarray, images: np.ndarray, num_rows: int, num_images: int):
    """Sparse ``(num_rows, N)`` counts: detection ``j`` adds 1 at ``(rows[j], images[j])``."""
    from scipy import sparse

    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, images)), shape=(num_rows, num_images))


@dataclass
class _Plan:
    image: np.ndarray          # (D,) image of each detection up to the last true positive
    union: np.ndarray          # ranks that are a true positive at some threshold
    counted: object            # sparse (U, N): detections of each image in each segment ending at a union rank
    per_t: list                # per threshold: (its true-positive ranks, their index in union, ignored segments)


def _plan(grp: _Group, num_images: int) -> Optional[_Plan]:
    """What :func:`ranked_ap` precomputes once per group (independent of the resamples)."""
    any_tp = grp.tp.any(axis=0)
    if not any_tp.any():
        return None
    last = int(np.flatnonzero(any_tp)[-1]) + 1  # detections after the last true positive move no point
    image, tp, ign = grp.image[:last], grp.tp[:, :last], grp.ign[:, :last]
    union = np.flatnonzero(any_tp[:last])
    segment = np.searchsorted(union, np.arange(last), side="left")  # rank r is counted from union[segment[r]] on
    per_t = []
    for t in range(tp.shape[0]):
        ranks = np.flatnonzero(tp[t])
        ig_rows = np.flatnonzero(ign[t])
        ig_matrix = _segment_matrix(segment[ig_rows], image[ig_rows], len(union), num_images) if len(ig_rows) else None
        per_t.append((ranks, np.searchsorted(union, ranks), ig_matrix))
    return _Plan(image, union, _segment_matrix(segment, image, len(union), num_images), per_t)


def _bucket(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``searchsorted(grid, values, 'right')`` (how many grid points are <= each value), exact in
    float64; a near-uniform grid (COCO's 101, VOC's 11 points) takes a faster exact path."""
    n = len(grid)
    step = (grid[-1] - grid[0]) / (n - 1) if n > 1 else 0.0
    if n > 1 and step > 0 and np.allclose(np.diff(grid), step, rtol=1e-9, atol=0):
        k = np.clip(np.floor((values - grid[0]) / step).astype(np.int64), 0, n - 1)
        padded = np.r_[grid, np.inf, np.inf]
        # the floor is off by at most one grid step; the comparisons make the count exact
        count = (k + (padded[k] <= values) + (padded[k + 1] <= values)
                 - (padded[np.maximum(k - 1, 0)] > values) * (k > 0))
        return np.clip(count, 0, n)
    return np.searchsorted(grid, values, side="right")


def ranked_ap(section: Section, weights: np.ndarray, recall_grid: Optional[np.ndarray] = None,
              precision_eps: str = "coco", all_point: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Interpolated AP of every group and IoU threshold under each resample.

    Args:
        section: ranked detections (:func:`res2net_det.evaluation.per_image.ranked_detections`).
        weights: ``(B, N)`` image multiplicities in the section's image order (ones: the data set).
        recall_grid: recall points of the interpolated precision (COCO's 101 by default).
        precision_eps: ``"coco"``: ``tp / (tp + fp + spacing(1))``; ``"voc"``: ``tp / max(tp + fp, eps)``.
        all_point: VOC's all-point AP (area under the precision envelope) instead of the grid.

    Returns ``(ap, positives)``: ``ap (B, G, T)`` (the mean of the interpolated precision over
    the grid, as COCOeval's ``precision`` averaged over recall) and ``positives (B, G)``, the
    counted ground truth (a group with none has no AP in that resample).
    """
    from scipy import sparse

    weights = np.asarray(weights, np.float32)
    num_b, num_i = weights.shape
    groups_all = section["groups"]
    num_g, num_t = len(groups_all), len(section["thresholds"])
    grid = np.asarray(section.get("rec_thresholds", np.linspace(0, 1, 101)) if recall_grid is None else recall_grid,
                      np.float64)
    num_r = len(grid)
    eps = np.spacing(1) if precision_eps == "coco" else np.finfo(np.float64).eps
    wt = np.ascontiguousarray(weights.T)  # (N, B): a sparse (rows x N) @ wt is one pass over the nonzeros
    positives_matrix = sparse.csr_matrix(
        (section["pos_count"].astype(np.float32), (section["pos_group"], section["pos_image"])), shape=(num_g, num_i))
    positives = np.asarray(positives_matrix @ wt, np.float64).T  # (B, G), exact integers
    ap = np.zeros((num_b, num_g, num_t), np.float64)
    plans = [(g, plan) for g, plan in ((g, _plan(grp, num_i)) for g, grp in _groups(section).items()) if plan]
    # no true positive at any threshold: AP 0 wherever the group has ground truth (left at 0 here)
    block = max(1, _BLOCK_ELEMENTS // max([len(p.union) for _, p in plans] + [1]))
    for b0 in range(0, num_b, block):
        wb = np.ascontiguousarray(wt[:, b0:b0 + block])
        nb = wb.shape[1]
        for g, plan in plans:
            npos = positives[b0:b0 + nb, g]
            total = np.cumsum(np.asarray(plan.counted @ wb), axis=0, dtype=np.float64)  # (U, b): detections so far
            for t, (ranks, at, ig_matrix) in enumerate(plan.per_t):
                if not len(ranks):
                    continue
                tp_cum = np.cumsum(wb[plan.image[ranks]], axis=0, dtype=np.float64)  # (M, b)
                fp_cum = total[at] - tp_cum
                if ig_matrix is not None:
                    fp_cum -= np.cumsum(np.asarray(ig_matrix @ wb), axis=0, dtype=np.float64)[at]
                with np.errstate(divide="ignore", invalid="ignore"):
                    precision = tp_cum / ((tp_cum + fp_cum + eps) if precision_eps == "coco"
                                          else np.maximum(tp_cum + fp_cum, eps))
                    recall = np.where(npos > 0, tp_cum / npos, 0.0)
                envelope = np.maximum.accumulate(precision[::-1], axis=0)[::-1]
                if all_point:
                    gained = np.diff(tp_cum, axis=0, prepend=0.0)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ap[b0:b0 + nb, g, t] = (gained * envelope).sum(axis=0) / npos
                    continue
                # the first rank whose recall reaches grid point k = the number of ranks below it
                bucket = _bucket(recall.ravel(), grid).reshape(recall.shape)  # grid points <= recall
                columns = np.broadcast_to(np.arange(nb), bucket.shape)
                counts = np.bincount((bucket * nb + columns).ravel(), minlength=(num_r + 1) * nb).reshape(num_r + 1, nb)
                first = np.cumsum(counts, axis=0)[:num_r]  # (R, b)
                padded = np.vstack([envelope, np.zeros((1, nb))]).ravel()  # past the last rank: precision 0
                ap[b0:b0 + nb, g, t] = padded[first * nb + np.arange(nb)].mean(axis=0)
    return ap, positives


def _mean_over_groups(ap: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean over valid groups (and the thresholds given), NaN where none is valid."""
    count = valid.sum(axis=1)
    total = (ap * valid[..., None]).sum(axis=(1, 2)) if ap.ndim == 3 else (ap * valid).sum(axis=1)
    per = ap.shape[2] if ap.ndim == 3 else 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count * per, 1), np.nan)


def coco_metrics(section: Section, weights: np.ndarray) -> Dict[str, np.ndarray]:
    """COCO's AP, AP50, AP75, APs, APm, APl (percent) of every resample: ``COCOeval.summarize``'s
    means of the precision table (maxDets 100) over categories with ground truth."""
    ap, positives = ranked_ap(section, weights)
    num_a = int(section["num_areas"])
    thresholds = np.asarray(section["thresholds"])
    num_g = ap.shape[1]
    by_area = ap.reshape(ap.shape[0], num_g // num_a, num_a, -1)
    valid = (positives > 0).reshape(ap.shape[0], num_g // num_a, num_a)
    out = {"AP": _mean_over_groups(by_area[:, :, 0], valid[:, :, 0])}
    for name, iou in (("AP50", 0.5), ("AP75", 0.75)):
        t = int(np.argmin(np.abs(thresholds - iou)))
        out[name] = _mean_over_groups(by_area[:, :, 0, t], valid[:, :, 0])
    for a, name in zip(range(1, num_a), ("APs", "APm", "APl")):
        out[name] = _mean_over_groups(by_area[:, :, a], valid[:, :, a])
    return {k: 100.0 * v for k, v in out.items()}


VOC07_RECALL_GRID = np.arange(0.0, 1.1, 0.1)  # the devkit's 11 points, unrounded


def voc_metrics(section: Section, weights: np.ndarray, use_07_metric: bool = True) -> Dict[str, np.ndarray]:
    """VOC AP50 (the year's metric), AP50_11point, AP50_allpoint, AP, AP75 (percent) of every
    resample, as :func:`res2net_det.evaluation.voc.evaluate_voc` defines them."""
    thresholds = np.asarray(section["thresholds"])
    eleven, positives = ranked_ap(section, weights, VOC07_RECALL_GRID, "voc")
    allpoint, _ = ranked_ap(section, weights, precision_eps="voc", all_point=True)
    valid = positives > 0
    year = eleven if use_07_metric else allpoint
    t50, t75 = (int(np.argmin(np.abs(thresholds - v))) for v in (0.5, 0.75))
    per_threshold = np.stack([_mean_over_groups(year[:, :, t], valid) for t in range(len(thresholds))], axis=1)
    return {k: 100.0 * v for k, v in {
        "AP": np.mean(per_threshold, axis=1),
        "AP50": per_threshold[:, t50],
        "AP75": per_threshold[:, t75],
        "AP50_11point": _mean_over_groups(eleven[:, :, t50], valid),
        "AP50_allpoint": _mean_over_groups(allpoint[:, :, t50], valid),
    }.items()}


# ---------------------------------------------------------------------------- image means and curves
def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(B,)`` or ``(B, K)`` weighted means of per-image ``values`` ``(N,)`` or ``(N, K)``."""
    values = np.asarray(values, np.float64)
    return (weights.astype(np.float64) @ values) / weights.sum(axis=1).reshape((-1,) + (1,) * (values.ndim - 1))


def nan_weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(B,)`` weighted means of per-image ``values`` over the images where they are finite
    (NaN: not computed there); NaN for a resample with none of them."""
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    sub = weights[:, finite].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sub @ values[finite]) / sub.sum(axis=1)


def saliency_metrics(section: Section, weights: np.ndarray) -> Dict[str, np.ndarray]:
    """MAE, S-measure, weighted F, adaptive F / E and max / mean F and E of every resample: the
    F and E curves are the weighted means of the per-image curves (pysodmetrics' data-set curve)."""
    out = {name: _weighted_mean(section[key], weights) for name, key in
           (("MAE", "mae"), ("Sm", "sm"), ("wF", "wfm"), ("adpF", "adp_fm"), ("adpE", "adp_em"))}
    for name, key in (("F", "fm_curve"), ("E", "em_curve")):
        curve = _weighted_mean(section[key], weights)
        out[f"max{name}"], out[f"mean{name}"] = curve.max(axis=1), curve.mean(axis=1)
    return out


def cam_metrics(section: Section, weights: np.ndarray) -> Dict[str, np.ndarray]:
    """The CAM row's metrics of every resample (percent; AUCs in [0, 1]), as
    :class:`~res2net_det.evaluation.wsol.WSOLEvaluator` / ``PixelEvaluator`` define them, each
    best threshold chosen again per resample (a fixed ``loc_index`` stays fixed)."""
    out: Dict[str, np.ndarray] = {}
    if "loc_hit" in section:
        loc_hit = np.asarray(section["loc_hit"], bool)  # (N, T): largest contour's IoU >= loc_iou
        single = _weighted_mean(loc_hit, weights) * 100  # (B, T) BoxAcc curve
        fixed = int(section["loc_index"])
        loc = np.argmax(single, axis=1) if fixed < 0 else np.full(len(single), fixed)
        out["max_box_acc"] = single.max(axis=1)
        out["gt_known_loc"] = np.take_along_axis(single, loc[:, None], axis=1)[:, 0]
        out["max_box_acc_v2"] = np.mean([_weighted_mean(hit, weights).max(axis=1) * 100
                                         for hit in np.asarray(section["v2_hit"], bool)], axis=0)
        if "correct" in section:
            correct = np.asarray(section["correct"], bool)
            out["top1_cls"] = _weighted_mean(correct, weights) * 100
            top1 = np.empty(len(loc))
            for index in np.unique(loc):  # Top-1 Loc at each resample's own threshold
                rows = loc == index
                top1[rows] = _weighted_mean(correct & loc_hit[:, index], weights[rows]) * 100
            out["top1_loc"] = top1
    if "fg_hist" in section:
        fg = weights.astype(np.float64) @ section["fg_hist"].astype(np.float64)  # (B, bins)
        bg = weights.astype(np.float64) @ section["bg_hist"].astype(np.float64)
        tp, fp = np.cumsum(fg[:, ::-1], axis=1), np.cumsum(bg[:, ::-1], axis=1)
        positives = fg.sum(axis=1, keepdims=True)
        predicted = tp + fp
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(predicted > 0, tp / np.where(predicted > 0, predicted, 1), 0.0)
            recall = tp / positives
            out["pxap"] = 100 * np.sum(precision[:, 1:] * np.diff(recall, axis=1), axis=1)
            on_grid = np.asarray(section["hist_edges"])[-2::-1] < 1.0  # thresholds high -> low, as PixelEvaluator
            out["piou"] = 100 * np.max(tp[:, on_grid] / (positives + fp[:, on_grid]), axis=1)
    for key, name in (("deletion", "deletion_auc"), ("insertion", "insertion_auc"), ("road", "road")):
        if key in section:  # computed on some images only (NaN elsewhere)
            out[name] = nan_weighted_mean(section[key], weights)
    return out


#: task -> function(section, weights) -> {metric key of the results file: (B,) values}
BOOTSTRAP_METRICS: Mapping[str, Callable[..., Dict[str, np.ndarray]]] = {
    "detection": coco_metrics,
    "detection-voc": voc_metrics,
    "saliency": saliency_metrics,
    "cam": cam_metrics,
}

