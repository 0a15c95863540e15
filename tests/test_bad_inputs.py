"""Bad input caught at the door: each case asserts the error type and that the message names the
file and the record or key at fault (data sets, configs, command lines). Trainer and checkpoint
cases (divergence, garbled last_checkpoint, another model's checkpoint) are in
tests/engines/torchvision/test_trainer.py; image files in tests/data/."""
import argparse
import json

import pytest

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.config.res2net import build_res2net_from_cfg
from res2net_det.data.coco import AnnotationError, coco_problems, load_coco_json
from res2net_det.engines import check_eval_only_weights, default_argument_parser
from res2net_det.evaluation.coco import evaluate_coco_results


def _coco(images=None, annotations=None, categories=None):
    return {
        "images": images if images is not None else [
            {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
            {"id": 2, "file_name": "b.jpg", "width": 10, "height": 10},
        ],
        "annotations": annotations if annotations is not None else [
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0},
        ],
        "categories": categories if categories is not None else [{"id": 1, "name": "thing"}],
    }


def _write(tmp_path, data, name="ann.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["images"].append({"id": 1, "file_name": "c.jpg", "width": 10, "height": 10}),
     "image id 1 is used more than once"),
    (lambda d: d["annotations"].append(dict(d["annotations"][0])), "annotation id 7 is used more than once"),
    (lambda d: d["annotations"][0].update(bbox=[1, float("nan"), 4, 4]), "annotation id 7 has a non-finite bbox"),
    (lambda d: d["annotations"][0].update(bbox=[1, 1, float("inf"), 4]), "annotation id 7 has a non-finite bbox"),
    (lambda d: d["annotations"][0].pop("bbox"), "annotation id 7 has no 'bbox'"),
    (lambda d: d["annotations"][0].update(bbox=["1", 1, 4, 4]), "annotation id 7 has bbox ['1', 1, 4, 4]"),
    (lambda d: d["annotations"][0].update(bbox=[1, 1, 4]), "annotation id 7 has bbox [1, 1, 4]"),
    (lambda d: d["annotations"][0].update(image_id=9), "annotation id 7 refers to image_id 9"),
    (lambda d: d["annotations"][0].update(category_id=3), "annotation id 7 refers to category_id 3"),
    (lambda d: d["images"][1].update(width=0), "image id 2 has width 0"),
    (lambda d: d["images"][1].pop("file_name"), "image id 2 has no 'file_name'"),
])
def test_coco_json_problems_name_file_and_record(tmp_path, change, message):
    data = _coco()
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(AnnotationError) as e:
        load_coco_json(path, str(tmp_path))
    assert path in str(e.value) and message in str(e.value)


def test_every_problem_is_listed_not_just_the_first(tmp_path):
    data = _coco()
    data["images"].append({"id": 2, "file_name": "c.jpg", "width": 10, "height": 10})
    data["annotations"].append({"id": 8, "image_id": 5, "category_id": 1, "bbox": [0, 0, float("nan"), 1]})
    problems = coco_problems(data, "ann.json")
    assert len(problems) == 3, problems


def test_evaluating_on_a_file_without_annotations_fails(tmp_path):
    data = _coco()
    del data["annotations"]
    path = _write(tmp_path, data)
    records, _ = load_coco_json(path, str(tmp_path))  # inference on test-dev style files still loads
    assert len(records) == 2
    detections = [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.9}]
    with pytest.raises(ValueError, match=rf"can't evaluate on {path}: it has no 'annotations'"):
        evaluate_coco_results(path, detections)


def test_eval_only_without_weights_is_refused_unless_asked(tmp_path):
    args = default_argument_parser().parse_args(["--eval-only"])
    with pytest.raises(ValueError, match="--eval-only without MODEL.WEIGHTS"):
        check_eval_only_weights(args, "", str(tmp_path))
    check_eval_only_weights(args, "model.pth", str(tmp_path))
    check_eval_only_weights(default_argument_parser().parse_args(["--eval-only", "--allow-untrained"]), "",
                            str(tmp_path))
    (tmp_path / "last_checkpoint").write_text("model_final.pth")
    check_eval_only_weights(argparse.Namespace(eval_only=True, resume=True), "", str(tmp_path))


