"""ILSVRC XML / CUB reading, bad input, and the generated shapes set."""
import os

import cv2
import numpy as np
import pytest
import torch

from res2net_det.data.image_io import ImageReadError
from res2net_det.data.shapes_wsol import SHAPE_CLASSES, ensure_shapes_wsol, generate_shapes_wsol
from res2net_det.data.wsol import (
    WSOLDataError,
    WSOLDataset,
    check_labels,
    collate_wsol,
    load_cub_wsol,
    load_ilsvrc_wsol,
    load_wsol_split,
    original_image_size,
    read_class_list,
    read_image_rgb,
    records_for_images,
)

XML = """<annotation><folder>val</folder><filename>{stem}</filename>
<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = ("<object><name>{name}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
       "<ymax>{b[3]}</ymax></bndbox></object>")


def _write_set(root, items, w=40, h=30):
    """items: [(stem, [(name, box)])]; writes images/, annotations/, classes.txt."""
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    with open(os.path.join(root, "classes.txt"), "w") as f:
        f.write("n001 goldfish, Carassius auratus\nn002 great white shark\n")
    for stem, objects in items:
        cv2.imwrite(os.path.join(root, "images", stem + ".JPEG"), np.full((h, w, 3), 128, np.uint8))
        objs = "".join(OBJ.format(name=n, b=b) for n, b in objects)
        with open(os.path.join(root, "annotations", stem + ".xml"), "w") as f:
            f.write(XML.format(stem=stem, w=w, h=h, objects=objs))
    return os.path.join(root, "images"), os.path.join(root, "annotations"), os.path.join(root, "classes.txt")


def test_class_list_takes_first_token_and_rejects_duplicates(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("n01440764 tench, Tinca tinca\n\nn01443537 goldfish\n")
    assert read_class_list(str(p)) == ["n01440764", "n01443537"]
    p.write_text("a x\na y\n")
    with pytest.raises(WSOLDataError, match="listed twice"):
        read_class_list(str(p))


def test_reads_ilsvrc_layout(tmp_path):
    images, anns, classes = _write_set(str(tmp_path), [
        ("val_2", [("n002", (1, 2, 20, 25)), ("n002", (5, 5, 10, 10))]),
        ("val_1", [("n001", (0, 0, 40, 30))]),
    ])
    records = load_ilsvrc_wsol(images, anns, classes)
    assert [os.path.basename(r["file_name"]) for r in records] == ["val_1.JPEG", "val_2.JPEG"]
    assert [r["label"] for r in records] == [0, 1]
    assert records[1]["annotations"][0]["bbox"] == [1, 2, 20, 25]
    assert len(records[1]["annotations"]) == 2
    assert (records[1]["height"], records[1]["width"]) == (30, 40)
    assert read_image_rgb(records[0]).shape == (30, 40, 3)


@pytest.mark.parametrize("objects, message", [
    ([("n003", (1, 1, 5, 5))], "not in the class list"),
    ([("n001", (1, 1, 41, 5))], "outside the 40x30 image"),
    ([("n001", (-1, 1, 5, 5))], "outside"),
    ([("n001", (5, 1, 5, 5))], "empty box"),
    ([("n001", (1, 1, 5, 5)), ("n002", (1, 1, 5, 5))], "different classes"),
    ([], "no <object>"),
])
def test_bad_annotation_names_the_file(tmp_path, objects, message):
    images, anns, classes = _write_set(str(tmp_path), [("bad", objects)])
    with pytest.raises(WSOLDataError, match=message) as e:
        load_ilsvrc_wsol(images, anns, classes)
    assert "bad.xml" in str(e.value)


def test_malformed_and_missing_xml(tmp_path):
    images, anns, classes = _write_set(str(tmp_path), [("a", [("n001", (1, 1, 5, 5))]),
                                                       ("b", [("n001", (1, 1, 5, 5))])])
    with open(os.path.join(anns, "a.xml"), "w") as f:
        f.write("<annotation><size><width>4")
    with pytest.raises(WSOLDataError, match=r"a\.xml: malformed XML"):
        load_ilsvrc_wsol(images, anns, classes)
    with open(os.path.join(anns, "a.xml"), "w") as f:
        f.write("<annotation><size><width>x</width><height>3</height></size></annotation>")
    with pytest.raises(WSOLDataError, match=r"a\.xml: <width> is not a number"):
        load_ilsvrc_wsol(images, anns, classes)
    os.remove(os.path.join(anns, "a.xml"))
    with pytest.raises(WSOLDataError, match=r"no annotation for image .*a\.JPEG"):
        load_ilsvrc_wsol(images, anns, classes)
    assert [os.path.basename(r["file_name"]) for r in load_ilsvrc_wsol(images, anns, classes, "skip")] == ["b.JPEG"]


def test_undecodable_image_and_size_mismatch_name_the_file(tmp_path):
    images, anns, classes = _write_set(str(tmp_path), [("a", [("n001", (1, 1, 5, 5))])])
    record = load_ilsvrc_wsol(images, anns, classes)[0]
    cv2.imwrite(record["file_name"], np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(WSOLDataError, match="does not match the image"):
        read_image_rgb(record)
    with open(record["file_name"], "wb") as f:
        f.write(b"not a jpeg")
    with pytest.raises(ImageReadError, match=r"a\.JPEG is not an image"):
        read_image_rgb(record)


def test_class_index_out_of_range_names_the_file(tmp_path):
    images, anns, classes = _write_set(str(tmp_path), [("a", [("n002", (1, 1, 5, 5))])])
    records = load_ilsvrc_wsol(images, anns, classes)
    check_labels(records, 2)
    with pytest.raises(WSOLDataError, match=r"a\.xml: class index 1 is out of range for a model with 1 classes"):
        check_labels(records, 1)


def test_cub_layout(tmp_path):
    root = tmp_path
    os.makedirs(root / "images" / "001.Bird")
    cv2.imwrite(str(root / "images" / "001.Bird" / "x.jpg"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(root / "images" / "001.Bird" / "y.jpg"), np.zeros((20, 30, 3), np.uint8))
    (root / "images.txt").write_text("1 001.Bird/x.jpg\n2 001.Bird/y.jpg\n")
    (root / "classes.txt").write_text("1 001.Bird\n2 002.Other\n")
    (root / "image_class_labels.txt").write_text("1 2\n2 1\n")
    (root / "bounding_boxes.txt").write_text("1 2.0 3.0 10.0 5.0\n2 0 0 30 20\n")
    (root / "train_test_split.txt").write_text("1 0\n2 1\n")
    test = load_cub_wsol(str(root), "test")
    assert len(test) == 1 and test[0]["label"] == 1
    assert test[0]["annotations"][0]["bbox"] == [2.0, 3.0, 12.0, 8.0]
    assert read_image_rgb(test[0]).shape == (20, 30, 3)
    assert original_image_size(test[0]) == (20, 30)  # CUB stores no size: (H, W) from the file
    (root / "image_class_labels.txt").write_text("1 3\n2 1\n")
    with pytest.raises(WSOLDataError, match=r"image_class_labels\.txt: image id 1 has class 3, outside 1\.\.2"):
        load_cub_wsol(str(root), "test")


def test_dataset_resizes_boxes_and_flips(tmp_path):
    images, anns, classes = _write_set(str(tmp_path), [("a", [("n001", (4, 3, 20, 15))])], w=40, h=30)
    records = load_ilsvrc_wsol(images, anns, classes)
    image, label, boxes, index = WSOLDataset(records, (60, 80))[0]
    assert image.shape == (3, 60, 80) and label == 0 and index == 0
    assert boxes.tolist() == [[8.0, 6.0, 40.0, 30.0]]
    torch.manual_seed(0)
    flipped = [WSOLDataset(records, (60, 80), augment=True)[0][2].tolist() for _ in range(8)]
    assert [[40.0, 6.0, 72.0, 30.0]] in flipped and [[8.0, 6.0, 40.0, 30.0]] in flipped
    batch = collate_wsol([WSOLDataset(records, (60, 80))[0]] * 2)
    assert batch[0].shape == (2, 3, 60, 80) and len(batch[2]) == 2


def test_user_images_without_annotations(tmp_path):
    images, anns, classes = _write_set(str(tmp_path), [("a", [("n002", (1, 1, 5, 5))])])
    cv2.imwrite(os.path.join(images, "b.png"), np.zeros((8, 8, 3), np.uint8))
    plain = records_for_images([images])
    assert [r["label"] for r in plain] == [None, None]
    annotated = records_for_images([images], anns, classes)
    assert [r["label"] for r in annotated] == [1, None]


def test_generated_shapes_are_deterministic_and_boxes_fit(tmp_path):
    a = generate_shapes_wsol(str(tmp_path / "a"), num_train=4, num_val=8, image_size=64, seed=3)
    b = generate_shapes_wsol(str(tmp_path / "b"), num_train=4, num_val=8, image_size=64, seed=3)
    ra, rb = load_wsol_split(a, "val"), load_wsol_split(b, "val")
    assert [r["annotations"] for r in ra] == [r["annotations"] for r in rb]
    assert all(np.array_equal(read_image_rgb(x), read_image_rgb(y)) for x, y in zip(ra, rb))
    assert sorted({r["label"] for r in ra}) == list(range(len(SHAPE_CLASSES)))
    for r in ra:
        x0, y0, x1, y1 = r["annotations"][0]["bbox"]
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
        assert (x1 - x0) >= 0.25 * 64 and (y1 - y0) >= 0.2 * 64
    c = generate_shapes_wsol(str(tmp_path / "c"), num_train=4, num_val=8, image_size=64, seed=4)
    assert [r["annotations"] for r in load_wsol_split(c, "val")] != [r["annotations"] for r in ra]
    # ensure_* reuses a set with the same parameters and regenerates on a change
    root = ensure_shapes_wsol(str(tmp_path / "e"), num_train=2, num_val=2, image_size=32)
    mtime = os.path.getmtime(os.path.join(root, "meta.json"))
    assert ensure_shapes_wsol(root, num_train=2, num_val=2, image_size=32) == root
    assert os.path.getmtime(os.path.join(root, "meta.json")) == mtime
    ensure_shapes_wsol(root, num_train=3, num_val=2, image_size=32)
    assert len(load_wsol_split(root, "train")) == 3
