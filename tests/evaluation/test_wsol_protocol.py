"""The published WSOL protocol (``protocol="wsol"``) on cases small enough to check on paper.

8-bit values (float64 maps, as the protocol's): ``uint8(v * 255)`` truncates, so 1.0 -> 255,
0.8 -> 204, 0.6 -> 153, 0.2 -> 51. A threshold ``tau`` keeps pixels strictly above
``int(tau * 255)`` when the map's maximum is 255.
"""
import numpy as np
import pytest

from res2net_det.evaluation.wsol import (
    DEFAULT_CAM_THRESHOLDS,
    PixelEvaluator,
    WSOLEvaluator,
    cam_threshold_grid,
    inclusive_box_iou,
    library_upsample,
    normalize_scoremap,
    quantize_scoremap,
    rescale_boxes,
    resize_scoremap,
    scoremap_boxes,
    wsol_best_iou_per_threshold,
)


def boxes_at(scoremap, tau):
    """(all boxes as lists, the largest contour's box) at one threshold."""
    (boxes, largest), = scoremap_boxes(np.asarray(scoremap, np.float64), [tau])
    return boxes.tolist(), boxes[largest].tolist()


# A 5x5 map: an L of 0.6 around a 1.0 pixel, and a lone 0.2 pixel touching it diagonally.
#   col: 0    1    2    3    4
MAP5 = np.array([
    [0.0, 0.0, 0.0, 0.0, 0.0],   # row 0
    [0.0, 0.2, 0.0, 0.0, 0.0],   # row 1
    [0.0, 0.0, 0.6, 1.0, 0.0],   # row 2
    [0.0, 0.0, 0.6, 0.6, 0.0],   # row 3
    [0.0, 0.0, 0.0, 0.0, 0.0],   # row 4
], np.float64)


def test_quantisation_truncates():
    assert quantize_scoremap(MAP5)[1:4, 1:4].tolist() == [[51, 0, 0], [0, 153, 255], [0, 153, 153]]


def test_5x5_threshold_box_and_inclusive_iou_by_hand():
    # tau 0.2: level int(0.2 * 255) = 51; the 0.2 pixel (51) is NOT strictly above it, so the
    # 2x2 block survives: boundingRect x=2, y=2, w=2, h=2 -> box [2, 2, 2+2, 2+2] = [2, 2, 4, 4]
    # (the end is one past the blob: the blob is columns 2-3, the box columns 2-4).
    assert boxes_at(MAP5, 0.2) == ([[2, 2, 4, 4]], [2, 2, 4, 4])
    # tau 0.19: level 48, the 0.2 pixel joins (8-connected, diagonally): x=1, y=1, w=3, h=3
    assert boxes_at(MAP5, 0.19) == ([[1, 1, 4, 4]], [1, 1, 4, 4])
    # tau 0.7: level 178, only the 1.0 pixel: x=3, y=2, w=h=1 -> [3, 2, 4, 3]
    assert boxes_at(MAP5, 0.7) == ([[3, 2, 4, 3]], [3, 2, 4, 3])
    # Inclusive IoU with the block's exact box [2, 2, 3, 3] (4 pixels):
    #   [2, 2, 4, 4] has 3*3 = 9 pixels, 4 shared -> 4 / 9;  [3, 2, 4, 3]: 2*2 = 4 pixels, 1*2 = 2 shared -> 2 / 6
    gt = np.array([[2, 2, 3, 3]])
    assert inclusive_box_iou([[2, 2, 4, 4], [3, 2, 4, 3]], gt)[:, 0].tolist() == pytest.approx([4 / 9, 1 / 3])
    single, multi = wsol_best_iou_per_threshold(MAP5, gt, [0.19, 0.2, 0.7])
    assert single.tolist() == pytest.approx([4 / 16, 4 / 9, 1 / 3]) and multi.tolist() == single.tolist()


