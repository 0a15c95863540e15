"""Classification evaluation: accuracy, the training-time evaluator and the pictures of ``TEST.VIS_IMAGES``.

The ``Res2NetClassifier`` task's :class:`ClassificationEvaluator` (Detectron2's ``DatasetEvaluator``
protocol, used by both engines) counts top-1 / top-5 with :func:`topk_correct`;
:func:`draw_cams_per_image` draws each test image's CAM. CAM localisation against the boxes
(GT-known Loc, MaxBoxAcc, faithfulness, model-free baselines) is
:func:`res2net_det.evaluation.cam_comparison.evaluate_cam_methods`, run by ``tools/cam_eval.py``.

ImageNet top-k for ``tools/eval_imagenet.py``: :func:`topk_accuracy` on logits,
:func:`evaluate_topk` over a data loader, checkpoint loading that refuses a partial load, and the
published Top-1 / Top-5 per variant (:data:`PUBLISHED_ACCURACY`) with a measured-vs-published table.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn
from tqdm import tqdm

from ..data.builtin import register_datasets_from_cfg
from ..data.catalog import DatasetCatalog
from ..data.classification import get_classification_dicts
from ..data.image_io import output_names
from ..modeling import MODEL_TABLE, CheckpointError, load_weights, read_state_dict, resolve_name
from ..utils import comm
from .cam_figure import compute_cam_columns, save_cam_grid

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


# ---------------------------------------------------------------- the Res2NetClassifier task

class ClassificationEvaluator:
    """Top-1 and top-5 accuracy (percent, :func:`topk_correct`) of the ``Res2NetClassifier`` task,
    with Detectron2's ``DatasetEvaluator`` protocol; under DDP the counts and predictions of all
    processes are gathered. Writes ``classification_results.json`` to ``output_dir`` (when given):
    the accuracy and every image's prediction."""

    KS = (1, 5)

    def __init__(self, dataset_name: str, output_dir: Optional[str] = None) -> None:
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self.reset()

    def reset(self) -> None:
        self._predictions: List[dict] = []
        self._correct = {k: 0 for k in self.KS}

    def process(self, inputs: Sequence[dict], outputs: Sequence[dict]) -> None:
        if not outputs:
            return
        logits = torch.stack([out["logits"].detach().float().cpu() for out in outputs])
        labels = torch.as_tensor([int(inp["label"]) for inp in inputs])
        for k, c in topk_correct(logits, labels, self.KS).items():
            self._correct[k] += c
        for inp, out in zip(inputs, outputs):
            self._predictions.append({"image_id": inp["image_id"], "label": int(inp["label"]),
                                      "pred_class": int(out["pred_class"])})

    def evaluate(self) -> Optional[Dict[str, Dict[str, float]]]:
        parts = comm.all_gather((self._correct, self._predictions))
        if not comm.is_main_process():
            return None
        predictions = [p for _, preds in parts for p in preds]
        if not predictions:
            raise ValueError(f"no predictions to evaluate on {self.dataset_name!r}")
        n = len(predictions)
        results = {"classification": {**{f"top{k}": 100.0 * sum(c[k] for c, _ in parts) / n for k in self.KS},
                                      "num_images": float(n)}}
        logger.info("%s: top-1 accuracy %.2f%% (top-5 %.2f%%) on %d images", self.dataset_name,
                    results["classification"]["top1"], results["classification"]["top5"], n)
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(os.path.join(self.output_dir, "classification_results.json"), "w", encoding="utf-8") as f:
                json.dump({"results": results, "predictions": predictions}, f)
        return results


def draw_cams_per_image(
    net: nn.Module,
    records: Sequence[dict],
    image_size: Tuple[int, int],
    output_dir: str,
    class_names: Optional[Sequence[str]] = None,
    method: str = "gradcam",
    cam_threshold: float = 0.3,
) -> List[str]:
    """One PNG per record in ``output_dir`` (named after the image): the image and its CAM of the
    labelled class, with the ground-truth box (green), the CAM's box (red) and the prediction;
    the cells of ``tools/cam_visualize.py``'s figure. Two records with one file stem raise before
    anything is drawn. Returns the paths.

    Args:
        net: the classification network (``images -> logits``, e.g. ``Res2NetClassifier.backbone``).
    """
    names = output_names([r["file_name"] for r in records], what="picture")
    was_training = net.training
    images, boxes, columns = compute_cam_columns({"model": net}, [method], records, image_size)
    net.train(was_training)
    (column,) = columns.values()
    paths = []
    for i, (record, name) in enumerate(zip(records, names)):
        stem = os.path.splitext(name)[0]
        label = record.get("label")
        row_label = stem if label is None else f"{stem}\n{class_names[label] if class_names else label}"
        cell = {method: {key: [values[i]] for key, values in column.items()}}
        paths.append(save_cam_grid(os.path.join(output_dir, name), [images[i]], cell, [boxes[i]],
                                   cam_threshold, [row_label], class_names))
    logger.info("drew the %s maps of %d images in %s", method, len(paths), output_dir)
    return paths


def visualize_classifier(cfg, model: nn.Module, dataset_name: str, output_dir: str,
                         num_images: int) -> List[str]:
    """``TEST.VIS_IMAGES``: the Grad-CAM picture of each of the first ``num_images`` images of a
    data set (:func:`res2net_det.evaluation.classification.draw_cams_per_image`)."""
    if num_images <= 0:
        return []
    register_datasets_from_cfg(cfg)
    records = get_classification_dicts([dataset_name], cfg.MODEL.CLASSIFIER.NUM_CLASSES)[:num_images]
    classes = DatasetCatalog.metadata(dataset_name).get("thing_classes")
    return draw_cams_per_image(model.backbone, records, tuple(cfg.INPUT.CLASSIFIER.RESIZE), output_dir, classes)
