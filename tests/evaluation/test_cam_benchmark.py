"""The models x methods runner, its table, and the figure, on a few generated images."""
import json

import cv2
import numpy as np
import pytest
import torch

import res2net_det
from res2net_det.data.shapes_wsol import generate_shapes_wsol
from res2net_det.data.wsol import WSOLDataError, load_wsol_split, read_class_list
from res2net_det.evaluation.cam_benchmark import baseline_rows, evaluate_cam_methods, format_table
from res2net_det.evaluation.cam_figure import visualize_cams


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = generate_shapes_wsol(str(tmp_path_factory.mktemp("wsol") / "shapes"), num_train=2, num_val=6, image_size=48)
    return root, load_wsol_split(root, "val")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return res2net_det.create_model("res2net50_26w_4s", num_classes=4, layers=(1, 1, 1, 1), base_width=8).eval()


def test_runner_rows_and_table(shapes, tiny):
    _, records = shapes
    result = evaluate_cam_methods({"tiny": tiny}, ["gradcam", "eigencam"], records, (32, 32), batch_size=4,
                                  faithfulness_images=2, faithfulness_steps=4, progress=False)
    rows = result["rows"]
    assert [(r["model"], r["method"]) for r in rows] == [
        ("baseline", "whole image"), ("baseline", "centre box"), ("tiny", "gradcam"), ("tiny", "eigencam")]
    for row in rows[2:]:
        assert row["num_images"] == 6 and row["target_layer"] == "layer4.0"
        assert 0 <= row["gt_known_loc"] <= row["max_box_acc"] <= 100
        assert row["faithfulness_images"] == 2 and 0 <= row["deletion_auc"] <= 1 and 0 <= row["insertion_auc"] <= 1
        assert np.isfinite(row["road"])
    json.dumps(result)  # JSON-ready
    table = format_table(rows)
    assert table.splitlines()[0].split()[:4] == ["model", "method", "Top-1", "Cls"]
    assert len(table.splitlines()) == 2 + len(rows)
    # a model whose outputs can't hold the data set's classes is refused, naming the file
    two_class = res2net_det.create_model("res2net50_26w_4s", num_classes=2, layers=(1, 1, 1, 1), base_width=8)
    with pytest.raises(WSOLDataError, match=r"\.xml: class index [23] is out of range for a model with 2 classes"):
        evaluate_cam_methods({"two": two_class}, ["gradcam"], records, (32, 32), faithfulness_images=0, progress=False)


def test_baselines_by_hand(tmp_path):
    """One 40x40 image whose box is the centred half [10, 10, 30, 30]: the centre box finds it
    exactly (IoU 1), the whole image has IoU 400/1600 = 0.25 < 0.5."""
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((40, 40, 3), np.uint8))
    (tmp_path / "annotations" / "a.xml").write_text(
        "<annotation><size><width>40</width><height>40</height></size><object><name>x</name>"
        "<bndbox><xmin>10</xmin><ymin>10</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object></annotation>")
    (tmp_path / "classes.txt").write_text("x\n")
    from res2net_det.data.wsol import load_ilsvrc_wsol

    records = load_ilsvrc_wsol(str(tmp_path / "images"), str(tmp_path / "annotations"), str(tmp_path / "classes.txt"))
    whole, centre = baseline_rows(records, (20, 20))
    assert whole["gt_known_loc"] == 0.0
    assert centre["gt_known_loc"] == 100.0 and centre["max_box_acc_v2_iou70"] == 100.0


def test_figure_is_written(shapes, tiny, tmp_path):
    root, records = shapes
    path = visualize_cams(str(tmp_path / "grid.png"), {"tiny": tiny}, ["gradcam", "gradcam++"], records[:2], (32, 32),
                          0.3, read_class_list(root + "/classes.txt"))
    image = cv2.imread(path)
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 200
    rgb = image[..., ::-1].astype(int)
    green = (rgb[..., 1] > 200) & (rgb[..., 0] < 60) & (rgb[..., 2] < 60)
    assert green.sum() > 50  # the ground-truth boxes are drawn