@pytest.mark.parametrize("key, value", [("WIDTH_PER_GROUP", 0), ("SCALE", 0), ("NUM_GROUPS", -1), ("DEPTH", 34)])
def test_res2net_keys_that_build_empty_convs_are_named(key, value):
    cfg = get_cfg()
    cfg.MODEL.RES2NET[key] = value
    with pytest.raises(ValueError, match=f"MODEL.RES2NET.{key}"):
        build_res2net_from_cfg(cfg)


def test_a_missing_base_file_is_named(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text('_BASE_: "missing-base.yaml"\nSOLVER:\n  MAX_ITER: 3\n')
    with pytest.raises(FileNotFoundError, match=rf"{child}: a _BASE_ file is missing: .*missing-base.yaml"):
        merge_config_file(get_cfg(), str(child))


def test_a_config_that_is_no_yaml_mapping_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("SOLVER: [unclosed\n")
    with pytest.raises(ValueError, match=f"config file {bad}.*not valid YAML"):
        merge_config_file(get_cfg(), str(bad))


def test_check_data_lists_every_problem_with_counts(tmp_path):
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from tests.helpers import REPO

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(images / "a.jpg")
    (images / "b.jpg").write_bytes(b"not a jpeg")
    data = _coco()
    data["images"].append({"id": 3, "file_name": "c.jpg", "width": 12, "height": 10})
    ok = _write(tmp_path, data, "ok.json")
    data["images"].append({"id": 3, "file_name": "d.jpg", "width": 12, "height": 10})
    data["annotations"].append({"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, float("nan"), 2]})
    broken = _write(tmp_path, data, "broken.json")
    done = subprocess.run([sys.executable, str(REPO / "tools" / "check_data.py"), "--no-progress",
                           "--coco", ok, str(images), "--coco", broken, str(images)],
                          capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert done.returncode == 1, done.stderr
    out = done.stdout
    # ok.json: its JSON is sound, but b.jpg is no image and c.jpg is missing.
    assert "_check_coco_0: 3 images, 2 problem(s)" in out
    assert "b.jpg is not an image" in out and "image file not found" in out and "c.jpg" in out
    # broken.json: both JSON problems listed, not only the first.
    assert "_check_coco_1: 0 images, 2 problem(s)" in out
    assert "image id 3 is used more than once" in out and "annotation id 9 has a non-finite bbox" in out
    assert "4 problem(s) in 2 data set(s)" in out


def test_a_detector_checkpoint_of_another_width_fails_unless_partial_is_asked(tmp_path):
    import torch

    from res2net_det.engines.torchvision.checkpoint import load_model_weights
    from res2net_det.engines.torchvision.registry import get_task
    from res2net_det.modeling.weights import CheckpointError
    from tests.helpers import REPO

    def detector(width, classes=3):
        cfg = merge_config_file(get_cfg(), str(REPO / "configs" / "quickstart.yaml"))
        cfg.MODEL.RES2NET.WIDTH_PER_GROUP, cfg.MODEL.ROI_HEADS.NUM_CLASSES = width, classes
        return get_task("GeneralizedRCNN").build_model(cfg)

    path = tmp_path / "w8.pth"
    torch.save({"model": detector(8).state_dict()}, path)
    with pytest.raises(CheckpointError,
                       match=rf"MODEL.WEIGHTS {path} does not fit this model's backbone.*WEIGHTS_ALLOW_PARTIAL"):
        load_model_weights(detector(4), str(path))
    load_model_weights(detector(4), str(path), allow_partial=True)
    # Another number of classes (fine-tuning) skips the predictor only, with no error.
    report = load_model_weights(detector(8, classes=5), str(path))
    assert report["skipped"] and all("box_predictor" in k for k in report["skipped"])
