"""Detector speed on the torchvision engine: equal work for every candidate.

Candidates (:data:`DETECTORS`) come from the public builder
:func:`res2net_det.modeling.detection.fasterrcnn_res2net_fpn`: R2-50-FPN (ours); R-50-FPN, whose
``backbone.bottom_up`` is torchvision's ResNet-50; R-50-FPN (ours), our ``resnet50`` variant (scale 1
of the same class, so it tells the architecture's cost apart from the implementation's); and R2-50-FPN
whose ``bottom_up`` is timm's ``res2net50_26w_4s`` (what a user would otherwise plug in; skipped when
timm is missing). Everything but ``bottom_up`` is the same code for all.

Equal work: untrained detectors score proposals at random and, with unit frozen-BN statistics,
Res2Net's features come out ~20x larger than ResNet-50's, so RPN NMS kept 21 proposals for one
model against 769 for the other. Here (a) every backbone's BN statistics are calibrated on the
benchmark input (cumulative running mean/var in train mode, then frozen, as FrozenBN with res2 and
the stem frozen like ``configs/faster_rcnn_r2_50.yaml``), so activations are unit-scale for all;
(b) RPN NMS is off (``rpn_nms_thresh`` 1.0: the top-k proposals are kept, ``post_nms_top_n`` of
them whatever the scores); (c) RoI sampling is fixed (512 per image; with 0.5 as both IoU thresholds
no proposal is ignored, so the sampler always fills 512); (d) a box score threshold no box passes
makes per-class NMS cost nothing for all. :func:`count_workloads` reports the counts so a reader
can check they match.

Timings come from :func:`res2net_det.utils.timing.time_interleaved` (interleaved runs with rotating
order, medians, ratios from the same run). Peak memory is CUDA's allocator peak on a GPU; on the CPU
it is the growth of the process's peak resident set (VmHWM) during one training step, measured in a
fresh process per model so models don't share the high-water mark.
"""
from __future__ import annotations

import multiprocessing as mp
import warnings
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..modeling.detection import fasterrcnn_res2net_fpn
from ..modeling.norm import convert_frozen_batchnorm
from ..utils.timing import Timing, time_interleaved
from .benchmark import ResNetFeatures

__all__ = ["DETECTORS", "BENCHMARK_ARGS", "PeerFeatures", "build_benchmark_model", "count_workloads",
           "benchmark_detectors", "peak_memory_mb", "saved_activations_mb"]

# name -> fasterrcnn_res2net_fpn arguments; "timm" / "torchvision" swap in that library's model of
# that name as bottom_up.
DETECTORS: Dict[str, Dict[str, Any]] = {
    "R2-50-FPN": {"variant": "res2net50_26w_4s"},
    "R-50-FPN": {"variant": "resnet50", "torchvision": "resnet50"},
    "R-50-FPN (ours)": {"variant": "resnet50"},
    "timm R2-50-FPN": {"variant": "res2net50_26w_4s", "timm": "res2net50_26w_4s"},
}
PEER_LIBRARIES = ("timm", "torchvision")

# The settings of configs/faster_rcnn_r2_50.yaml that differ from the builder's defaults (COCO's 80
# classes, its proposal counts), plus what makes the work equal across models (see module doc).
BENCHMARK_ARGS: Dict[str, Any] = dict(
    num_classes=81, rpn_pre_nms_top_n_train=2000, rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_train=1000,
    rpn_post_nms_top_n_test=1000, rpn_nms_thresh=1.0, rpn_score_thresh=0.0, box_batch_size_per_image=512,
    box_fg_iou_thresh=0.5, box_bg_iou_thresh=0.5, box_pooler_sampling_ratio=0, box_score_thresh=1.0,
)

# Stages frozen (stem and res2), as the configs' FREEZE_AT 2 / trainable_backbone_layers 3.
FROZEN_STAGES = 2


