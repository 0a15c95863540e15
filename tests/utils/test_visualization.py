"""The drawing primitives every picture of the project is made with."""
import cv2
import numpy as np
import pytest

from res2net_det.utils.visualization import (
    GREEN,
    RED,
    class_colour,
    draw_box,
    draw_detections,
    draw_label,
    overlay_mask,
    save_image,
    side_by_side,
    upscale_for_drawing,
)


def test_draw_box_outlines_exactly_the_box():
    img = np.zeros((20, 20, 3), np.uint8)
    draw_box(img, (2.4, 3, 10, 12.6), RED)
    on = np.all(img == RED, axis=2)
    assert on[3, 2:11].all() and on[13, 2:11].all() and on[3:14, 2].all() and on[3:14, 10].all()
    assert not on[4:13, 3:10].any() and on.sum() == 2 * 9 + 2 * 9


def test_overlay_mask_blends_only_inside_and_resizes():
    img = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((2, 2), np.uint8)
    mask[0, 0] = 1
    overlay_mask(img, mask, (200, 0, 0))
    assert img[0, 0].tolist() == [150, 50, 50] and img[1, 1].tolist() == [150, 50, 50]
    assert img[3, 3].tolist() == [100, 100, 100]


def test_label_stays_inside_the_image():
    img = np.zeros((40, 80, 3), np.uint8)
    draw_label(img, "cat 0.90", 0, 0, class_colour(1))
    rows = np.nonzero(img.any(axis=(1, 2)))[0]
    assert rows.min() == 0 and rows.max() < 20  # moved down to stay visible, not drawn above row 0


def test_upscale_and_side_by_side():
    small = np.zeros((10, 20, 3), np.uint8)
    big, scale = upscale_for_drawing(small, 50)
    assert big.shape == (50, 100, 3) and scale == 5.0
    same, one = upscale_for_drawing(np.zeros((60, 60, 3), np.uint8), 50)
    assert one == 1.0 and same.shape == (60, 60, 3)
    joined = side_by_side([np.zeros((10, 10, 3), np.uint8), np.full((5, 5), 7, np.uint8)], gap=2)
    assert joined.shape == (10, 22, 3) and (joined[:, 10:12] == 255).all() and (joined[:, 12:] == 7).all()


def test_draw_detections_keeps_the_input_and_thresholds():
    img = np.zeros((64, 64, 3), np.uint8)
    boxes = np.array([[5, 5, 30, 30], [35, 35, 60, 60]], np.float32)
    drawn = draw_detections(img, boxes, np.array([0.9, 0.1]), np.array([0, 1]), ["a", "b"], 0.5)
    assert not img.any() and drawn.shape == (512, 512, 3)  # upscaled for legibility
    colour_a, colour_b = class_colour(0), class_colour(1)
    assert np.all(drawn == colour_a, axis=2).any() and not np.all(drawn == colour_b, axis=2).any()


def test_save_image_writes_rgb_and_names_failures(tmp_path):
    img = np.zeros((3, 3, 3), np.uint8)
    img[..., 0] = 255
    path = save_image(str(tmp_path / "sub" / "red.png"), img)
    assert cv2.imread(path)[0, 0].tolist() == [0, 0, 255]  # BGR on disk
    with pytest.raises(OSError, match=r"red\.unknownext"):
        save_image(str(tmp_path / "red.unknownext"), img)
    assert GREEN != RED