def test_threshold_zero_drops_the_zero_pixels():
    # level int(0 * 255) = 0: pixels > 0 survive, so the zero border is not part of the mask
    assert boxes_at(MAP5, 0.0)[1] == [1, 1, 4, 4]
    # a map without a zero pixel... has one after min-max normalisation: its minimum
    ramp = normalize_scoremap(np.arange(1, 26, dtype=np.float64).reshape(5, 5))
    assert ramp[0, 0] == 0 and ramp[4, 4] == 1
    # 24 pixels > 0: one contour whose rect is the whole map; the end clips to W-1, H-1
    assert boxes_at(ramp, 0.0)[1] == [0, 0, 4, 4]


def test_all_zero_map_gives_the_top_left_pixel_box():
    zero = np.zeros((5, 5), np.float64)
    for tau in (0.0, 0.5, 0.99):
        assert boxes_at(zero, tau) == ([[0, 0, 0, 0]], [0, 0, 0, 0])
    # [0, 0, 0, 0] is one pixel: IoU 1/4 with [0, 0, 1, 1], 0 with a box away from the corner
    single, multi = wsol_best_iou_per_threshold(zero, np.array([[0, 0, 1, 1]]), [0.0, 0.5])
    assert single.tolist() == [0.25, 0.25] and multi.tolist() == [0.25, 0.25]
    assert wsol_best_iou_per_threshold(zero, np.array([[2, 2, 3, 3]]), [0.0])[0].tolist() == [0.0]
    # constant and NaN maps normalise to zeros
    assert not normalize_scoremap(np.full((3, 4), 7.0)).any()
    assert not normalize_scoremap(np.array([[1.0, np.nan], [0.0, 2.0]])).any()


def test_two_contours_largest_and_all():
    # 4x7 map: blob A (1.0) 2x2 at rows 0-1, cols 0-1; blob B (0.8) 2x3 at rows 1-2, cols 4-6,
    # touching the right border. contourArea (polygon through pixel centres): A 1x1 = 1, B 2x1 = 2.
    cam = np.zeros((4, 7), np.float64)
    cam[0:2, 0:2] = 1.0
    cam[1:3, 4:7] = 0.8
    # A: x=0, y=0, w=h=2 -> [0, 0, 2, 2]. B: x=4, y=1, w=3, h=2 -> [4, 1, min(7, 6), min(3, 3)] = [4, 1, 6, 3]
    boxes, largest = boxes_at(cam, 0.5)  # level 127: both blobs (255, 204)
    assert sorted(boxes) == [[0, 0, 2, 2], [4, 1, 6, 3]] and largest == [4, 1, 6, 3]
    assert boxes_at(cam, 0.9) == ([[0, 0, 2, 2]], [0, 0, 2, 2])  # level 229: only A
    # GT = A's box: the largest contour (B) misses it at 0.5, all contours find it; at 0.9 both do
    single, multi = wsol_best_iou_per_threshold(cam, np.array([[0, 0, 2, 2]]), [0.5, 0.9])
    assert single.tolist() == [0.0, 1.0] and multi.tolist() == [1.0, 1.0]


def test_box_touching_the_border_is_exact():
    cam = np.zeros((5, 5), np.float64)
    cam[3:5, 3:5] = 1.0  # rows/cols 3-4: x=3, w=2 -> x1 = min(5, 4) = 4: no extra pixel at the border
    assert boxes_at(cam, 0.5)[1] == [3, 3, 4, 4]
    assert wsol_best_iou_per_threshold(cam, np.array([[3, 3, 4, 4]]), [0.5])[0].tolist() == [1.0]
    cam = np.zeros((5, 5), np.float64)
    cam[0:2, 0:2] = 1.0  # top-left: x=0, w=2 -> x1 = 2, one past the blob
    assert boxes_at(cam, 0.5)[1] == [0, 0, 2, 2]


def test_threshold_grid_is_not_rounded():
    grid = cam_threshold_grid(0.01)
    assert len(grid) == 100 and grid[0] == 0.0 and grid is not DEFAULT_CAM_THRESHOLDS
    assert np.array_equal(grid, DEFAULT_CAM_THRESHOLDS)
    # numpy's 0.57 of the grid is 0.5700000000000001: int(. * 100) is 57; a rounded 0.57 gives 56
    assert grid[57] == 0.5700000000000001 and int(grid[57] * 100) == 57 and int(0.57 * 100) == 56
    # so on a map whose 8-bit maximum is 100, a pixel at 57 is dropped at the grid's 0.57
    # (57 is not above 57) and kept at a rounded 0.57 (level 56)
    cam = np.zeros((3, 3), np.float64)
    cam[0, 0], cam[2, 2] = 100.5 / 255, 57.5 / 255
    assert quantize_scoremap(cam)[[0, 2], [0, 2]].tolist() == [100, 57]
    assert boxes_at(cam, grid[57])[0] == [[0, 0, 1, 1]]
    assert sorted(boxes_at(cam, 0.57)[0]) == [[0, 0, 1, 1], [2, 2, 2, 2]]


