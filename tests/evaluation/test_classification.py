"""Classification evaluation: top-1 accuracy and the per-image CAM pictures of TEST.VIS_IMAGES."""
import json

import pytest
import torch
from PIL import Image

from res2net_det.data.wsol import load_wsol_split
from res2net_det.evaluation.classification import ClassificationEvaluator, draw_cams_per_image
from res2net_det.modeling.res2net import Res2Net


def test_evaluator_counts_top1_and_top5(tmp_path):
    ev = ClassificationEvaluator("toy", str(tmp_path))
    ev.reset()
    labels = [0, 1, 2, 3]
    # 6 classes; scores ranked so that image 3's label is 6th (outside the top 5)
    logits = torch.tensor([[9.0, 1, 2, 3, 4, 5], [1, 9.0, 2, 3, 4, 5], [1, 2, 9.0, 3, 4, 5], [9.0, 5, 4, 0, 2, 1]])
    outputs = [{"logits": lg, "pred_class": int(lg.argmax())} for lg in logits]
    for i in range(0, 4, 2):  # two batches
        ev.process([{"image_id": j, "label": labels[j]} for j in (i, i + 1)], outputs[i:i + 2])
    res = ev.evaluate()["classification"]
    assert res["top1"] == pytest.approx(75.0) and res["top5"] == pytest.approx(75.0) and res["num_images"] == 4
    saved = json.loads((tmp_path / "classification_results.json").read_text())
    assert [p["pred_class"] for p in saved["predictions"]] == [0, 1, 2, 0]
    ev.reset()
    ev.process([{"image_id": 0, "label": 3}], [{"logits": logits[0], "pred_class": 0}])
    assert ev.evaluate()["classification"]["top5"] == pytest.approx(100.0)  # after a reset, counts start anew


def test_evaluator_without_predictions_names_the_data_set():
    with pytest.raises(ValueError, match="'toy'"):
        ClassificationEvaluator("toy").evaluate()


def test_cam_pictures_one_per_image(tiny_wsol, tmp_path):
    torch.manual_seed(0)
    net = Res2Net([1, 1, 1, 1], base_width=4, num_classes=4).train()
    records = load_wsol_split(tiny_wsol, "val")[:3]
    paths = draw_cams_per_image(net, records, (32, 32), str(tmp_path), ["a", "b", "c", "d"])
    assert [p.rsplit("/", 1)[1] for p in paths] == [r["file_name"].rsplit("/", 1)[1].rsplit(".", 1)[0] + ".png"
                                                   for r in records]
    for p in paths:
        assert Image.open(p).size[0] > 100  # a drawn figure, not an empty file
    assert net.training  # the network's mode is given back
