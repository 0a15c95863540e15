"""tools/benchmark.py detector's helpers: every candidate runs inference and a training step, and
all candidates do the same work (proposals, sampled RoIs). No timing is asserted."""
import importlib.util

import pytest

from res2net_det.evaluation.detector_benchmark import (
    DETECTORS,
    _inputs,
    benchmark_detectors,
    build_benchmark_model,
    count_workloads,
)

# Narrow networks that stop after res3: the candidates' code path at a fraction of the cost.
_HEADS = dict(out_features=("res2", "res3"), fpn_channels=32, box_head_fc_dims=(64,),
              rpn_post_nms_top_n_train=300, rpn_post_nms_top_n_test=200, box_batch_size_per_image=128)
TINY_R2 = dict(variant="res2net50_26w_4s", backbone_kwargs={"base_width": 4}, **_HEADS)
TINY_R = dict(variant="resnet50", backbone_kwargs={"base_width": 8}, **_HEADS)


def test_benchmark_detectors_times_every_candidate():
    inference, training, counts = benchmark_detectors(
        1, (64, 64), repeats=2, warmup=0, detectors={"a": TINY_R2, "b": TINY_R})
    assert set(inference) == {"a", "b", "a backbone", "b backbone", "a backbone+FPN", "b backbone+FPN"}
    assert set(training) == {"a", "b"}
    assert all(len(t.seconds) == 2 for t in list(inference.values()) + list(training.values()))
    assert counts["a"] == counts["b"]


def test_candidates_get_equal_proposal_and_roi_counts():
    size, batch = (96, 128), 2
    images, targets = _inputs(batch, size, "cpu")
    counts = {name: count_workloads(build_benchmark_model(args, size, "cpu", batch), images, targets)
              for name, args in {"R2": TINY_R2, "R": TINY_R}.items()}
    expected = {"infer proposals": [200] * batch, "infer rois": [200] * batch,
                "train proposals": [300] * batch, "train rois": [128] * batch}
    assert counts["R2"] == expected
    assert counts["R"] == expected


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed")
def test_timm_candidate_gets_the_same_counts_and_unit_scale_features():
    import torch

    size, batch = (64, 64), 1
    images, targets = _inputs(batch, size, "cpu")
    heads = {k: v for k, v in TINY_R2.items() if k != "backbone_kwargs"}
    model = build_benchmark_model({**heads, "out_features": ("res2", "res3", "res4", "res5"),
                                   "timm": "res2net50_26w_4s"}, size, "cpu", batch)
    counts = count_workloads(model, images, targets)
    assert counts == {"infer proposals": [200], "infer rois": [200], "train proposals": [300], "train rois": [128]}
    with torch.no_grad():  # calibrated BN: res2's output is unit-scale, not 20x off
        x = model.transform(images)[0].tensors
        std = model.backbone.bottom_up.forward_features(x)["res2"].std().item()
    assert 0.1 < std < 10


def test_the_candidates_are_ours_torchvisions_resnet_50_and_timms_res2net():
    assert {name: args["variant"] for name, args in DETECTORS.items()} == {
        "R2-50-FPN": "res2net50_26w_4s", "R-50-FPN": "resnet50", "R-50-FPN (ours)": "resnet50",
        "timm R2-50-FPN": "res2net50_26w_4s"}
    assert DETECTORS["timm R2-50-FPN"]["timm"] == "res2net50_26w_4s"
    assert DETECTORS["R-50-FPN"]["torchvision"] == "resnet50"


def test_torchvision_candidate_and_channels_last_backbones():
    import torch
    import torchvision

    size, batch = (64, 64), 1
    images, targets = _inputs(batch, size, "cpu")
    heads = {k: v for k, v in TINY_R.items() if k != "backbone_kwargs"}
    heads["out_features"] = ("res2", "res3", "res4", "res5")
    peer = build_benchmark_model({**heads, "torchvision": "resnet50"}, size, "cpu", batch, channels_last=True)
    assert isinstance(peer.backbone.bottom_up.layer1[0], torchvision.models.resnet.Bottleneck)
    ours = build_benchmark_model({**TINY_R2}, size, "cpu", batch, channels_last=True)
    assert ours.backbone.bottom_up.channels_last
    for model in (peer, ours):
        assert count_workloads(model, images, targets)["train rois"] == [128]
        with torch.no_grad():
            x = model.transform(images)[0].tensors
            feats = model.backbone.bottom_up.forward_features(x)
        assert feats["res3"].is_contiguous(memory_format=torch.channels_last)


def test_saved_activations_count_what_backward_keeps():
    from res2net_det.evaluation.detector_benchmark import saved_activations_mb
    from res2net_det.modeling.res2net import Bottle2neck

    size, batch = (96, 96), 1
    fast = saved_activations_mb(TINY_R2, batch, size)
    assert fast == saved_activations_mb(TINY_R2, batch, size)  # exact: the same on every run
    Bottle2neck.split_convs_fast_path = False
    try:
        reference = saved_activations_mb(TINY_R2, batch, size)
    finally:
        Bottle2neck.split_convs_fast_path = True
    assert 0 < fast < reference  # the split fast path keeps no per-split outputs, sums or cat copy
    assert saved_activations_mb(TINY_R2, batch, size, checkpoint_activations=True) < fast
