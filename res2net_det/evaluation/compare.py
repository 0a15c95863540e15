"""Side-by-side tables of finished runs: the paper's "ResNet-50 vs Res2Net-50" comparisons.

A run is an ``OUTPUT_DIR`` of either engine (or of a CAM / saliency tool). Its results are read
from the files the evaluators write (task: file -> columns):

* detection: ``inference/<data set>/coco_eval_results.json`` -> AP, AP50, AP75, APs, APm, APl (+ mask AP)
* detection-voc: ``inference/<data set>/voc_eval_results.json`` -> mAP (the year's AP at IoU 0.5: VOC07
  11-point), all-point mAP, AP, AP75
* saliency: ``inference/<data set>/saliency_results.json`` (or ``saliency_results.json``) -> maxF, MAE,
  S-measure, maxE
* cam: ``cam_results.json`` or ``results.json`` (``{"settings", "rows"}``) -> Top-1 Loc, GT-known Loc,
  MaxBoxAccV2, deletion, insertion
* panoptic: ``inference/<data set>/panoptic_eval_results.json`` -> PQ (things, stuff), box AP, mask AP, stuff mIoU

:func:`compare_runs` makes one table per task and data set (CAM: per method): a row per metric,
a column per run, and after every run but the first a Δ column (that run minus the first).
:func:`write_comparison` writes it as Markdown and JSON and draws the bar chart (AP by object
size for detection, mAP per data set for VOC, the metric per data set for saliency, the
localisation accuracies per method for CAM).
"""
from __future__ import annotations

import glob
import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.io import read_json_file, write_json_file
from .bootstrap import (
    BOOTSTRAP_METRICS,
    DEFAULT_RESAMPLES,
    align_images,
    paired_interval,
    resample_weights,
    voc_metrics,
)
from .per_image import load_per_image, per_image_path

__all__ = ["RunNotFinishedError", "RunResults", "TASK_COLUMNS", "read_run", "compare_runs", "format_markdown",
           "write_comparison", "summarize_seeds", "format_seed_markdown"]


class RunNotFinishedError(ValueError):
    """A run folder that is missing, unfinished or holds no results."""


# task -> [(column title, key in the metrics dict read from the run, higher is better, decimals)]
# (percentages with one decimal, saliency scores and AUCs in [0, 1] with three)
TASK_COLUMNS: Dict[str, List[Tuple[str, str, bool, int]]] = {
    "detection": [("AP", "AP", True, 1), ("AP50", "AP50", True, 1), ("AP75", "AP75", True, 1),
                  ("APs", "APs", True, 1), ("APm", "APm", True, 1), ("APl", "APl", True, 1),
                  ("mask AP", "mask_AP", True, 1)],
    "detection-voc": [("mAP", "AP50", True, 1), ("mAP (all-point)", "AP50_allpoint", True, 1), ("AP", "AP", True, 1),
                      ("AP75", "AP75", True, 1)],
    "saliency": [("maxF", "maxF", True, 3), ("MAE", "MAE", False, 3), ("S-measure", "Sm", True, 3),
                 ("maxE", "maxE", True, 3)],
    "panoptic": [("PQ", "PQ", True, 1), ("PQ things", "PQ_th", True, 1), ("PQ stuff", "PQ_st", True, 1),
                 ("box AP", "AP", True, 1), ("mask AP", "mask_AP", True, 1), ("mIoU", "mIoU", True, 1)],
    "cam": [("Top-1 Loc", "top1_loc", True, 1), ("GT-known Loc", "gt_known_loc", True, 1),
            ("MaxBoxAccV2", "max_box_acc_v2", True, 1), ("Deletion", "deletion_auc", False, 3),
            ("Insertion", "insertion_auc", True, 3)],
}
_TASK_TITLES = {"detection": "detection (COCO AP, %)", "detection-voc": "detection (PASCAL VOC, %)",
                "saliency": "salient object detection", "cam": "CAM localisation",
                "panoptic": "panoptic segmentation (COCO PQ, AP, %)"}


