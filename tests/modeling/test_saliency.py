import pytest
import torch

from res2net_det.config.saliency import add_saliency_config, build_saliency_model
from res2net_det.modeling.res2net import build_res2net
from res2net_det.modeling.saliency import PoolNetSaliency, saliency_loss
from tests.helpers import tiny_sod_cfg


def _inputs(sizes, with_target=True):
    g = torch.Generator().manual_seed(0)
    out = []
    for h, w in sizes:
        d = {"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)}
        if with_target:
            d["sem_seg"] = (torch.rand(h, w, generator=g) > 0.5).float()
        out.append(d)
    return out


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_saliency_model(tiny_sod_cfg())


def test_backbone_is_dilated_with_frozen_bn_by_default():
    cfg = tiny_sod_cfg()
    cfg.MODEL.RES2NET.NORM = "FrozenBN"
    m = build_saliency_model(cfg)
    from torchvision.ops import FrozenBatchNorm2d

    assert m.backbone.dilate_last_stage
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.backbone.modules())
    assert any(isinstance(x, FrozenBatchNorm2d) for x in m.backbone.modules())
    # frozen BN, but the convolutions still train (FREEZE_AT 0), as in Res2Net-PoolNet
    assert all(p.requires_grad for p in m.backbone.parameters())


def test_eval_returns_maps_at_original_size(model):
    model.eval()
    inputs = _inputs([(37, 53), (64, 48)], with_target=False)
    inputs[0].update(height=74, width=106)  # the mapper resized a 74 x 106 picture
    with torch.no_grad():
        out = model(inputs)
    assert [tuple(o["saliency"].shape) for o in out] == [(74, 106), (64, 48)]
    for o in out:
        assert o["saliency"].min() >= 0 and o["saliency"].max() <= 1


def test_batching_same_size_images_matches_one_by_one(model):
    model.eval()
    inputs = _inputs([(40, 56), (40, 56)], with_target=False)
    with torch.no_grad():
        together = [o["saliency"] for o in model(inputs)]
        alone = [model([d])[0]["saliency"] for d in inputs]
    for a, b in zip(together, alone):
        assert torch.allclose(a, b, atol=1e-5)


def test_padded_batch_crops_each_image_back(model):
    """A batch of two sizes is padded; each image's map must equal its map alone."""
    model.eval()
    inputs = _inputs([(40, 40), (56, 72)], with_target=False)
    with torch.no_grad():
        together = model(inputs)[0]["saliency"]
        alone = model(inputs[:1])[0]["saliency"]
    # Not exactly equal: padding reaches into the receptive field; but the crop must line up.
    assert together.shape == alone.shape
    assert torch.corrcoef(torch.stack([together.flatten(), alone.flatten()]))[0, 1] > 0.5


def test_training_loss_and_backward(model):
    model.train()
    losses = model(_inputs([(48, 48), (48, 64)]))
    assert set(losses) == {"loss_sal"}
    loss = losses["loss_sal"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert model.score.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    model.zero_grad()


def test_training_without_target_names_the_file(model):
    model.train()
    inputs = _inputs([(32, 32)], with_target=False)
    inputs[0]["file_name"] = "img_7.jpg"
    with pytest.raises(KeyError, match="img_7.jpg"):
        model(inputs)


def test_target_of_wrong_size_is_an_error(model):
    model.train()
    inputs = _inputs([(32, 32)])
    inputs[0]["sem_seg"] = torch.zeros(30, 32)
    with pytest.raises(ValueError, match="target"):
        model(inputs)


def test_loss_reductions_match_bce():
    logits = torch.randn(2, 5, 7)
    target = (torch.rand(2, 5, 7) > 0.5).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert torch.allclose(saliency_loss(logits, target, "sum"), bce.sum() / 2)
    assert torch.allclose(saliency_loss(logits, target, "mean"), bce.mean())
    with pytest.raises(ValueError):
        saliency_loss(logits, target, "none")


def test_normalisation_uses_imagenet_statistics(model):
    batch, sizes = model.preprocess([{"image": torch.full((3, 2, 2), 255, dtype=torch.uint8)}])
    expected = (255 - torch.tensor([123.675, 116.28, 103.53])) / torch.tensor([58.395, 57.12, 57.375])
    assert torch.allclose(batch[0, :, 0, 0], expected)
    assert sizes == [(2, 2)]


def test_bad_configurations_are_explained():
    backbone = build_res2net(base_width=4, num_classes=0, out_features=("res2", "res3"))
    with pytest.raises(ValueError, match="res4"):
        PoolNetSaliency(backbone, in_features=("res2", "res4"), convert_channels=(8, 8))
    with pytest.raises(ValueError, match="one width per"):
        PoolNetSaliency(backbone, in_features=("res2", "res3"), convert_channels=(8,))
    with pytest.raises(ValueError, match="ordered"):
        PoolNetSaliency(backbone, in_features=("res3", "res2"), convert_channels=(8, 8))


def test_decoder_only_runs_the_stages_it_needs():
    backbone = build_res2net(base_width=4, num_classes=0)
    m = PoolNetSaliency(backbone, in_features=("stem", "res2", "res3"), convert_channels=(8, 8, 8)).eval()
    calls = []
    m.backbone.layer4.register_forward_hook(lambda *a: calls.append("res5"))
    with torch.no_grad():
        out = m(_inputs([(32, 32)], with_target=False))
    assert out[0]["saliency"].shape == (32, 32) and calls == []


def test_add_saliency_config_keeps_an_existing_accumulation_key():
    cfg = tiny_sod_cfg()
    cfg.SOLVER.GRAD_ACCUM_STEPS = 7
    add_saliency_config(cfg)
    assert cfg.SOLVER.GRAD_ACCUM_STEPS == 7 and cfg.MODEL.SALIENCY.PPM_BINS == [1, 3, 5]
