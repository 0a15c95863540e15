import json
import logging

import numpy as np
import pytest
import torch

from res2net_det.config import get_cfg
from res2net_det.data.builtin import register_datasets_from_cfg
from res2net_det.data.catalog import DatasetCatalog
from res2net_det.data.coco import (
    AnnotationError,
    get_dataset_dicts,
    load_coco_json,
    register_coco_instances,
    register_coco_instances_from_cfg,
)
from res2net_det.data.image_io import ImageReadError, read_image
from res2net_det.data.mapper import DetectionMapper
from res2net_det.data.synthetic import SHAPE_CLASSES, generate_shapes_coco


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shapes"))
    return generate_shapes_coco(root, seed=3, splits={"train": (12, 0)})["train"]


def _copy_json(json_file, tmp_path, edit):
    with open(json_file) as f:
        data = json.load(f)
    edit(data)
    out = tmp_path / "ann.json"
    out.write_text(json.dumps(data))
    return str(out)


def test_synthetic_is_deterministic_and_readable(shapes, tmp_path):
    json_file, image_root = shapes
    again = generate_shapes_coco(str(tmp_path), seed=3, splits={"train": (12, 0)})["train"]
    with open(json_file) as a, open(again[0]) as b:
        assert json.load(a) == json.load(b)
    records, meta = load_coco_json(json_file, image_root)
    assert meta["thing_classes"] == list(SHAPE_CLASSES)
    assert len(records) == 12
    for r in records:
        img = read_image(r["file_name"])
        assert img.shape == (r["height"], r["width"], 3)
        for a in r["annotations"]:
            x, y, w, h = a["bbox"]
            assert w > 0 and h > 0 and x + w <= r["width"] + 1e-6 and y + h <= r["height"] + 1e-6
            assert 0 <= a["category_id"] < len(SHAPE_CLASSES)


def test_category_ids_become_contiguous(shapes, tmp_path):
    def shift(data):  # dataset ids 1,2,3 -> 10,20,30
        for c in data["categories"]:
            c["id"] *= 10
        for a in data["annotations"]:
            a["category_id"] *= 10
    records, meta = load_coco_json(_copy_json(shapes[0], tmp_path, shift), shapes[1])
    assert meta["thing_dataset_id_to_contiguous_id"] == {10: 0, 20: 1, 30: 2}
    assert {a["category_id"] for r in records for a in r["annotations"]} <= {0, 1, 2}


