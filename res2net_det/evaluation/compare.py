"""Side-by-side tables of finished runs: the paper's "ResNet-50 vs Res2Net-50" comparisons.

A run is an ``OUTPUT_DIR`` of either engine (or of a CAM / saliency tool); :func:`read_run`
(:mod:`.run_results`) reads its results from the files the evaluators wrote.

:func:`compare_runs` makes one table per task and data set (CAM: per method): a row per metric,
a column per run, and after every run but the first a Δ column (that run minus the first), with
a paired bootstrap interval of each Δ where the runs left per-image data; :func:`summarize_seeds`
sums up repeated training seeds. :func:`write_comparison` (:mod:`.comparison_report`) writes a
comparison as Markdown and JSON and draws its bar chart.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .bootstrap import (
    BOOTSTRAP_METRICS,
    DEFAULT_RESAMPLES,
    align_images,
    paired_interval,
    resample_weights,
    voc_metrics,
)
from .comparison_report import format_markdown, format_seed_markdown, plot_comparison, write_comparison
from .per_image import load_per_image
from .run_results import TASK_COLUMNS, TASK_TITLES, RunNotFinishedError, RunResults, read_run

__all__ = ["RunNotFinishedError", "RunResults", "TASK_COLUMNS", "read_run", "compare_runs", "format_markdown",
           "write_comparison", "summarize_seeds", "format_seed_markdown", "plot_comparison"]


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
        tables.append({"task": task, "dataset": dataset, "title": f"{TASK_TITLES[task]}: {dataset}",
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