@dataclass
class RunResults:
    label: str
    run_dir: str
    # (task, data set or CAM method) -> metrics
    results: "OrderedDict[Tuple[str, str], Dict[str, Optional[float]]]" = field(default_factory=OrderedDict)
    # (task, data set or CAM method) -> [(per-image file, section, metric prefix)]: where the
    # evaluator left the per-image data the bootstrap resamples (the file may be missing)
    per_image: Dict[Tuple[str, str], List[Tuple[str, str, str]]] = field(default_factory=dict)


def _number(value: Any) -> Optional[float]:
    return (float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            else None)


def _unfinished_checkpoint(run_dir: str) -> Optional[str]:
    """The last checkpoint's name when a trainer (either engine) stopped before its final one."""
    marker = os.path.join(run_dir, "last_checkpoint")
    if not os.path.isfile(marker):
        return None
    with open(marker, encoding="utf-8") as f:
        name = f.read().strip()
    return None if os.path.basename(name) == "model_final.pth" else name


def _read_saliency(path: str, run: "RunResults") -> None:
    data = read_json_file(path, "saliency results")
    for method, per_dataset in data.items():
        for dataset, entry in per_dataset.items():
            key = ("saliency", dataset if len(data) == 1 else f"{dataset} [{method}]")
            run.results[key] = {k: _number(v) for k, v in entry.get("metrics", {}).items()}
            run.per_image[key] = [(per_image_path(path), f"{method}/{dataset}", "")]


def read_run(run_dir: str, label: Optional[str] = None) -> RunResults:
    """The results of one finished run; :class:`RunNotFinishedError` naming the folder when it is
    missing, still training (its ``last_checkpoint`` is not ``model_final.pth``) or holds no
    results file."""
    label = label or os.path.basename(os.path.normpath(run_dir))
    if not os.path.isdir(run_dir):
        raise RunNotFinishedError(f"run folder not found: {run_dir}")
    last = _unfinished_checkpoint(run_dir)
    if last:
        raise RunNotFinishedError(
            f"{run_dir}: unfinished run (its last checkpoint is {last}, not model_final.pth); finish it "
            "with tools/train_net.py ... --resume (or tools/reproduce.py ... --resume), or leave it out"
        )
    run = RunResults(label, run_dir)
    inference = os.path.join(run_dir, "inference")
    for path in sorted(glob.glob(os.path.join(inference, "*", "coco_eval_results.json"))):
        data = read_json_file(path, "COCO results")
        metrics = {k: _number(v) for k, v in data.get("bbox", {}).items()}
        if "segm" in data:
            metrics["mask_AP"] = _number(data["segm"].get("AP"))
        key = ("detection", os.path.basename(os.path.dirname(path)))
        run.results[key] = metrics
        run.per_image[key] = [(per_image_path(path), "bbox", "")] + \
            ([(per_image_path(path), "segm", "mask_")] if "segm" in data else [])
    for path in sorted(glob.glob(os.path.join(inference, "*", "panoptic_eval_results.json"))):
        data = read_json_file(path, "panoptic results")
        metrics = {k: _number(data.get("panoptic_seg", {}).get(k)) for k in ("PQ", "PQ_th", "PQ_st")}
        metrics.update(AP=_number(data.get("bbox", {}).get("AP")), mask_AP=_number(data.get("segm", {}).get("AP")),
                       mIoU=_number(data.get("sem_seg", {}).get("mIoU")))
        run.results[("panoptic", os.path.basename(os.path.dirname(path)))] = metrics
    for path in sorted(glob.glob(os.path.join(inference, "*", "voc_eval_results.json"))):
        data = read_json_file(path, "VOC results")
        key = ("detection-voc", os.path.basename(os.path.dirname(path)))
        run.results[key] = {k: _number(v) for k, v in data.get("bbox", {}).items()}
        run.per_image[key] = [(per_image_path(path), "bbox", "")]
    for path in sorted(glob.glob(os.path.join(inference, "*", "saliency_results.json"))) + \
            sorted(glob.glob(os.path.join(run_dir, "saliency_results.json"))):
        _read_saliency(path, run)
    for name in ("cam_results.json", "results.json"):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            continue
        data = read_json_file(path, "CAM results")
        if not (isinstance(data, dict) and isinstance(data.get("rows"), list)):
            continue
        # the model-free rows are the same in every run
        rows = [r for r in data["rows"] if r.get("model") != "baseline"]
        models = list(OrderedDict.fromkeys(r.get("model") for r in rows))
        for row in rows:
            method = str(row.get("method"))
            key = ("cam", method if len(models) == 1 else f"{method} [{row.get('model')}]")
            run.results[key] = {k: _number(v) for k, v in row.items()}
            if isinstance(row.get("per_image"), str):
                run.per_image[key] = [(per_image_path(path), row["per_image"], "")]
        break
    if not run.results:
        raise RunNotFinishedError(
            f"{run_dir}: no results (inference/<data set>/coco_eval_results.json, voc_eval_results.json, "
            "panoptic_eval_results.json, saliency_results.json, or a CAM results.json): the run has not finished its "
            "evaluation, or this is not a run folder"
        )
    return run


