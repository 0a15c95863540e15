"""The classification task (Res2NetClassifier) on the generic trainer, its configs and the cosine schedule."""
import json
import math
import os

import numpy as np
import pytest
import torch

from res2net_det.config import check_torchvision_support, get_cfg, merge_config_file, merge_config_list
from res2net_det.config.classification import classifier_kwargs_from_cfg
from res2net_det.data.shapes_wsol import generate_shapes_wsol
from res2net_det.data.wsol import flip_horizontal, load_wsol_split
from res2net_det.engines import default_argument_parser, main
from res2net_det.engines.torchvision.classification import (
    ClassificationEvaluator,
    ClassificationMapper,
    Res2NetClassifier,
)
from res2net_det.engines.torchvision.checkpoint import load_model_weights
from res2net_det.engines.torchvision.registry import get_task
from res2net_det.engines.torchvision.trainer import build_lr_scheduler, lr_factor_at
from res2net_det.modeling.cam import parse_model_spec, save_model_card
from res2net_det.modeling.res2net import Res2Net
from tests.helpers import REPO

CAM_CONFIGS = str(REPO / "configs" / "cam")


def _cfg(name="quickstart.yaml", *opts):
    cfg = get_cfg()
    merge_config_file(cfg, os.path.join(CAM_CONFIGS, name))
    merge_config_list(cfg, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts])
    check_torchvision_support(cfg, name)
    return cfg


@pytest.mark.parametrize("name", ["quickstart.yaml", "res2net50_finetune.yaml"])
def test_every_cam_config_builds_a_classifier(name):
    cfg = _cfg(name)
    model = get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg)
    assert isinstance(model, Res2NetClassifier)
    assert model.backbone.fc.out_features == cfg.MODEL.CLASSIFIER.NUM_CLASSES
    blocks = [len(getattr(model.backbone, f"layer{i}")) for i in range(1, 5)]
    assert blocks == (list(cfg.MODEL.CLASSIFIER.BLOCKS_PER_STAGE) or [3, 4, 6, 3])


def test_model_follows_the_dict_contract():
    cfg = _cfg()
    model = Res2NetClassifier.from_config(cfg)
    batch = [{"image": torch.randn(3, 64, 64), "label": i % 4} for i in range(4)]
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


def test_model_weights_take_a_plain_res2net_checkpoint(tmp_path):
    """MODEL.WEIGHTS as an ImageNet-style Res2Net .pth: every tensor but the classifier loads."""
    cfg = _cfg()
    kwargs = classifier_kwargs_from_cfg(cfg)
    kwargs["num_classes"] = 10  # "ImageNet" head of another size
    torch.manual_seed(1)
    source = Res2Net(**kwargs)
    torch.save(source.state_dict(), tmp_path / "plain.pth")
    model = Res2NetClassifier.from_config(cfg)
    load_model_weights(model, str(tmp_path / "plain.pth"))
    own = model.backbone.state_dict()
    for k, v in source.state_dict().items():
        if k.startswith("fc."):
            assert own[k].shape != v.shape
        elif not k.endswith("num_batches_tracked"):
            assert torch.equal(own[k], v), k


def test_input_keys_the_task_cannot_honour_are_refused():
    cfg = _cfg()
    cfg.MODEL.PIXEL_MEAN = [103.53, 116.28, 123.675]  # Detectron2's BGR default
    with pytest.raises(ValueError, match="MODEL.PIXEL_MEAN"):
        Res2NetClassifier.from_config(cfg)
    cfg = _cfg()
    cfg.MODEL.CLASSIFIER.BLOCKS_PER_STAGE = [1, 1, 1]
    with pytest.raises(ValueError, match="BLOCKS_PER_STAGE"):
        classifier_kwargs_from_cfg(cfg)


def test_evaluator_counts_top1():
    ev = ClassificationEvaluator("toy")
    ev.reset()
    labels, preds = [0, 1, 2, 3], [0, 1, 2, 0]
    ev.process([{"image_id": i, "label": y} for i, y in enumerate(labels)], [{"pred_class": p} for p in preds])
    res = ev.evaluate()["classification"]
    assert res["top1"] == pytest.approx(75.0) and res["num_images"] == 4


def test_flip_mirrors_the_boxes():
    image = np.zeros((10, 20, 3), np.uint8)
    image[2:5, 1:4] = 255
    flipped, boxes = flip_horizontal(image, np.array([[1.0, 2.0, 4.0, 5.0]], np.float32))
    assert boxes.tolist() == [[16.0, 2.0, 19.0, 5.0]]
    ys, xs = np.nonzero(flipped[..., 0])
    assert (xs.min(), xs.max() + 1) == (16, 19)


