"""Export of small models (res2net_det.modeling.export): ONNX round trips through onnxruntime at a
second input size, TorchScript and torch.export, the detection matcher, the eager-only input check."""
import sys
import warnings

import pytest
import torch
from torch.nn import functional as F

from res2net_det.modeling import export as E
from res2net_det.modeling.poolnet_modules import _adaptive_avg_pool2d
from res2net_det.modeling.res2net import Res2Net
from res2net_det.modeling.saliency import PoolNetSaliency
from tests.helpers import randomize_norm_

EXAMPLE, CHECK = (64, 96), (80, 120)  # different heights and widths, both in the check


def _needs_onnxruntime():
    pytest.importorskip("onnx", reason="ONNX tests need the export extra: pip install -e '.[export]'")
    pytest.importorskip("onnxruntime", reason="ONNX tests need the export extra: pip install -e '.[export]'")


def tiny_backbone(**kwargs) -> Res2Net:
    torch.manual_seed(0)
    return randomize_norm_(Res2Net((1, 1, 1, 1), base_width=4, scale=2, num_classes=0, **kwargs)).eval()


def tiny_saliency() -> PoolNetSaliency:
    model = PoolNetSaliency(tiny_backbone(dilate_last_stage=True), convert_channels=(8, 8, 16, 16, 16))
    return model.eval()


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_backbone_onnx_round_trip_at_another_size(tmp_path):
    _needs_onnxruntime()
    import onnx

    spec = E.backbone_spec(tiny_backbone(), EXAMPLE)
    path = E.export(spec, str(tmp_path / "backbone"), "onnx")
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["images"]
    assert [o.name for o in graph.output] == ["res2", "res3", "res4", "res5"]
    assert _dims(graph.input[0]) == ["batch", 3, "height", "width"]
    assert max(i.version for i in onnx.load(path).opset_import if i.domain in ("", "ai.onnx")) >= 17

    report = E.check_export(spec, "onnx", path, batch=3, size=CHECK)
    assert report.input_shape == (3, 3, *CHECK)
    assert set(report.diffs) == {"res2", "res3", "res4", "res5"}
    assert report.passed, report.summary()
    assert max(report.diffs.values()) <= 1e-4
    outputs = E.onnx_session(path).run(None, {"images": torch.randn(3, 3, *CHECK).numpy()})
    assert [o.shape for o in outputs] == [(3, 256, 20, 30), (3, 512, 10, 15), (3, 1024, 5, 8), (3, 2048, 3, 4)]


def test_a_wrong_export_fails_the_check(tmp_path):
    """The check can fail: weights changed after the export make onnxruntime disagree."""
    _needs_onnxruntime()
    spec = E.backbone_spec(tiny_backbone(), EXAMPLE)
    path = E.export(spec, str(tmp_path / "backbone"), "onnx")
    with torch.no_grad():
        spec.module.backbone.layer4[0].conv3.weight.mul_(1.5)
    report = E.check_export(spec, "onnx", path, batch=1, size=CHECK)
    assert not report.passed and report.diffs["res5"] > 1e-2 and report.diffs["res2"] <= 1e-4
    assert "FAILED" in report.summary()


@pytest.mark.parametrize("fmt", ["torchscript", "export"])
def test_backbone_torchscript_and_torch_export_follow_the_size(tmp_path, fmt):
    spec = E.backbone_spec(tiny_backbone(), EXAMPLE)
    path = E.export(spec, str(tmp_path / "backbone"), fmt)
    for batch in (3, 1):
        report = E.check_export(spec, fmt, path, batch=batch, size=CHECK)
        assert report.passed and max(report.diffs.values()) <= 1e-4, report.summary()
    if fmt == "export":
        assert "torch.export ranges: images: batch 2..inf, height " in report.summary()


def test_saliency_onnx_round_trip_at_another_size(tmp_path):
    _needs_onnxruntime()
    spec = E.saliency_spec(tiny_saliency(), EXAMPLE)
    path = E.export(spec, str(tmp_path / "saliency"), "onnx")
    report = E.check_export(spec, "onnx", path, batch=3, size=CHECK)
    assert report.passed and report.diffs["saliency"] <= 1e-4, report.summary()
    (maps,) = E.onnx_session(path).run(None, {"images": (torch.rand(1, 3, 50, 70) * 255).numpy()})
    assert maps.shape == (1, 1, 50, 70) and 0 <= maps.min() and maps.max() <= 1
    # the same model's dict interface gives the same map
    image = torch.rand(3, 50, 70, generator=torch.Generator().manual_seed(3)) * 255
    (maps,) = E.onnx_session(path).run(None, {"images": image[None].numpy()})
    with torch.no_grad():
        expected = spec.module.model([{"image": image}])[0]["saliency"]
    assert torch.allclose(torch.from_numpy(maps[0, 0]), expected, atol=1e-4)


