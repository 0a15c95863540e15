"""Params and FLOPs counted like the mmcls model page reproduce its published table."""
import pytest
import torch
from torch import nn

from res2net_det.evaluation.complexity import count_flops, model_complexity

pytest.importorskip("fvcore", reason="FLOP counting uses fvcore")

# (Params (M), GFLOPs) from the mmcls / mmpretrain Res2Net model page; fvcore's default
# count (conv + BN) of the same backbones is 4.20 / 8.37 / 8.10.
PUBLISHED = {
    "res2net50_14w_8s": (25.06, 4.22, 4.20),
    "res2net50_26w_8s": (48.40, 8.39, 8.37),
    "res2net101_26w_4s": (45.21, 8.12, 8.10),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_reproduces_mmcls_table(name):
    params, gflops, gflops_fvcore = PUBLISHED[name]
    c = model_complexity(name, (224, 224))
    assert round(c.params / 1e6, 2) == params
    assert abs(c.gflops_mmcls - gflops) <= 0.02
    assert abs(c.gflops_fvcore - gflops_fvcore) <= 0.01
    assert c.gflops_conv < c.gflops_fvcore < c.gflops_mmcls


def test_elementwise_rules_on_a_small_net():
    """mmcv's rules: BN 2 per element, ReLU 1 per output element, pooling 1 per input element."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(inplace=True),
                        nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1)).eval()
    counts = count_flops(net, (torch.zeros(1, 3, 8, 8),))
    assert counts["conv"] == {"conv": 4 * 8 * 8 * 3 * 9}
    assert counts["fvcore"] == {"conv": 4 * 8 * 8 * 3 * 9, "batch_norm": 2 * 4 * 8 * 8}
    assert counts["mmcls"] == {**counts["fvcore"], "relu_": 4 * 8 * 8, "max_pool2d": 4 * 8 * 8,
                               "avg_pool2d": 4 * 4 * 4}
