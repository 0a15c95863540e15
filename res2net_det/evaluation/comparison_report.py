"""A comparison of runs (:mod:`.compare`) as people read it: Markdown tables, a bar chart, files.

:func:`format_markdown` writes the tables (metrics down, runs across, a Δ column after every run
but the first, with its bootstrap interval when there is one); :func:`format_seed_markdown` the
summary over training seeds; :func:`plot_comparison` draws the bar chart (AP by object size for
detection, mAP per data set for VOC, the metric per data set for saliency, the localisation
accuracies per method for CAM) and a panel of each Δ with its interval; :func:`write_comparison`
writes ``comparison.md``, ``comparison.json`` and ``comparison.png``.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..utils.io import write_json_file

__all__ = ["format_markdown", "format_seed_markdown", "plot_comparison", "write_comparison"]


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