def compare_runs(run_dirs: Sequence[str], labels: Optional[Sequence[str]] = None,
                 bootstrap: int = DEFAULT_RESAMPLES, seed: int = 0) -> Dict[str, Any]:
    """One table per task and data set over ``run_dirs`` (the first is the reference of the Δ
    columns). Returns ``{"runs": [{label, run_dir}], "tables": [{task, dataset, title, columns,
    values: {label: {column: v}}, delta: {label: {column: d}}, higher_is_better: {column: bool}}]}``.

    With ``bootstrap`` resamples (0: none) every table whose runs left per-image data also gets
    ``ci95: {label: {column: [low, high]}}`` (the paired 95% interval of the Δ over ``bootstrap``
    resamples of the test images, :mod:`res2net_det.evaluation.bootstrap`), ``n_images`` and
    ``significant`` (the interval excludes 0); ``notes`` says which tables have none and why."""
    if not run_dirs:
        raise ValueError("no run folders given")
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"{len(labels)} labels for {len(run_dirs)} run folders")
    labels = list(labels) if labels else [os.path.basename(os.path.normpath(d)) for d in run_dirs]
    if len(set(labels)) != len(labels):
        labels = [os.path.normpath(d) for d in run_dirs]
    runs = [read_run(d, lab) for d, lab in zip(run_dirs, labels)]
    keys = list(OrderedDict.fromkeys(k for r in runs for k in r.results))
    order = list(TASK_COLUMNS)
    keys.sort(key=lambda k: order.index(k[0]))
    tables = []
    for task, dataset in keys:
        present = [column for column in TASK_COLUMNS[task]
                   if any(r.results.get((task, dataset), {}).get(column[1]) is not None for r in runs)]
        values = {r.label: {title: r.results.get((task, dataset), {}).get(key) for title, key, _, _ in present}
                  for r in runs}
        first = values[runs[0].label]
        delta = {
            r.label: {t: (v - first[t] if v is not None and first[t] is not None else None)
                      for t, v in values[r.label].items()}
            for r in runs[1:]
        }
        tables.append({"task": task, "dataset": dataset, "title": f"{_TASK_TITLES[task]}: {dataset}",
                       "columns": [t for t, _, _, _ in present], "values": values, "delta": delta,
                       "higher_is_better": {t: hib for t, _, hib, _ in present},
                       "decimals": {t: d for t, _, _, d in present}})
    comparison = {"runs": [{"label": r.label, "run_dir": r.run_dir} for r in runs], "tables": tables, "notes": []}
    if bootstrap and len(runs) > 1:
        comparison["bootstrap"] = {"resamples": int(bootstrap), "seed": int(seed), "level": 0.95}
        cache: Dict[str, Dict[str, Any]] = {}
        for table in tables:
            note = _add_intervals(table, runs, bootstrap, seed, cache)
            if note:
                comparison["notes"].append(note)
    return comparison


