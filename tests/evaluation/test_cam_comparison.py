"""The models x methods runner, its table, and the figure, on a few generated images."""
import json

import cv2
import numpy as np
import pytest
import torch

import res2net_det
from res2net_det.data.shapes_wsol import generate_shapes_wsol
from res2net_det.data.wsol import WSOLDataError, WSOLDataset, load_wsol_split, read_class_list
from res2net_det.evaluation.cam_comparison import PROTOCOL_TITLES, baseline_rows, evaluate_cam_methods, format_table
from res2net_det.evaluation.cam_figure import visualize_cams
from res2net_det.evaluation.wsol import library_upsample
from res2net_det.modeling.cam import CamExtractor


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
    assert result["settings"]["protocol"] == "wsol" and not result["settings"]["align_to_input"]
    assert [(r["model"], r["method"]) for r in rows] == [
        ("baseline", "whole image"), ("baseline", "centre box"), ("tiny", "gradcam"), ("tiny", "eigencam")]
    for row in rows[2:]:
        assert row["protocol"] == "wsol"
        assert row["num_images"] == 6 and row["target_layer"] == "layer4.0"
        assert 0 <= row["gt_known_loc"] <= row["max_box_acc"] <= 100
        assert row["faithfulness_images"] == 2 and 0 <= row["deletion_auc"] <= 1 and 0 <= row["insertion_auc"] <= 1
        assert np.isfinite(row["road"])
    json.dumps(result)  # JSON-ready
    table = format_table(rows).splitlines()
    assert table[0] == PROTOCOL_TITLES["wsol"]  # the header says which protocol produced the numbers
    assert table[1].split()[:4] == ["model", "method", "Top-1", "Cls"]
    assert len(table) == 3 + len(rows)
    # a model whose outputs can't hold the data set's classes is refused, naming the file
    two_class = res2net_det.create_model("res2net50_26w_4s", num_classes=2, layers=(1, 1, 1, 1), base_width=8)
    with pytest.raises(WSOLDataError, match=r"\.xml: class index [23] is out of range for a model with 2 classes"):
        evaluate_cam_methods({"two": two_class}, ["gradcam"], records, (32, 32), faithfulness_images=0, progress=False)


def test_protocols_and_aligned_rows(shapes, tiny):
    _, records = shapes
    kwargs = dict(batch_size=3, faithfulness_images=0, progress=False)
    published = evaluate_cam_methods({"tiny": tiny}, ["gradcam"], records, (32, 32), align_to_input=True, **kwargs)
    rows = {r["method"]: r for r in published["rows"]}
    assert list(rows) == ["whole image", "centre box", "gradcam", "gradcam (aligned)"]
    assert rows["gradcam (aligned)"]["aligned"] and "aligned" not in rows["gradcam"]
    table = format_table(published["rows"]).splitlines()
    assert table[0] == PROTOCOL_TITLES["wsol"] and "(aligned)" in table[1] and "not part of the protocol" in table[1]
    # the same maps without the extra row give the same published row
    plain = evaluate_cam_methods({"tiny": tiny}, ["gradcam"], records, (32, 32), **kwargs)["rows"][-1]
    assert {k: v for k, v in plain.items() if k != "seconds"} == {
        k: v for k, v in rows["gradcam"].items() if k != "seconds"}
    continuous = evaluate_cam_methods({"tiny": tiny}, ["gradcam"], records, (32, 32), protocol="continuous",
                                      cam_curve_interval=0.05, **kwargs)
    assert continuous["rows"][-1]["protocol"] == "continuous" and continuous["settings"]["cam_thresholds"][2] == 20
    assert format_table(continuous["rows"]).splitlines()[0] == PROTOCOL_TITLES["continuous"]


def test_continuous_maps_are_the_librarys(shapes, tiny):
    """The continuous protocol rebuilds the library's upsampled maps from the feature-resolution ones."""
    _, records = shapes
    images = torch.stack([WSOLDataset(records, (96, 64))[i][0] for i in range(3)])
    with CamExtractor(tiny, "gradcam", align_to_input=False) as extractor:
        library = extractor(images, [0, 1, 2])
    with CamExtractor(tiny, "gradcam", upsample=False) as extractor:
        raw = extractor(images, [0, 1, 2])
    assert raw.shape == (3, 3, 2) and library.shape == (3, 96, 64)  # stride 32
    assert np.allclose(np.stack([library_upsample(m, (96, 64)) for m in raw]), library, atol=1e-5)
    with pytest.raises(ValueError, match="one target layer"):
        CamExtractor(tiny, "gradcam", ["layer3.0", "layer4.0"], upsample=False)


def test_runner_on_masks(tmp_path, tiny):
    """OpenImages-style records (masks, no boxes): PxAP and PIoU rows, no box metrics."""
    records = []
    for i in range(3):
        image = np.zeros((24, 24, 3), np.uint8)
        image[4 + 4 * i:14 + 4 * i, 6:16] = 255
        mask = (image[..., 0] > 0).astype(np.uint8) * 255
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
        cv2.imwrite(str(tmp_path / f"{i}_m.png"), mask)
        records.append({"file_name": str(tmp_path / f"{i}.png"), "image_id": i, "label": i % 4, "height": None,
                        "width": None, "annotations": [], "mask_files": [str(tmp_path / f"{i}_m.png")],
                        "ignore_file": None})
    rows = evaluate_cam_methods({"tiny": tiny}, ["gradcam"], records, (32, 32), faithfulness_images=0,
                                progress=False)["rows"]
    for row in rows:
        assert 0 <= row["pxap"] <= 100 and 0 <= row["piou"] <= 100 and "max_box_acc" not in row
    # the whole-image baseline (every pixel scores 0) has PxAP = PIoU = the foreground share,
    # 10 x 10 of 24 x 24 pixels (about that after the nearest-neighbour resize to 32 x 32)
    assert rows[0]["pxap"] == pytest.approx(100 * 100 / 576, rel=0.05) == rows[0]["piou"]
    assert "PxAP" in format_table(rows) and "MaxBoxAcc" not in format_table(rows)


@pytest.mark.parametrize("protocol", ["wsol", "continuous"])
def test_baselines_by_hand(tmp_path, protocol):
    """One 40x40 image whose box is the centred half [10, 10, 30, 30], evaluated at 20x20.

    continuous: GT [5, 5, 15, 15]; the centre box finds it exactly, the whole image has IoU
    100/400 = 0.25 < 0.5.
    wsol: GT [5, 5, 15, 15] as an inclusive box (11 x 11 pixels). The prior is 0.55 on the ring
    of rows/cols 5 and 14 and 0.45 just outside (8 bits: 140 and 114, maximum 0.95 -> 242), so
    thresholds with 114 <= int(tau * 242) < 140 keep rows/cols 5-14: box [5, 5, 5+10, 5+10], IoU 1.
    The whole image (tau 0: all pixels are above 0) is [0, 0, 19, 19]: IoU 121/400 < 0.5.
    """
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((40, 40, 3), np.uint8))
    (tmp_path / "annotations" / "a.xml").write_text(
        "<annotation><size><width>40</width><height>40</height></size><object><name>x</name>"
        "<bndbox><xmin>10</xmin><ymin>10</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object></annotation>")
    (tmp_path / "classes.txt").write_text("x\n")
    from res2net_det.data.wsol import load_ilsvrc_wsol

    records = load_ilsvrc_wsol(str(tmp_path / "images"), str(tmp_path / "annotations"), str(tmp_path / "classes.txt"))
    whole, centre = baseline_rows(records, (20, 20), protocol=protocol)
    assert whole["protocol"] == centre["protocol"] == protocol
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
