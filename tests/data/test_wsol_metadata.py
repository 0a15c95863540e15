"""The authors' WSOL metadata layout (metadata/<dataset>/<split>/*.txt): reading and bad rows."""
import os

import cv2
import numpy as np
import pytest

from res2net_det.data.wsol import WSOLDataError, WSOLDataset
from res2net_det.data.wsol_metadata import find_metadata_dir, load_wsol_masks, load_wsol_metadata


def _write(folder, **files):
    os.makedirs(folder, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(folder, name + ".txt"), "w") as f:
            f.write(text)
    return str(folder)


def _box_set(tmp_path, localization="a/1.jpg,1,2,30,20\nb/2.jpg,0,0,9,9\nb/2.jpg,5,5,39,29\n", sizes=None):
    meta = _write(tmp_path / "metadata" / "CUB" / "test",
                  image_ids="a/1.jpg\nb/2.jpg\n",  # a trailing newline, as the authors' files have none
                  class_labels="a/1.jpg,0\nb/2.jpg,199",
                  image_sizes=sizes if sizes is not None else "a/1.jpg,40,30\nb/2.jpg,40,30\n",
                  localization=localization)
    root = tmp_path / "images"
    for image_id in ("a/1.jpg", "b/2.jpg"):
        os.makedirs(root / os.path.dirname(image_id), exist_ok=True)
        cv2.imwrite(str(root / image_id), np.full((30, 40, 3), 100, np.uint8))
    return meta, str(root)


def test_reads_boxes_sizes_labels(tmp_path):
    meta, root = _box_set(tmp_path)
    records, classes = load_wsol_metadata(os.path.dirname(meta), root, "test")  # the data set folder + split
    assert len(classes) == 200  # CUB's class count, though only 0 and 199 appear
    assert [r["wsol_id"] for r in records] == ["a/1.jpg", "b/2.jpg"]
    assert records[0]["file_name"] == os.path.join(root, "a/1.jpg")
    assert (records[1]["label"], records[1]["height"], records[1]["width"]) == (199, 30, 40)
    assert [a["bbox"] for a in records[1]["annotations"]] == [[0, 0, 9, 9], [5, 5, 39, 29]]  # several boxes
    assert find_metadata_dir(meta) == meta
    # the records feed the usual data set
    image, label, boxes, _ = WSOLDataset(records, (15, 20))[1]
    assert image.shape == (3, 15, 20) and label == 199 and boxes.shape == (2, 4)


@pytest.mark.parametrize("field, text, message", [
    ("image_ids", "a/1.jpg\na/1.jpg\n", r"image_ids.txt:2: image 'a/1.jpg' is listed twice"),
    ("class_labels", "a/1.jpg,0\nc/3.jpg,1\n", r"class_labels.txt:2: unknown image 'c/3.jpg'"),
    ("class_labels", "a/1.jpg,x\nb/2.jpg,1\n", r"class_labels.txt:1: class index 'x' is not an integer"),
    ("class_labels", "a/1.jpg,0\n", r"class_labels.txt: no class label for image 'b/2.jpg'"),
    ("image_sizes", "a/1.jpg,40,30\nz.jpg,4,4\n", r"image_sizes.txt:2: unknown image 'z.jpg'"),
    ("image_sizes", "a/1.jpg,40\n", r"image_sizes.txt:1: expected 3 comma-separated fields"),
    ("localization", "a/1.jpg,1,2,30,20\nb/2.jpg,0,0,40,9\n",
     r"localization.txt:2: box \[0, 0, 40, 9\] lies outside the 40x30 image"),
    ("localization", "a/1.jpg,1,2,30,20\nb/2.jpg,-1,0,4,9\n", r"localization.txt:2: box .* lies outside"),
    ("localization", "a/1.jpg,5,2,4,20\nb/2.jpg,0,0,4,9\n", r"localization.txt:1: empty box"),
    ("localization", "a/1.jpg,1,2,30,20\nq.jpg,0,0,4,9\n", r"localization.txt:2: unknown image 'q.jpg'"),
    ("localization", "a/1.jpg,1,2,30,20\n", r"localization.txt: no box for image 'b/2.jpg'"),
    ("localization", "a/1.jpg,1,2,30,20\nb/2.jpg,m.png,\n", r"localization.txt:2: a mask row among box rows"),
])
def test_bad_rows_name_file_and_line(tmp_path, field, text, message):
    meta, root = _box_set(tmp_path)
    _write(meta, **{field: text})
    with pytest.raises(WSOLDataError, match=message):
        load_wsol_metadata(meta, root)