def _load_sections(run: RunResults, key: Tuple[str, str], cache: Dict[str, Any]):
    """``[(section arrays, metric prefix, attributes)]`` of one run's table, or a reason string."""
    sources = run.per_image.get(key)
    if not sources:
        return f"{run.label}: its results file names no per-image data"
    out = []
    for path, section, prefix in sources:
        if path not in cache:
            try:
                cache[path] = (load_per_image(path), _attributes(path))
            except FileNotFoundError:
                cache[path] = f"{run.label}: no per-image data ({path}; evaluated before the evaluators kept it? " \
                              "evaluate the run again, e.g. tools/train_net.py --eval-only)"
            except ValueError as e:
                cache[path] = f"{run.label}: {e}"
        if isinstance(cache[path], str):
            return cache[path]
        sections, attributes = cache[path]
        if section not in sections:
            return f"{run.label}: {path} has no section {section!r} (it has {sorted(sections)})"
        out.append((sections[section], prefix, attributes))
    return out


def _attributes(path: str) -> Dict[str, Any]:
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["attributes"])) if "attributes" in data.files else {}


def _resampled(task: str, parts, weights) -> Dict[str, Any]:
    """{metric key of the results file: (B,) values} of one run under ``weights``."""
    out: Dict[str, Any] = {}
    for section, prefix, attributes in parts:
        if task == "detection-voc":
            metrics = voc_metrics(section, weights, bool(attributes.get("use_07_metric", True)))
        else:
            metrics = BOOTSTRAP_METRICS[task](section, weights)
        out.update({prefix + k: v for k, v in metrics.items()})
    return out


def _add_intervals(table: Dict[str, Any], runs: List[RunResults], resamples: int, seed: int,
                   cache: Dict[str, Any]) -> Optional[str]:
    """Adds ``ci95``, ``n_images`` and ``significant`` to ``table``; returns a note when it can't."""
    key = (table["task"], table["dataset"])
    parts = []
    for run in runs:
        loaded = _load_sections(run, key, cache)
        if isinstance(loaded, str):
            return f"{table['title']}: no interval ({loaded})"
        parts.append(loaded)
    reference_ids = parts[0][0][0]["image_ids"]
    try:
        orders = [[align_images(reference_ids, section["image_ids"], runs[0].run_dir, run.run_dir)
                   for section, _, _ in p] for run, p in zip(runs, parts)]
    except ValueError as e:
        return f"{table['title']}: no interval ({e})"
    weights = resample_weights(len(reference_ids), resamples, seed)
    ones = np.ones((1, len(reference_ids)), np.float32)

    def run_weights(w, order):  # the reference's image i is this run's image order[i]
        out = np.empty_like(w)
        out[:, order] = w
        return out

    resampled, full = [], []
    for p, order in zip(parts, orders):
        resampled.append({k: v for (section, prefix, attrs), o in zip(p, order)
                          for k, v in _resampled(table["task"], [(section, prefix, attrs)],
                                                 run_weights(weights, o)).items()})
        full.append({k: float(v[0]) for (section, prefix, attrs), o in zip(p, order)
                     for k, v in _resampled(table["task"], [(section, prefix, attrs)], run_weights(ones, o)).items()})
    columns = {title: metric for title, metric, _, _ in TASK_COLUMNS[table["task"]] if title in table["columns"]}
    table["ci95"], table["n_images"], table["significant"] = {}, {}, {}
    mismatch = []
    for i, run in enumerate(runs):
        for title, metric in columns.items():
            value = table["values"][run.label].get(title)
            again = full[i].get(metric)
            if value is not None and again is not None and abs(value - again) > 1e-3 * max(1.0, abs(value)):
                mismatch.append(f"{run.label} {title} {value:.4g} vs {again:.4g}")
        if i == 0:
            continue
        ci, n_img, sig = {}, {}, {}
        for title, metric in columns.items():
            if metric not in resampled[0] or metric not in resampled[i]:
                ci[title], n_img[title], sig[title] = None, None, None
                continue
            low, high, used = paired_interval(resampled[0][metric], resampled[i][metric])
            ci[title] = None if low is None else [low, high]
            n_img[title] = _images_behind(parts[i], metric, len(reference_ids))
            sig[title] = None if low is None else bool(low > 0 or high < 0)
        table["ci95"][run.label], table["n_images"][run.label], table["significant"][run.label] = ci, n_img, sig
    if mismatch:
        return (f"{table['title']}: the per-image data do not reproduce the table ({'; '.join(mismatch)}): "
                "were the results and the per-image file written by different evaluations?")
    return None


