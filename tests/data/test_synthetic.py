"""The scene painter and the three generated data sets it paints.

The quickstarts' quality bars (detection AP50, SOD MAE/maxF, CAM localisation) were tuned on these
pictures, so a sample of each set is pinned by checksum: the raw pixels (before JPEG) and the
annotations. A change of these numbers means the data sets changed - rerun the three quickstarts
before updating them. (A new OpenCV may also move anti-aliased edges by a grey level.)
"""
import hashlib
import json

import cv2
import numpy as np
import pytest

from res2net_det.data import shapes_wsol, synthetic, synthetic_saliency
from res2net_det.data.synthetic import (
    BACKGROUNDS,
    SHAPES,
    blend,
    coverage,
    paint_background,
    place,
    random_integers,
    shape_outline,
    to_uint8,
)


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


# Computed with the three generators as they were before they shared the painter (commit e9a0ea7).
COCO = {"train": ("2cf82492788b2b3d", "ff5cde8a19761faa"), "val": ("de6a0571047d59fc", "44cc74380ef085ad")}
SOD = {0: "ea843bb0714f773c", 1: "68e2d3d7dc8b0e5d", 1_000_000: "8196bb59135bcc42"}
WSOL = {
    (0, 0, 0, "circle"): ("422d0156ec56954e", [69, 43, 121, 109]),
    (0, 0, 1, "square"): ("72da058e4655a54b", [3, 37, 95, 113]),
    (0, 1, 5, "triangle"): ("889bf25bc399905b", [53, 46, 105, 90]),
    (3, 0, 7, "cross"): ("d4a1fdf125d67ec1", [5, 31, 63, 111]),
}


@pytest.mark.parametrize("split,seed", [("train", 0), ("val", 1)])
def test_coco_shapes_are_unchanged(tmp_path, monkeypatch, split, seed):
    written = []
    real_imwrite = cv2.imwrite
    monkeypatch.setattr(cv2, "imwrite", lambda path, img, *a: written.append(img.copy()) or real_imwrite(path, img, *a))
    data = synthetic._make_split(str(tmp_path), split, 6, seed)
    assert len(written) == 6
    assert (_digest(*written),
            hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]) == COCO[split]


@pytest.mark.parametrize("seed", sorted(SOD))
def test_saliency_samples_are_unchanged(seed):
    img, mask = synthetic_saliency._draw_sample(seed)
    assert _digest(img, mask) == SOD[seed]


@pytest.mark.parametrize("key", sorted(WSOL))
def test_wsol_samples_are_unchanged(key):
    seed, split, index, cls = key
    img, box = shapes_wsol.draw_shape_image(np.random.default_rng([seed, split, index]), cls, 128)
    assert (_digest(img), box) == WSOL[key]


def test_every_background_recipe_is_deterministic_and_the_right_size():
    for style in BACKGROUNDS:
        a = paint_background(np.random.default_rng(1), style, 40, 40)
        b = paint_background(np.random.default_rng(1), style, 40, 40)
        assert a.shape == (40, 40, 3) and np.array_equal(a, b), style
    legacy = paint_background(np.random.RandomState(0), "detection", 30, 50)  # the COCO set's generator
    assert legacy.shape == (30, 50, 3)
    with pytest.raises(KeyError, match="unknown background style"):
        paint_background(np.random.default_rng(0), "nope", 8, 8)


def test_random_integers_takes_both_numpy_generators():
    assert random_integers(np.random.RandomState(0), 0, 4) == np.random.RandomState(0).randint(4)
    assert random_integers(np.random.default_rng(0), 3, 9) == np.random.default_rng(0).integers(3, 9)


def test_shapes_are_placed_and_filled():
    for kind, size in [("regular", dict(radius=10, sides=5)), ("ellipse", dict(a=10, b=5)), ("box", dict(a=10, b=5)),
                       ("triangle", dict(width=20, height=20)), ("cross", dict(width=20, height=20)),
                       ("irregular", dict(radius=10)), ("star", dict(radius=10)), ("superellipse", dict(a=10, b=5))]:
        assert kind in SHAPES
        outline = shape_outline(kind, np.random.default_rng(0), centre=(20, 15), angle=0.3, **size)
        assert np.abs(outline.mean(0) - (20, 15)).max() < 3, kind
        assert np.abs(outline - (20, 15)).max() <= 10.5 * np.sqrt(2), kind
    np.testing.assert_allclose(place(np.array([[1.0, 0.0]]), (2, 3), np.pi / 2), [[2, 4]], atol=1e-12)
    mask = coverage(30, 40, shape_outline("box", centre=(20, 15), a=5, b=5), antialias=False)
    assert mask[15, 20] == 255 and mask[0, 0] == 0 and mask.max() == 255
    canvas = np.zeros((30, 40, 3), np.float32)
    out = to_uint8(blend(canvas, np.array([255.0, 0, 0]), mask))
    assert out[15, 20].tolist() == [255, 0, 0] and out[0, 0].tolist() == [0, 0, 0]
    with pytest.raises(KeyError, match="unknown shape"):
        shape_outline("blob")
