"""tools/convert_weights.py and res2net_det.modeling.convert (no Detectron2 needed)."""
import importlib.util
import os

import pytest
import torch
import torchvision

import res2net_det
from res2net_det.modeling.convert import (
    BACKBONE_PREFIX,
    convert_file,
    convert_to_detection_checkpoint,
    official_to_detectron2_resnet,
)
from res2net_det.modeling.weights import CheckpointError
from tests.helpers import REPO

ROOT = str(REPO)


def _backbone_keys(name):
    """Keys of the detection backbone (no classifier, no BN step counters) for a variant."""
    model = res2net_det.create_model(name, num_classes=0, norm="FrozenBN")
    return {BACKBONE_PREFIX + k for k in model.state_dict()}


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "res2net50_v1b_26w_4s", "res2next50"])
def test_official_checkpoint_becomes_backbone_bottom_up_keys(name, tmp_path):
    state = res2net_det.create_model(name).state_dict()
    src, dst = tmp_path / "official.pth", tmp_path / "converted.pth"
    torch.save(state, src)
    report = convert_file(str(src), str(dst), variant=name)

    checkpoint = torch.load(dst, weights_only=True)
    assert checkpoint["__author__"] == "res2net-det" and checkpoint["matching_heuristics"] is False
    assert set(checkpoint["model"]) == _backbone_keys(name)
    for key, value in checkpoint["model"].items():
        assert torch.equal(value, state[key[len(BACKBONE_PREFIX):]])
    # the classifier and the BN counters are reported, with the reason
    assert report.dropped["fc.weight"].startswith("ImageNet classifier")
    assert all("step counter" in report.dropped[k] for k in state if k.endswith("num_batches_tracked"))
    assert "fc.weight" in report.summary() and "FPN, RPN and ROI heads" in report.summary()
    assert report.source == "official/timm"


def test_torchvision_resnet50_maps_to_our_resnet50():
    state = torchvision.models.resnet50().state_dict()
    checkpoint, report = convert_to_detection_checkpoint(state, variant="resnet50")
    assert report.source == "torchvision/timm resnet"
    assert set(checkpoint["model"]) == _backbone_keys("resnet50")
    assert torch.equal(checkpoint["model"][BACKBONE_PREFIX + "layer3.5.convs.0.weight"], state["layer3.5.conv2.weight"])
    assert torch.equal(checkpoint["model"][BACKBONE_PREFIX + "layer1.0.bns.0.running_var"],
                       state["layer1.0.bn2.running_var"])


