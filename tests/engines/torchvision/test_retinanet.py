"""RetinaNet on the torchvision engine: the shipped configs build torchvision's RetinaNet on Res2Net +
FPN (P3-P7) with Detectron2's calling convention, and tools/train_net.py trains and evaluates it."""
import math

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.engines import main as train_net_main
from res2net_det.engines.torchvision.checkpoint import load_model_weights
from res2net_det.engines.torchvision.modeling import Res2NetRetinaNet, build_retinanet
from res2net_det.engines.torchvision.registry import get_task
from res2net_det.engines.torchvision.support import check_torchvision_support
from tests.helpers import REPO, tiny_retinanet_args


def _cfg(name="retinanet_r2_50.yaml", *opts):
    cfg = get_cfg()
    merge_config_file(cfg, str(REPO / "configs" / name))
    merge_config_list(cfg, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", *opts])
    check_torchvision_support(cfg, name)
    return cfg


def _inputs(h=64, w=80):
    inst = {"gt_boxes": torch.tensor([[4.0, 6.0, 40.0, 30.0], [30.0, 20.0, 70.0, 60.0]]),
            "gt_classes": torch.tensor([0, 2])}
    return [{"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8), "height": 2 * h, "width": 2 * w,
             "instances": inst}]


def test_the_task_is_registered():
    assert get_task("RetinaNet").build_model is build_retinanet


@pytest.mark.parametrize("name", ["retinanet_r2_50.yaml", "retinanet_r_50.yaml"])
def test_each_config_trains_an_iteration_and_predicts(name):
    torch.manual_seed(0)
    cfg = _cfg(name, "MODEL.RETINANET.NUM_CLASSES", "3", "MODEL.RETINANET.SCORE_THRESH_TEST", "0.0")
    model = build_retinanet(cfg)
    assert isinstance(model, Res2NetRetinaNet)
    assert model.backbone.out_features == ["p3", "p4", "p5", "p6", "p7"]
    assert model.transform.size_divisible == 128 and model.transform.image_mean == [123.675, 116.28, 103.53]
    model.train()
    losses = model(_inputs())
    assert set(losses) == {"loss_cls", "loss_box_reg"}  # Detectron2's RetinaNet loss names
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        inst = model(_inputs())[0]["instances"]
    assert len(inst["pred_boxes"]) == 100  # TEST.DETECTIONS_PER_IMAGE
    assert inst["pred_classes"].min() >= 0 and inst["pred_classes"].max() <= 2  # no background offset
    assert inst["pred_boxes"][:, 2].max() <= 160 and inst["pred_boxes"][:, 3].max() <= 128  # original size


def test_classes_are_detectron2s_without_a_background_shift():
    model = build_retinanet(_cfg("retinanet_r2_50.yaml", "MODEL.RETINANET.NUM_CLASSES", "3"))
    seen = {}
    model.head.compute_loss = lambda targets, *a: seen.update(labels=targets[0]["labels"]) or {
        "classification": torch.zeros(()), "bbox_regression": torch.zeros(())}
    model.train()
    model(_inputs())
    assert seen["labels"].tolist() == [0, 2]


def test_a_converted_backbone_loads_into_bottom_up(tmp_path):
    cfg = _cfg("retinanet_r2_50.yaml", "MODEL.RES2NET.WIDTH_PER_GROUP", "4")
    source = build_retinanet(cfg).backbone.bottom_up
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    path = tmp_path / "converted.pth"
    torch.save({"model": {f"backbone.bottom_up.{k}": v for k, v in source.state_dict().items()}}, path)
    model = build_retinanet(cfg)
    report = load_model_weights(model, str(path))
    assert not [k for k in report["missing"] if k.startswith("backbone.bottom_up.")]
    assert torch.equal(model.backbone.bottom_up.layer3[0].conv1.weight, source.layer3[0].conv1.weight)


def test_train_net_trains_and_prints_coco_ap(tmp_path):
    results = train_net_main(tiny_retinanet_args(tmp_path, "torchvision"))
    bbox = results["bbox"]  # one test set: unnested, as Detectron2 returns it
    assert set(bbox) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert all(math.isfinite(bbox[k]) for k in ("AP", "AP50", "AP75"))  # APl is NaN: no large objects here
    assert (tmp_path / "out" / "model_final.pth").is_file()
    assert len(list((tmp_path / "out" / "vis").glob("*/*.png"))) == 1  # TEST.VIS_IMAGES 1
    print(f"torchvision RetinaNet after 3 iterations: box AP {bbox['AP']:.2f}, AP50 {bbox['AP50']:.2f}")