def test_ground_truth_rescaled_and_truncated():
    # 100 wide, 150 high -> 224 x 224: x * 2.24, y * 224/150, each truncated
    # 10 -> 22.4 -> 22; 99 -> 221.76 -> 221; 20 -> 29.87 -> 29; 149 -> 222.51 -> 222
    assert rescale_boxes([[10, 20, 99, 149]], (150, 100), (224, 224)).tolist() == [[22, 29, 221, 222]]
    assert rescale_boxes([[10, 20, 99, 149]], (150, 100), (224, 224), "continuous")[0].tolist() == pytest.approx(
        [22.4, 29.8667, 221.76, 222.5067], abs=1e-3)
    # 45 * 224 / 160 is 63 exactly, but 45 * (224 / 160) is 62.99999999999999: the order matters before int()
    assert int(45 * (224 / 160)) == 62
    assert rescale_boxes([[45, 0, 85, 0]], (1, 160), (1, 224))[0].tolist() == [63, 0, 119, 0]


def test_resize_scoremap_undoes_any_affine_scaling():
    rng = np.random.default_rng(0)
    raw = rng.random((7, 5)).astype(np.float64)
    out = resize_scoremap(raw, (32, 24))
    assert out.shape == (32, 24) and out.dtype == np.float64 and out.min() == 0 and out.max() == 1
    assert np.allclose(resize_scoremap(3 * raw + 5, (32, 24)), out, atol=1e-5)
    assert not resize_scoremap(np.full((4, 4), 2.0), (8, 8)).any()
    # the continuous protocol's map is the library's: bilinear, not bicubic
    assert not np.allclose(library_upsample(raw, (32, 24)), out, atol=1e-3)


def _evaluator_on_hand_set(**kwargs):
    """Three 5x5 images:

    0: MAP5 with GT [2, 2, 3, 3]:           best IoU 4/16 (tau <= 0.19), 4/9 (0.2 <= tau < 0.6), 1/3 (tau >= 0.6)
    1: block at the border, GT [3, 3, 4, 4]: IoU 1 at every tau (the blob is 1.0 on 0)
    2: all-zero map, GTs [4, 4, 4, 4] and [0, 0, 1, 1] (two boxes): the [0, 0, 0, 0] box, IoU 1/4
    """
    border = np.zeros((5, 5), np.float64)
    border[3:5, 3:5] = 1.0
    ev = WSOLEvaluator(**kwargs)
    ev.process(np.stack([MAP5, border, np.zeros((5, 5), np.float64)]),
               [np.array([[2, 2, 3, 3]]), np.array([[3, 3, 4, 4]]), np.array([[4, 4, 4, 4], [0, 0, 1, 1]])],
               gt_labels=[0, 1, 2], pred_labels=[0, 0, 2])
    return ev


def test_metrics_by_hand():
    out = _evaluator_on_hand_set().evaluate()
    assert out["protocol"] == "wsol" and out["num_images"] == 3
    # IoU >= 0.5: only image 1, at every tau -> 33.3 at the first threshold, 0.0
    assert out["max_box_acc"] == pytest.approx(100 / 3) and out["max_box_acc_threshold"] == 0.0
    assert out["gt_known_loc"] == pytest.approx(100 / 3)
    assert out["top1_cls"] == pytest.approx(200 / 3) and out["top1_loc"] == 0.0  # image 1 is misclassified
    # IoU >= 0.3: image 1 always; image 0 from tau 0.2 (4/9, then 1/3 >= 0.3) -> 66.7 first at 0.2
    assert out["max_box_acc_v2_iou30"] == pytest.approx(200 / 3) and out["max_box_acc_v2_iou30_threshold"] == 0.2
    assert out["max_box_acc_v2_iou50"] == pytest.approx(100 / 3)
    assert out["max_box_acc_v2_iou70"] == pytest.approx(100 / 3)
    assert out["max_box_acc_v2"] == pytest.approx((200 / 3 + 100 / 3 + 100 / 3) / 3)
    # a given threshold picks the nearest grid value
    assert _evaluator_on_hand_set().evaluate(loc_cam_threshold=0.5)["loc_cam_threshold"] == 0.5


