"""Classification accuracy.

ImageNet top-k (issue 14, self-contained below): :func:`topk_accuracy` on logits,
:func:`evaluate_topk` over a data loader, checkpoint loading that refuses a partial load, and the
published Top-1 / Top-5 per variant (:data:`PUBLISHED_ACCURACY`) with a measured-vs-published table.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn
from tqdm import tqdm

from ..modeling import MODEL_TABLE, CheckpointError, load_weights, read_state_dict, resolve_name

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- ImageNet top-k (issue 14)

# Published ImageNet-1k val Top-1 / Top-5 (%), a view of the variant table's columns.
PUBLISHED_ACCURACY: Dict[str, dict] = {
    name: dict(top1=v.top1, top5=v.top5, source=v.accuracy_source)
    for name, v in MODEL_TABLE.items() if v.top1 is not None
}


def _check_logits(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int]) -> None:
    if logits.dim() != 2 or labels.dim() != 1 or logits.shape[0] != labels.shape[0]:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive, got {tuple(ks)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise ValueError(f"labels must lie in 0..{logits.shape[1] - 1}, got {int(labels.min())}..{int(labels.max())}")


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> Dict[int, int]:
    """How many rows have their label among the ``k`` highest logits, per ``k``. With fewer than
    ``k`` classes every class counts (as timm does)."""
    _check_logits(logits, labels, ks)
    maxk = min(max(ks), logits.shape[1])
    hits = logits.topk(maxk, dim=1).indices == labels.view(-1, 1)  # (N, maxk), at most one True a row
    return {int(k): int(hits[:, :k].sum()) for k in ks}


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """Top-k accuracies in percent, ``{"top1": ..., "top5": ...}``."""
    if labels.numel() == 0:
        raise ValueError("no samples: accuracy is undefined")
    return {f"top{k}": 100.0 * c / labels.numel() for k, c in topk_correct(logits, labels, ks).items()}


def evaluate_topk(model: nn.Module, loader, device: torch.device, ks: Sequence[int] = (1, 5),
                  desc: Optional[str] = None) -> dict:
    """Runs ``model`` in eval mode over ``loader`` (batches of ``(images, labels, sample indices)``).

    Returns ``{"top1": %, "top5": %, "num_images": N, "predictions": {sample index: top-k classes}}``.
    """
    model.eval().to(device)
    correct = {int(k): 0 for k in ks}
    predictions: Dict[int, List[int]] = {}
    with torch.inference_mode():
        for images, labels, indices in tqdm(loader, desc=desc, unit="batch", disable=None):
            logits = model(images.to(device, non_blocking=True)).float().cpu()
            for k, c in topk_correct(logits, labels, ks).items():
                correct[k] += c
            top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices.tolist()
            predictions.update(zip(indices.tolist(), top))
    if not predictions:
        raise ValueError("the data loader yielded no images")
    results = {f"top{k}": 100.0 * c / len(predictions) for k, c in correct.items()}
    return {**results, "num_images": len(predictions), "predictions": predictions}


def load_evaluation_weights(model: nn.Module, path: str, num_classes: int, data_source: str) -> None:
    """Loads ``path`` into ``model`` (built with the data's ``num_classes``) and refuses anything
    short of a full load: a skipped classifier means the weights have another class count."""
    report = load_weights(model, path)
    if report.skipped_classifier or any(k.startswith("fc.") for k in report.missing):
        fc = read_state_dict(path).get("fc.weight")
        have = f"a classifier for {fc.shape[0]} classes" if fc is not None else "no classifier (fc.weight)"
        raise CheckpointError(f"{path} has {have}, but {data_source} has {num_classes} classes")
    if report.missing or report.unexpected:
        raise CheckpointError(f"{path} does not fit the model; a partial load would make accuracy meaningless:\n"
                              + report.summary())


def published_accuracy(variant: str) -> Optional[dict]:
    """The published Top-1 / Top-5 of a variant (or timm alias), or None."""
    return PUBLISHED_ACCURACY.get(resolve_name(variant))


def accuracy_row(variant: str, measured: Mapping[str, float], num_images: int) -> dict:
    """Measured vs published Top-1 / Top-5 of one variant, with deltas (measured - published)."""
    row = {"variant": variant, "num_images": num_images, "top1": measured["top1"], "top5": measured["top5"]}
    published = published_accuracy(variant)
    if published is not None:
        row.update(published_top1=published["top1"], published_top5=published["top5"], source=published["source"],
                   delta_top1=measured["top1"] - published["top1"], delta_top5=measured["top5"] - published["top5"])
    return row


def format_accuracy_table(rows: Sequence[Mapping]) -> str:
    """A text table of :func:`accuracy_row` rows ("-" where nothing is published)."""
    def cell(row, key, fmt="{:.2f}"):
        return fmt.format(row[key]) if key in row else "-"

    header = ("variant", "images", "top1", "pub top1", "d top1", "top5", "pub top5", "d top5", "source")
    lines = [[r["variant"], str(r["num_images"]), cell(r, "top1"), cell(r, "published_top1"),
              cell(r, "delta_top1", "{:+.2f}"), cell(r, "top5"), cell(r, "published_top5"),
              cell(r, "delta_top5", "{:+.2f}"), r.get("source", "-")] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *lines)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [header, *lines])
