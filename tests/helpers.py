"""Helpers shared by the tests: the repository's paths, tiny configs and tiny data on disk."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from res2net_det.config import get_cfg, merge_config_file

REPO = Path(__file__).resolve().parents[1]
# Real reference data from peers, kept outside the project next to the checkout (../shared);
# tests using it skip when it is absent.
SHARED_TESTDATA = REPO.parent / "shared" / "testdata"
# Real masks + predictions with their pysodmetrics values.
SHARED_SOD = SHARED_TESTDATA / "sod-pysodmetrics"


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


def randomize_norm_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine parameters, so that loading them is actually checked.

    The ranges keep activations of 100+ layer networks in a sane range (residual branches
    shrink a little, so a missed key or a wrong op still moves outputs by far more than 1e-4).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d)):
                n = m.weight.numel()
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.25)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model