def test_truncated_json(shapes, tmp_path):
    text = open(shapes[0]).read()
    bad = tmp_path / "bad.json"
    bad.write_text(text[: len(text) // 2])
    with pytest.raises(AnnotationError, match="bad.json.*truncated"):
        load_coco_json(str(bad), shapes[1])


def test_unknown_image_and_category(shapes, tmp_path):
    path = _copy_json(shapes[0], tmp_path, lambda d: d["annotations"][0].update(image_id=999))
    with pytest.raises(AnnotationError, match="image_id 999"):
        load_coco_json(path, shapes[1])
    path = _copy_json(shapes[0], tmp_path, lambda d: d["annotations"][0].update(category_id=77))
    with pytest.raises(AnnotationError, match="category_id 77"):
        load_coco_json(path, shapes[1])


def test_zero_area_and_outside_boxes_are_dropped_with_a_warning(shapes, tmp_path, caplog):
    def edit(d):
        d["annotations"][0]["bbox"] = [5, 5, 0, 10]
        d["annotations"][1]["bbox"] = [5000, 5000, 10, 10]
    records_before, _ = load_coco_json(shapes[0], shapes[1])
    with caplog.at_level(logging.WARNING):
        records, _ = load_coco_json(_copy_json(shapes[0], tmp_path, edit), shapes[1])
    assert sum(len(r["annotations"]) for r in records) == sum(len(r["annotations"]) for r in records_before) - 2
    assert "no area inside" in caplog.text


def test_partly_outside_box_is_clipped(shapes, tmp_path):
    def edit(d):
        d["annotations"][0]["bbox"] = [-10, -10, 30, 30]
    records, _ = load_coco_json(_copy_json(shapes[0], tmp_path, edit), shapes[1])
    first = [a for r in records for a in r["annotations"]][0]
    assert first["bbox"] == [0.0, 0.0, 20.0, 20.0]


def test_images_without_annotations_are_skipped_in_training(shapes, tmp_path, caplog):
    path = _copy_json(shapes[0], tmp_path,
                      lambda d: d.update(annotations=[a for a in d["annotations"] if a["image_id"] != 1]))
    register_coco_instances("_test_empty", {}, path, shapes[1])
    try:
        with caplog.at_level(logging.INFO):
            kept = get_dataset_dicts(["_test_empty"], filter_empty=True)
        assert 1 not in {r["image_id"] for r in kept}
        assert "without annotations" in caplog.text
        assert 1 in {r["image_id"] for r in get_dataset_dicts(["_test_empty"], filter_empty=False)}
    finally:
        DatasetCatalog.remove("_test_empty")


def test_unknown_dataset_name():
    with pytest.raises(KeyError, match="no_such_set.*registered"):
        get_dataset_dicts(["no_such_set"])


def test_register_from_config(shapes):
    cfg = get_cfg()
    cfg.DATASETS.COCO_INSTANCES = [["_test_cfg_set", shapes[0], shapes[1]]]
    try:
        assert register_datasets_from_cfg(cfg) == ["_test_cfg_set"]  # the builtins and the config's
        assert register_coco_instances_from_cfg(cfg) == []  # same files again: no-op
        assert len(DatasetCatalog.get("_test_cfg_set")) == 12
        assert "coco_2017_train" in DatasetCatalog and "shapes_val" in DatasetCatalog
        cfg.DATASETS.COCO_INSTANCES = [["_test_cfg_set", "other.json", shapes[1]]]
        with pytest.raises(ValueError, match="already registered"):
            register_coco_instances_from_cfg(cfg)
    finally:
        DatasetCatalog.remove("_test_cfg_set")


def test_mapper_resizes_and_flips_boxes_with_the_image(shapes):
    records, _ = load_coco_json(*shapes)
    rec = next(r for r in records if r["annotations"])
    rec = dict(rec, annotations=rec["annotations"][:1])
    mapper = DetectionMapper(is_train=True, min_sizes=[64], max_size=1000, random_flip="horizontal")
    unflipped = DetectionMapper(is_train=True, min_sizes=[64], max_size=1000, random_flip="none")(rec)
    outs = {False: unflipped}
    for seed in range(20):  # a flip happens with probability 1/2
        out = mapper(rec, np.random.default_rng(seed))
        if not torch.equal(out["image"], unflipped["image"]):
            outs[True] = out
    assert len(outs) == 2
    h, w = outs[False]["image"].shape[1:]
    assert min(h, w) == 64
    a, b = outs[False]["instances"]["gt_boxes"][0], outs[True]["instances"]["gt_boxes"][0]
    assert torch.allclose(b, torch.tensor([w - a[2], a[1], w - a[0], a[3]]), atol=1e-4)
    assert torch.equal(outs[True]["image"], outs[False]["image"].flip(-1))
    x, y, bw, bh = rec["annotations"][0]["bbox"]
    s = w / rec["width"]
    assert torch.allclose(a, torch.tensor([x * s, y * s, (x + bw) * s, (y + bh) * s]), rtol=1e-2)


def test_mapper_checks_image_size_against_annotation(shapes):
    records, _ = load_coco_json(*shapes)
    rec = dict(records[0], height=records[0]["height"] + 1)
    with pytest.raises(ImageReadError, match="annotation says"):
        DetectionMapper(is_train=False, min_sizes=[64], max_size=1000)(rec)
