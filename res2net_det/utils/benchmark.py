"""Latency measurement that survives a shared, noisy machine.

Candidates run *interleaved* (A B C, B C A, C A B, ...), so that load from other processes
hits all of them alike, and each is summarised by its median. Ratios to a baseline are
computed from medians taken in the same run. Subcommands of ``tools/benchmark.py`` share
these helpers.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import torch

__all__ = ["Timing", "time_interleaved", "format_timings", "set_threads"]


@dataclass
class Timing:
    """Latencies (seconds) of one candidate over the repeats."""

    name: str
    seconds: List[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median: how noisy the run was."""
        if len(self.seconds) < 4:
            return float("nan")
        q = statistics.quantiles(self.seconds, n=4)
        return (q[2] - q[0]) / self.median


def set_threads(threads: Optional[int]) -> int:
    """Sets torch's intra-op threads (when given) and returns the number in use."""
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def time_interleaved(
    candidates: Mapping[str, Callable[[], object]], repeats: int = 10, warmup: int = 2
) -> Dict[str, Timing]:
    """Times each zero-argument callable ``repeats`` times, rotating the order every round.

    ``warmup`` untimed rounds go first (allocator caches, oneDNN primitive creation).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    timings = {name: Timing(name, []) for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            candidates[name]()
            timings[name].seconds.append(time.perf_counter() - start)
    return timings


def format_timings(timings: Mapping[str, Timing], baselines: Sequence[str] = ()) -> str:
    """A table of medians (ms), noise (IQR / median) and ratios to each baseline."""
    width = max(len(n) for n in timings)
    header = f"{'model':{width}s} {'median ms':>10s} {'IQR/med':>8s}" + "".join(f"  / {b}" for b in baselines)
    lines = [header]
    for name, t in timings.items():
        ratios = "".join(f"  {t.median / timings[b].median:{len(b) + 1}.3f}x" for b in baselines)
        lines.append(f"{name:{width}s} {t.median * 1e3:10.1f} {t.spread:8.2f}{ratios}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- backbone benchmark
def _resnet_features(model: torch.nn.Module) -> Callable[[torch.Tensor], List[torch.Tensor]]:
    """res2..res5 of a timm or torchvision ResNet-style classifier, without its head."""
    act = model.act1 if hasattr(model, "act1") else model.relu  # timm names it act1

    def features(x: torch.Tensor) -> List[torch.Tensor]:
        x = model.maxpool(act(model.bn1(model.conv1(x))))
        outs = []
        for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
            x = layer(x)
            outs.append(x)
        return outs

    return features


def backbone_candidates(
    name: str = "res2net50_26w_4s", all_layouts: bool = False
) -> Dict[str, Callable[[torch.Tensor], object]]:
    """Feature extractors to time against each other, all in eval mode.

    ``ours``: the reference path (BN, NCHW); ``ours fused``: :meth:`Res2Net.fuse_for_inference`
    (BN folded, channels-last); timm's model of the same name and torchvision's ResNet-50 (the
    peers, NCHW as they ship). ``all_layouts`` adds ours and the peers in channels-last
    without folding, which tells the gain of each step apart and is the fairer peer.
    """
    import copy

    import torchvision

    from .. import create_model

    ours = create_model(name, num_classes=0).eval()
    candidates: Dict[str, Callable[[torch.Tensor], object]] = {f"ours {name}": ours.forward_features}
    if all_layouts:
        candidates[f"ours {name} channels_last"] = (
            copy.deepcopy(ours).to(memory_format=torch.channels_last).forward_features)
    candidates[f"ours {name} fused"] = copy.deepcopy(ours).fuse_for_inference().forward_features
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
        candidates[peer_name] = _resnet_features(model)
        if all_layouts:
            cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
            candidates[f"{peer_name} channels_last"] = _resnet_features(cl)
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
    from ..modeling.res2net import build_res2net
    from ..modeling.saliency import PoolNetSaliency

    candidates = {}
    x = torch.randn(batch, 3, *size)
    for label, kwargs in SALIENCY_BACKBONES.items():
        backbone = build_res2net(depth=50, num_classes=0, norm="FrozenBN", dilate_last_stage=True, **kwargs)
        model = PoolNetSaliency(backbone).eval()
        candidates[label] = lambda m=model: m.forward_logits(x)
    with torch.no_grad():
        return time_interleaved(candidates, repeats, warmup)
