"""The CAM figure: rows are images, columns are models x methods, each cell the CAM over the
image with the ground-truth box (green) and the CAM's box (red, largest contour at a threshold).

The overlay is the ``grad-cam`` library's ``show_cam_on_image``, boxes are drawn with the
project's primitives (:mod:`res2net_det.utils.visualization`), the grid is matplotlib.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..data.wsol import WSOLDataset
from ..modeling.cam import CamExtractor
from ..utils.visualization import GREEN, RED, draw_boxes, upscale_for_drawing
from .wsol_boxes import boxes_from_cam

__all__ = ["compute_cam_columns", "save_cam_grid", "visualize_cams"]

_DPI = 110


def compute_cam_columns(
    models: Dict[str, nn.Module],
    methods: Sequence[str],
    records: Sequence[dict],
    image_size: Tuple[int, int] = (224, 224),
    target_layers: Optional[Dict[str, str]] = None,
    align_to_input: bool = True,
) -> Tuple[List[np.ndarray], List[np.ndarray], Dict[str, dict]]:
    """CAMs for a handful of images.

    Each image's CAM is of its labelled class, or of the model's top class when the record has
    no ``label`` (a user's own picture). Returns ``(images, gt_boxes, columns)``: resized RGB
    images, their boxes (possibly empty), and ``{"model / method": {"cams", "targets",
    "predicted", "probability"}}``.
    """
    dataset = WSOLDataset(records, image_size)
    loaded = [dataset.load_resized(i) for i in range(len(dataset))]
    images = [im for im, _ in loaded]
    boxes = [b for _, b in loaded]
    batch = torch.stack([dataset.normalize(im) for im in images])
    columns: Dict[str, dict] = {}
    for label, model in models.items():
        model.eval()
        with torch.no_grad():
            probabilities = torch.softmax(model(batch), dim=1)
        predicted = probabilities.argmax(1).tolist()
        targets = [r.get("label") if r.get("label") is not None else p for r, p in zip(records, predicted)]
        layer = (target_layers or {}).get(label)
        for method in methods:
            with CamExtractor(model, method, layer, align_to_input=align_to_input) as extractor:
                cams = extractor(batch, targets)
            columns[f"{label} / {method}"] = {
                "cams": list(cams), "targets": targets, "predicted": predicted,
                "probability": [float(probabilities[i, p]) for i, p in enumerate(predicted)],
            }
    return images, boxes, columns


def save_cam_grid(
    path: str,
    images: Sequence[np.ndarray],
    columns: Dict[str, dict],
    gt_boxes: Optional[Sequence[np.ndarray]] = None,
    cam_threshold: Optional[Union[float, Dict[str, float]]] = 0.3,
    row_labels: Optional[Sequence[str]] = None,
    class_names: Optional[Sequence[str]] = None,
    cell_inches: float = 2.0,
    footer: Optional[str] = None,
) -> str:
    """Writes the grid PNG and returns its path.

    Args:
        images: RGB uint8 images (one row each).
        columns: ``{title: {"cams": [...], "predicted": [...], "probability": [...]}}``, or with
            ``"captions"`` (one text per image) instead of the class captions; a column may bring
            its own ``"pictures"`` and ``"boxes"`` (a model that saw the images at another size).
        gt_boxes: per image ``(K, 4)`` boxes in image pixels, drawn in green.
        cam_threshold: threshold of the red box (largest contour), one for all columns or per
            title; None draws no CAM box.
        row_labels: text left of each row.
        class_names: names for the predicted class captions.
        footer: the line under the grid (default: the classification figure's legend).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pytorch_grad_cam.utils.image import show_cam_on_image

    rows, cols = len(images), len(columns) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(cell_inches * cols, cell_inches * rows + 0.4), squeeze=False)
    cell_pixels = round(cell_inches * _DPI)

    def cell(picture: np.ndarray, r: int, cam_boxes=(), boxes=None) -> np.ndarray:
        # Boxes are drawn in pixels with the project's primitives, at about the cell's printed size.
        canvas, scale = upscale_for_drawing(picture, cell_pixels)
        thickness = max(1, round(cell_pixels / 150))
        draw_boxes(canvas, np.asarray(cam_boxes, np.float64).reshape(-1, 4) * scale, RED, thickness)
        boxes = boxes if boxes is not None else (gt_boxes[r] if gt_boxes is not None else None)
        if boxes is not None:
            draw_boxes(canvas, np.asarray(boxes, np.float64).reshape(-1, 4) * scale, GREEN, thickness)
        return canvas

    for r, image in enumerate(images):
        axes[r, 0].imshow(cell(image, r))
        if r == 0:
            axes[r, 0].set_title("image", fontsize=8)
        if row_labels is not None:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=7)
        for c, (title, column) in enumerate(columns.items(), start=1):
            cam = column["cams"][r]
            ax = axes[r, c]
            picture = column["pictures"][r] if "pictures" in column else image
            threshold = cam_threshold[title] if isinstance(cam_threshold, dict) else cam_threshold
            overlay = show_cam_on_image(picture.astype(np.float32) / 255.0, cam, use_rgb=True)
            cam_boxes = () if threshold is None else boxes_from_cam(cam, threshold, all_contours=False)
            ax.imshow(cell(overlay, r, cam_boxes, column["boxes"][r] if "boxes" in column else None))
            if "captions" in column:
                ax.set_xlabel(column["captions"][r], fontsize=7)
            else:
                predicted = column["predicted"][r]
                name = class_names[predicted] if class_names is not None else str(predicted)
                ax.set_xlabel(f"pred {name} ({column['probability'][r]:.2f})", fontsize=7)
            if r == 0:
                ax.set_title(title, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.5, 0.005, footer or "CAM of the labelled class (of the top class for unlabelled images)   "
             "green: ground-truth box   red: CAM box (largest contour)", ha="center", fontsize=8)
    lines = 1 + (footer or "").count("\n")  # room for the footer: about 0.17 inch a line
    fig.tight_layout(rect=(0, max(0.02, 0.17 * lines / fig.get_figheight()) if footer else 0.02, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def visualize_cams(
    path: str,
    models: Dict[str, nn.Module],
    methods: Sequence[str],
    records: Sequence[dict],
    image_size: Tuple[int, int] = (224, 224),
    cam_threshold: Union[float, Dict[str, float]] = 0.3,
    class_names: Optional[Sequence[str]] = None,
    target_layers: Optional[Dict[str, str]] = None,
    align_to_input: bool = True,
) -> str:
    """Computes the CAMs of ``models`` x ``methods`` on ``records`` and writes the grid to ``path``."""
    images, boxes, columns = compute_cam_columns(models, methods, records, image_size, target_layers, align_to_input)
    labels = []
    for r in records:
        stem = os.path.splitext(os.path.basename(r["file_name"]))[0]
        known = r.get("label")
        labels.append(stem if known is None else f"{stem}\n{class_names[known] if class_names else known}")
    return save_cam_grid(path, images, columns, boxes, cam_threshold, labels, class_names)
