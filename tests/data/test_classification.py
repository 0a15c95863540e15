"""Classification data: the mapper (resize without crop, flip) and the class checks of the records."""
import numpy as np
import pytest

from res2net_det.data.catalog import DatasetCatalog
from res2net_det.data.classification import ClassificationMapper, get_classification_dicts
from res2net_det.data.wsol import load_wsol_split, register_wsol_split


def test_mapper_resizes_without_crop(tiny_wsol):
    rec = load_wsol_split(tiny_wsol, "val")[0]
    out = ClassificationMapper((32, 48), flip=False)(rec)
    assert out["image"].shape == (3, 32, 48) and out["label"] == rec["label"]
    x0, y0, x1, y1 = rec["annotations"][0]["bbox"]
    assert out["boxes"][0].tolist() == pytest.approx([x0 * 48 / 64, y0 * 32 / 64, x1 * 48 / 64, y1 * 32 / 64])


class _Always:
    """An rng whose coin always says "flip"."""

    def random(self):
        return 0.0


def test_mapper_flips_image_and_boxes_together(tiny_wsol):
    rec = load_wsol_split(tiny_wsol, "val")[0]
    plain = ClassificationMapper((32, 32), flip=False)(rec)
    flipped = ClassificationMapper((32, 32), flip=True)(rec, _Always())
    assert np.allclose(flipped["image"].numpy(), plain["image"].numpy()[:, :, ::-1])
    x0, y0, x1, y1 = plain["boxes"][0].tolist()
    assert flipped["boxes"][0].tolist() == pytest.approx([32 - x1, y0, 32 - x0, y1])


def test_records_must_fit_the_classifier(tiny_wsol):
    register_wsol_split("tiny_cls_records_val", tiny_wsol, "val")
    try:
        assert len(get_classification_dicts(["tiny_cls_records_val"], 4)) == 8
        with pytest.raises(ValueError, match="tiny_cls_records_val.*4 classes.*NUM_CLASSES is 3"):
            get_classification_dicts(["tiny_cls_records_val"], 3)
    finally:
        DatasetCatalog.remove("tiny_cls_records_val")