class PeerFeatures(ResNetFeatures):
    """A timm or torchvision ResNet-style classifier (``res2net50_26w_4s``, ``resnet50``) as a detector's
    ``bottom_up``: ``forward_features`` returns ``res2`` .. ``res5`` as our :class:`Res2Net` does, with
    the same ``checkpoint_activations`` and ``channels_last`` options."""

    def __init__(self, model: nn.Module, checkpoint_activations: bool = False, channels_last: bool = False) -> None:
        super().__init__(model)
        self.checkpoint_activations = checkpoint_activations  # as Res2Net's: per block, trainable stages
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward_features(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.maxpool(self.act(self.bn1(self.conv1(x))))
        outs = OrderedDict()
        checkpointing = self.checkpoint_activations and self.training and torch.is_grad_enabled()
        for name, layer in zip(("res2", "res3", "res4", "res5"), (self.layer1, self.layer2, self.layer3, self.layer4)):
            if checkpointing and any(p.requires_grad for p in layer.parameters()):
                for block in layer:
                    x = checkpoint(block, x, use_reentrant=False)
            else:
                x = layer(x)
            outs[name] = x
        return outs

    def freeze(self, freeze_at: int) -> "PeerFeatures":
        for module in [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3][:freeze_at]:
            for p in module.parameters():
                p.requires_grad_(False)
        return self


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


@torch.no_grad()
def _calibrate_and_freeze_bn(model: nn.Module, images: List[torch.Tensor]) -> None:
    """BN statistics of ``model.backbone.bottom_up`` from the benchmark input, then frozen (FrozenBN)."""
    bottom_up = model.backbone.bottom_up
    for m in bottom_up.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    batch, _ = model.transform(images)
    bottom_up.train()
    for _ in range(2):
        bottom_up.forward_features(batch.tensors)
    convert_frozen_batchnorm(bottom_up)
    bottom_up.freeze(FROZEN_STAGES)


def build_benchmark_model(
    detector: Mapping[str, Any], size: Tuple[int, int], device: str, batch: int = 2,
    channels_last: bool = False, compile_backbone: bool = False, checkpoint_activations: bool = False,
) -> nn.Module:
    """The detector for ``detector`` (builder arguments, plus ``"timm"`` or ``"torchvision"``: that
    library's model name for ``bottom_up``), taking ``size`` inputs as they are (no resizing), BN
    calibrated and frozen. ``channels_last`` is ``MODEL.RES2NET.CHANNELS_LAST``: the backbone's
    weights and activations in NHWC, the FPN and heads following its outputs."""
    torch.manual_seed(0)
    detector = dict(detector)
    peer = {lib: detector.pop(lib) for lib in PEER_LIBRARIES if lib in detector}
    args = {**BENCHMARK_ARGS, "min_size": min(size), "max_size": max(size), "norm": "BN",
            "trainable_backbone_layers": 5, **detector}
    if channels_last:
        args["backbone_kwargs"] = {**args.get("backbone_kwargs", {}), "channels_last": True}
    model = fasterrcnn_res2net_fpn(**args)
    if "timm" in peer:
        import timm  # optional: only this candidate needs it

        body = timm.create_model(peer["timm"], pretrained=False, num_classes=0)
    elif "torchvision" in peer:
        import torchvision

        body = torchvision.models.get_model(peer["torchvision"], weights=None)
    if peer:
        model.backbone.bottom_up = PeerFeatures(body, channels_last=channels_last)
    _calibrate_and_freeze_bn(model, _inputs(batch, size, "cpu")[0])
    model.backbone.bottom_up.checkpoint_activations = checkpoint_activations  # after calibration: FrozenBN now
    model.to(device)
    if compile_backbone:
        bottom_up = model.backbone.bottom_up
        try:
            bottom_up.forward_features = torch.compile(bottom_up.forward_features, dynamic=False)
        except Exception as e:  # no compiler on this platform: measure the eager model
            warnings.warn(f"torch.compile is unavailable ({e}); timing the eager backbone")
    return model


def count_workloads(model: nn.Module, images, targets) -> Dict[str, List[int]]:
    """Proposals per image after the RPN and RoIs per image entering the box head, in inference
    and in a training forward: ``{"infer proposals": [...], "infer rois": [...], "train ...": [...]}``."""
    seen: Dict[str, List[int]] = {}

    def rpn_hook(_module, _inputs, output):
        seen["proposals"] = [len(b) for b in output[0]]

    def pool_hook(_module, inputs, _output):
        seen["rois"] = [len(b) for b in inputs[1]]

    handles = [model.rpn.register_forward_hook(rpn_hook),
               model.roi_heads.box_roi_pool.register_forward_hook(pool_hook)]
    counts: Dict[str, List[int]] = {}
    try:
        was_training = model.training
        with torch.no_grad():
            model.eval()
            model(images)
            counts.update({f"infer {k}": v for k, v in seen.items()})
            model.train()
            model(images, targets)
            counts.update({f"train {k}": v for k, v in seen.items()})
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return counts


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def available_detectors(detectors: Mapping[str, Mapping[str, Any]] = DETECTORS) -> Dict[str, Dict[str, Any]]:
    """``detectors`` without the timm candidate when timm is not installed (said on stdout)."""
    import importlib.util

    out = {}
    for name, args in detectors.items():
        if "timm" in args and importlib.util.find_spec("timm") is None:
            print(f"timm is not installed: skipping {name} (pip install timm)")
            continue
        out[name] = dict(args)
    return out


def benchmark_detectors(
    batch: int, size: Tuple[int, int], repeats: int, warmup: int, device: str = "cpu",
    detectors: Mapping[str, Mapping[str, Any]] = DETECTORS, channels_last: bool = False,
    compile_backbone: bool = False, checkpoint_activations: bool = False,
) -> Tuple[Dict[str, Timing], Dict[str, Timing], Dict[str, Dict[str, List[int]]]]:
    """(inference timings, training-step timings, workload counts) per detector name.

    Inference rows: backbone alone (``bottom_up``), backbone + FPN, whole detector (eval, no_grad)."""
    detectors = available_detectors(detectors)
    models = {name: build_benchmark_model(args, size, device, batch, channels_last, compile_backbone,
                                         checkpoint_activations)
              for name, args in detectors.items()}
    images, targets = _inputs(batch, size, device)
    counts = {n: count_workloads(m, images, targets) for n, m in models.items()}

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

    def features(fn, model):
        # The detector's own normalised, padded batch, as its backbone sees it.
        x = model.transform(images)[0].tensors  # NCHW: a channels-last backbone converts it, as in training

        def run():
            with torch.no_grad():
                fn(x)
            _sync(device)
        return run

    for m in models.values():
        m.eval()
    candidates = {}
    for n, m in models.items():
        candidates[f"{n} backbone"] = features(m.backbone.bottom_up.forward_features, m)
        candidates[f"{n} backbone+FPN"] = features(m.backbone, m)
        candidates[n] = infer(m)
    inference = time_interleaved(candidates, repeats, warmup)
    steps = {}
    for n, m in models.items():
        m.train()
        opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=1e-5, momentum=0.9)
        steps[n] = train_step(m, opt)
    training = time_interleaved(steps, repeats, warmup)
    return inference, training, counts