def test_torchvision_weights_give_torchvision_features():
    tv = torchvision.models.resnet50().eval()
    for m in tv.modules():  # non-trivial statistics so a wrong mapping would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    checkpoint, _ = convert_to_detection_checkpoint(tv.state_dict(), variant="resnet50")
    ours = res2net_det.create_model("resnet50", num_classes=0, out_features=("res5",)).eval()
    ours.load_state_dict({k[len(BACKBONE_PREFIX):]: v for k, v in checkpoint["model"].items()}, strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = torch.nn.Sequential(*list(tv.children())[:-2])(x)
        got = ours(x)["res5"]
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_detectron2_resnet_names():
    state = res2net_det.create_model("resnet50").state_dict()
    d2 = official_to_detectron2_resnet(state)
    assert "res5.2.conv2.norm.running_mean" in d2 and "stem.conv1.norm.weight" in d2
    assert "res2.0.shortcut.weight" in d2 and "res3.3.conv3.weight" in d2 and not any(k.startswith("fc.") for k in d2)
    assert torch.equal(d2["res4.1.conv2.norm.bias"], state["layer3.1.bns.0.bias"])
    assert len(d2) == len([k for k in state if not k.startswith("fc.") and not k.endswith("num_batches_tracked")])
    with pytest.raises(CheckpointError, match="convs.1"):
        official_to_detectron2_resnet(res2net_det.create_model("res2net50_26w_4s").state_dict())
    # Detectron2-named (possibly MSRA, stride-in-1x1) weights are refused, not silently renamed
    with pytest.raises(CheckpointError, match="STRIDE_IN_1X1|stride in the 1x1"):
        convert_to_detection_checkpoint(d2)


def test_a_converted_checkpoint_converts_to_itself():
    checkpoint, _ = convert_to_detection_checkpoint(res2net_det.create_model("res2net50_14w_8s").state_dict())
    with_heads = dict(checkpoint["model"], **{"roi_heads.box_predictor.cls_score.weight": torch.zeros(4, 8)})
    again, report = convert_to_detection_checkpoint(with_heads)
    assert report.source == "detection checkpoint"
    assert set(again["model"]) == set(checkpoint["model"])


def test_wrong_variant_names_both_architectures():
    state = res2net_det.create_model("res2net50_26w_8s").state_dict()
    with pytest.raises(CheckpointError, match=r"not a res2net50_26w_4s: scale is 8 in the file but 4"):
        convert_to_detection_checkpoint(state, variant="res2net50_26w_4s")


def test_extra_or_missing_keys_fail():
    state = res2net_det.create_model("res2net50_26w_4s").state_dict()
    with pytest.raises(CheckpointError, match="unknown keys.*layer1.0.extra.weight"):
        convert_to_detection_checkpoint(dict(state, **{"layer1.0.extra.weight": torch.zeros(1)}))
    del state["layer4.2.bn3.running_var"]
    with pytest.raises(CheckpointError, match="missing keys.*layer4.2.bn3.running_var"):
        convert_to_detection_checkpoint(state)
    with pytest.raises(CheckpointError, match="not a Res2Net/ResNet backbone"):
        convert_to_detection_checkpoint({"head.weight": torch.zeros(3)})


def _tool():
    """tools/convert_weights.py loaded as a module (a subprocess would re-import torch: slow)."""
    spec = importlib.util.spec_from_file_location("convert_weights_tool",
                                                  os.path.join(ROOT, "tools", "convert_weights.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_reports_and_fails_clearly(tmp_path, capsys):
    tool = _tool()
    src, dst = tmp_path / "r2.pth", tmp_path / "out" / "r2_det.pth"
    torch.save(res2net_det.create_model("res2net50_26w_4s").state_dict(), src)
    assert tool.main([str(src), str(dst), "--variant", "res2net50_26w_4s"]) == 0
    out = capsys.readouterr().out
    assert "425 backbone tensors" in out and "fc.weight, fc.bias" in out
    assert dst.is_file() and not [p for p in os.listdir(dst.parent) if ".tmp" in p]

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(src.read_bytes()[:4096])
    assert tool.main([str(truncated), str(tmp_path / "x.pth")]) == 1
    err = capsys.readouterr().err
    assert "truncated" in err and str(truncated) in err
    assert not (tmp_path / "x.pth").exists()
    assert tool.main([str(src), str(tmp_path / "y.pth"), "--variant", "resnet50"]) == 1
    assert "not a resnet50" in capsys.readouterr().err


def test_tool_converts_detectors_between_the_engines_layouts(tmp_path, capsys):
    """--to torchvision / --to detectron2: every tensor mapped, the anchors from --config-file (the
    quickstart has 2 sizes x 3 ratios per location: the engines order them differently)."""
    from res2net_det.config import get_cfg, merge_config_file
    from res2net_det.engines.torchvision.modeling import build_rcnn
    from res2net_det.modeling.detector_layouts import AnchorLayout, torchvision_to_detectron2

    config = os.path.join(ROOT, "configs", "quickstart.yaml")
    torch.manual_seed(0)
    model = build_rcnn(merge_config_file(get_cfg(), config))
    tv_state = model.state_dict()
    d2_state = torchvision_to_detectron2(tv_state, AnchorLayout(2, 3))
    src = tmp_path / "d2_model_final.pth"
    torch.save({"model": d2_state, "iteration": 5}, src)
    tool = _tool()
    tv_file, back_file = tmp_path / "tv.pth", tmp_path / "back.pth"
    assert tool.main([str(src), str(tv_file), "--to", "torchvision", "--config-file", config]) == 0
    out = capsys.readouterr().out
    assert "read a Faster R-CNN in the Detectron2-engine layout" in out and "2 sizes x 3 ratios" in out
    converted = torch.load(tv_file, weights_only=True)["model"]
    assert set(converted) == set(tv_state)
    for key, value in tv_state.items():
        rows = 4 if key.startswith("roi_heads.box_predictor.bbox_pred") else 0  # the background's, unused
        assert torch.equal(converted[key][rows:], value[rows:]) if rows else torch.equal(converted[key], value), key
    assert tool.main([str(tv_file), str(back_file), "--to", "detectron2", "--anchors", "2", "3"]) == 0
    back = torch.load(back_file, weights_only=True)["model"]
    assert set(back) == set(d2_state) and all(torch.equal(back[k], v) for k, v in d2_state.items())
    capsys.readouterr()
    # the anchors are needed, the layouts checked, a backbone file is no detector
    assert tool.main([str(src), str(tmp_path / "x.pth"), "--to", "torchvision"]) == 1
    assert "6 anchors per location" in capsys.readouterr().err
    assert tool.main([str(src), str(tmp_path / "x.pth"), "--to", "detectron2"]) == 1
    assert "already in the Detectron2-engine layout" in capsys.readouterr().err
    backbone = tmp_path / "backbone.pth"
    torch.save({k: v for k, v in tv_state.items() if k.startswith(BACKBONE_PREFIX)}, backbone)
    assert tool.main([str(backbone), str(tmp_path / "x.pth"), "--to", "torchvision"]) == 1
    err = capsys.readouterr().err
    assert "is a backbone-only Res2Net file" in err and "not a detector checkpoint of either engine" in err
    assert not (tmp_path / "x.pth").exists()
