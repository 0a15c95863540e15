"""PASCAL VOC reading: the XML loader, names, the config key, and the VOC copy of COCO data."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from res2net_det.config import get_cfg
from res2net_det.data.builtin import register_builtin_datasets, register_datasets_from_cfg
from res2net_det.data.catalog import DatasetCatalog
from res2net_det.data.voc import (
    VOC_CLASSES,
    VOCAnnotationError,
    load_voc_instances,
    register_pascal_voc_from_cfg,
    write_voc_from_coco,
)


def _xml(objects, width=100, height=80):
    body = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, b, d in objects
    )
    return f"<annotation><size><width>{width}</width><height>{height}</height></size>{body}</annotation>"


def write_voc(root, split, files):
    """files: {id: xml text}"""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for file_id, text in files.items():
        with open(os.path.join(root, "Annotations", f"{file_id}.xml"), "w") as f:
            f.write(text)
    with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as f:
        f.write("\n".join(files) + "\n")


def test_loader_converts_boxes_and_keeps_difficult(tmp_path):
    write_voc(tmp_path, "trainval", {
        "000005": _xml([("chair", (1, 2, 10, 20), 0), ("person", (5, 5, 100, 80), 1)]),
        "000007": _xml([]),
    })
    records = load_voc_instances(str(tmp_path), "trainval")
    assert [r["image_id"] for r in records] == ["000005", "000007"]
    r = records[0]
    assert r["file_name"] == os.path.join(str(tmp_path), "JPEGImages", "000005.jpg")
    assert (r["width"], r["height"]) == (100, 80)
    chair, person = r["annotations"]
    # 1-based inclusive pixels -> [xmin - 1, ymin - 1, xmax, ymax], stored as XYWH
    assert chair["bbox"] == [0.0, 1.0, 10.0, 19.0] and chair["bbox_mode"] == "XYWH_ABS"
    assert chair["category_id"] == VOC_CLASSES.index("chair") and chair["difficult"] == 0
    assert person["difficult"] == 1 and person["iscrowd"] == 0  # difficult objects are trained on
    assert records[1]["annotations"] == []


@pytest.mark.parametrize("text, message", [
    ("<annotation><size><width>10</width><height>10</height>", "not valid XML"),
    ("<annotation></annotation>", "no <size>"),
    (_xml([("unicorn", (1, 1, 5, 5), 0)]), "class 'unicorn'"),
    (_xml([("dog", (1, 1, 5, 5), 0)]).replace("<xmax>5</xmax>", ""), "has no <xmax>"),
    (_xml([("dog", (1, 1, 5, 5), 0)]).replace("<ymin>1</ymin>", "<ymin>one</ymin>"), "not a number"),
    (_xml([("dog", (9, 1, 5, 5), 0)]), "empty box"),
    (_xml([("dog", (200, 100, 300, 150), 0)]), "outside"),
])
def test_bad_xml_names_the_file_and_the_problem(tmp_path, text, message):
    write_voc(tmp_path, "test", {"broken": text})
    with pytest.raises(VOCAnnotationError, match=message) as info:
        load_voc_instances(str(tmp_path), "test")
    assert "broken.xml" in str(info.value)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ImageSets.Main.test.txt"):
        load_voc_instances(str(tmp_path), "test")
    write_voc(tmp_path, "test", {"a": _xml([])})
    os.remove(tmp_path / "Annotations" / "a.xml")
    with pytest.raises(FileNotFoundError, match="a.xml"):
        load_voc_instances(str(tmp_path), "test")


def test_partly_outside_box_is_clipped(tmp_path):
    write_voc(tmp_path, "test", {"a": _xml([("dog", (0, 1, 120, 80), 0)])})
    (ann,) = load_voc_instances(str(tmp_path), "test")[0]["annotations"]
    assert ann["bbox"] == [0.0, 0.0, 100.0, 80.0]


def test_detectron2_names_are_registered_with_the_evaluator_metadata(tmp_path):
    register_builtin_datasets()
    for name, year, split in (("voc_2007_trainval", 2007, "trainval"), ("voc_2012_trainval", 2012, "trainval"),
                              ("voc_2007_test", 2007, "test")):
        meta = DatasetCatalog.metadata(name)
        assert meta["evaluator_type"] == "pascal_voc" and meta["year"] == year and meta["split"] == split
        assert meta["thing_classes"] == list(VOC_CLASSES)
        assert meta["dirname"].endswith(f"VOC{year}")


def test_config_key_registers_own_folders(tmp_path):
    write_voc(tmp_path, "val", {"x": _xml([("cat", (2, 2, 9, 9), 0)])})
    cfg = get_cfg()
    cfg.DATASETS.PASCAL_VOC = [["my_voc_val_t", str(tmp_path), "val", 2007],
                               ["my_shapes_t", str(tmp_path), "val", 2012, ["cat", "dog"]]]
    try:
        assert register_pascal_voc_from_cfg(cfg) == ["my_voc_val_t", "my_shapes_t"]
        register_datasets_from_cfg(cfg)  # the same entries again: no-op
        assert DatasetCatalog.get("my_voc_val_t")[0]["annotations"][0]["category_id"] == VOC_CLASSES.index("cat")
        assert DatasetCatalog.metadata("my_shapes_t")["thing_classes"] == ["cat", "dog"]
        assert DatasetCatalog.get("my_shapes_t")[0]["annotations"][0]["category_id"] == 0
        cfg.DATASETS.PASCAL_VOC = [["my_voc_val_t", str(tmp_path / "other"), "val", 2007]]
        with pytest.raises(ValueError, match="already registered"):
            register_pascal_voc_from_cfg(cfg)
        cfg.DATASETS.PASCAL_VOC = [["bad_year_t", str(tmp_path), "val", 2010]]
        with pytest.raises(ValueError, match="2007 or 2012"):
            register_pascal_voc_from_cfg(cfg)
        cfg.DATASETS.PASCAL_VOC = [["too_short", str(tmp_path)]]
        with pytest.raises(ValueError, match=r"DATASETS.PASCAL_VOC\[0\]"):
            register_pascal_voc_from_cfg(cfg)
    finally:
        for name in ("my_voc_val_t", "my_shapes_t", "bad_year_t"):
            DatasetCatalog.remove(name)


def test_write_voc_from_coco_round_trips_boxes(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(images / "a.jpg")
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(images / "b.jpg")
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
                   {"id": 2, "file_name": "b.jpg", "width": 40, "height": 30}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [3.2, 4.6, 10.1, 8.0], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [0.0, 0.0, 40.0, 30.0], "iscrowd": 1},
        ],
        "categories": [{"id": 7, "name": "circle"}, {"id": 9, "name": "square"}],
    }
    json_file = tmp_path / "ann.json"
    json_file.write_text(json.dumps(coco))
    ids = write_voc_from_coco(str(json_file), str(images), str(tmp_path / "voc"), "val", id_prefix="val_")
    assert ids == ["val_a", "val_b"]
    records = load_voc_instances(str(tmp_path / "voc"), "val", ["circle", "square"])
    assert os.path.isfile(records[0]["file_name"]) and records[1]["annotations"] == []
    circle, crowd = records[0]["annotations"]
    assert circle["category_id"] == 0 and np.allclose(circle["bbox"], [3.2, 4.6, 10.1, 8.0], atol=0.5)
    assert crowd["difficult"] == 1 and crowd["bbox"] == [0.0, 0.0, 40.0, 30.0]


def test_shapes_voc_is_the_shapes_coco_data(tmp_path, monkeypatch):
    """shapes_voc_val: the generated shapes, converted on first use, boxes within half a pixel."""
    from res2net_det.data import synthetic, voc

    monkeypatch.setitem(synthetic.SHAPES_SPLITS, "val", (6, 1))  # a small split, same code path
    names = ("shapes_val", "shapes_voc_val", "shapes_voc_train", "shapes_train")
    saved = {n: (DatasetCatalog._loaders.pop(n, None), DatasetCatalog._metadata.pop(n, None)) for n in names}
    try:
        synthetic.register_shapes(str(tmp_path))
        voc.register_shapes_voc(str(tmp_path))
        coco_records = DatasetCatalog.get("shapes_val")
        voc_records = DatasetCatalog.get("shapes_voc_val")
        meta = DatasetCatalog.metadata("shapes_voc_val")
        assert meta["evaluator_type"] == "pascal_voc" and meta["year"] == 2007
        assert meta["thing_classes"] == list(synthetic.SHAPE_CLASSES)
        assert len(voc_records) == len(coco_records) == 6
        for c, v in zip(coco_records, voc_records):
            assert v["image_id"] == "val_" + os.path.splitext(os.path.basename(c["file_name"]))[0]
            assert [a["category_id"] for a in v["annotations"]] == [a["category_id"] for a in c["annotations"]]
            for a, b in zip(c["annotations"], v["annotations"]):
                assert np.allclose(a["bbox"][:2], b["bbox"][:2], atol=0.5)
                assert np.allclose(np.add(a["bbox"][:2], a["bbox"][2:]), np.add(b["bbox"][:2], b["bbox"][2:]), atol=0.5)
    finally:
        for n, (loader, meta) in saved.items():
            DatasetCatalog.remove(n)
            if loader is not None:
                DatasetCatalog._loaders[n], DatasetCatalog._metadata[n] = loader, meta
