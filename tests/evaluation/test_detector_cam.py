"""CAMs of detectors per FPN level, their scores on ground-truth boxes, the comparison of two
detectors with intervals and the figure, on tiny random Faster R-CNNs."""
import json

import cv2
import numpy as np
import pytest
import torch

from res2net_det.evaluation.detector_cam import (
    SCORE_NAMES,
    DetectorForCam,
    box_scores,
    evaluate_detector_cams,
    format_detector_cam_table,
    save_detector_cam_figures,
)
from res2net_det.modeling.cam import COMBINED
from tests.helpers import tiny_detector


def test_box_scores_on_known_maps():
    cam = np.zeros((40, 40))
    cam[5:10, 5:10] = 1.0  # all the mass in the small box
    boxes = np.array([[4, 4, 11, 11], [20, 20, 39, 39]], float)
    areas = [7 * 7, 50 * 50]  # original pixels: one small, one medium
    s = box_scores(cam, boxes, areas)
    assert s["energy"] == 100 and s["pointing"] == 100
    assert s["energy_small"] == 100 and s["energy_medium"] == 0 and s["pointing_medium"] == 0
    assert np.isnan(s["energy_large"]) and np.isnan(s["pointing_large"])
    uniform = box_scores(np.ones((40, 40)), boxes, areas)
    assert uniform["energy"] == pytest.approx(uniform["box_area"])  # the floor a uniform map scores
    assert np.isnan(box_scores(np.zeros((40, 40)), boxes, areas)["energy"])  # an empty map says nothing
    assert np.isnan(box_scores(cam, np.zeros((0, 4)), [])["pointing"])  # nor does an image without boxes


def _records(tmp_path, n=3):
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        picture = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
        path = str(tmp_path / f"im{i}.png")
        cv2.imwrite(path, picture)
        records.append({"file_name": path, "image_id": i, "height": 48, "width": 48,
                        "annotations": [{"bbox": [4.0 + i, 6.0, 20.0, 16.0], "category_id": 0, "area": 320.0}]})
    return records


def _for_cam(model):
    def prepare(record):
        picture = cv2.cvtColor(cv2.imread(record["file_name"]), cv2.COLOR_BGR2RGB)
        resized = cv2.resize(picture, (64, 64))
        return torch.from_numpy(resized).permute(2, 0, 1).float() / 255, resized, 64 / 48

    return DetectorForCam(model, prepare)


def test_two_detectors_compared_with_intervals_and_drawn(tmp_path):
    records = _records(tmp_path)
    detectors = {"resnet": _for_cam(tiny_detector(0)), "res2net": _for_cam(tiny_detector(1))}
    result, maps = evaluate_detector_cams(detectors, records, ["eigencam", "gradcam"], bootstrap=50, keep_maps=2)
    json.dumps(result)  # JSON-ready
    assert result["settings"]["units"] == "percent"
    scores = result["images"][0]["scores"]["res2net"]["eigencam"]
    assert list(scores) == ["p2", "p3", "p4", COMBINED] and set(scores["p2"]) == set(SCORE_NAMES)
    mean = result["summary"]["res2net"]["eigencam"][COMBINED]["energy"]
    per_image = [im["scores"]["res2net"]["eigencam"][COMBINED]["energy"] for im in result["images"]]
    assert mean == pytest.approx(np.mean(per_image))
    delta = result["comparison"]["res2net"]["eigencam"][COMBINED]["energy"]
    first = [im["scores"]["resnet"]["eigencam"][COMBINED]["energy"] for im in result["images"]]
    assert delta["delta"] == pytest.approx(np.mean(per_image) - np.mean(first)) and delta["n_images"] == 3
    assert delta["ci95"][0] <= delta["delta"] <= delta["ci95"][1]
    table = format_detector_cam_table(result)
    assert "Δ vs resnet" in table and "combined" in table
    paths = save_detector_cam_figures(str(tmp_path / "out"), result, maps)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["cams_eigencam.png", "cams_gradcam.png"]
    assert open(paths[0], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_same_detector_twice_differs_by_nothing(tmp_path):
    records = _records(tmp_path, 2)
    model = tiny_detector(0)
    result, _ = evaluate_detector_cams({"a": _for_cam(model), "b": _for_cam(model)}, records, ["eigencam"],
                                       bootstrap=20)
    entry = result["comparison"]["b"]["eigencam"]["p2"]["energy"]
    assert entry["delta"] == 0 and entry["ci95"] == [0.0, 0.0] and entry["significant"] is False