def test_warmup_cosine_schedule():
    cfg = get_cfg()
    cfg.SOLVER.LR_SCHEDULER_NAME = "WarmupCosineLR"
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS, cfg.SOLVER.WARMUP_FACTOR = 100, 10, 0.1
    assert lr_factor_at(cfg, 0) == pytest.approx(0.1)  # warm-up start x cos(0) = 1
    assert lr_factor_at(cfg, 5) == pytest.approx((0.1 * 0.5 + 0.5) * 0.5 * (1 + math.cos(math.pi * 0.05)))
    assert lr_factor_at(cfg, 50) == pytest.approx(0.5)
    assert lr_factor_at(cfg, 100) == pytest.approx(0.0, abs=1e-12)
    cfg.SOLVER.LR_SCHEDULER_NAME = "WarmupPolyLR"
    with pytest.raises(ValueError, match="LR_SCHEDULER_NAME"):
        build_lr_scheduler(cfg, torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0))


@pytest.fixture(scope="module")
def tiny_wsol(tmp_path_factory):
    return generate_shapes_wsol(str(tmp_path_factory.mktemp("wsol") / "shapes"), num_train=16, num_val=8,
                                image_size=64, seed=3)


def _tiny_opts(root, out, name):
    return ["DATASETS.WSOL_SPLITS", str([[f"{name}_train", root, "train"], [f"{name}_val", root, "val"]]),
            "DATASETS.TRAIN", f"('{name}_train',)", "DATASETS.TEST", f"('{name}_val',)",
            "MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", "3", "SOLVER.IMS_PER_BATCH", "8",
            "SOLVER.WARMUP_ITERS", "1", "SOLVER.LOG_PERIOD", "1", "INPUT.CLASSIFIER.RESIZE", "(32, 32)",
            "NUM_THREADS", "1", "OUTPUT_DIR", str(out)]


def test_train_net_trains_and_reloads_the_classifier(tiny_wsol, tmp_path):
    """tools/train_net.py's path: train, write metrics, then --eval-only from model_final.pth."""
    config = os.path.join(CAM_CONFIGS, "quickstart.yaml")
    opts = _tiny_opts(tiny_wsol, tmp_path, "tiny_a")
    results = main(default_argument_parser().parse_args(["--config-file", config, *opts]))
    assert 0.0 <= results["classification"]["top1"] <= 100.0
    assert results["classification"]["num_images"] == 8
    with open(tmp_path / "metrics.json") as f:
        lines = [json.loads(line) for line in f]
    assert any("loss_cls" in line for line in lines)
    saved = json.loads((tmp_path / "inference" / "tiny_a_val" / "classification_results.json").read_text())
    again = main(default_argument_parser().parse_args(
        ["--config-file", config, "--eval-only", *opts, "MODEL.WEIGHTS", str(tmp_path / "model_final.pth"),
         "OUTPUT_DIR", str(tmp_path / "eval")]))
    assert again == saved["results"]
    # The weights also serve as a model card for the CAM tools, giving the same logits.
    cfg = _cfg("quickstart.yaml", *opts[:-2])
    model = Res2NetClassifier.from_config(cfg)
    load_model_weights(model, str(tmp_path / "model_final.pth"))
    kwargs = classifier_kwargs_from_cfg(cfg)
    card = save_model_card(str(tmp_path / "card.json"), model.backbone, "res2net50_26w_4s", kwargs.pop("num_classes"), kwargs)
    _, net = parse_model_spec(card)
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(net.eval()(x), model.backbone.eval()(x), atol=1e-5)


def test_dataset_errors_name_the_problem(tiny_wsol, tmp_path):
    config = os.path.join(CAM_CONFIGS, "quickstart.yaml")
    opts = _tiny_opts(tiny_wsol, tmp_path, "tiny_b") + ["MODEL.CLASSIFIER.NUM_CLASSES", "3"]
    with pytest.raises(ValueError, match="tiny_b_train.*4 classes.*NUM_CLASSES"):
        main(default_argument_parser().parse_args(["--config-file", config, *opts]))
    opts = _tiny_opts(tiny_wsol, tmp_path, "tiny_c")
    opts[1] = str([["tiny_c_train", tiny_wsol]])
    with pytest.raises(ValueError, match=r"DATASETS.WSOL_SPLITS\[0\]"):
        main(default_argument_parser().parse_args(["--config-file", config, *opts]))


def test_mapper_resizes_without_crop(tiny_wsol):
    rec = load_wsol_split(tiny_wsol, "val")[0]
    out = ClassificationMapper((32, 48), flip=False)(rec)
    assert out["image"].shape == (3, 32, 48) and out["label"] == rec["label"]
    x0, y0, x1, y1 = rec["annotations"][0]["bbox"]
    assert out["boxes"][0].tolist() == pytest.approx([x0 * 48 / 64, y0 * 32 / 64, x1 * 48 / 64, y1 * 32 / 64])
