"""The onnxruntime row of tools/benchmark.py backbone: it times the same features as PyTorch."""
import pytest
import torch

from res2net_det.evaluation.benchmark import onnxruntime_features
from res2net_det.modeling.res2net import Res2Net
from tests.helpers import randomize_norm_


def test_onnxruntime_row_computes_the_backbone_features():
    pytest.importorskip("onnxruntime", reason="the onnxruntime row needs the export extra: pip install -e '.[export]'")
    pytest.importorskip("onnx", reason="the onnxruntime row needs the export extra: pip install -e '.[export]'")
    torch.manual_seed(0)
    model = randomize_norm_(Res2Net((1, 1, 1, 1), base_width=4, scale=2, num_classes=0)).eval()
    run = onnxruntime_features(model, threads=1)
    x = torch.randn(2, 3, 72, 40)
    with torch.no_grad():
        expected = list(model.forward_features(x).values())
    got = run(x)
    assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
    assert max(float((torch.from_numpy(g) - e).abs().max()) for g, e in zip(got, expected)) <= 1e-4