def _images_behind(parts, metric: str, num_images: int) -> int:
    """Images a metric is computed on (deletion / insertion / ROAD: the first few only)."""
    raw = {"deletion_auc": "deletion", "insertion_auc": "insertion", "road": "road"}.get(metric)
    for section, _, _ in parts:
        if raw and raw in section:
            return int(np.isfinite(section[raw]).sum())
    return num_images


def summarize_seeds(comparisons: Sequence[Dict[str, Any]], seeds: Sequence[int]) -> Dict[str, Any]:
    """Repeated training seeds of the same pair of runs: per table, each run's mean ± std over
    the seeds, the paired Δ of every seed (its mean ± std: training noise) and each seed's
    bootstrap interval (test-set sampling). ``comparisons[i]`` is :func:`compare_runs` of seed
    ``seeds[i]``'s runs, in the same run order for every seed."""
    if not comparisons or len(comparisons) != len(seeds):
        raise ValueError(f"{len(comparisons)} comparisons for {len(seeds)} seeds")
    labels = [r["label"] for r in comparisons[0]["runs"]]
    keyed = [{(t["task"], t["dataset"]): t for t in c["tables"]} for c in comparisons]
    tables = []
    for key, first in keyed[0].items():
        per_seed = [k.get(key) for k in keyed]
        if any(t is None for t in per_seed):
            continue
        columns = [c for c in first["columns"] if all(c in t["columns"] for t in per_seed)]

        def stats(values: List[Optional[float]]) -> Tuple[Optional[float], Optional[float]]:
            vals = [v for v in values if v is not None]
            if len(vals) != len(values) or not vals:
                return None, None
            return float(np.mean(vals)), (float(np.std(vals, ddof=1)) if len(vals) > 1 else None)

        table = {"task": key[0], "dataset": key[1], "title": first["title"], "columns": columns,
                 "decimals": first["decimals"], "higher_is_better": first["higher_is_better"],
                 "mean": {}, "std": {}, "delta_mean": {}, "delta_std": {}, "delta_per_seed": {}, "ci95_per_seed": {}}
        for label in labels:
            ms = {c: stats([t["values"][label][c] for t in per_seed]) for c in columns}
            table["mean"][label] = {c: m for c, (m, _) in ms.items()}
            table["std"][label] = {c: sd for c, (_, sd) in ms.items()}
        for label in labels[1:]:
            deltas = {c: [t["delta"][label][c] for t in per_seed] for c in columns}
            ds = {c: stats(v) for c, v in deltas.items()}
            table["delta_per_seed"][label] = deltas
            table["delta_mean"][label] = {c: m for c, (m, _) in ds.items()}
            table["delta_std"][label] = {c: sd for c, (_, sd) in ds.items()}
            table["ci95_per_seed"][label] = {c: [t.get("ci95", {}).get(label, {}).get(c) for t in per_seed]
                                             for c in columns}
        tables.append(table)
    return {"seeds": list(seeds), "runs": labels, "tables": tables}


