"""Shared helpers of the salient object detection tests: tiny configs and tiny data on disk."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from res2net_det.config import get_cfg, merge_config_file

# Real masks + predictions with their pysodmetrics values, kept outside the project: next to the
# checkout (../shared) or in the workplace's shared folder. Tests using them skip when absent.
_SHARED_CANDIDATES = [
    Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "sod-pysodmetrics",
    Path("/work/shared/testdata/sod-pysodmetrics"),
]
SHARED_SOD = next((p for p in _SHARED_CANDIDATES if p.is_dir()), _SHARED_CANDIDATES[0])


REPO = Path(__file__).resolve().parents[1]


def tiny_sod_cfg():
    """configs/sod/Base-PoolNet-Res2Net.yaml made small and fast (narrow, trainable BN, CPU)."""
    cfg = merge_config_file(get_cfg(), str(REPO / "configs" / "sod" / "Base-PoolNet-Res2Net.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.RES2NET.NORM = "BN"
    cfg.MODEL.RES2NET.WIDTH_PER_GROUP = 4
    cfg.MODEL.RES2NET.RES5_DILATION = 2
    cfg.MODEL.SALIENCY.IN_FEATURES = ["stem", "res2", "res3", "res4", "res5"]
    cfg.MODEL.SALIENCY.CONVERT_CHANNELS = [8, 8, 16, 16, 16]
    return cfg


def write_pair(image_dir, mask_dir, stem, size=(40, 48), mask_value=255, image_mode="RGB", seed=0):
    """Writes ``stem.jpg`` (a random image) and ``stem.png`` (a centred square mask); size is (H, W)."""
    rng = np.random.default_rng(seed)
    h, w = size
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    if image_mode != "RGB":
        img = img.convert(image_mode)
    img.save(os.path.join(image_dir, stem + (".png" if image_mode in ("RGBA", "LA") else ".jpg")))
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = mask_value
    Image.fromarray(mask).save(os.path.join(mask_dir, stem + ".png"))
    return mask
