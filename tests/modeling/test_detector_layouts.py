"""The two engines' detector checkpoint layouts (res2net_det.modeling.detector_layouts), no Detectron2
needed: round trips, the anchor and class orders, automatic conversion on loading, and the words
for what a checkpoint leaves unloaded. Detectron2's own models run in tests/engines/detectron2/test_parity.py."""
import re

import pytest
import torch

from res2net_det.modeling.detection import fasterrcnn_res2net_fpn, maskrcnn_res2net_fpn, retinanet_res2net_fpn
from res2net_det.modeling.detector_layouts import (
    DETECTRON2,
    TORCHVISION,
    AnchorLayout,
    anchor_layout_from_cell_anchors,
    check_fully_loaded,
    convert_detector_state,
    describe_detector_file,
    detect_detector_layout,
    detectron2_to_torchvision,
    partial_load_note,
    torchvision_anchor_layout,
    torchvision_to_detectron2,
    unloaded_groups,
)
from res2net_det.modeling.weights import CheckpointError, load_weights

SMALL = dict(backbone_kwargs={"base_width": 4}, fpn_channels=16, num_classes=4)
ANCHORS = dict(anchor_sizes=[(16, 24), (32, 48), (64, 96), (128, 192), (256, 384)], aspect_ratios=[(0.5, 1.0, 2.0)])


