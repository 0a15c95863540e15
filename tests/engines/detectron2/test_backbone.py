"""The Detectron2 engine's backbones against a real Detectron2 (skipped without one)."""
import pytest
import torch

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)

from detectron2.layers import NaiveSyncBatchNorm, ShapeSpec  # noqa: E402
from detectron2.modeling import BACKBONE_REGISTRY  # noqa: E402
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone  # noqa: E402
from torchvision.ops import FrozenBatchNorm2d  # noqa: E402

import res2net_det  # noqa: E402
from res2net_det.engines.detectron2 import Res2NetBackbone  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_config  # noqa: E402
from res2net_det.modeling.convert import official_to_detectron2_resnet  # noqa: E402

RGB = ShapeSpec(channels=3)


torch.set_num_threads(1)  # the project's tests run on one thread (shared 2-core machines)


def _cfg(*opts):
    return build_config("configs/faster_rcnn_r2_50.yaml", ["MODEL.WEIGHTS", "", *opts])


def test_backbones_are_registered():
    for name in ("build_res2net_backbone", "build_res2net_fpn_backbone", "build_retinanet_res2net_fpn_backbone"):
        assert name in BACKBONE_REGISTRY


def _shapes(features):
    return {k: tuple(v.shape) for k, v in features.items()}


@pytest.mark.parametrize("dilation", [1, 2])
def test_plain_backbone_output_shape_matches_features(dilation):
    cfg = _cfg("MODEL.RES2NET.RES5_DILATION", str(dilation))
    backbone = BACKBONE_REGISTRY.get("build_res2net_backbone")(cfg, RGB).eval()
    assert isinstance(backbone, Res2NetBackbone)
    res5_stride = 32 // dilation
    assert {k: (s.channels, s.stride) for k, s in backbone.output_shape().items()} == {
        "res2": (256, 4), "res3": (512, 8), "res4": (1024, 16), "res5": (2048, res5_stride),
    }
    assert backbone.size_divisibility == 0
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 96))
    for name, spec in backbone.output_shape().items():
        assert feats[name].shape == (1, spec.channels, 64 // spec.stride, 96 // spec.stride)


def test_fpn_backbone_levels_and_divisibility():
    backbone = BACKBONE_REGISTRY.get("build_res2net_fpn_backbone")(_cfg(), RGB).eval()
    assert backbone.size_divisibility == 32
    assert {k: (s.channels, s.stride) for k, s in backbone.output_shape().items()} == {
        "p2": (256, 4), "p3": (256, 8), "p4": (256, 16), "p5": (256, 32), "p6": (256, 64),
    }
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 128))
    assert _shapes(feats) == {
        "p2": (1, 256, 16, 32), "p3": (1, 256, 8, 16), "p4": (1, 256, 4, 8), "p5": (1, 256, 2, 4), "p6": (1, 256, 1, 2),
    }


def test_fpn_that_stops_at_res4_pools_its_last_level():
    cfg = _cfg("MODEL.RES2NET.OUT_FEATURES", "['res3', 'res4']", "MODEL.FPN.IN_FEATURES", "['res3', 'res4']")
    backbone = BACKBONE_REGISTRY.get("build_res2net_fpn_backbone")(cfg, RGB).eval()
    assert {k: s.stride for k, s in backbone.output_shape().items()} == {"p3": 8, "p4": 16, "p5": 32}
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 128))
    assert _shapes(feats) == {"p3": (1, 256, 8, 16), "p4": (1, 256, 4, 8), "p5": (1, 256, 2, 4)}
    assert torch.equal(feats["p5"], feats["p4"][:, :, ::2, ::2])  # max pool, kernel 1, stride 2


def test_retinanet_p6p7_backbone():
    cfg = _cfg("MODEL.FPN.IN_FEATURES", "['res3', 'res4', 'res5']")
    backbone = BACKBONE_REGISTRY.get("build_retinanet_res2net_fpn_backbone")(cfg, RGB).eval()
    assert {k: (s.channels, s.stride) for k, s in backbone.output_shape().items()} == {
        "p3": (256, 8), "p4": (256, 16), "p5": (256, 32), "p6": (256, 64), "p7": (256, 128),
    }
    # P6 is convolved from res5 (2048 channels), not max-pooled from P5.
    assert backbone.top_block.p6.in_channels == 2048
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 128, 128))
    assert _shapes(feats) == {
        "p3": (1, 256, 16, 16), "p4": (1, 256, 8, 8), "p5": (1, 256, 4, 4), "p6": (1, 256, 2, 2), "p7": (1, 256, 1, 1),
    }


def test_fpn_asks_for_a_stage_the_backbone_does_not_return():
    cfg = _cfg("MODEL.RES2NET.OUT_FEATURES", "['res3', 'res4', 'res5']")
    with pytest.raises(ValueError, match="res2"):
        BACKBONE_REGISTRY.get("build_res2net_fpn_backbone")(cfg, RGB)


