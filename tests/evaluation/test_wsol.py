"""WSOL box metrics of the ``continuous`` protocol (our earlier definitions) against small cases
computed by hand; the published protocol's cases are in test_wsol_protocol.py."""
import numpy as np
import pytest

from res2net_det.evaluation.wsol import (
    WSOLEvaluator,
    best_iou_per_threshold,
    boxes_from_cam,
    centre_prior_cam,
)


def test_boxes_from_cam_largest_and_all_contours():
    cam = np.zeros((10, 12), np.float32)
    cam[1:3, 1:3] = 0.9          # 2x2 blob, box [1, 1, 3, 3]
    cam[5:9, 4:10] = 0.6         # 4x6 blob, box [4, 5, 10, 9]
    assert boxes_from_cam(cam, 0.5, all_contours=False).tolist() == [[4, 5, 10, 9]]
    assert sorted(boxes_from_cam(cam, 0.5).tolist()) == [[1, 1, 3, 3], [4, 5, 10, 9]]
    # only the bright blob survives 0.7; nothing survives 0.95; everything at 0
    assert boxes_from_cam(cam, 0.7).tolist() == [[1, 1, 3, 3]]
    assert boxes_from_cam(cam, 0.95).shape == (0, 4)
    assert boxes_from_cam(cam, 0.0).tolist() == [[0, 0, 12, 10]]


def test_best_iou_per_threshold_by_hand():
    cam = np.zeros((10, 10), np.float32)
    cam[0:4, 0:4] = 1.0   # box [0, 0, 4, 4]
    cam[6:10, 6:10] = 0.8  # box [6, 6, 10, 10], larger area? equal area: first largest wins
    cam[6:10, 5] = 0.8     # make the second blob larger: [5, 6, 10, 10] (20 px)
    gt = np.array([[0, 0, 4, 2]])  # area 8
    single, multi = best_iou_per_threshold(cam, gt, [0.0, 0.5, 0.9])
    # tau 0: whole image [0,0,10,10]: IoU 8/100
    assert single[0] == pytest.approx(0.08) and multi[0] == pytest.approx(0.08)
    # tau 0.5: largest contour is the 4x5 blob (no overlap); all contours include [0,0,4,4]: 8/16
    assert single[1] == 0.0 and multi[1] == pytest.approx(0.5)
    # tau 0.9: only [0,0,4,4] is left
    assert single[2] == pytest.approx(0.5) and multi[2] == pytest.approx(0.5)
    # several ground-truth boxes: the best match counts
    _, multi2 = best_iou_per_threshold(cam, np.array([[50, 50, 60, 60], [5, 6, 10, 10]]), [0.5])
    assert multi2[0] == pytest.approx(1.0)


def test_centre_prior_levels_are_centred_boxes():
    prior = centre_prior_cam(8, 8)
    assert boxes_from_cam(prior, 0.0).tolist() == [[0, 0, 8, 8]]
    assert boxes_from_cam(prior, 0.5).tolist() == [[2, 2, 6, 6]]


def _cam_with_box(box, size=20, value=1.0):
    cam = np.zeros((size, size), np.float32)
    x0, y0, x1, y1 = box
    cam[y0:y1, x0:x1] = value
    return cam


def test_evaluator_metrics_by_hand():
    """Three images, hand-computed IoUs:

    image 0: CAM box == GT box (IoU 1 at every threshold > 0; whole image at 0: 100/400).
    image 1: CAM box [0,0,10,10] vs GT [0,0,10,16]: IoU 100/160 = 0.625 for tau in (0, 1].
    image 2: CAM box [0,0,10,10] vs GT [0,0,10,5]: IoU 50/100 = 0.5; whole image 50/400.
    At tau = 0 every CAM is the whole 20x20 image.
    """
    cams = np.stack([_cam_with_box((5, 5, 15, 15)), _cam_with_box((0, 0, 10, 10)), _cam_with_box((0, 0, 10, 10))])
    gts = [np.array([[5, 5, 15, 15]]), np.array([[0, 0, 10, 16]]), np.array([[0, 0, 10, 5]])]
    ev = WSOLEvaluator(cam_thresholds=[0.0, 0.5], protocol="continuous")
    ev.process(cams, gts, gt_labels=[0, 1, 2], pred_labels=[0, 1, 0])
    out = ev.evaluate()
    # IoU >= 0.5 at tau 0.5: all three -> 100%; at tau 0: none
    assert out["max_box_acc"] == pytest.approx(100.0) and out["max_box_acc_threshold"] == 0.5
    assert out["gt_known_loc"] == pytest.approx(100.0)
    assert out["top1_cls"] == pytest.approx(200 / 3)
    assert out["top1_loc"] == pytest.approx(200 / 3)  # image 2 is located but misclassified
    # V2: IoU 0.3 -> 100, 0.5 -> 100, 0.7 -> only image 0 -> 33.3
    assert out["max_box_acc_v2_iou30"] == pytest.approx(100.0)
    assert out["max_box_acc_v2_iou70"] == pytest.approx(100 / 3)
    assert out["max_box_acc_v2"] == pytest.approx((100 + 100 + 100 / 3) / 3)
    fixed = ev.evaluate(loc_cam_threshold=0.0)
    assert fixed["gt_known_loc"] == 0.0 and fixed["top1_loc"] == 0.0 and fixed["max_box_acc"] == pytest.approx(100.0)


def test_evaluator_picks_best_threshold_per_iou_for_v2():
    # A CAM with a bright core [4,4,8,8] and a dim halo [2,2,10,10]; GT [2,2,10,10].
    cam = _cam_with_box((2, 2, 10, 10), 20, 0.4)
    cam[4:8, 4:8] = 1.0
    ev = WSOLEvaluator(cam_thresholds=[0.3, 0.6], protocol="continuous")
    ev.process(cam[None], [np.array([[2, 2, 10, 10]])])
    out = ev.evaluate()
    assert out["max_box_acc_v2_iou70_threshold"] == 0.3  # halo box is exact; core has IoU 16/64
    assert out["max_box_acc_v2_iou70"] == 100.0
    assert "top1_loc" not in out  # no labels given


def test_evaluator_errors():
    ev = WSOLEvaluator()
    with pytest.raises(RuntimeError, match="no images"):
        ev.evaluate()
    with pytest.raises(ValueError, match="2 CAMs but 1 box sets"):
        ev.process(np.zeros((2, 4, 4)), [np.zeros((1, 4))])
    with pytest.raises(ValueError, match="at least one ground-truth box"):
        ev.process(np.zeros((1, 4, 4)), [np.zeros((0, 4))])