def _random_state(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
            for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def models():
    return {
        "faster": fasterrcnn_res2net_fpn(**SMALL, **ANCHORS, box_head_fc_dims=(32, 32)),
        "mask": maskrcnn_res2net_fpn(**SMALL, **ANCHORS, box_head_fc_dims=(32,), mask_head_conv_dims=(8, 8),
                                     mask_predictor_dim=8, mask_head_norm="GN", box_head_conv_dims=(8,),
                                     box_head_norm="GN"),
        "retina": retinanet_res2net_fpn(**SMALL, anchor_sizes=[(32, 40, 50)], head_norm="GN"),
    }


@pytest.mark.parametrize("name", ["faster", "mask", "retina"])
def test_detectron2_to_torchvision_to_detectron2_gives_back_every_tensor(models, name):
    model = models[name]
    anchors = torchvision_anchor_layout(model)
    assert anchors.sizes > 1 and anchors.ratios > 1  # the orders differ
    d2 = torchvision_to_detectron2(_random_state(model), anchors)  # distinct random values, Detectron2's keys
    assert detect_detector_layout(d2) == DETECTRON2 and not any(k.startswith(("rpn.", "backbone.fpn.")) for k in d2)
    tv = detectron2_to_torchvision(d2, anchors)
    assert detect_detector_layout(tv) == TORCHVISION
    own = model.state_dict()
    assert set(tv) == set(own) and all(tv[k].shape == own[k].shape for k in own)
    back = torchvision_to_detectron2(tv, anchors)
    assert set(back) == set(d2)
    for key, value in d2.items():
        assert torch.equal(back[key], value), key


@pytest.mark.parametrize("name", ["faster", "mask", "retina"])
def test_torchvision_to_detectron2_to_torchvision_keeps_everything_torchvision_uses(models, name):
    model = models[name]
    anchors = torchvision_anchor_layout(model)
    state = _random_state(model, seed=1)
    back = detectron2_to_torchvision(torchvision_to_detectron2(state, anchors), anchors)
    assert set(back) == set(state)
    # the background's box rows and mask map, which torchvision never reads, become zeros
    unused = {"roi_heads.box_predictor.bbox_pred.weight": slice(0, 4),
              "roi_heads.box_predictor.bbox_pred.bias": slice(0, 4),
              "roi_heads.mask_predictor.mask_fcn_logits.weight": slice(0, 1),
              "roi_heads.mask_predictor.mask_fcn_logits.bias": slice(0, 1)}
    for key, value in state.items():
        if key in unused:
            rows = unused[key]
            assert torch.equal(back[key][rows.stop:], value[rows.stop:]) and not back[key][rows].any(), key
        else:
            assert torch.equal(back[key], value), key


def test_names_orders_and_rows_follow_each_engine(models):
    model = models["faster"]
    anchors = torchvision_anchor_layout(model)
    assert anchors == AnchorLayout(2, 3)
    tv = _random_state(model)
    d2 = torchvision_to_detectron2(tv, anchors)
    # FPN inputs res2..res5 are Detectron2's levels 2..5
    assert torch.equal(d2["backbone.fpn_lateral2.weight"], tv["backbone.fpn.inner_blocks.0.0.weight"])
    assert torch.equal(d2["backbone.fpn_output5.bias"], tv["backbone.fpn.layer_blocks.3.0.bias"])
    # class scores: torchvision's background (row 0) is Detectron2's last row; box rows drop it
    assert torch.equal(d2["roi_heads.box_predictor.cls_score.weight"][-1],
                       tv["roi_heads.box_predictor.cls_score.weight"][0])
    assert torch.equal(d2["roi_heads.box_predictor.cls_score.bias"][:-1],
                       tv["roi_heads.box_predictor.cls_score.bias"][1:])
    assert torch.equal(d2["roi_heads.box_predictor.bbox_pred.weight"],
                       tv["roi_heads.box_predictor.bbox_pred.weight"][4:])
    assert torch.equal(d2["roi_heads.box_head.fc2.weight"], tv["roi_heads.box_head.3.weight"])
    # anchors: Detectron2 size by size, torchvision ratio by ratio (ratio r, size s at r * 2 + s)
    tv_obj, d2_obj = tv["rpn.head.cls_logits.bias"], d2["proposal_generator.rpn_head.objectness_logits.bias"]
    for s in range(2):
        for r in range(3):
            assert d2_obj[s * 3 + r] == tv_obj[r * 2 + s]
            assert torch.equal(
                d2["proposal_generator.rpn_head.anchor_deltas.weight"][(s * 3 + r) * 4:(s * 3 + r + 1) * 4],
                tv["rpn.head.bbox_pred.weight"][(r * 2 + s) * 4:(r * 2 + s + 1) * 4])


def test_detectron2_cell_anchors_give_the_layout():
    sizes, ratios = (32, 64), (0.5, 1.0, 2.0)
    cell = []
    for size in sizes:  # Detectron2's DefaultAnchorGenerator.generate_cell_anchors
        for ratio in ratios:
            w = (size ** 2 / ratio) ** 0.5
            cell.append([-w / 2, -ratio * w / 2, w / 2, ratio * w / 2])
    assert anchor_layout_from_cell_anchors(torch.tensor(cell)) == AnchorLayout(2, 3)


def test_ambiguous_anchors_need_the_layout(models):
    state = _random_state(models["faster"])
    with pytest.raises(CheckpointError, match="6 anchors per location.*MODEL.ANCHOR_GENERATOR"):
        torchvision_to_detectron2(state)
    with pytest.raises(CheckpointError, match="other anchors"):
        torchvision_to_detectron2(state, AnchorLayout(3, 3))
    one_size = fasterrcnn_res2net_fpn(**SMALL)  # 3 anchors: one size x 3 ratios, the same order
    assert set(convert_detector_state(one_size.state_dict(), DETECTRON2)) >= {
        "proposal_generator.rpn_head.objectness_logits.weight"}


def test_unconvertible_heads_are_refused(models):
    d2 = torchvision_to_detectron2(_random_state(models["retina"]), torchvision_anchor_layout(models["retina"]))
    d2["head.cls_subnet.0.bias"] += 1  # a conv bias before GroupNorm: torchvision's conv has none
    with pytest.raises(CheckpointError, match="head.cls_subnet.0.bias is not zero"):
        detectron2_to_torchvision(d2, torchvision_anchor_layout(models["retina"]))
    faster = torchvision_to_detectron2(_random_state(models["faster"]), AnchorLayout(2, 3))
    faster["roi_heads.box_predictor.bbox_pred.weight"] = faster["roi_heads.box_predictor.bbox_pred.weight"][:4]
    faster["roi_heads.box_predictor.bbox_pred.bias"] = faster["roi_heads.box_predictor.bbox_pred.bias"][:4]
    with pytest.raises(CheckpointError, match="class-agnostic"):
        detectron2_to_torchvision(faster, AnchorLayout(2, 3))


def test_load_weights_converts_a_detectron2_file_and_says_so(models, tmp_path, caplog):
    model = models["faster"]
    anchors = torchvision_anchor_layout(model)
    expected = _random_state(model, seed=3)
    path = tmp_path / "model_final.pth"
    torch.save({"model": torchvision_to_detectron2(expected, anchors), "iteration": 99}, path)
    with caplog.at_level("INFO"):
        report = load_weights(model, str(path), strict=True)
    assert report.layouts == ["Detectron2-engine detector"] and not report.missing
    assert "converted from the Detectron2-engine detector layout" in caplog.text
    own = model.state_dict()
    for key in own:
        if key.startswith("roi_heads.box_predictor.bbox_pred"):
            assert torch.equal(own[key][4:], expected[key][4:])
        elif not key.endswith("num_batches_tracked"):
            assert torch.equal(own[key], expected[key]), key


def test_groups_and_descriptions(models):
    keys = list(models["mask"].state_dict())
    backbone = [k for k in keys if k.startswith("backbone.bottom_up.")]
    groups = unloaded_groups(keys, backbone)
    assert list(groups) == ["FPN", "RPN", "box head", "box predictor", "mask head"]
    assert describe_detector_file(backbone).startswith("a backbone-only Res2Net file")
    assert describe_detector_file([k[len("backbone.bottom_up."):] for k in backbone]).startswith("a backbone-only")
    assert describe_detector_file(keys) == "a Mask R-CNN in the torchvision-engine layout"
    d2_keys = torchvision_to_detectron2(models["retina"].state_dict(), torchvision_anchor_layout(models["retina"]))
    assert describe_detector_file(d2_keys) == "a RetinaNet in the Detectron2-engine layout"
    assert "saliency" in describe_detector_file(["backbone.layer1.0.conv1.weight", "guidance.fuse.weight"])
    with pytest.raises(CheckpointError) as e:
        check_fully_loaded(keys, backbone, backbone, "MODEL.WEIGHTS r2.pth")
    message = str(e.value)
    assert re.search(r"MODEL\.WEIGHTS r2\.pth leaves the FPN, RPN, box head, box predictor, mask head of this "
                     r"Mask R-CNN unloaded \(\d+ tensors", message)
    assert "backbone-only Res2Net file" in message and "MODEL.WEIGHTS_ALLOW_PARTIAL True" in message
    check_fully_loaded(keys, keys, keys, "full.pth")  # everything loaded: fine
    check_fully_loaded(["backbone.layer1.0.conv1.weight", "score.weight"], [], [], "saliency.pth")  # no detector
    note = partial_load_note(keys, backbone, backbone, "r2.pth")
    assert note.startswith("r2.pth is a backbone-only Res2Net file") and "FPN, RPN, box head" in note
    assert partial_load_note(keys, keys, keys, "full.pth") is None