def format_seed_markdown(summary: Dict[str, Any]) -> str:
    """The seed summary as Markdown: mean ± std per run, Δ over seeds, and each seed's
    test-set (bootstrap) interval of the Δ."""
    labels, k = summary["runs"], len(summary["seeds"])
    out = []
    for t in summary["tables"]:
        head = ["metric", f"{labels[0]} ({k} seeds)"]
        for lab in labels[1:]:
            head += [lab, f"Δ {lab} over seeds", "test-set 95% interval, per seed"]
        lines = [f"### {t['title']}: seeds {', '.join(map(str, summary['seeds']))}", "",
                 "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for c in t["columns"]:
            d = t["decimals"][c]

            def pm(mean, sd, signed=False):
                return "-" if mean is None else _fmt(mean, d, signed) + ("" if sd is None else f" ± {_fmt(sd, d)}")

            cells = [c + ("" if t["higher_is_better"][c] else " ↓"),
                     pm(t["mean"][labels[0]][c], t["std"][labels[0]][c])]
            for lab in labels[1:]:
                intervals = t["ci95_per_seed"][lab][c]
                cells += [pm(t["mean"][lab][c], t["std"][lab][c]),
                          pm(t["delta_mean"][lab][c], t["delta_std"][lab][c], signed=True),
                          " ".join("-" if iv is None else f"[{_fmt(iv[0], d, True)}, {_fmt(iv[1], d, True)}]"
                                   for iv in intervals)]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "± is the standard deviation over the training seeds (training noise); the intervals are "
                      "each seed's paired bootstrap over the test images (test-set sampling)"]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _fmt(value: Optional[float], digits: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    value = round(value, digits) + 0.0  # no "-0.0" for a difference that rounds to nothing
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_markdown(comparison: Dict[str, Any]) -> str:
    """The tables as Markdown (also readable as plain text): metrics down, runs across, Δ after
    every run but the first; ↓ marks a metric where lower is better."""
    labels = [r["label"] for r in comparison["runs"]]
    out = []
    for table in comparison["tables"]:
        head = ["metric", labels[0]]
        for lab in labels[1:]:
            head += [lab, f"Δ {lab}" if len(labels) > 2 else "Δ"]
        lines = [f"### {table['title']}", "", "| " + " | ".join(head) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        for col in table["columns"]:
            name = col + ("" if table["higher_is_better"][col] else " ↓")
            digits = table["decimals"][col]
            cells = [name, _fmt(table["values"][labels[0]][col], digits)]
            for lab in labels[1:]:
                cells += [_fmt(table["values"][lab][col], digits), _delta_cell(table, lab, col, digits)]
            lines.append("| " + " | ".join(cells) + " |")
        if "ci95" in table:
            n = sorted({v for per in table["n_images"].values() for v in per.values() if v})
            lines += ["", f"Δ [95% interval]: paired bootstrap over the {'/'.join(map(str, n))} test images "
                          f"({comparison['bootstrap']['resamples']} resamples, "
                          f"seed {comparison['bootstrap']['seed']}); "
                          "* the interval excludes 0"]
        out.append("\n".join(lines))
    notes = comparison.get("notes") or []
    return "\n\n".join(out + (["\n".join(f"note: {n}" for n in notes)] if notes else [])) + "\n"


def _delta_cell(table: Dict[str, Any], label: str, column: str, digits: int) -> str:
    """``+2.6``, or with an interval ``+2.6 [+1.1, +4.0]*`` (``*``: the interval excludes 0)."""
    cell = _fmt(table["delta"][label][column], digits, signed=True)
    interval = table.get("ci95", {}).get(label, {}).get(column)
    if interval is None or table["delta"][label][column] is None:
        return cell
    mark = "*" if table["significant"][label][column] else ""
    return f"{cell} [{_fmt(interval[0], digits, True)}, {_fmt(interval[1], digits, True)}]{mark}"


def _panels(comparison: Dict[str, Any]) -> List[Tuple[str, List[str], Dict[str, List[Optional[float]]]]]:
    """(title, x labels, {run label: bar heights}) of each chart panel; a title ending in "(%)"
    holds percentages."""
    labels = [r["label"] for r in comparison["runs"]]
    tables = comparison["tables"]
    panels = []
    for t in tables:
        if t["task"] == "detection":
            xs = [c for c in ("AP", "APs", "APm", "APl") if c in t["columns"]]
            panels.append((f"{t['dataset']}: AP by object size (%)", xs,
                           {lab: [t["values"][lab][c] for c in xs] for lab in labels}))
    by_task: Dict[str, list] = OrderedDict()
    for t in tables:
        by_task.setdefault(t["task"], []).append(t)
    for task, metric, title in (("detection-voc", "mAP", "VOC mAP per data set (%)"),
                                ("saliency", "maxF", "max F-measure per data set"),
                                ("saliency", "MAE", "MAE per data set (lower is better)")):
        ts = [t for t in by_task.get(task, []) if metric in t["columns"]]
        if ts:
            panels.append((title, [t["dataset"] for t in ts],
                           {lab: [t["values"][lab][metric] for t in ts] for lab in labels}))
    for t in by_task.get("cam", []):
        xs = [c for c in ("Top-1 Loc", "GT-known Loc", "MaxBoxAccV2") if c in t["columns"]]
        if xs:
            panels.append((f"CAM {t['dataset']}: localisation (%)", xs,
                           {lab: [t["values"][lab][c] for c in xs] for lab in labels}))
    return panels


def _delta_panels(comparison: Dict[str, Any]) -> List[Tuple[str, List[str], Dict[str, list]]]:
    """(title, metrics, {run label: [(Δ, low, high, significant)]}) of each table with intervals,
    split into percentages and [0, 1] scores so one panel has one scale."""
    panels = []
    for t in comparison["tables"]:
        if "ci95" not in t:
            continue
        for percent in (True, False):
            cols = [c for c in t["columns"] if (t["decimals"][c] == 1) == percent
                    and any(t["ci95"][lab].get(c) for lab in t["ci95"])]
            if cols:
                unit = " (points)" if percent else ""
                panels.append((f"Δ {t['dataset']}{unit}, 95% interval", cols, {
                    lab: [(t["delta"][lab][c], *(t["ci95"][lab][c] or (None, None)), t["significant"][lab][c])
                          for c in cols] for lab in t["ci95"]}))
    return panels


def plot_comparison(comparison: Dict[str, Any], path: str) -> Optional[str]:
    """The bar chart (one panel per table kind, bars grouped by run) and, for tables with
    bootstrap intervals, a panel of each Δ with its interval; None when nothing to draw."""
    panels = _panels(comparison)
    deltas = _delta_panels(comparison)
    if not panels and not deltas:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = min(2, len(panels) + len(deltas))
    nrows = -(-(len(panels) + len(deltas)) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 3.8 * nrows), squeeze=False)
    for ax, (title, metrics, per_run) in zip(list(axes.flat)[len(panels):], deltas):
        step = 0.8 / max(len(per_run), 1)
        for i, (lab, points) in enumerate(per_run.items()):
            y = np.arange(len(metrics))[::-1] + (i - (len(per_run) - 1) / 2) * step
            labelled = False
            for yy, (d, low, high, sig) in zip(y, points):
                if d is None or low is None:
                    continue
                ax.errorbar(d, yy, xerr=[[max(d - low, 0)], [max(high - d, 0)]], fmt="o", capsize=3,
                            color=f"C{i + 1}", mfc=f"C{i + 1}" if sig else "white",
                            label=None if labelled else lab)
                labelled = True
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(np.arange(len(metrics))[::-1], metrics)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, title="filled: excludes 0", title_fontsize=7)
    for ax, (title, xs, bars) in zip(axes.flat, panels):
        width = 0.8 / max(len(bars), 1)
        x = np.arange(len(xs))
        digits = 1 if title.endswith("(%)") else 3
        top = 0.0
        for i, (lab, heights) in enumerate(bars.items()):
            h = [v if v is not None else 0.0 for v in heights]
            top = max([top] + h)
            rects = ax.bar(x + (i - (len(bars) - 1) / 2) * width, h, width, label=lab)
            ax.bar_label(rects, labels=["-" if v is None else f"{v:.{digits}f}" for v in heights],
                         fontsize=7, padding=1)
        ax.set_xticks(x, xs)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, (top or 1.0) * 1.3)  # room for the legend above the bars
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels) + len(deltas):]:
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_comparison(comparison: Dict[str, Any], output_dir: str) -> Dict[str, Optional[str]]:
    """``comparison.md``, ``comparison.json`` and ``comparison.png`` in ``output_dir``; returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {"markdown": os.path.join(output_dir, "comparison.md"), "json": os.path.join(output_dir, "comparison.json")}
    with open(paths["markdown"], "w", encoding="utf-8") as f:
        f.write(format_markdown(comparison))
    write_json_file(paths["json"], comparison, indent=1)
    paths["figure"] = plot_comparison(comparison, os.path.join(output_dir, "comparison.png"))
    return paths
