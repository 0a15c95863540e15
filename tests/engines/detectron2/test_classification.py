"""The classification task on Detectron2: META_ARCH_REGISTRY, its trainer and evaluator, and a
checkpoint the CAM tools read (skipped without Detectron2)."""
import json

import pytest
import torch

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)
from detectron2.modeling import build_model  # noqa: E402

from res2net_det.config import get_cfg, merge_config_file, merge_config_list  # noqa: E402
from res2net_det.engines import default_argument_parser  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_config, main  # noqa: E402
from res2net_det.engines.trained_classifier import load_trained_classifier  # noqa: E402
from res2net_det.modeling.classification import Res2NetClassifier  # noqa: E402
from tests.helpers import REPO  # noqa: E402

CONFIG = str(REPO / "configs" / "cam" / "quickstart.yaml")


def test_meta_architecture_is_registered():
    model = build_model(build_config(CONFIG, ["MODEL.DEVICE", "cpu"]))
    assert isinstance(model, Res2NetClassifier)


def test_train_evaluate_and_reload(tiny_wsol, tmp_path):
    opts = ["DATASETS.WSOL_SPLITS", str([["d2_cls_train", tiny_wsol, "train"], ["d2_cls_val", tiny_wsol, "val"]]),
            "DATASETS.TRAIN", "('d2_cls_train',)", "DATASETS.TEST", "('d2_cls_val',)", "MODEL.DEVICE", "cpu",
            "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "8", "SOLVER.WARMUP_ITERS", "0",
            "INPUT.CLASSIFIER.RESIZE", "(32, 32)", "TEST.VIS_IMAGES", "0", "OUTPUT_DIR", str(tmp_path)]
    args = default_argument_parser().parse_args(["--config-file", CONFIG, *opts])
    results = main(args)  # CHECKPOINT_PERIOD 0 in the config: model_final only
    assert results["classification"]["num_images"] == 8
    assert sorted(p.name for p in tmp_path.glob("model_*.pth")) == ["model_final.pth"]
    saved = json.loads((tmp_path / "inference" / "d2_cls_val" / "classification_results.json").read_text())
    assert saved["results"] == results
    args = default_argument_parser().parse_args(
        ["--config-file", CONFIG, "--eval-only", *opts, "MODEL.WEIGHTS", str(tmp_path / "model_final.pth"),
         "OUTPUT_DIR", str(tmp_path / "eval")])
    assert main(args) == results
    # Detectron2's checkpoint is what the CAM tools load, through our own config tree
    cfg = merge_config_list(merge_config_file(get_cfg(), CONFIG), opts)
    net = load_trained_classifier(cfg, "d2").net
    state = torch.load(tmp_path / "model_final.pth", weights_only=False)["model"]
    assert torch.equal(net.fc.weight, state["backbone.fc.weight"])
