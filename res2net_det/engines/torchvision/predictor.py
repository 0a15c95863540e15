"""Single-image inference with the torchvision engine (Detectron2's ``DefaultPredictor`` for it)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ...data.catalog import DatasetCatalog
from ...data.image_io import read_image
from ...data.mapper import image_to_tensor, resize_shortest_edge
from ...evaluation.detector_cam import DetectorForCam
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
            raise ValueError("MODEL.WEIGHTS is empty: give the trained checkpoint, "
                             "e.g. output/quickstart/model_final.pth")
        self.cfg = cfg
        self.device = model_device(cfg)
        self.model = get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg).to(self.device).eval()
        load_model_weights(self.model, cfg.MODEL.WEIGHTS, allow_partial=cfg.MODEL.WEIGHTS_ALLOW_PARTIAL, inference=True,
                           accept_checksum_mismatch=cfg.MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH)
        self.class_names: Optional[List[str]] = None
        for name in cfg.DATASETS.TEST or cfg.DATASETS.TRAIN:
            if name in DatasetCatalog:
                self.class_names = DatasetCatalog.metadata(name).get("thing_classes")
                break

    def prepare(self, image_rgb: np.ndarray) -> Tuple[torch.Tensor, np.ndarray]:
        """``(the model's input image 3 x H' x W', the RGB image resized to H' x W')``: the
        test-time resize and channel order of the config."""
        resized = resize_shortest_edge(image_rgb, self.cfg.INPUT.MIN_SIZE_TEST, self.cfg.INPUT.MAX_SIZE_TEST)
        return image_to_tensor(resized[:, :, ::-1] if self.cfg.INPUT.FORMAT == "BGR" else resized), resized

    @torch.no_grad()
    def __call__(self, image_rgb: np.ndarray) -> Dict[str, torch.Tensor]:
        """``{"pred_boxes" (XYXY in the image), "scores", "pred_classes"[, "pred_masks"]}``."""
        h, w = image_rgb.shape[:2]
        return self.model([{"image": self.prepare(image_rgb)[0], "height": h, "width": w}])[0]["instances"]

    def for_cam(self) -> DetectorForCam:
        """This detector for :func:`res2net_det.evaluation.detector_cam.evaluate_detector_cams`:
        a record's image read, resized and laid out as the model takes it."""

        def prepare(record: dict) -> Tuple[torch.Tensor, np.ndarray, float]:
            original = read_image(record["file_name"], "RGB")
            inputs, resized = self.prepare(original)
            return inputs.float().to(self.device), resized, resized.shape[0] / original.shape[0]

        return DetectorForCam(self.model, prepare)
