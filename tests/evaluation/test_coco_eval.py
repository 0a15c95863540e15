import contextlib
import io
import json

import numpy as np
import pytest
import torch

from res2net_det.data.catalog import DatasetCatalog
from res2net_det.data.coco import get_dataset_dicts, register_coco_instances
from res2net_det.data.synthetic import generate_shapes_coco
from res2net_det.evaluation.coco import COCOEvaluator


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shapes"))
    json_file, image_root = generate_shapes_coco(root, seed=5, splits={"val": (20, 0)})["val"]
    register_coco_instances("_test_eval", {}, json_file, image_root)
    yield "_test_eval", get_dataset_dicts(["_test_eval"], filter_empty=False)
    DatasetCatalog.remove("_test_eval")


def _predictions(records, rng, noise):
    """GT boxes moved by ``noise`` pixels, wrong classes now and then, and false positives."""
    inputs, outputs = [], []
    for r in records:
        boxes, classes = [], []
        for a in r["annotations"]:
            x, y, w, h = a["bbox"]
            boxes.append([x, y, x + w, y + h] + rng.normal(0, noise, 4))
            classes.append(a["category_id"] if rng.random() > 0.1 else (a["category_id"] + 1) % 3)
        for _ in range(rng.integers(0, 3)):
            x, y = rng.uniform(0, 100, 2)
            boxes.append([x, y, x + 20, y + 20])
            classes.append(int(rng.integers(0, 3)))
        boxes = torch.tensor(np.array(boxes, dtype=np.float32).reshape(-1, 4))
        inputs.append({"image_id": r["image_id"]})
        outputs.append({"instances": {"pred_boxes": boxes,
                                      "scores": torch.tensor(rng.random(len(boxes)), dtype=torch.float32),
                                      "pred_classes": torch.tensor(classes, dtype=torch.int64)}})
    return inputs, outputs


def test_results_equal_cocoeval_on_the_saved_detections(dataset, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    name, records = dataset
    inputs, outputs = _predictions(records, np.random.default_rng(0), noise=2.0)
    ev = COCOEvaluator(name, str(tmp_path))
    ev.reset()
    for i in range(0, len(inputs), 3):  # several process() calls, as batches come
        ev.process(inputs[i:i + 3], outputs[i:i + 3])
    results = ev.evaluate()["bbox"]

    saved = str(tmp_path / "coco_instances_results.json")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(DatasetCatalog.metadata(name)["json_file"])
        direct = COCOeval(gt, gt.loadRes(saved), "bbox")
        direct.evaluate()
        direct.accumulate()
        direct.summarize()
    for i, key in enumerate(["AP", "AP50", "AP75", "APs", "APm", "APl"]):
        if direct.stats[i] >= 0:
            assert results[key] == pytest.approx(direct.stats[i] * 100)
    assert 0 < results["AP"] < 100
    # per-category AP averages to AP
    per_cat = [v for k, v in results.items() if k.startswith("AP-")]
    assert len(per_cat) == 3 and np.mean(per_cat) == pytest.approx(results["AP"])
    with open(tmp_path / "coco_eval_results.json") as f:
        assert json.load(f)["bbox"]["AP50"] == pytest.approx(results["AP50"])


def test_perfect_predictions_score_100(dataset, tmp_path):
    name, records = dataset
    ev = COCOEvaluator(name, None)
    ev.reset()
    for r in records:
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in r["annotations"]], dtype=torch.float32).reshape(-1, 4)
        ev.process([{"image_id": r["image_id"]}], [{"instances": {
            "pred_boxes": boxes, "scores": torch.ones(len(boxes)),
            "pred_classes": torch.tensor([a["category_id"] for a in r["annotations"]], dtype=torch.int64)}}])
    res = ev.evaluate()["bbox"]
    assert res["AP"] == pytest.approx(100.0, abs=0.5) and res["AP50"] == pytest.approx(100.0)


def test_no_predictions_gives_zero(dataset):
    name, records = dataset
    ev = COCOEvaluator(name, None)
    ev.reset()
    empty = {"pred_boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
             "pred_classes": torch.zeros(0, dtype=torch.int64)}
    ev.process([{"image_id": records[0]["image_id"]}], [{"instances": empty}])
    assert ev.evaluate()["bbox"]["AP"] == 0.0


def test_masks_are_evaluated_as_segm(dataset):
    from res2net_det.data.mapper import _polygons_to_mask

    name, records = dataset
    ev = COCOEvaluator(name, None)
    ev.reset()
    for r in records:
        anns = r["annotations"]
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=torch.float32).reshape(-1, 4)
        masks = torch.from_numpy(np.stack([_polygons_to_mask(a["segmentation"], r["height"], r["width"]) for a in anns])
                                 if anns else np.zeros((0, r["height"], r["width"]), np.uint8)).bool()
        ev.process([{"image_id": r["image_id"]}], [{"instances": {
            "pred_boxes": boxes, "scores": torch.ones(len(anns)), "pred_masks": masks,
            "pred_classes": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64)}}])
    res = ev.evaluate()
    assert set(res) == {"bbox", "segm"}
    assert res["segm"]["AP50"] == pytest.approx(100.0)
