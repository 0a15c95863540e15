"""Detector speed on the torchvision engine: R2-50-FPN vs R-50-FPN (same heads, same input).

The candidates come from the public builder :func:`res2net_det.modeling.detection.fasterrcnn_res2net_fpn`
(untrained, frozen BN and res2 as ``configs/faster_rcnn_r2_50.yaml``), called on torchvision's inputs.
Inference latency and a training step's time come from :func:`res2net_det.utils.timing.time_interleaved`
(interleaved runs, medians, ratios from the same run). Peak memory is CUDA's allocator peak on a
GPU; on the CPU it is the growth of the process's peak resident set (VmHWM) during one training
step, measured in a fresh process per model so models don't share the high-water mark.
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Any, Dict, List, Mapping, Tuple

import torch

from ...modeling.detection import fasterrcnn_res2net_fpn
from ...utils.timing import Timing, time_interleaved

__all__ = ["DETECTORS", "build_benchmark_model", "benchmark_detectors", "peak_memory_mb"]

# name -> fasterrcnn_res2net_fpn arguments
DETECTORS: Dict[str, Dict[str, Any]] = {"R2-50-FPN": {"variant": "res2net50_26w_4s"},
                                        "R-50-FPN": {"variant": "resnet50"}}

# The settings of configs/faster_rcnn_r2_50.yaml that differ from the builder's defaults (COCO's 80
# classes, its proposal counts). Untrained weights score boxes at random, so the number of boxes
# reaching per-class NMS differs between models; a score threshold no box passes makes that step
# cost the same for both.
BENCHMARK_ARGS: Dict[str, Any] = dict(
    num_classes=81, rpn_pre_nms_top_n_train=2000, rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_train=1000,
    rpn_post_nms_top_n_test=1000, box_pooler_sampling_ratio=0, box_score_thresh=1.0,
)


def build_benchmark_model(detector: Mapping[str, Any], size: Tuple[int, int], device: str) -> torch.nn.Module:
    """The detector for builder arguments ``detector``, taking ``size`` inputs as they are (no resizing)."""
    torch.manual_seed(0)
    args = {**BENCHMARK_ARGS, "min_size": min(size), "max_size": max(size), **detector}
    return fasterrcnn_res2net_fpn(**args).to(device)


def _inputs(batch: int, size: Tuple[int, int], device: str) -> Tuple[List[torch.Tensor], List[Dict[str, torch.Tensor]]]:
    """Images in [0, 1] and two boxes per image, torchvision's detection inputs."""
    g = torch.Generator().manual_seed(0)
    h, w = size
    images, targets = [], []
    for _ in range(batch):
        boxes = torch.tensor([[0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h], [0.4 * w, 0.3 * h, 0.9 * w, 0.9 * h]])
        images.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g).float().div(255).to(device))
        targets.append({"boxes": boxes.to(device), "labels": torch.tensor([1, 2], device=device)})
    return images, targets


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def benchmark_detectors(
    batch: int, size: Tuple[int, int], repeats: int, warmup: int, device: str = "cpu",
    detectors: Mapping[str, Mapping[str, Any]] = DETECTORS,
) -> Tuple[Dict[str, Timing], Dict[str, Timing]]:
    """(inference timings, training-step timings) per detector name."""
    models = {name: build_benchmark_model(args, size, device) for name, args in detectors.items()}
    images, targets = _inputs(batch, size, device)

    def infer(model):
        def run():
            with torch.no_grad():
                model(images)
            _sync(device)
        return run

    def train_step(model, optimizer):
        def run():
            losses = model(images, targets)
            optimizer.zero_grad(set_to_none=True)
            sum(losses.values()).backward()
            optimizer.step()
            _sync(device)
        return run

    def features(model):
        x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)

        def run():
            with torch.no_grad():
                model.backbone(x)
            _sync(device)
        return run

    for m in models.values():
        m.eval()
    # The whole detector's time depends on how many proposals survive NMS, which untrained weights
    # make differ between models; backbone + FPN alone is input-independent.
    candidates = {n: infer(m) for n, m in models.items()}
    candidates.update({f"{n} backbone+FPN": features(m) for n, m in models.items()})
    inference = time_interleaved(candidates, repeats, warmup)
    steps = {}
    for n, m in models.items():
        m.train()
        opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)
        steps[n] = train_step(m, opt)
    training = time_interleaved(steps, repeats, warmup)
    return inference, training


def _vm_hwm_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _peak_worker(detector: Mapping[str, Any], batch: int, size: Tuple[int, int], threads: int, queue) -> None:
    torch.set_num_threads(threads)
    model = build_benchmark_model(detector, size, "cpu").train()
    images, targets = _inputs(batch, size, "cpu")
    before = _vm_hwm_kb()
    sum(model(images, targets).values()).backward()
    queue.put((_vm_hwm_kb() - before) / 1024)


def peak_memory_mb(detector: Mapping[str, Any], batch: int, size: Tuple[int, int], device: str = "cpu",
                   threads: int = 1) -> float:
    """Peak memory (MiB) a training step adds on top of the built model and its inputs."""
    if device.startswith("cuda"):
        model = build_benchmark_model(detector, size, device).train()
        images, targets = _inputs(batch, size, device)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        sum(model(images, targets).values()).backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker, args=(dict(detector), batch, size, threads, queue))
    proc.start()
    result = queue.get(timeout=1800)
    proc.join()
    return result
