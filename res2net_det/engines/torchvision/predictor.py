"""Single-image inference with the torchvision engine (Detectron2's ``DefaultPredictor`` for it)."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch

from ...data.catalog import DatasetCatalog
from ...data.mapper import image_to_tensor, resize_shortest_edge
from .checkpoint import load_model_weights
from .registry import get_task
from .trainer import model_device

__all__ = ["Predictor"]


class Predictor:
    """Builds the config's model, loads ``MODEL.WEIGHTS`` and predicts on one RGB image.

    Args:
        cfg: a config; its ``MODEL.WEIGHTS`` must name a trained checkpoint.
    """

    def __init__(self, cfg) -> None:
        if not cfg.MODEL.WEIGHTS:
            raise ValueError("MODEL.WEIGHTS is empty: give the trained checkpoint, e.g. output/quickstart/model_final.pth")
        self.cfg = cfg
        self.device = model_device(cfg)
        self.model = get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg).to(self.device).eval()
        load_model_weights(self.model, cfg.MODEL.WEIGHTS, allow_partial=cfg.MODEL.WEIGHTS_ALLOW_PARTIAL, inference=True)
        self.class_names: Optional[List[str]] = None
        for name in cfg.DATASETS.TEST or cfg.DATASETS.TRAIN:
            if name in DatasetCatalog:
                self.class_names = DatasetCatalog.metadata(name).get("thing_classes")
                break

    @torch.no_grad()
    def __call__(self, image_rgb: np.ndarray) -> Dict[str, torch.Tensor]:
        """``{"pred_boxes" (XYXY in the image), "scores", "pred_classes"[, "pred_masks"]}``."""
        h, w = image_rgb.shape[:2]
        image = resize_shortest_edge(image_rgb, self.cfg.INPUT.MIN_SIZE_TEST, self.cfg.INPUT.MAX_SIZE_TEST)
        if self.cfg.INPUT.FORMAT == "BGR":
            image = image[:, :, ::-1]
        return self.model([{"image": image_to_tensor(image), "height": h, "width": w}])[0]["instances"]