def saved_activations_mb(detector: Mapping[str, Any], batch: int, size: Tuple[int, int], device: str = "cpu",
                         channels_last: bool = False, checkpoint_activations: bool = False) -> float:
    """MiB of activations a training forward keeps for the backward pass: the distinct storages autograd
    saves (``torch.autograd.graph.saved_tensors_hooks``), parameters and buffers left out.

    Exact and repeatable on any device, unlike the CPU's resident-set peak, which moves by 20% between
    runs with the allocator's caching; it leaves out transient buffers, which the peak includes."""
    model = build_benchmark_model(detector, size, device, batch, channels_last,
                                  checkpoint_activations=checkpoint_activations).train()
    images, targets = _inputs(batch, size, device)
    own = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    kept: Dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in own:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        losses = model(images, targets)
    del losses
    return sum(kept.values()) / 2**20


def _vm_hwm_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _peak_worker(detector, batch, size, threads, channels_last, checkpoint_activations, queue) -> None:
    torch.set_num_threads(threads)
    model = build_benchmark_model(detector, size, "cpu", batch, channels_last,
                                  checkpoint_activations=checkpoint_activations).train()
    images, targets = _inputs(batch, size, "cpu")
    before = _vm_hwm_kb()
    sum(model(images, targets).values()).backward()
    queue.put((_vm_hwm_kb() - before) / 1024)


def peak_memory_mb(detector: Mapping[str, Any], batch: int, size: Tuple[int, int], device: str = "cpu",
                   threads: int = 1, channels_last: bool = False, checkpoint_activations: bool = False) -> float:
    """Peak memory (MiB) a training step adds on top of the built model and its inputs."""
    if device.startswith("cuda"):
        model = build_benchmark_model(detector, size, device, batch, channels_last,
                                      checkpoint_activations=checkpoint_activations).train()
        images, targets = _inputs(batch, size, device)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        sum(model(images, targets).values()).backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker, args=(dict(detector), batch, size, threads, channels_last,
                                                          checkpoint_activations, queue))
    proc.start()
    result = queue.get(timeout=1800)
    proc.join()
    return result
