"""The classification task (Res2NetClassifier) on the torchvision engine: tools/train_net.py's path,
MODEL.WEIGHTS, data set errors and the cosine schedule of its configs."""
import json
import math

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.config.classification import (
    build_classifier_model,
    classifier_kwargs_from_cfg,
)
from res2net_det.config.solver import build_lr_scheduler, lr_factor_at
from res2net_det.engines import default_argument_parser, main
from res2net_det.engines.torchvision.checkpoint import load_model_weights
from res2net_det.engines.torchvision.registry import get_task
from res2net_det.engines.trained_classifier import load_trained_classifier
from res2net_det.modeling.classification import Res2NetClassifier
from res2net_det.modeling.res2net import Res2Net
from tests.helpers import REPO

CONFIG = str(REPO / "configs" / "cam" / "quickstart.yaml")


def _cfg(*opts):
    return merge_config_list(merge_config_file(get_cfg(), CONFIG), ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts])


def test_the_task_builds_the_core_classifier():
    assert isinstance(get_task("Res2NetClassifier").build_model(_cfg()), Res2NetClassifier)


def test_model_weights_take_a_plain_res2net_checkpoint(tmp_path):
    """MODEL.WEIGHTS as an ImageNet-style Res2Net .pth: every tensor but the classifier loads."""
    cfg = _cfg()
    kwargs = classifier_kwargs_from_cfg(cfg)
    kwargs["num_classes"] = 10  # "ImageNet" head of another size
    torch.manual_seed(1)
    source = Res2Net(**kwargs)
    torch.save(source.state_dict(), tmp_path / "plain.pth")
    model = build_classifier_model(cfg)
    load_model_weights(model, str(tmp_path / "plain.pth"))
    own = model.backbone.state_dict()
    for k, v in source.state_dict().items():
        if k.startswith("fc."):
            assert own[k].shape != v.shape
        elif not k.endswith("num_batches_tracked"):
            assert torch.equal(own[k], v), k


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


def _tiny_opts(root, out, name):
    return ["DATASETS.WSOL_SPLITS", str([[f"{name}_train", root, "train"], [f"{name}_val", root, "val"]]),
            "DATASETS.TRAIN", f"('{name}_train',)", "DATASETS.TEST", f"('{name}_val',)",
            "MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", "3", "SOLVER.IMS_PER_BATCH", "8",
            "SOLVER.WARMUP_ITERS", "1", "SOLVER.LOG_PERIOD", "1", "INPUT.CLASSIFIER.RESIZE", "(32, 32)",
            "TEST.VIS_IMAGES", "0", "NUM_THREADS", "1", "OUTPUT_DIR", str(out)]


def test_train_net_trains_and_reloads_the_classifier(tiny_wsol, tmp_path):
    """tools/train_net.py's path: train, write metrics, then --eval-only from model_final.pth; the
    CAM tools' loader gives the same network."""
    opts = _tiny_opts(tiny_wsol, tmp_path, "tiny_a")
    results = main(default_argument_parser().parse_args(["--config-file", CONFIG, *opts]))
    assert 0.0 <= results["classification"]["top1"] <= 100.0
    assert results["classification"]["num_images"] == 8
    with open(tmp_path / "metrics.json") as f:
        lines = [json.loads(line) for line in f]
    assert any("loss_cls" in line for line in lines)
    saved = json.loads((tmp_path / "inference" / "tiny_a_val" / "classification_results.json").read_text())
    again = main(default_argument_parser().parse_args(
        ["--config-file", CONFIG, "--eval-only", *opts, "MODEL.WEIGHTS", str(tmp_path / "model_final.pth"),
         "OUTPUT_DIR", str(tmp_path / "eval")]))
    assert again == saved["results"]
    trained = load_trained_classifier(_cfg(*opts), "tiny")
    model = build_classifier_model(_cfg(*opts))
    load_model_weights(model, str(tmp_path / "model_final.pth"))
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(trained.net(x), model.backbone.eval()(x), atol=1e-5)


def test_dataset_errors_name_the_problem(tiny_wsol, tmp_path):
    opts = _tiny_opts(tiny_wsol, tmp_path, "tiny_b") + ["MODEL.CLASSIFIER.NUM_CLASSES", "3"]
    with pytest.raises(ValueError, match="tiny_b_train.*4 classes.*NUM_CLASSES"):
        main(default_argument_parser().parse_args(["--config-file", CONFIG, *opts]))
    opts = _tiny_opts(tiny_wsol, tmp_path, "tiny_c")
    opts[1] = str([["tiny_c_train", tiny_wsol]])
    with pytest.raises(ValueError, match=r"DATASETS.WSOL_SPLITS\[0\]"):
        main(default_argument_parser().parse_args(["--config-file", CONFIG, *opts]))
