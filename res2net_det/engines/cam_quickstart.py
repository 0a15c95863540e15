"""The CAM quickstart: generate the shapes set, train a small Res2Net on CPU, evaluate its CAMs
against model-free baselines, and draw the figure.

The classifier is a real Res2Net (hierarchical 4-split blocks, stage-block average pool) made
small through :func:`res2net_det.create_model`'s keyword arguments: one block per stage
(depth 14 instead of 50), base width 8 instead of 26, and ``layer4`` dilated (output stride
16) so the 64-pixel inputs still give a 4x4 CAM. No pretrained weights are used.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Dict, Optional, Sequence

import torch

from ..data.shapes_wsol import ensure_shapes_wsol
from ..data.wsol import read_class_list, load_wsol_split
from ..evaluation.cam_benchmark import evaluate_cam_methods, format_table
from ..modeling.cam import build_classifier
from ..utils.cam_figure import visualize_cams
from .classification import classification_accuracy, save_model_card, train_classifier

logger = logging.getLogger(__name__)

__all__ = ["SMALL_RES2NET", "run_cam_quickstart"]

#: The quickstart's classifier: ``create_model("res2net50_26w_4s", **SMALL_RES2NET["kwargs"])``.
SMALL_RES2NET = {
    "name": "res2net50_26w_4s",
    "kwargs": {"layers": [1, 1, 1, 1], "base_width": 8, "dilate_last_stage": True, "zero_init_last": True},
}


def run_cam_quickstart(
    output_dir: str = "output/cam_quickstart",
    data_root: Optional[str] = None,
    image_size: int = 64,
    num_train: int = 800,
    num_val: int = 200,
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 2e-3,
    max_train_seconds: Optional[float] = None,
    methods: Sequence[str] = ("gradcam", "gradcam++"),
    faithfulness_images: int = 16,
    figure_images: int = 8,
    seed: int = 0,
) -> Dict[str, object]:
    """Runs the quickstart and returns its summary (also written to ``output_dir/summary.json``).

    CAMs are aligned to the input (:func:`res2net_det.modeling.cam.align_cam_to_input`); one
    extra row evaluates the first method with the library's plain upsampling.

    Writes ``res2net_small.{json,pth}`` (a model card for the tools), ``results.json`` (the
    evaluation), ``cams.png`` (the figure) and ``summary.json``.
    """
    start = time.perf_counter()
    torch.manual_seed(seed)
    os.makedirs(output_dir, exist_ok=True)
    # The generated images are 128 px; the classifier sees them resized to image_size.
    root = data_root or ensure_shapes_wsol(num_train=num_train, num_val=num_val, seed=seed)
    train, val = load_wsol_split(root, "train"), load_wsol_split(root, "val")
    class_names = read_class_list(os.path.join(root, "classes.txt"))
    size = (image_size, image_size)

    model = build_classifier(SMALL_RES2NET["name"], num_classes=len(class_names), **SMALL_RES2NET["kwargs"])
    history = train_classifier(model, train, size, epochs=epochs, batch_size=batch_size, lr=lr,
                               max_seconds=max_train_seconds, seed=seed)
    card = save_model_card(os.path.join(output_dir, "res2net_small.json"), model, SMALL_RES2NET["name"],
                           len(class_names), SMALL_RES2NET["kwargs"], label="res2net-small",
                           extra={"image_size": image_size, "classes": class_names})
    accuracy = classification_accuracy(model, val, size)
    logger.info("validation accuracy %.1f%% after %s s of training", accuracy, history["seconds"])

    result = evaluate_cam_methods({"res2net-small": model}, methods, val, size,
                                  faithfulness_images=faithfulness_images, progress=False)
    # The same maps with the library's plain upsampling (the published-numbers protocol), to
    # show what the half-stride alignment changes.
    plain = evaluate_cam_methods({"res2net-small": model}, methods[:1], val, size, faithfulness_images=0,
                                 progress=False, align_to_input=False)["rows"][-1]
    result["rows"].append(dict(plain, method=f"{methods[0]} (unaligned)"))
    table = format_table(result["rows"])
    with open(os.path.join(output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)

    rows = {(r["model"], r["method"]): r for r in result["rows"]}
    thresholds = {f"res2net-small / {m}": rows[("res2net-small", m)]["loc_cam_threshold"] for m in methods}
    figure = visualize_cams(os.path.join(output_dir, "cams.png"), {"res2net-small": model}, methods,
                            val[:figure_images], size, thresholds, class_names)
    centre = rows[("baseline", "centre box")]["gt_known_loc"]
    whole = rows[("baseline", "whole image")]["gt_known_loc"]
    gradcam = rows.get(("res2net-small", methods[0]), {}).get("gt_known_loc")
    summary = {
        "train": {k: v for k, v in history.items() if k != "loss"},
        "final_train_loss": sum(history["loss"][-10:]) / max(1, len(history["loss"][-10:])),  # type: ignore[arg-type]
        "val_accuracy": accuracy,
        f"{methods[0]}_gt_known_loc": gradcam,
        f"{methods[0]}_unaligned_gt_known_loc": plain["gt_known_loc"],
        "baseline_centre_box_gt_known_loc": centre,
        "baseline_whole_image_gt_known_loc": whole,
        "model_card": card,
        "results": os.path.join(output_dir, "results.json"),
        "figure": figure,
        "table": table,
        "seconds": round(time.perf_counter() - start, 1),
        "torch_threads": torch.get_num_threads(),
    }
    with open(os.path.join(output_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary
