"""The detection picture writer shared by both engines' TEST.VIS_IMAGES and tools/demo.py."""
import os

import cv2
import numpy as np
import pytest
import torch

from res2net_det.evaluation.coco import write_detection_pictures
from res2net_det.utils.visualization import class_colour


def _image(path, value=40):
    cv2.imwrite(str(path), np.full((32, 48, 3), value, np.uint8))
    return {"file_name": str(path)}


def test_writes_one_png_per_record_with_the_boxes(tmp_path):
    (tmp_path / "a").mkdir()
    records = [_image(tmp_path / "a" / "x.JPEG"), _image(tmp_path / "a" / "y.png")]
    seen = []

    def predict(record, image):
        seen.append((record["file_name"], image.shape))
        return {"pred_boxes": torch.tensor([[2.0, 2.0, 20.0, 20.0]]), "scores": torch.tensor([0.9]),
                "pred_classes": torch.tensor([2])}

    paths = write_detection_pictures(records, predict, str(tmp_path / "out"), ["a", "b", "c"])
    assert [os.path.basename(p) for p in paths] == ["x.png", "y.png"]
    assert seen == [(r["file_name"], (32, 48, 3)) for r in records]
    drawn = cv2.imread(paths[0])[..., ::-1]
    assert np.all(drawn == class_colour(2), axis=2).any()


def test_two_records_with_one_stem_are_refused_before_writing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    records = [_image(tmp_path / "a" / "1.jpg"), _image(tmp_path / "b" / "1.png")]
    with pytest.raises(ValueError, match=r"same picture 1\.png"):
        write_detection_pictures(records, lambda r, i: pytest.fail("nothing may run"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
