"""Candidates of ``tools/benchmark.py``: backbones (ours, timm's, torchvision's) and the PoolNet
saliency model, timed with :func:`res2net_det.utils.timing.time_interleaved` (interleaved runs,
medians, ratios from the same run).
"""
from __future__ import annotations

import copy
import os
import tempfile
from typing import Callable, Dict, List, Sequence

import torch
import torchvision

from ..modeling.export import backbone_spec, export_onnx, onnx_session
from ..modeling.res2net import Res2Net, build_res2net, create_model
from ..modeling.saliency import PoolNetSaliency
from ..utils.timing import Timing, time_interleaved

__all__ = ["ResNetFeatures", "fused_peer", "backbone_candidates", "benchmark_backbones", "benchmark_saliency",
           "SALIENCY_BACKBONES"]


# ---------------------------------------------------------------------- backbone benchmark
class ResNetFeatures(torch.nn.Module):
    """res2..res5 of a timm or torchvision ResNet-style classifier, without its head, as a module
    that ``torch.fx`` can trace (so :func:`fused_peer` can fold its batch norms)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.conv1, self.bn1, self.maxpool = model.conv1, model.bn1, model.maxpool
        self.act = model.act1 if hasattr(model, "act1") else model.relu  # timm names it act1
        self.layer1, self.layer2, self.layer3, self.layer4 = model.layer1, model.layer2, model.layer3, model.layer4

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.maxpool(self.act(self.bn1(self.conv1(x))))
        res2 = self.layer1(x)
        res3 = self.layer2(res2)
        res4 = self.layer3(res3)
        return [res2, res3, res4, self.layer4(res4)]


def fused_peer(features: ResNetFeatures) -> torch.nn.Module:
    """A peer given the treatment of :meth:`Res2Net.fuse_for_inference`: every BN folded into its conv
    by ``torch.fx.experimental.optimization.fuse`` (PyTorch's own conv-BN folding), weights channels-last."""
    from torch.fx.experimental.optimization import fuse

    return fuse(copy.deepcopy(features).eval()).to(memory_format=torch.channels_last)


def onnxruntime_features(model: Res2Net, threads: int) -> Callable[[torch.Tensor], object]:
    """``model`` exported to ONNX and run by onnxruntime on the CPU with ``threads`` threads
    (onnxruntime folds the batch norms itself). Raises ImportError without the export extra."""
    with tempfile.TemporaryDirectory() as folder:
        path = export_onnx(backbone_spec(model), os.path.join(folder, "backbone.onnx"))
        session = onnx_session(path, threads)  # holds the model in memory: the file may go
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x.numpy()})


def backbone_candidates(
    name: str = "res2net50_26w_4s", all_layouts: bool = False
) -> Dict[str, Callable[[torch.Tensor], object]]:
    """Feature extractors to time against each other, all in eval mode.

    ``ours``: the reference path (BN, NCHW); ``ours fused``: :meth:`Res2Net.fuse_for_inference`
    (BN folded, channels-last); ``ours onnxruntime``: exported to ONNX, run by onnxruntime on the
    CPU (when the export extra is installed); timm's model of the same name and torchvision's ResNet-50
    (the peers), NCHW as they ship and ``fused`` the same way as ours (:func:`fused_peer`).
    ``all_layouts`` adds ours and the peers in channels-last without folding, which tells the gain of
    each step apart.
    """
    ours = create_model(name, num_classes=0).eval()
    candidates: Dict[str, Callable[[torch.Tensor], object]] = {f"ours {name}": ours.forward_features}
    if all_layouts:
        candidates[f"ours {name} channels_last"] = (
            copy.deepcopy(ours).to(memory_format=torch.channels_last).forward_features)
    candidates[f"ours {name} fused"] = copy.deepcopy(ours).fuse_for_inference().forward_features
    try:
        candidates[f"ours {name} onnxruntime"] = onnxruntime_features(ours, torch.get_num_threads())
    except ImportError as e:
        print(f"skipping the onnxruntime row: {e}")
    peers = {}
    try:
        import timm

        peers[f"timm {name}"] = timm.create_model(name, pretrained=False).eval()
    except ImportError:
        print("timm is not installed: skipping the timm reference (pip install timm)")
    except RuntimeError as e:  # a variant timm doesn't have
        print(f"timm has no {name}: {e}")
    peers["torchvision resnet50"] = torchvision.models.resnet50().eval()
    for peer_name, model in peers.items():
        features = ResNetFeatures(model)
        candidates[peer_name] = features
        if all_layouts:
            candidates[f"{peer_name} channels_last"] = copy.deepcopy(features).to(memory_format=torch.channels_last)
        candidates[f"{peer_name} fused"] = fused_peer(features)
    return candidates


def benchmark_backbones(
    batch: int, size: Sequence[int], repeats: int, warmup: int = 2, name: str = "res2net50_26w_4s",
    all_layouts: bool = False,
) -> Dict[str, Timing]:
    """Interleaved timings of :func:`backbone_candidates` on one random ``batch x 3 x H x W`` input."""
    candidates = backbone_candidates(name, all_layouts)
    x = torch.randn(batch, 3, *size)
    with torch.no_grad():
        return time_interleaved({k: (lambda f=f: f(x)) for k, f in candidates.items()}, repeats, warmup)


# ---------------------------------------------------------------------- saliency benchmark
SALIENCY_BACKBONES = {
    "Res2Net-50 PoolNet": dict(base_width=26, scale=4),
    "ResNet-50 PoolNet": dict(base_width=64, scale=1),
}


def benchmark_saliency(batch: int, size: Sequence[int], repeats: int, warmup: int = 2) -> Dict[str, Timing]:
    """Interleaved timings of the PoolNet saliency model (configs/sod defaults: res5 dilated,
    frozen BN, five levels) on a Res2Net-50 and a ResNet-50 backbone, eval, no_grad, on one
    normalised ``batch x 3 x H x W`` input through backbone, decoder and upsampling."""
    candidates = {}
    x = torch.randn(batch, 3, *size)
    for label, kwargs in SALIENCY_BACKBONES.items():
        backbone = build_res2net(depth=50, num_classes=0, norm="FrozenBN", dilate_last_stage=True,
                                 maxpool_ceil_mode=True, **kwargs)
        model = PoolNetSaliency(backbone).eval()
        candidates[label] = lambda m=model: m.forward_logits(x)
    with torch.no_grad():
        return time_interleaved(candidates, repeats, warmup)
