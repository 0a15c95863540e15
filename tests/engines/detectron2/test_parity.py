"""One config, two engines, one model: a detector with random weights, written by one engine and
loaded by the other through its ordinary loader, gives the same detections on the same input
(skipped without Detectron2).

The anchors use aspect ratios 1/4, 1 and 4 and two sizes per level: torchvision rounds its anchor
corners to whole pixels, Detectron2 does not, and these corners are whole on both (the rounding
is a documented difference of the engines, not of the checkpoints); two sizes x three ratios per
location make the engines' anchor orders differ, so the RPN's and RetinaNet's outputs must be
permuted. Input sides are multiples of 128: neither engine pads (their FPNs pad to 32 and 64), and
torchvision, which infers each level's anchor stride from its feature size, finds the true ones.
"""
import argparse
import logging

import pytest
import torch
from torch import nn

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)
from detectron2.modeling import build_model  # noqa: E402

from res2net_det.config import get_cfg, merge_config_file, merge_config_list  # noqa: E402
from res2net_det.engines import main as engines_main  # noqa: E402
from res2net_det.engines.detectron2.checkpoint import Res2NetDetectionCheckpointer  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_config  # noqa: E402
from res2net_det.engines.torchvision.checkpoint import load_model_weights  # noqa: E402
from res2net_det.engines.torchvision.registry import get_task  # noqa: E402
from res2net_det.modeling.detector_layouts import (  # noqa: E402
    DETECTRON2,
    TORCHVISION,
    convert_detector_state,
    detect_detector_layout,
    torchvision_anchor_layout,
)
from res2net_det.modeling.weights import CheckpointError  # noqa: E402
from tests.helpers import REPO, randomize_norm_  # noqa: E402

RCNN = [
    "MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.NUM_CLASSES", "3",
    "MODEL.ANCHOR_GENERATOR.SIZES", "[[16, 24], [32, 48], [64, 96]]",
    "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", "[[0.25, 1.0, 4.0]]",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "100", "MODEL.RPN.PRE_NMS_TOPK_TEST", "300",
]
CASES = {
    "faster_rcnn": ("configs/quickstart.yaml", RCNN),
    # with box head convs and GroupNorm in both heads, to map the norms too
    "mask_rcnn": ("configs/quickstart.yaml", RCNN + [
        "MODEL.MASK_ON", "True", "MODEL.ROI_MASK_HEAD.CONV_DIM", "32", "MODEL.ROI_MASK_HEAD.NORM", "GN",
        "MODEL.ROI_BOX_HEAD.NUM_CONV", "2", "MODEL.ROI_BOX_HEAD.CONV_DIM", "32", "MODEL.ROI_BOX_HEAD.NORM", "GN"]),
    "retinanet": ("configs/retinanet_r2_50.yaml", [
        "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.RES2NET.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0",
        "MODEL.RES2NET.WIDTH_PER_GROUP", "4", "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.RETINANET.NUM_CLASSES", "3",
        "MODEL.ANCHOR_GENERATOR.SIZES",
        "[[32, 40, 48], [64, 80, 96], [128, 160, 192], [256, 320, 384], [512, 640, 768]]",
        "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", "[[0.25, 1.0, 4.0]]",
        "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "256",
        # No suppression: torchvision's RetinaNet clips boxes to the image before its NMS, Detectron2's
        # after it, so near the border they suppress differently (an engine difference, docs/engines.md).
        "MODEL.RETINANET.NMS_THRESH_TEST", "1.0",
    ]),
}
HEIGHT, WIDTH = 128, 256  # multiples of 128, the stride of RetinaNet's P7 (1 x 2 cells)

torch.set_num_threads(1)


def _models(case):
    config, opts = CASES[case]
    d2 = build_model(build_config(str(REPO / config), opts)).eval()
    cfg = get_cfg()
    merge_config_list(merge_config_file(cfg, str(REPO / config)), opts)
    tv = get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg).eval()
    return d2, tv


