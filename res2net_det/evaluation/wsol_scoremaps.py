"""The score maps of the WSOL metrics: thresholds, resizing, normalisation, 8-bit quantisation.

Each function is one convention of a protocol of :mod:`.wsol` (its docstring says why each is
there): :func:`resize_scoremap` and :func:`normalize_scoremap` make the ``"wsol"`` protocol's map
(bicubic, float64, min-max), :func:`library_upsample` the ``"continuous"`` one's (the ``grad-cam``
library's), :func:`quantize_scoremap` its 8 bits, :func:`cam_threshold_grid` the unrounded
threshold grid; :func:`centre_prior_cam` is the map of the model-free centred-box baseline.
"""
from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

__all__ = [
    "PROTOCOLS",
    "DEFAULT_CAM_CURVE_INTERVAL",
    "DEFAULT_CAM_THRESHOLDS",
    "cam_threshold_grid",
    "check_protocol",
    "check_scoremap",
    "normalize_scoremap",
    "resize_scoremap",
    "library_upsample",
    "quantize_scoremap",
    "centre_prior_cam",
]

#: ``"wsol"``: the published protocol (clovaai/wsolevaluation); ``"continuous"``: our older one.
PROTOCOLS = ("wsol", "continuous")
DEFAULT_CAM_CURVE_INTERVAL = 0.01


def cam_threshold_grid(cam_curve_interval: float = DEFAULT_CAM_CURVE_INTERVAL) -> np.ndarray:
    """``np.arange(0, 1, cam_curve_interval)``, unrounded, as the authors' evaluator builds it."""
    if not 0 < cam_curve_interval < 1:
        raise ValueError(f"cam_curve_interval must lie in (0, 1), got {cam_curve_interval}")
    return np.arange(0, 1, cam_curve_interval)


#: The paper's CAM threshold grid (``cam_curve_interval`` 0.01).
DEFAULT_CAM_THRESHOLDS = cam_threshold_grid()


def check_protocol(protocol: str) -> str:
    """``protocol``, when it is one of :data:`PROTOCOLS`; else a ValueError naming them."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown WSOL protocol {protocol!r}; choose one of {PROTOCOLS}")
    return protocol


# ---------------------------------------------------------------------------- maps
def normalize_scoremap(scoremap: np.ndarray) -> np.ndarray:
    """Min-max normalisation to [0, 1] in the map's float type (float64 for integer input); a
    constant map or one with NaN gives zeros."""
    scoremap = np.asarray(scoremap)
    if not np.issubdtype(scoremap.dtype, np.floating):
        scoremap = scoremap.astype(np.float64)
    if np.isnan(scoremap).any() or scoremap.min() == scoremap.max():
        return np.zeros_like(scoremap)
    shifted = scoremap - scoremap.min()
    return shifted / shifted.max()


def resize_scoremap(raw: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The ``wsol`` protocol's score map: ``raw`` as float64, resized to ``size`` ``(H, W)``
    bicubically, then :func:`normalize_scoremap`. Any positive affine rescaling of ``raw`` (e.g.
    the CAM library's own min-max scaling) gives the same map up to rounding, since both steps
    commute with it."""
    height, width = size
    resized = cv2.resize(np.asarray(raw, np.float64), (width, height), interpolation=cv2.INTER_CUBIC)
    return normalize_scoremap(resized)


def _library_minmax(maps: np.ndarray) -> np.ndarray:
    # the grad-cam library's scaling (pytorch_grad_cam.utils.image.scale_cam_image), eps included
    maps = maps - maps.min()
    return maps / (1e-7 + maps.max())


def library_upsample(raw: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The ``continuous`` protocol's map: what the ``grad-cam`` library returns for one target
    layer (min-max, bilinear ``cv2.resize`` to ``size`` ``(H, W)``, min-max again)."""
    height, width = size
    resized = cv2.resize(_library_minmax(np.asarray(raw, np.float32)), (width, height))
    return _library_minmax(resized).astype(np.float32)


def quantize_scoremap(scoremap: np.ndarray) -> np.ndarray:
    """``uint8(map * 255)``, truncating, computed in the map's own float type (float32 and
    float64 can truncate differently); the map must lie in [0, 1]."""
    scoremap = np.asarray(scoremap)
    if not np.issubdtype(scoremap.dtype, np.floating):
        scoremap = scoremap.astype(np.float64)
    return (scoremap * 255).astype(np.uint8)


def check_scoremap(scoremap: np.ndarray, index: int) -> np.ndarray:
    """``scoremap`` as an array, when it is a 2-D map in [0, 1] without NaN; else a ValueError."""
    scoremap = np.asarray(scoremap)
    if scoremap.ndim != 2:
        raise ValueError(f"score map {index} must be 2-D (H, W), got shape {scoremap.shape}")
    if not np.isfinite(scoremap).all():
        raise ValueError(f"score map {index} contains NaN or inf (normalize_scoremap maps those to zeros)")
    if scoremap.size and (scoremap.min() < 0 or scoremap.max() > 1):
        raise ValueError(f"score map {index} must lie in [0, 1], got [{scoremap.min()}, {scoremap.max()}] "
                         "(use resize_scoremap / normalize_scoremap)")
    return scoremap



def centre_prior_cam(height: int, width: int) -> np.ndarray:
    """A baseline "CAM" that knows nothing about the image: ``1 - max(|x - cx| / (W/2), |y - cy| / (H/2))``.

    Its level sets are centred boxes with the image's aspect ratio, from the whole image
    (threshold 0) down to a point, so thresholding it sweeps every centred box; with the best
    threshold it is the best centre-box guess, and at threshold 0 the whole-image guess.
    """
    ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (height / 2)
    xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (width / 2)
    return 1.0 - np.maximum(np.abs(ys)[:, None], np.abs(xs)[None, :])