@pytest.mark.parametrize("size", [(9, 13), (4, 6), (2, 1), (17, 8)])
def test_export_form_of_adaptive_pooling_equals_torchs(size, monkeypatch):
    """The form adaptive average pooling takes in an export (two averaging matmuls, which the ONNX
    exporter can follow at any size) equals torch's, including sizes smaller than the bins and
    not divisible by them."""
    x = torch.randn(2, 3, *size)
    expected = [F.adaptive_avg_pool2d(x, s) for s in (3, (5, 2), ((size[0] + 1) // 2, (size[1] + 1) // 2))]
    monkeypatch.setattr(torch.jit, "is_tracing", lambda: True)  # as inside torch.onnx.export
    for s, e in zip((3, (5, 2), ((size[0] + 1) // 2, (size[1] + 1) // 2)), expected):
        got = _adaptive_avg_pool2d(x, s)
        assert got.shape == e.shape and torch.allclose(got, e, atol=1e-6)


def test_tracing_a_backbone_warns_nothing_and_eager_input_is_still_checked():
    backbone = tiny_backbone()
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace is deprecated
        torch.jit.trace(E.BackboneForExport(backbone), torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="add a batch dimension"):
        backbone(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match="grayscale"):
        backbone.forward_features(torch.randn(1, 1, 64, 64))


def test_detections_are_matched_by_iou_not_order():
    boxes = torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40], [5, 5, 30, 30]])
    ref = [boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0, 1, 0])]
    swapped = [boxes[[1, 0, 2]] + 1e-4, ref[1][[1, 0, 2]], ref[2][[1, 0, 2]]]
    assert E._match_detections(ref, swapped) == [(0, 1), (1, 0), (2, 2)]
    report = E.CheckReport("onnx", "x.onnx", (3, 8, 8))
    E._compare_detections(report, ref, swapped)
    assert report.passed and report.diffs["boxes"] == pytest.approx(1e-4, rel=1e-2)
    other_class = [boxes, ref[1], torch.tensor([1, 1, 1])]
    assert E._match_detections(ref, other_class) == [(1, 1)]
    report = E.CheckReport("onnx", "x.onnx", (3, 8, 8))
    E._compare_detections(report, ref, [boxes + 0.01, ref[1], ref[2]])
    assert not report.passed and report.diffs["boxes"] == pytest.approx(0.01, rel=1e-3)


def test_onnx_without_the_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install -e '\.\[export\]'"):
        E.export(E.backbone_spec(tiny_backbone(), EXAMPLE), str(tmp_path / "b"), "onnx")


def test_opset_below_17_is_refused(tmp_path):
    with pytest.raises(ValueError, match="opset must be >= 17"):
        E.export_onnx(E.backbone_spec(tiny_backbone(), EXAMPLE), str(tmp_path / "b.onnx"), opset=13)


def test_torch_export_of_a_detector_is_refused_with_the_reason(tmp_path):
    spec = E.ExportSpec("detector", torch.nn.Identity(), (torch.zeros(3, 8, 8),), ["image"], ["boxes"],
                        {"image": {1: "height"}}, lambda *a: None)
    with pytest.raises(RuntimeError, match="NMS"):
        E.export(spec, str(tmp_path / "d"), "export")


def test_saliency_torch_export_at_the_default_size_runs_at_larger_sizes(tmp_path):
    """Exported at 224 the program was fixed to PoolNet's coarsest FAM pool being 1 pixel wide and
    refused the tool's default check input (192 x 288); at SALIENCY_EXPORT_SIZE it is not."""
    model = tiny_saliency()
    height, width = E.SALIENCY_EXPORT_SIZE
    spec = E.saliency_spec(model)
    assert tuple(spec.example[0].shape[-2:]) == (height, width)
    path = E.export(spec, str(tmp_path / "saliency"), "export")
    for size in ((height - 32, width + 64), (256, 272)):
        report = E.check_export(spec, "export", path, batch=2, size=size)
        assert report.passed and report.diffs["saliency"] <= 1e-4, report.summary()
