"""RetinaNet on the Detectron2 engine: configs/retinanet_r2_50.yaml through tools/train_net.py's job,
and the same Res2Net under both engines' RetinaNet (skipped without Detectron2)."""
import math

import pytest
import torch

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)
from detectron2.modeling import build_model  # noqa: E402
from detectron2.modeling.meta_arch.retinanet import RetinaNet as D2RetinaNet  # noqa: E402

from res2net_det.config import get_cfg, merge_config_file  # noqa: E402
from res2net_det.engines import main as train_net_main  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_config  # noqa: E402
from res2net_det.engines.torchvision.modeling import build_retinanet  # noqa: E402
from tests.helpers import REPO, tiny_retinanet_args  # noqa: E402

CONFIG = str(REPO / "configs" / "retinanet_r2_50.yaml")


def test_train_net_trains_and_prints_coco_ap(tmp_path):
    results = train_net_main(tiny_retinanet_args(tmp_path, "detectron2"))
    bbox = results["bbox"]  # one test set: Detectron2 returns its metrics unnested
    assert set(bbox) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert all(math.isfinite(bbox[k]) for k in ("AP", "AP50", "AP75"))
    assert (tmp_path / "out" / "model_final.pth").is_file()
    assert len(list((tmp_path / "out" / "vis").glob("*/*.png"))) == 1  # TEST.VIS_IMAGES 1
    print(f"Detectron2 RetinaNet after 3 iterations: box AP {bbox['AP']:.2f}, AP50 {bbox['AP50']:.2f}")


def test_both_engines_build_the_same_res2net_and_levels():
    """One config, two RetinaNets: the Res2Net under the FPN has the same keys and shapes (a converted
    checkpoint fits both), the heads see the same levels, anchors and classes."""
    d2 = build_model(build_config(CONFIG, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""]))
    assert isinstance(d2, D2RetinaNet)
    cfg = get_cfg()
    merge_config_file(cfg, CONFIG)
    tv = build_retinanet(cfg)
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(d2.backbone.bottom_up) == shapes(tv.backbone.bottom_up)
    trainable = lambda m: sorted(n for n, p in m.named_parameters() if p.requires_grad)  # noqa: E731
    assert trainable(d2.backbone.bottom_up) == trainable(tv.backbone.bottom_up)
    assert d2.head_in_features == tv.backbone.out_features == ["p3", "p4", "p5", "p6", "p7"]
    # the same anchors per level, up to torchvision's rounding of the corners (and their order)
    for d2_cell, tv_cell in zip(d2.anchor_generator.cell_anchors, tv.anchor_generator.cell_anchors):
        d2_sorted, tv_sorted = (c.sort(dim=0).values for c in (d2_cell, tv_cell.float()))
        assert d2_cell.shape == tv_cell.shape == (9, 4) and (d2_sorted - tv_sorted).abs().max() <= 0.5
    assert d2.num_classes == tv.head.classification_head.num_classes == 80
    # P6 from res5 in both
    assert d2.backbone.top_block.p6.in_channels == tv.backbone.fpn.extra_blocks.p6.in_channels == 2048
    with torch.no_grad():
        params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        assert params(d2) == params(tv)