def test_box_without_size_and_missing_folder(tmp_path):
    meta, root = _box_set(tmp_path, sizes="a/1.jpg,40,30\n")
    with pytest.raises(WSOLDataError, match=r"localization.txt:2: image 'b/2.jpg' has no size in .*image_sizes.txt"):
        load_wsol_metadata(meta, root)
    with pytest.raises(WSOLDataError, match="no WSOL metadata at"):
        load_wsol_metadata(str(tmp_path), root)


def _mask_set(tmp_path, localization=None):
    """OpenImages-style: image x has two instance masks and an ignore box; y one mask, no ignore."""
    root = tmp_path / "OpenImages"
    os.makedirs(root / "test" / "c", exist_ok=True)
    for name in ("x", "y"):
        cv2.imwrite(str(root / "test" / "c" / f"{name}.jpg"), np.zeros((8, 8, 3), np.uint8))
    first = np.zeros((8, 8), np.uint8)
    first[0:2, 0:2] = 255
    second = np.zeros((8, 8), np.uint8)
    second[6:8, 6:8] = 1  # any non-zero value is inside
    ignore = np.zeros((8, 8), np.uint8)
    ignore[0:4, 0:4] = 255  # overlaps the first mask: the overlap stays foreground
    for name, mask in (("x_m1", first), ("x_m2", second), ("x_ignore", ignore), ("y_m1", second)):
        cv2.imwrite(str(root / "test" / "c" / f"{name}.png"), mask)
    meta = _write(tmp_path / "metadata" / "OpenImages" / "test",
                  image_ids="test/c/x.jpg\ntest/c/y.jpg\n", class_labels="test/c/x.jpg,3\ntest/c/y.jpg,3\n",
                  image_sizes="",
                  localization=localization or ("test/c/x.jpg,test/c/x_m1.png,test/c/x_ignore.png\n"
                                                "test/c/x.jpg,test/c/x_m2.png,\n"
                                                "test/c/y.jpg,test/c/y_m1.png,\n"))
    return meta, str(root)


def test_reads_openimages_masks(tmp_path):
    meta, root = _mask_set(tmp_path)
    records, classes = load_wsol_metadata(meta, root)
    assert len(classes) == 100 and records[0]["height"] is None and records[0]["annotations"] == []
    assert [os.path.basename(p) for p in records[0]["mask_files"]] == ["x_m1.png", "x_m2.png"]
    assert records[1]["ignore_file"] is None
    foreground, ignore = load_wsol_masks(records[0], (4, 4))  # nearest: every other pixel
    assert foreground.tolist() == [[True, False, False, False], [False] * 4, [False] * 4, [False, False, False, True]]
    assert ignore.tolist() == [[False, True, False, False], [True, True, False, False], [False] * 4, [False] * 4]
    assert not load_wsol_masks(records[1], (8, 8))[1].any()


def test_missing_mask_names_the_row(tmp_path):
    meta, root = _mask_set(tmp_path, "test/c/x.jpg,test/c/x_m1.png,test/c/x_ignore.png\n"
                                     "test/c/y.jpg,test/c/gone.png,\n")
    with pytest.raises(WSOLDataError, match=r"localization.txt:2: mask file not found: .*gone.png"):
        load_wsol_metadata(meta, root)
    meta, root = _mask_set(tmp_path, "test/c/x.jpg,test/c/x_m1.png,test/c/x_ignore.png\n")
    with pytest.raises(WSOLDataError, match=r"localization.txt: no mask for image 'test/c/y.jpg'"):
        load_wsol_metadata(meta, root)
