"""Detector speed on the torchvision engine: R2-50-FPN vs R-50-FPN (same heads, same input).

Inference latency and a training step's time come from :func:`res2net_det.utils.timing.time_interleaved`
(interleaved runs, medians, ratios from the same run). Peak memory is CUDA's allocator peak on a
GPU; on the CPU it is the growth of the process's peak resident set (VmHWM) during one training
step, measured in a fresh process per model so models don't share the high-water mark.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from typing import Dict, List, Sequence, Tuple

import torch

from ...config.defaults import get_cfg, merge_config_file, merge_config_list
from ...utils.timing import Timing, time_interleaved
from .modeling import build_rcnn

__all__ = ["DETECTOR_CONFIGS", "build_benchmark_model", "benchmark_detectors", "peak_memory_mb"]

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "configs")
DETECTOR_CONFIGS = {"R2-50-FPN": "faster_rcnn_r2_50.yaml", "R-50-FPN": "faster_rcnn_r_50.yaml"}


# Untrained weights score boxes at random, so the number of boxes reaching per-class NMS differs
# between models; a score threshold no box passes makes that step cost the same for both.
BENCHMARK_OPTS = ("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "1.0")


def build_benchmark_model(config: str, device: str, opts: Sequence[str] = BENCHMARK_OPTS) -> torch.nn.Module:
    cfg = get_cfg()
    merge_config_file(cfg, config if os.path.isfile(config) else os.path.join(CONFIG_DIR, config))
    merge_config_list(cfg, ["MODEL.WEIGHTS", "", "MODEL.DEVICE", device, *opts])
    torch.manual_seed(0)
    return build_rcnn(cfg).to(device)


def _inputs(batch: int, size: Tuple[int, int], device: str) -> List[dict]:
    g = torch.Generator().manual_seed(0)
    h, w = size
    out = []
    for _ in range(batch):
        boxes = torch.tensor([[0.1 * w, 0.1 * h, 0.5 * w, 0.6 * h], [0.4 * w, 0.3 * h, 0.9 * w, 0.9 * h]])
        out.append({"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g).to(device),
                    "height": h, "width": w,
                    "instances": {"gt_boxes": boxes.to(device), "gt_classes": torch.tensor([0, 1], device=device)}})
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def benchmark_detectors(
    batch: int, size: Tuple[int, int], repeats: int, warmup: int, device: str = "cpu",
    configs: Dict[str, str] = DETECTOR_CONFIGS,
) -> Tuple[Dict[str, Timing], Dict[str, Timing]]:
    """(inference timings, training-step timings) per model name."""
    models = {name: build_benchmark_model(cfg, device) for name, cfg in configs.items()}
    inputs = _inputs(batch, size, device)

    def infer(model):
        def run():
            with torch.no_grad():
                model(inputs)
            _sync(device)
        return run

    def train_step(model, optimizer):
        def run():
            losses = model(inputs)
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


def _peak_worker(config: str, batch: int, size: Tuple[int, int], threads: int, queue) -> None:
    torch.set_num_threads(threads)
    model = build_benchmark_model(config, "cpu").train()
    inputs = _inputs(batch, size, "cpu")
    before = _vm_hwm_kb()
    sum(model(inputs).values()).backward()
    queue.put((_vm_hwm_kb() - before) / 1024)


def peak_memory_mb(config: str, batch: int, size: Tuple[int, int], device: str = "cpu", threads: int = 1) -> float:
    """Peak memory (MiB) a training step adds on top of the built model and its inputs."""
    if device.startswith("cuda"):
        model = build_benchmark_model(config, device).train()
        inputs = _inputs(batch, size, device)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        sum(model(inputs).values()).backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker, args=(config, batch, size, threads, queue))
    proc.start()
    result = queue.get(timeout=1800)
    proc.join()
    return result