def test_maps_of_any_size_and_boxes_from_the_original_image():
    # a 6x10 map (H x W) of an image of 30 x 50: the GT [10, 5, 29, 19] becomes [2, 1, 5, 3]
    # (10/5 = 2, 5/5 = 1, 29/5 = 5.8 -> 5, 19/5 = 3.8 -> 3); the blob rows 1-2, cols 2-4 gives
    # [2, 1, 5, 3] (x=2, w=3; y=1, h=2): IoU 1
    cam = np.zeros((6, 10), np.float64)
    cam[1:3, 2:5] = 1.0
    ev = WSOLEvaluator([0.5])
    ev.process(cam[None], [np.array([[10, 5, 29, 19]])], image_sizes=[(30, 50)])
    assert ev.evaluate()["max_box_acc"] == 100.0


def test_bad_maps_are_refused():
    ev = WSOLEvaluator()
    with pytest.raises(ValueError, match="must lie in"):
        ev.process(np.full((1, 4, 4), 2.0), [np.zeros((1, 4))])
    with pytest.raises(ValueError, match="NaN"):
        ev.process(np.full((1, 4, 4), np.nan), [np.zeros((1, 4))])
    with pytest.raises(ValueError, match="unknown WSOL protocol"):
        WSOLEvaluator(protocol="mine")
    with pytest.raises(ValueError, match="cam_curve_interval"):
        cam_threshold_grid(0.0)


# ---------------------------------------------------------------------------- PxAP / PIoU
def test_pxap_and_piou_by_hand():
    """2x2 map [[1.0, 0.5], [0.5, 0.0]], foreground the top row.

    score >= t:  t=2: nothing;  t=1: tp 1, fp 0 (P 1, R 1/2);  t=0.5: tp 2, fp 1 (P 2/3, R 1);
                 t=0: tp 2, fp 2 (P 1/2, R 1).
    PxAP = 1 * 1/2 + 2/3 * 1/2 + 1/2 * 0 = 5/6.   PIoU on the grid: t=0.5: 2/(2+1), t=0: 2/(2+2).
    Ignoring the bottom-left pixel removes the false positive at 0.5: PxAP 1, PIoU 1.
    """
    scores = np.array([[[1.0, 0.5], [0.5, 0.0]]], np.float64)
    foreground = [np.array([[True, True], [False, False]])]
    for kwargs in ({"cam_thresholds": [0.0, 0.5]}, {}):  # a two-value grid, and the default 0.01 grid
        ev = PixelEvaluator(**kwargs)
        ev.process(scores, foreground)
        out = ev.evaluate()
        assert out["pxap"] == pytest.approx(500 / 6) and out["piou"] == pytest.approx(200 / 3)
        assert out["piou_threshold"] == 0.5
        ev = PixelEvaluator(**kwargs)
        ev.process(scores, foreground, [np.array([[False, False], [True, False]])])
        assert ev.evaluate()["pxap"] == pytest.approx(100.0) and ev.evaluate()["piou"] == pytest.approx(100.0)


def test_pxap_accumulates_pixels_over_images():
    # two 1x2 images whose pixels together are the 2x2 case above
    ev = PixelEvaluator([0.0, 0.5])
    ev.process(np.array([[[1.0, 0.5]], [[0.5, 0.0]]], np.float64),
               [np.array([[True, True]]), np.array([[False, False]])])
    assert ev.evaluate()["pxap"] == pytest.approx(500 / 6)
    with pytest.raises(RuntimeError, match="no foreground"):
        empty = PixelEvaluator()
        empty.process(np.zeros((1, 2, 2), np.float64), [np.zeros((2, 2), bool)])
        empty.evaluate()