def test_freeze_at_and_norm_follow_the_config():
    backbone = BACKBONE_REGISTRY.get("build_res2net_backbone")(
        _cfg("MODEL.BACKBONE.FREEZE_AT", "2", "MODEL.RES2NET.NORM", "BN"), RGB
    )
    assert not any(p.requires_grad for p in backbone.conv1.parameters())
    assert not any(p.requires_grad for p in backbone.layer1.parameters())
    assert all(p.requires_grad for p in backbone.layer2.parameters())
    assert isinstance(backbone.layer2[0].bn1, torch.nn.BatchNorm2d)
    assert not isinstance(backbone.layer1[0].bn1, torch.nn.BatchNorm2d)  # frozen stage: frozen BN

    resnet_gn = ("MODEL.RES2NET.WIDTH_PER_GROUP", "64", "MODEL.RES2NET.SCALE", "1", "MODEL.RES2NET.NORM", "GN")
    gn = BACKBONE_REGISTRY.get("build_res2net_backbone")(_cfg(*resnet_gn), RGB)
    assert isinstance(gn.layer3[0].bns[0], torch.nn.GroupNorm)
    # a norm only Detectron2 defines comes from Detectron2
    naive = BACKBONE_REGISTRY.get("build_res2net_backbone")(_cfg("MODEL.RES2NET.NORM", "naiveSyncBN"), RGB)
    assert isinstance(naive.layer2[0].bn1, NaiveSyncBatchNorm)
    with pytest.raises(ValueError, match="MODEL.RES2NET.NORM='NoSuchNorm'"):
        BACKBONE_REGISTRY.get("build_res2net_backbone")(_cfg("MODEL.RES2NET.NORM", "NoSuchNorm"), RGB)


def test_speed_keys_reach_the_backbone():
    backbone = BACKBONE_REGISTRY.get("build_res2net_fpn_backbone")(
        _cfg("MODEL.RES2NET.COMPILE", "True", "MODEL.RES2NET.CHECKPOINT_ACTIVATIONS", "True",
             "MODEL.RES2NET.CHANNELS_LAST", "True"), RGB)
    assert backbone.bottom_up.compile and backbone.bottom_up.checkpoint_activations and backbone.bottom_up.channels_last
    plain = BACKBONE_REGISTRY.get("build_res2net_backbone")(_cfg(), RGB)
    assert not plain.compile and not plain.checkpoint_activations and not plain.channels_last


def test_channels_last_fpn_gives_the_same_outputs():
    build = BACKBONE_REGISTRY.get("build_res2net_fpn_backbone")
    torch.manual_seed(0)
    plain = build(_cfg(), RGB).eval()
    fast = build(_cfg("MODEL.RES2NET.CHANNELS_LAST", "True"), RGB).eval()
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected, got = plain(x), fast(x)
    assert list(got) == list(expected)
    assert got["p3"].is_contiguous(memory_format=torch.channels_last)  # the FPN follows the backbone
    # relative: untrained features reach 1e3, and the two layouts sum in different orders
    assert max(((got[k] - expected[k]).abs().max() / expected[k].abs().max()).item() for k in got) < 1e-5


def test_rejects_non_rgb_input():
    with pytest.raises(ValueError, match="PIXEL_MEAN"):
        BACKBONE_REGISTRY.get("build_res2net_backbone")(_cfg(), ShapeSpec(channels=1))


def _randomize_norms(model: torch.nn.Module, generator: torch.Generator) -> None:
    # Non-trivial statistics, so that a mismatched norm mapping would show in the features.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=generator) + 0.5
            m.bias.data = torch.randn(c, generator=generator) * 0.1
            m.running_mean.data = torch.randn(c, generator=generator) * 0.1
            m.running_var.data = torch.rand(c, generator=generator) + 0.5


def test_scale1_width64_reproduces_detectron2_resnet50_fpn():
    """Our backbone with scale 1 / width 64 is Detectron2's ResNet-50 (stride on the 3x3)."""
    torch.manual_seed(0)  # Detectron2's FPN initialisation draws from the global generator
    generator = torch.Generator().manual_seed(0)
    resnet = res2net_det.create_model("resnet50", num_classes=0, norm="BN")
    _randomize_norms(resnet, generator)
    official = resnet.state_dict()

    d2_cfg = _cfg()
    d2_cfg.MODEL.RESNETS.DEPTH = 50
    d2_cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    d2_cfg.MODEL.RESNETS.NORM = "FrozenBN"
    d2_cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    reference = build_resnet_fpn_backbone(d2_cfg, RGB).eval()
    reference.bottom_up.load_state_dict(official_to_detectron2_resnet(official), strict=True)

    ours_cfg = _cfg("MODEL.RES2NET.WIDTH_PER_GROUP", "64", "MODEL.RES2NET.SCALE", "1")
    ours = BACKBONE_REGISTRY.get("build_res2net_fpn_backbone")(ours_cfg, RGB).eval()
    fpn_only = {k: v for k, v in reference.state_dict().items() if not k.startswith("bottom_up.")}
    bottom_up = {"bottom_up." + k: v for k, v in official.items() if not k.endswith("num_batches_tracked")}
    ours.load_state_dict({**fpn_only, **bottom_up}, strict=True)
    assert isinstance(ours.bottom_up.layer3[0].bn1, FrozenBatchNorm2d)  # the core's, as in both engines

    x = torch.randn(2, 3, 96, 128, generator=generator)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
        expected_c, got_c = reference.bottom_up(x), ours.bottom_up(x)
    assert list(got) == list(expected) == ["p2", "p3", "p4", "p5", "p6"]
    for name in expected_c:
        diff = (got_c[name] - expected_c[name]).abs().max().item()
        assert diff <= 1e-4 * expected_c[name].abs().max().item(), (name, diff)
    for name in expected:
        diff = (got[name] - expected[name]).abs().max().item()
        scale = expected[name].abs().max().item()
        print(f"{name}: max |ours - detectron2| = {diff:.2e} (max |feature| {scale:.2e})")
        assert diff <= 1e-4 * scale, (name, diff)
