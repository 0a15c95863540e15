"""The peers of tools/benchmark.py backbone compute their models' features, fused or not."""
import torch
import torchvision

from res2net_det.evaluation.benchmark import ResNetFeatures, fused_peer
from tests.helpers import randomize_norm_


def test_fused_peer_folds_every_batch_norm_and_keeps_the_features():
    torch.manual_seed(0)
    model = randomize_norm_(torchvision.models.resnet50()).eval()
    features = ResNetFeatures(model)
    fused = fused_peer(features)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected, got = features(x), fused(x)
        # the classifier's own trunk, so ResNetFeatures can't have left a layer out
        trunk = model.layer4(model.layer3(model.layer2(model.layer1(
            model.maxpool(model.relu(model.bn1(model.conv1(x))))))))
    assert [tuple(e.shape) for e in expected] == [(1, 256, 16, 24), (1, 512, 8, 12), (1, 1024, 4, 6), (1, 2048, 2, 3)]
    assert torch.equal(expected[-1], trunk)
    assert max(((g - e).abs().max() / e.abs().max()).item() for g, e in zip(got, expected)) < 1e-4
    assert got[0].is_contiguous(memory_format=torch.channels_last)
