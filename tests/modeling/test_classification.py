"""The classification task model: a Res2Net behind the engines' dict contract."""
import torch

from res2net_det.modeling.classification import Res2NetClassifier
from res2net_det.modeling.res2net import Res2Net


def test_model_follows_the_dict_contract():
    torch.manual_seed(0)
    model = Res2NetClassifier(Res2Net([1, 1, 1, 1], base_width=4, num_classes=4))
    batch = [{"image": torch.randn(3, 32, 32), "label": i % 4} for i in range(4)]
    losses = model.train()(batch)
    assert set(losses) == {"loss_cls"} and torch.isfinite(losses["loss_cls"])
    with torch.no_grad():
        outs = model.eval()(batch)
        logits = model.backbone(torch.stack([b["image"] for b in batch]))
    assert len(outs) == 4
    for out, lg in zip(outs, logits):
        assert torch.allclose(out["logits"], lg)
        assert out["pred_class"] == int(lg.argmax())
        assert abs(float(out["scores"].sum()) - 1.0) < 1e-5
