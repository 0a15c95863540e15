"""Saliency maps for image files: what ``tools/predict_saliency.py`` runs.

Images go through the same mapper as evaluation (test-time resize from ``INPUT.SALIENCY``)
and the model returns each map at the image's original size, written as an 8-bit PNG.
"""
from __future__ import annotations

import logging
import os
from typing import Dict, List, Sequence

import torch
from PIL import Image

from ..data.image_io import collect_images as collect_image_paths
from ..data.image_io import image_size, output_names
from ..data.saliency import SaliencyDatasetMapper
from .saliency import to_uint8

logger = logging.getLogger(__name__)

__all__ = ["collect_images", "load_inference_weights", "predict_images"]


def collect_images(inputs: Sequence[str]) -> List[str]:
    """Image files from folders (their images, sorted; any of
    :data:`~res2net_det.data.image_io.IMAGE_EXTENSIONS` in any case), globs and file paths.

    Raises ``FileNotFoundError`` for a missing path, :class:`~res2net_det.data.image_io.ImageReadError`
    for a folder without images and ``ValueError`` for two images with the same stem (their maps
    would overwrite each other).
    """
    paths = collect_image_paths(inputs)
    output_names(paths, ".png", "saliency map")
    return paths


def load_inference_weights(model: torch.nn.Module, path: str) -> None:
    """Loads a training checkpoint (``{"model": state_dict, ...}``) or a bare state dict,
    strictly: predictions from a partly loaded model would be silently wrong."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state dict (got {type(checkpoint).__name__})")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        def show(keys):
            return f"{keys[:5]}{' ...' if len(keys) > 5 else ''} ({len(keys)})"

        raise ValueError(
            f"{path} does not fit the configured model: missing {show(missing)}, unexpected "
            f"{show(unexpected)}, other shape {show(mismatched)}. Is the config the one the weights were trained with?"
        )
    model.load_state_dict(state)


@torch.no_grad()
def predict_images(
    model: torch.nn.Module,
    image_paths: Sequence[str],
    output_dir: str,
    mapper: SaliencyDatasetMapper,
    progress: bool = True,
) -> List[str]:
    """Writes ``<output_dir>/<stem>.png`` (8-bit, original size) for every image; returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    model.eval()
    written = []
    iterator = image_paths
    if progress:
        from tqdm import tqdm

        iterator = tqdm(image_paths, desc="saliency", unit="img")
    names = output_names(image_paths, ".png", "saliency map")
    for path, name in zip(iterator, names):
        width, height = image_size(path)
        inputs = mapper({"file_name": path, "height": height, "width": width})
        saliency = model([inputs])[0]["saliency"]
        out = os.path.join(output_dir, name)
        Image.fromarray(to_uint8(saliency)).save(out)
        written.append(out)
    return written