def _randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Weights that make every tensor count: fan-in scaled normal weights, non-zero biases,
    random batch norm statistics, and class scores spread far apart."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = p[0].numel() if "deconv" not in name and "conv5_mask" not in name else p.shape[0] * 4
                p.copy_(torch.randn(p.shape, generator=generator) / fan_in ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
        for name, p in model.named_parameters():  # logits: far apart, so the ranking is clear
            if name.endswith(("cls_score.weight", "cls_logits.weight", "objectness_logits.weight")):
                p.mul_(8.0)
    return randomize_norm_(model, seed)


def _image(seed=0):
    """Smooth blobs on a gradient: proposals and scores that differ clearly from box to box."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(HEIGHT).float(), torch.arange(WIDTH).float(), indexing="ij")
    image = (x / WIDTH * 120)[None].repeat(3, 1, 1)
    for _ in range(6):
        cy, cx = torch.rand(2, generator=generator) * torch.tensor([HEIGHT, WIDTH])
        r = 8 + torch.rand(1, generator=generator) * 24
        colour = torch.rand(3, 1, 1, generator=generator) * 255
        blob = ((y - cy) ** 2 + (x - cx) ** 2 < r ** 2).float()[None]
        image = image * (1 - blob) + colour * blob
    return image.round().clamp(0, 255).to(torch.uint8)


def _detections(model, image, engine):
    with torch.no_grad():
        (out,) = model([{"image": image, "height": HEIGHT, "width": WIDTH}])
    inst = out["instances"]
    if engine == DETECTRON2:
        inst = {"pred_boxes": inst.pred_boxes.tensor, "scores": inst.scores, "pred_classes": inst.pred_classes}
    order = torch.argsort(inst["scores"], descending=True)
    return {k: inst[k][order] for k in ("pred_boxes", "scores", "pred_classes")}


def _assert_same_detections(d2, tv):
    n = len(d2["scores"])
    print(f"{n} detections; scores {d2['scores'][:3].tolist()} ...")
    assert n >= 5, "too few detections to compare anything"
    assert len(tv["scores"]) == n
    assert torch.equal(d2["pred_classes"], tv["pred_classes"])
    box_diff = (d2["pred_boxes"] - tv["pred_boxes"]).abs().max().item()
    score_diff = (d2["scores"] - tv["scores"]).abs().max().item()
    print(f"largest box difference {box_diff:.2e} px, score difference {score_diff:.2e}")
    assert box_diff <= 0.5 and score_diff <= 1e-3


def _torchvision_mask_probabilities(model, image):
    """The per-detection 28 x 28 mask probabilities of torchvision's Mask R-CNN, before pasting
    into the image (the engines paste differently: not a weight question)."""
    with torch.no_grad():
        images, _ = model.transform([image.float()])
        features = model.backbone(images.tensors)
        proposals, _ = model.rpn(images, features)
        detections, _ = model.roi_heads(features, proposals, images.image_sizes)
    order = torch.argsort(detections[0]["scores"], descending=True)
    return detections[0]["masks"][order]


def _detectron2_mask_probabilities(model, image):
    with torch.no_grad():
        (inst,) = model.inference([{"image": image, "height": HEIGHT, "width": WIDTH}], do_postprocess=False)
    return inst.pred_masks[torch.argsort(inst.scores, descending=True)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_detectron2_checkpoint_gives_the_same_detections_on_the_torchvision_engine(case, tmp_path, caplog):
    d2, tv = _models(case)
    _randomize_(d2, seed=1)
    path = tmp_path / "d2_model_final.pth"
    torch.save({"model": d2.state_dict(), "iteration": 9}, path)  # what Detectron2's trainer writes
    assert detect_detector_layout(d2.state_dict()) == DETECTRON2
    with caplog.at_level("INFO"):
        load_model_weights(tv, str(path), inference=True)  # the torchvision engine's MODEL.WEIGHTS path
    assert "converted from the Detectron2-engine detector layout" in caplog.text
    image = _image()
    _assert_same_detections(_detections(d2, image, DETECTRON2), _detections(tv, image, TORCHVISION))
    if case == "mask_rcnn":
        d2_masks, tv_masks = _detectron2_mask_probabilities(d2, image), _torchvision_mask_probabilities(tv, image)
        print(f"mask probabilities: largest difference {(d2_masks - tv_masks).abs().max().item():.2e}")
        assert d2_masks.shape == tv_masks.shape and (d2_masks - tv_masks).abs().max() <= 1e-3


@pytest.mark.parametrize("case", sorted(CASES))
def test_torchvision_checkpoint_gives_the_same_detections_on_detectron2(case, tmp_path, caplog):
    d2, tv = _models(case)
    _randomize_(tv, seed=2)
    path = tmp_path / "tv_model_final.pth"
    torch.save({"model": tv.state_dict(), "iteration": 9, "seed": 0}, path)  # what the torchvision trainer writes
    checkpointer = Res2NetDetectionCheckpointer(d2, require_complete=True)
    with caplog.at_level("INFO"):
        checkpointer.load(str(path), checkpointables=[])
    assert "from the torchvision engine's detector layout" in caplog.text
    image = _image(1)
    _assert_same_detections(_detections(d2, image, DETECTRON2), _detections(tv, image, TORCHVISION))
    if case == "mask_rcnn":
        d2_masks, tv_masks = _detectron2_mask_probabilities(d2, image), _torchvision_mask_probabilities(tv, image)
        print(f"mask probabilities: largest difference {(d2_masks - tv_masks).abs().max().item():.2e}")
        assert d2_masks.shape == tv_masks.shape and (d2_masks - tv_masks).abs().max() <= 1e-3


def test_eval_only_on_detectron2_refuses_a_backbone_only_file(tmp_path, caplog, monkeypatch):
    """The Detectron2 engine's --eval-only loads through Res2NetDetectionCheckpointer, which refuses
    a half-loaded detector; in training the same file is said once in the log."""
    d2, _ = _models("faster_rcnn")
    path = tmp_path / "backbone.pth"
    torch.save({"model": {k: v for k, v in d2.state_dict().items() if k.startswith("backbone.bottom_up.")},
                "matching_heuristics": False}, path)
    args = argparse.Namespace(
        config_file=str(REPO / "configs" / "quickstart.yaml"), resume=False, eval_only=True, allow_untrained=False,
        num_gpus=0, num_machines=1, machine_rank=0, dist_url="auto",
        opts=["ENGINE", "detectron2", "MODEL.WEIGHTS", str(path), "MODEL.DEVICE", "cpu",
              "OUTPUT_DIR", str(tmp_path / "out")])
    with pytest.raises(CheckpointError, match=r"leaves the FPN, RPN, box head, box predictor of this Faster R-CNN "
                                              r"unloaded .* a backbone-only Res2Net file"):
        engines_main(args)
    # The run above set up the package's log (its own handlers, not propagating to pytest's).
    monkeypatch.setattr(logging.getLogger("res2net_det"), "propagate", True)
    with caplog.at_level("INFO"):
        Res2NetDetectionCheckpointer(d2).load(str(path), checkpointables=[])  # training: a note
    assert "is a backbone-only Res2Net file" in caplog.text
    assert "the FPN, RPN, box head, box predictor of this Faster R-CNN (22 tensors) start" in caplog.text


@pytest.mark.parametrize("case", ["faster_rcnn", "mask_rcnn"])
def test_one_config_starts_from_the_same_initialisation_on_both_engines(case):
    """Fresh from the config, every tensor of the torchvision engine's detector outside the shared
    backbone module is drawn like its Detectron2 counterpart: the same spread and mean for weights
    (within four standard errors), the same constants for biases and norms. The heads' fully
    connected layers and predictors are where torchvision's own initialisation differs."""
    torch.manual_seed(0)
    d2, tv = _models(case)
    d2_as_tv = convert_detector_state(d2.state_dict(), TORCHVISION, anchors=torchvision_anchor_layout(tv))
    tv_state = tv.state_dict()
    assert sorted(d2_as_tv) == sorted(tv_state)
    differing = []
    for key, theirs in d2_as_tv.items():
        ours = tv_state[key]
        if key.startswith("backbone.bottom_up.") or not ours.is_floating_point():
            continue
        if key == "roi_heads.box_predictor.bbox_pred.weight":  # Detectron2 has no background deltas
            ours, theirs = ours[4:], theirs[4:]
        if theirs.numel() < 64 or theirs.std() == 0:
            same = torch.equal(ours, theirs)
        else:
            spread, tolerance = theirs.std().item(), 4 / (2 * theirs.numel()) ** 0.5
            same = abs(ours.std().item() / spread - 1) <= tolerance and \
                abs(ours.mean().item() - theirs.mean().item()) <= 2 * tolerance * spread
        if not same:
            differing.append(f"{key}: mean {ours.mean().item():.3g}, std {ours.std().item():.3g}; Detectron2's "
                             f"{theirs.mean().item():.3g}, {theirs.std().item():.3g}")
    assert not differing, "initialised unlike Detectron2:\n" + "\n".join(differing)
