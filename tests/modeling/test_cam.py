"""CAM methods by name, target layers, model specs, on a tiny Res2Net and torchvision's ResNet-50."""
import json

import numpy as np
import pytest
import torch
import torchvision

import res2net_det
from res2net_det.modeling.cam import (
    CAM_METHODS,
    CamExtractor,
    NameNotFoundError,
    build_classifier,
    cam_method,
    default_target_layer,
    parse_model_spec,
    resolve_target_layer,
)

TINY = dict(layers=(1, 1, 1, 1), base_width=8)
# Score-CAM and Ablation-CAM run one forward pass per channel of the target layer: on the
# 2048-channel layer4 of ResNet-50 that is minutes on CPU, so the test reads a 256-channel layer.
PER_CHANNEL = {"scorecam", "ablationcam"}


@pytest.fixture(scope="module")
def tiny_res2net():
    torch.manual_seed(0)
    return res2net_det.create_model("res2net50_26w_4s", num_classes=3, **TINY).eval()


@pytest.fixture(scope="module")
def tv_resnet50():
    torch.manual_seed(0)
    return torchvision.models.resnet50(num_classes=3).eval()


def test_method_names():
    import pytorch_grad_cam as pgc

    assert cam_method("Grad-CAM") is pgc.GradCAM
    assert cam_method("Grad-CAM++") is pgc.GradCAMPlusPlus
    assert cam_method("gradcam_plusplus") is pgc.GradCAMPlusPlus
    assert cam_method("XGrad-CAM") is pgc.XGradCAM
    assert cam_method("Score-CAM") is pgc.ScoreCAM
    assert cam_method("layer_cam") is pgc.LayerCAM
    assert cam_method("EigenCAM") is pgc.EigenCAM
    with pytest.raises(NameNotFoundError, match="unknown CAM method 'gradcm'; available: gradcam, gradcam\\+\\+"):
        cam_method("gradcm")


def test_default_target_layers(tiny_res2net, tv_resnet50):
    assert default_target_layer(tiny_res2net) == "layer4.0"
    assert default_target_layer(res2net_det.create_model("res2net50_26w_4s", num_classes=3)) == "layer4.2"
    assert default_target_layer(tv_resnet50) == "layer4.2"
    assert resolve_target_layer(tv_resnet50) is tv_resnet50.layer4[2]
    assert resolve_target_layer(tiny_res2net, "layer3.0.convs.1") is tiny_res2net.layer3[0].convs[1]
    with pytest.raises(ValueError, match="no default CAM target layer for Sequential"):
        default_target_layer(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)))


def test_unknown_target_layer_lists_close_and_valid_names(tiny_res2net):
    with pytest.raises(NameNotFoundError) as e:
        resolve_target_layer(tiny_res2net, "layer4.3")
    message = str(e.value)
    assert "Res2Net has no module named 'layer4.3'" in message
    assert "Close names: layer4.0" in message
    assert "Stages and blocks: conv1, bn1" in message and "layer4.0" in message
    with pytest.raises(NameNotFoundError, match="no module named 'layer5'"):
        CamExtractor(tiny_res2net, "gradcam", "layer5")


@pytest.mark.parametrize("method", CAM_METHODS)
def test_every_method_runs_on_tiny_res2net(tiny_res2net, method):
    n = 1 if method in PER_CHANNEL else 2
    x = torch.randn(n, 3, 32, 32)
    layer = "layer1.0" if method in PER_CHANNEL else None
    with CamExtractor(tiny_res2net, method, layer, batch_size=256) as extractor:
        maps = extractor(x, [0, 2][:n])
    assert maps.shape == (n, 32, 32) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0 + 1e-6
    assert extractor.last_logits.shape == (n, 3)
    # hooks are removed on exit
    assert not tiny_res2net.layer4[0]._forward_hooks and not tiny_res2net.layer1[0]._forward_hooks


@pytest.mark.parametrize("method", CAM_METHODS)
def test_every_method_runs_on_torchvision_resnet50(tv_resnet50, method):
    x = torch.randn(1, 3, 32, 32)
    layer = "layer1.0" if method in PER_CHANNEL else None
    with CamExtractor(tv_resnet50, method, layer, batch_size=256) as extractor:
        maps = extractor(x, [1])
    assert maps.shape == (1, 32, 32) and np.isfinite(maps).all()


