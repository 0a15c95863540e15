import pytest
import torch

import res2net_det


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "res2net50d", "res2next50"])
def test_feature_strides(name):
    model = res2net_det.create_model(name, num_classes=0).eval()
    with torch.no_grad():
        feats = model(torch.zeros(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "res2": (1, 256, 16, 24), "res3": (1, 512, 8, 12), "res4": (1, 1024, 4, 6), "res5": (1, 2048, 2, 3),
    }


def test_unknown_name_lists_variants():
    with pytest.raises(KeyError, match="res2net50_26w_4s"):
        res2net_det.create_model("res2net51")
