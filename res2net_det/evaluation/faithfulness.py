"""Does a saliency map point at what the classifier uses? Deletion / insertion and ROAD.

* **Deletion / insertion** (Petsiuk et al., "RISE", BMVC 2018): pixels are changed in order of
  decreasing saliency, ``ceil(H*W / num_steps)`` per step; the class probability is recorded after
  each step. Deletion starts from the image and replaces pixels with a substrate (zeros of the
  normalised input, i.e. the data set's mean colour); insertion starts from a blurred copy and
  puts the image's pixels back. The score is the area under the curve over the fraction of
  pixels changed: low is good for deletion, high for insertion. No maintained library computes
  these, so they are written once here.
* **ROAD** (Rong et al., ICML 2022) comes from the ``grad-cam`` library
  (``pytorch_grad_cam.metrics.road.ROADCombined``): the mean over percentiles of
  (confidence drop when the least relevant pixels are imputed - drop when the most relevant
  are) / 2; higher is better.
"""
from __future__ import annotations

import warnings
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torchvision.transforms.functional import gaussian_blur

__all__ = ["blur_substrate", "perturbation_curves", "curve_auc", "deletion_insertion", "road_combined"]


def blur_substrate(images: torch.Tensor, kernel_size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """The insertion start: a Gaussian blur of ``images`` (RISE's kernel 11, sigma 5)."""
    return gaussian_blur(images, kernel_size=[kernel_size, kernel_size], sigma=[sigma, sigma])


def _changed_fractions(num_pixels: int, num_steps: int) -> np.ndarray:
    step = -(-num_pixels // num_steps)
    return np.minimum(np.arange(num_steps + 1) * step, num_pixels) / num_pixels


@torch.no_grad()
def perturbation_curves(
    model: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    finish: torch.Tensor,
    saliency: np.ndarray,
    targets: Sequence[int],
    num_steps: int = 16,
    batch_size: int = 32,
    softmax: bool = True,
) -> np.ndarray:
    """Class scores while pixels turn from ``start`` into ``finish``, most salient first.

    Args:
        model: ``(B, 3, H, W) -> (B, classes)`` logits.
        start, finish: ``(N, 3, H, W)`` images at step 0 and after the last step.
        saliency: ``(N, H, W)`` maps; ties keep raster order.
        targets: the class of each image.
        num_steps: steps; step ``k`` has changed the ``k * ceil(H*W / num_steps)`` most salient pixels.
        softmax: score with the softmax probability (RISE) instead of the raw logit.

    Returns ``(N, num_steps + 1)`` scores.
    """
    n, _, h, w = start.shape
    if saliency.shape != (n, h, w):
        raise ValueError(f"saliency has shape {saliency.shape}, expected {(n, h, w)}")
    step = -(-(h * w) // num_steps)
    curves = np.zeros((n, num_steps + 1), np.float64)
    for i in range(n):
        order = np.argsort(-saliency[i].reshape(-1), kind="stable")
        rank = np.empty(h * w, np.int64)
        rank[order] = np.arange(h * w)
        rank = torch.from_numpy(rank.reshape(1, 1, h, w))
        scores = []
        for s0 in range(0, num_steps + 1, batch_size):
            ks = torch.arange(s0, min(s0 + batch_size, num_steps + 1)).view(-1, 1, 1, 1)
            changed = rank < ks * step  # (B, 1, H, W)
            batch = torch.where(changed, finish[i:i + 1], start[i:i + 1])
            logits = model(batch)
            out = torch.softmax(logits, dim=1) if softmax else logits
            scores.append(out[:, int(targets[i])].double().cpu())
        curves[i] = torch.cat(scores).numpy()
    return curves


def curve_auc(curves: np.ndarray, num_pixels: Optional[int] = None) -> np.ndarray:
    """Trapezoid area under each curve (last axis) over the fraction of pixels changed, in [0, 1].

    With ``num_pixels`` the x positions are the exact fractions (the last step may be shorter);
    without, they are evenly spaced like RISE's.
    """
    curves = np.asarray(curves, np.float64)
    num_steps = curves.shape[-1] - 1
    x = _changed_fractions(num_pixels, num_steps) if num_pixels else np.linspace(0.0, 1.0, num_steps + 1)
    return np.trapezoid(curves, x, axis=-1)


def deletion_insertion(
    model: nn.Module,
    images: torch.Tensor,
    saliency: np.ndarray,
    targets: Sequence[int],
    num_steps: int = 16,
    batch_size: int = 32,
    deletion_substrate: Optional[torch.Tensor] = None,
    insertion_substrate: Optional[torch.Tensor] = None,
) -> Dict[str, np.ndarray]:
    """Per-image deletion and insertion AUCs (softmax probability of ``targets``).

    Substrates default to RISE's: zeros (of the normalised input) for deletion and
    :func:`blur_substrate` for insertion.
    """
    model.eval()
    if deletion_substrate is None:
        deletion_substrate = torch.zeros_like(images)
    if insertion_substrate is None:
        insertion_substrate = blur_substrate(images)
    num_pixels = images.shape[-1] * images.shape[-2]
    deletion = perturbation_curves(model, images, deletion_substrate, saliency, targets, num_steps, batch_size)
    insertion = perturbation_curves(model, insertion_substrate, images, saliency, targets, num_steps, batch_size)
    return {
        "deletion": curve_auc(deletion, num_pixels),
        "insertion": curve_auc(insertion, num_pixels),
    }


def road_combined(
    model: nn.Module,
    images: torch.Tensor,
    saliency: np.ndarray,
    targets: Sequence[int],
    percentiles: Sequence[int] = (20, 40, 60, 80),
) -> np.ndarray:
    """Per-image ROAD score from the ``grad-cam`` library (softmax probability of ``targets``)."""
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model.eval()
    metric = ROADCombined(percentiles=list(percentiles))
    with torch.no_grad(), warnings.catch_warnings():
        # The library's imputer passes torch tensors to NumPy, which NumPy 2 flags as deprecated.
        warnings.filterwarnings("ignore", message="__array_wrap__ must accept context", category=DeprecationWarning)
        scores = metric(images, np.asarray(saliency, np.float32),
                        [ClassifierOutputSoftmaxTarget(int(t)) for t in targets], model)
    return np.asarray(scores, np.float64).reshape(-1)
