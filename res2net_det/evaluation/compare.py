"""Side-by-side tables of finished runs: the paper's "ResNet-50 vs Res2Net-50" comparisons.

A run is an ``OUTPUT_DIR`` of either engine (or of a CAM / saliency tool). Its results are read
from the files the evaluators write:

| task | file | columns |
|---|---|---|
| detection | ``inference/<data set>/coco_eval_results.json`` | AP, AP50, AP75, APs, APm, APl (+ mask AP) |
| detection-voc | ``inference/<data set>/voc_eval_results.json`` | mAP (the year's AP at IoU 0.5: VOC07 11-point), all-point mAP, AP, AP75 |
| saliency | ``inference/<data set>/saliency_results.json`` (or ``saliency_results.json``) | maxF, MAE, S-measure, maxE |
| cam | ``cam_results.json`` or ``results.json`` (``{"settings", "rows"}``) | Top-1 Loc, GT-known Loc, MaxBoxAccV2, deletion, insertion |
| panoptic | ``inference/<data set>/panoptic_eval_results.json`` | PQ (things, stuff), box AP, mask AP, stuff mIoU |

:func:`compare_runs` makes one table per task and data set (CAM: per method): a row per metric,
a column per run, and after every run but the first a Δ column (that run minus the first).
:func:`write_comparison` writes it as Markdown and JSON and draws the bar chart (AP by object
size for detection, mAP per data set for VOC, the metric per data set for saliency, the
localisation accuracies per method for CAM).
"""
from __future__ import annotations

import glob
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..utils.io import read_json_file, write_json_file

__all__ = ["RunNotFinishedError", "RunResults", "TASK_COLUMNS", "read_run", "compare_runs", "format_markdown",
           "write_comparison"]


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


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _unfinished_checkpoint(run_dir: str) -> Optional[str]:
    """The last checkpoint's name when a trainer (either engine) stopped before its final one."""
    marker = os.path.join(run_dir, "last_checkpoint")
    if not os.path.isfile(marker):
        return None
    with open(marker, encoding="utf-8") as f:
        name = f.read().strip()
    return None if os.path.basename(name) == "model_final.pth" else name


def _read_saliency(path: str, into: Dict) -> None:
    data = read_json_file(path, "saliency results")
    for method, per_dataset in data.items():
        for dataset, entry in per_dataset.items():
            key = ("saliency", dataset if len(data) == 1 else f"{dataset} [{method}]")
            into[key] = {k: _number(v) for k, v in entry.get("metrics", {}).items()}


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
        run.results[("detection", os.path.basename(os.path.dirname(path)))] = metrics
    for path in sorted(glob.glob(os.path.join(inference, "*", "panoptic_eval_results.json"))):
        data = read_json_file(path, "panoptic results")
        metrics = {k: _number(data.get("panoptic_seg", {}).get(k)) for k in ("PQ", "PQ_th", "PQ_st")}
        metrics.update(AP=_number(data.get("bbox", {}).get("AP")), mask_AP=_number(data.get("segm", {}).get("AP")),
                       mIoU=_number(data.get("sem_seg", {}).get("mIoU")))
        run.results[("panoptic", os.path.basename(os.path.dirname(path)))] = metrics
    for path in sorted(glob.glob(os.path.join(inference, "*", "voc_eval_results.json"))):
        data = read_json_file(path, "VOC results")
        run.results[("detection-voc", os.path.basename(os.path.dirname(path)))] = {
            k: _number(v) for k, v in data.get("bbox", {}).items()}
    for path in sorted(glob.glob(os.path.join(inference, "*", "saliency_results.json"))) + \
            sorted(glob.glob(os.path.join(run_dir, "saliency_results.json"))):
        _read_saliency(path, run.results)
    for name in ("cam_results.json", "results.json"):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            continue
        data = read_json_file(path, "CAM results")
        if not (isinstance(data, dict) and isinstance(data.get("rows"), list)):
            continue
        rows = [r for r in data["rows"] if r.get("model") != "baseline"]  # the model-free rows are the same in every run
        models = list(OrderedDict.fromkeys(r.get("model") for r in rows))
        for row in rows:
            method = str(row.get("method"))
            key = ("cam", method if len(models) == 1 else f"{method} [{row.get('model')}]")
            run.results[key] = {k: _number(v) for k, v in row.items()}
        break
    if not run.results:
        raise RunNotFinishedError(
            f"{run_dir}: no results (inference/<data set>/coco_eval_results.json, voc_eval_results.json, panoptic_eval_results.json, "
            "saliency_results.json, or a CAM results.json): the run has not finished its evaluation, or this "
            "is not a run folder"
        )
    return run


def compare_runs(run_dirs: Sequence[str], labels: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """One table per task and data set over ``run_dirs`` (the first is the reference of the Δ
    columns). Returns ``{"runs": [{label, run_dir}], "tables": [{task, dataset, title, columns,
    values: {label: {column: v}}, delta: {label: {column: d}}, higher_is_better: {column: bool}}]}``."""
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
    return {"runs": [{"label": r.label, "run_dir": r.run_dir} for r in runs], "tables": tables}


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
                cells += [_fmt(table["values"][lab][col], digits), _fmt(table["delta"][lab][col], digits, signed=True)]
            lines.append("| " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


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


def plot_comparison(comparison: Dict[str, Any], path: str) -> Optional[str]:
    """The bar chart (one panel per table kind, bars grouped by run); None when nothing to draw."""
    panels = _panels(comparison)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 3.8 * nrows), squeeze=False)
    for ax, (title, xs, bars) in zip(axes.flat, panels):
        width = 0.8 / max(len(bars), 1)
        x = np.arange(len(xs))
        digits = 1 if title.endswith("(%)") else 3
        top = 0.0
        for i, (lab, heights) in enumerate(bars.items()):
            h = [v if v is not None else 0.0 for v in heights]
            top = max([top] + h)
            rects = ax.bar(x + (i - (len(bars) - 1) / 2) * width, h, width, label=lab)
            ax.bar_label(rects, labels=["-" if v is None else f"{v:.{digits}f}" for v in heights], fontsize=7, padding=1)
        ax.set_xticks(x, xs)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, (top or 1.0) * 1.3)  # room for the legend above the bars
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
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