def test_gradcam_follows_the_evidence():
    """The class-0 logit is the mean of a ReLU feature map that fires only on the image's
    bright left half: Grad-CAM of class 0 lights the left half only; class 1 (the negated
    logit) has negative weights, so its map is empty."""

    class HalfModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer4 = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1))
            with torch.no_grad():
                self.layer4[0].weight.fill_(1.0)
                self.layer4[0].bias.zero_()

        def forward(self, x):
            f = torch.relu(self.layer4(x))
            score = f.mean(dim=(1, 2, 3))
            return torch.stack([score, -score], dim=1)

    x = torch.zeros(2, 3, 16, 16)
    x[..., :8] = 1.0
    maps = CamExtractor(HalfModel(), "gradcam")(x, [0, 1])
    assert np.allclose(maps[0, :, :8], 1.0) and np.allclose(maps[0, :, 8:], 0.0)
    assert np.allclose(maps[1], 0.0)


def test_build_classifier_and_model_specs(tmp_path):
    tv = build_classifier("torchvision:resnet50", num_classes=5)
    assert isinstance(tv, torchvision.models.ResNet) and tv.fc.out_features == 5
    with pytest.raises(NameNotFoundError, match="unknown torchvision classifier 'resnet55'"):
        build_classifier("torchvision:resnet55")
    # ImageNet-sized head skipped when loading into a 5-class model
    src = torchvision.models.resnet50(num_classes=1000)
    torch.save(src.state_dict(), tmp_path / "r50.pth")
    label, model = parse_model_spec(f"torchvision:resnet50={tmp_path / 'r50.pth'}", num_classes=5)
    assert label == "torchvision:resnet50" and model.fc.out_features == 5
    assert torch.equal(model.conv1.weight, src.conv1.weight)
    # a model card with Res2Net keyword arguments and relative weights
    small = res2net_det.create_model("res2net50_26w_4s", num_classes=4, **TINY)
    torch.save(small.state_dict(), tmp_path / "small.pth")
    (tmp_path / "small.json").write_text(json.dumps(
        {"name": "res2net50_26w_4s", "weights": "small.pth", "num_classes": 4,
         "kwargs": {"layers": [1, 1, 1, 1], "base_width": 8}, "label": "small"}))
    label, model = parse_model_spec(str(tmp_path / "small.json"))
    assert label == "small" and model.fc.out_features == 4
    assert torch.equal(model.layer4[0].conv3.weight, small.layer4[0].conv3.weight)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        parse_model_spec(str(tmp_path / "bad.json"))


def test_align_cam_to_input_by_hand():
    """A 4x4 map with one hot cell (1, 2) resized to 64x64 peaks at the cell's centre
    (16 * i + 7.5); aligned, it peaks at 16 * i, where the cell's features look."""
    import cv2

    from res2net_det.modeling.cam import align_cam_to_input

    cell = np.zeros((4, 4), np.float32)
    cell[1, 2] = 1.0
    plain = cv2.resize(cell, (64, 64), interpolation=cv2.INTER_LINEAR)
    y, x = np.unravel_index(plain.argmax(), plain.shape)
    assert (y, x) in {(23, 39), (24, 40), (23, 40), (24, 39)}
    aligned = align_cam_to_input(plain, (4, 4))
    y, x = np.unravel_index(aligned.argmax(), aligned.shape)
    assert abs(y - 16) <= 1 and abs(x - 32) <= 1
    assert aligned.min() == 0.0 and aligned.max() == pytest.approx(1.0)


def test_feature_cells_look_at_stride_times_index(tiny_res2net):
    """Why the shift: the input-gradient centroid of a layer4 cell of a Res2Net sits near
    stride * index, not at the cell centre stride * index + (stride - 1) / 2."""
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    features = {}
    hook = tiny_res2net.layer4.register_forward_hook(lambda m, i, o: features.setdefault("f", o))
    tiny_res2net(x)
    hook.remove()
    f = features["f"]  # 2x2 at stride 32
    f[0, :, 1, 1].abs().sum().backward()
    g = x.grad.abs().sum(dim=(0, 1))
    coords = torch.arange(64, dtype=torch.float32)
    cy = float((g.sum(1) * coords).sum() / g.sum())
    cx = float((g.sum(0) * coords).sum() / g.sum())
    stride = 64 // f.shape[-1]
    assert abs(cy - stride) < abs(cy - (stride + (stride - 1) / 2))
    assert abs(cx - stride) < abs(cx - (stride + (stride - 1) / 2))
