"""VOC AP: hand-worked 11-point and all-point cases, the devkit's matching rules, and agreement
with Detectron2's PascalVOCDetectionEvaluator on the same detections (when Detectron2 imports)."""
import os

import numpy as np
import pytest
import torch

from res2net_det.data.catalog import DatasetCatalog
from res2net_det.data.voc import register_pascal_voc
from res2net_det.evaluation.bootstrap import voc_metrics
from res2net_det.evaluation.detection import build_detection_evaluator
from res2net_det.evaluation.per_image import load_per_image
from res2net_det.evaluation.voc import PascalVOCEvaluator, evaluate_voc, voc_ap, voc_precision_recall


def _rec(image_id, boxes, classes=None, difficult=None):
    classes = classes or [0] * len(boxes)
    difficult = difficult or [0] * len(boxes)
    return {"image_id": image_id, "annotations": [
        {"bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "category_id": c, "difficult": d}
        for b, c, d in zip(boxes, classes, difficult)]}


# Two images, four boxes of one class; detections by falling score: TP, FP (a duplicate), TP,
# FP (nothing there), TP; the fourth box is never found.
RECORDS = [_rec("A", [[0, 0, 10, 10], [20, 20, 30, 30]]), _rec("B", [[0, 0, 10, 10], [50, 50, 60, 60]])]
DETECTIONS = [("A", 0.9, [0, 0, 10, 10]), ("A", 0.8, [0, 0, 10, 10]), ("B", 0.7, [1, 0, 11, 10]),
              ("B", 0.6, [100, 100, 110, 110]), ("A", 0.5, [20, 20, 30, 30])]


def _gt(records):
    return {r["image_id"]: (np.array([[a["bbox"][0], a["bbox"][1],
                                       a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                                      for a in r["annotations"]]).reshape(-1, 4),
                            np.array([bool(a["difficult"]) for a in r["annotations"]]))
            for r in records}


def test_hand_worked_precision_recall():
    recall, precision, npos = voc_precision_recall(_gt(RECORDS), DETECTIONS, 0.5)
    assert npos == 4
    np.testing.assert_allclose(recall, [0.25, 0.25, 0.5, 0.5, 0.75])
    np.testing.assert_allclose(precision, [1, 0.5, 2 / 3, 0.5, 0.6])


def test_hand_worked_11_point_interpolation():
    # Best precision at recall >= t: t = 0, .1, .2 -> 1; t = .3, .4, .5 -> 2/3; t = .6, .7 -> .6;
    # t = .8, .9, 1 -> 0 (recall never gets there). (3 + 3 * 2/3 + 2 * .6) / 11 = 6.2 / 11.
    recall, precision, _ = voc_precision_recall(_gt(RECORDS), DETECTIONS, 0.5)
    assert voc_ap(recall, precision, use_07_metric=True) == pytest.approx(6.2 / 11)


def test_hand_worked_all_point_area():
    # Envelope 1 on (0, .25], 2/3 on (.25, .5], .6 on (.5, .75], nothing beyond.
    recall, precision, _ = voc_precision_recall(_gt(RECORDS), DETECTIONS, 0.5)
    assert voc_ap(recall, precision, use_07_metric=False) == pytest.approx(0.25 + 0.25 * 2 / 3 + 0.25 * 0.6)


def test_11_point_grid_is_the_devkits():
    # The devkit's points come from np.arange(0, 1.1, 0.1): its "0.3" is 0.30000000000000004, so a
    # recall of exactly 3/10 does not reach it (Detectron2 and the devkit agree on that).
    recall = np.array([0.1, 0.2, 0.3])
    precision = np.array([1.0, 1.0, 1.0])
    assert voc_ap(recall, precision, True) == pytest.approx(3 / 11)


def test_difficult_boxes_count_neither_way():
    with_difficult = [_rec("A", [[0, 0, 10, 10], [20, 20, 30, 30], [70, 70, 80, 80]], difficult=[0, 0, 1]),
                      RECORDS[1]]
    dets = DETECTIONS + [("A", 0.65, [70, 70, 80, 80])]  # on the difficult box: ignored
    recall, precision, npos = voc_precision_recall(_gt(with_difficult), dets, 0.5)
    assert npos == 4
    plain = voc_precision_recall(_gt(RECORDS), DETECTIONS, 0.5)
    assert voc_ap(recall, precision, True) == pytest.approx(voc_ap(plain[0], plain[1], True))


def test_iou_must_exceed_the_threshold():
    gt = _gt([_rec("A", [[0, 0, 10, 10]])])
    recall, _, _ = voc_precision_recall(gt, [("A", 0.9, [0, 0, 10, 20])], 0.5)  # IoU exactly 0.5
    assert recall.tolist() == [0.0]


def test_metrics_average_classes_and_report_both_definitions():
    records = [_rec("A", [[0, 0, 10, 10], [20, 20, 30, 30]], classes=[0, 1])]
    dets = {0: [("A", 0.9, [0, 0, 10, 10])], 1: [("A", 0.9, [40, 40, 50, 50])]}
    m = evaluate_voc(records, dets, ["cat", "dog"], use_07_metric=True)
    assert m["AP50-cat"] == pytest.approx(100) and m["AP50-dog"] == pytest.approx(0)
    assert m["AP50"] == pytest.approx(50) and m["AP50_11point"] == pytest.approx(50)
    assert m["AP50_allpoint"] == pytest.approx(50) and m["AP75"] == pytest.approx(50)
    with pytest.raises(KeyError, match="not in the data set"):
        evaluate_voc(records, {0: [("Z", 0.5, [0, 0, 1, 1])]}, ["cat", "dog"])


# ------------------------------------------------------------------ on a VOC folder, vs Detectron2
CLASSES = ("circle", "square", "triangle")


def _random_voc(root, rng, num_images=12):
    """A VOC folder of random boxes (some difficult) and detections near them, with distinct
    3-decimal scores and 1-decimal boxes (the precision Detectron2's evaluator writes)."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    ids, detections = [], []
    scores = iter(rng.permutation(np.arange(1, 1000)) / 1000.0)
    for i in range(num_images):
        file_id = f"{i:06d}"
        ids.append(file_id)
        objects = []
        for _ in range(rng.integers(0, 5)):
            x0, y0 = rng.integers(1, 60, size=2)
            x1, y1 = x0 + rng.integers(5, 40), y0 + rng.integers(5, 40)
            objects.append((int(rng.integers(3)), [int(x0), int(y0), int(x1), int(y1)], int(rng.random() < 0.2)))
        with open(os.path.join(root, "Annotations", f"{file_id}.xml"), "w") as f:
            f.write("<annotation><size><width>100</width><height>100</height></size>" + "".join(
                f"<object><name>{CLASSES[c]}</name><pose>x</pose><truncated>0</truncated><difficult>{d}</difficult>"
                f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                for c, b, d in objects) + "</annotation>")
        for c, b, _ in objects:
            for _ in range(rng.integers(0, 3)):  # misses, hits and duplicates
                box = np.round(np.array([b[0] - 1, b[1] - 1, b[2], b[3]], float) + rng.normal(0, 3, 4), 1)
                cls = c if rng.random() < 0.85 else int(rng.integers(3))
                detections.append((file_id, cls, float(next(scores)), box.tolist()))
        for _ in range(rng.integers(0, 2)):  # background detections
            x0, y0 = rng.uniform(0, 80, size=2).round(1)
            detections.append((file_id, int(rng.integers(3)), float(next(scores)), [x0, y0, x0 + 15.0, y0 + 12.0]))
    with open(os.path.join(root, "ImageSets", "Main", "test.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    return ids, detections


def _outputs(ids, detections, to_instances):
    for file_id in ids:
        mine = [d for d in detections if d[0] == file_id]
        boxes = torch.tensor([d[3] for d in mine], dtype=torch.float64).reshape(-1, 4)
        yield [{"image_id": file_id}], [{"instances": to_instances(
            boxes, torch.tensor([d[2] for d in mine]), torch.tensor([d[1] for d in mine], dtype=torch.int64))}]


def _ours(name, root, ids, detections, year, tmp_path):
    register_pascal_voc(name, str(root), "test", year, CLASSES)
    try:
        evaluator = build_detection_evaluator(name, str(tmp_path / "out"))
        assert isinstance(evaluator, PascalVOCEvaluator)
        evaluator.reset()
        for inputs, outputs in _outputs(ids, detections,
                                        lambda b, s, c: {"pred_boxes": b, "scores": s, "pred_classes": c}):
            evaluator.process(inputs, outputs)
        return evaluator.evaluate()["bbox"]
    finally:
        DatasetCatalog.remove(name)


def test_evaluator_writes_its_results(tmp_path):
    ids, detections = _random_voc(tmp_path / "voc", np.random.default_rng(0), num_images=4)
    result = _ours("voc_eval_write_t", tmp_path / "voc", ids, detections, 2007, tmp_path)
    import json

    saved = json.loads((tmp_path / "out" / "voc_eval_results.json").read_text())["bbox"]
    assert saved["AP50"] == pytest.approx(result["AP50"]) and result["AP50"] == pytest.approx(result["AP50_11point"])
    assert len(json.loads((tmp_path / "out" / "voc_detections.json").read_text())) == len(detections)
    # the matches beside them (what compare_runs resamples) reproduce every number
    (section,) = load_per_image(str(tmp_path / "out" / "voc_eval_results.per_image.npz")).values()
    again = voc_metrics(section, np.ones((1, len(ids)), np.float32))
    for key in ("AP50", "AP50_11point", "AP50_allpoint", "AP", "AP75"):
        assert again[key][0] == pytest.approx(result[key], abs=1e-9), key


@pytest.mark.parametrize("year, seed", [(2007, 0), (2007, 1), (2012, 2)])
def test_same_map_as_detectron2(tmp_path, year, seed):
    pytest.importorskip("detectron2", reason="Detectron2 is not installed")
    from detectron2.data import DatasetCatalog as D2Catalog
    from detectron2.data import MetadataCatalog
    from detectron2.data.datasets.pascal_voc import register_pascal_voc as d2_register
    from detectron2.evaluation import PascalVOCDetectionEvaluator
    from detectron2.structures import Boxes, Instances

    root = tmp_path / "voc"
    ids, detections = _random_voc(root, np.random.default_rng(seed))
    name = f"voc_agreement_{year}_{seed}"
    ours = _ours(name, root, ids, detections, year, tmp_path)

    d2_register(name, str(root), "test", year, CLASSES)
    try:
        d2 = PascalVOCDetectionEvaluator(name)
        d2.reset()

        def d2_instances(boxes, scores, classes):
            inst = Instances((100, 100))
            inst.pred_boxes, inst.scores, inst.pred_classes = Boxes(boxes.float()), scores, classes
            return inst

        for inputs, outputs in _outputs(ids, detections, d2_instances):
            d2.process(inputs, outputs)
        theirs = d2.evaluate()["bbox"]
    finally:
        D2Catalog.remove(name)
        MetadataCatalog.remove(name)
    print(f"VOC{year} seed {seed}: ours AP50 {ours['AP50']:.4f} AP {ours['AP']:.4f}; "
          f"Detectron2 AP50 {theirs['AP50']:.4f} AP {theirs['AP']:.4f}")
    assert 0 < ours["AP50"] < 100
    for key in ("AP", "AP50", "AP75"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
