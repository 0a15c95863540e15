"""Saliency maps for image files: what ``tools/predict_saliency.py`` runs.

Images go through the same mapper as evaluation (test-time resize from ``INPUT.SALIENCY``)
and the model returns each map at the image's original size, written as an 8-bit PNG.
"""
from __future__ import annotations

import logging
import os
from typing import List, Sequence

import torch
from PIL import Image

from ..data.image_io import collect_images as collect_image_paths
from ..data.image_io import image_size, output_names
from ..data.saliency import SaliencyDatasetMapper
from ..modeling.weights import load_weights, resolve_weights
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
    """Loads a training checkpoint (``{"model": state_dict, ...}``) or a bare state dict strictly
    (predictions from a partly loaded model would be silently wrong), with safe unpickling only:
    :func:`res2net_det.modeling.weights.load_weights`. Weights names and URLs are fetched first."""
    path = resolve_weights(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path} does not exist")
    load_weights(model, path, strict=True)


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
