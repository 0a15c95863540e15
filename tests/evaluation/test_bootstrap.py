"""The paired bootstrap: every resampled metric equals the evaluator run on the resampled data set
(duplicated images renamed), intervals of identical runs are empty, and a known difference lies
inside its interval."""
import numpy as np
import pytest

from res2net_det.evaluation.bootstrap import (
    cam_metrics,
    coco_metrics,
    paired_interval,
    ranked_ap,
    resample_weights,
    saliency_metrics,
    voc_metrics,
)
from res2net_det.evaluation.bootstrap_benchmark import coco_eval_matches, generated_coco_comparison
from res2net_det.evaluation.per_image import load_per_image, pack_bits, save_per_image, unpack_bits
from res2net_det.evaluation.saliency import SaliencyMetrics
from res2net_det.evaluation.voc import evaluate_voc
from res2net_det.evaluation.wsol import PixelEvaluator, WSOLEvaluator

COCO_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _duplicated(gt, detections, image_ids, counts):
    """The data set in which image ``image_ids[i]`` appears ``counts[i]`` times, each copy renamed."""
    by_image, dets = {}, {}
    for a in gt["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for d in detections:
        dets.setdefault(d["image_id"], []).append(d)
    info = {im["id"]: im for im in gt["images"]}
    images, anns, results = [], [], []
    for image_id, count in zip(image_ids, counts):
        for _ in range(int(count)):
            new = len(images) + 1
            images.append(dict(info[int(image_id)], id=new))
            anns += [dict(a, id=len(anns) + 1 + k, image_id=new) for k, a in enumerate(by_image.get(int(image_id), []))]
            results += [dict(d, image_id=new) for d in dets.get(int(image_id), [])]
    return {"images": images, "annotations": anns, "categories": gt["categories"]}, results


@pytest.fixture(scope="module")
def small_coco():
    # unrounded scores: no ties, so the order of tied detections (which follows the renamed ids) can't matter
    return generated_coco_comparison(num_images=40, dets_per_image=15, num_categories=4, boxes_per_image=4,
                                     seed=3, score_decimals=None)


def test_full_sample_reproduces_cocoeval(small_coco):
    gt, run_a, _ = small_coco
    section, summary = coco_eval_matches(gt, run_a)
    again = coco_metrics(section, np.ones((1, len(section["image_ids"])), np.float32))
    for name in COCO_NAMES:
        assert again[name][0] == pytest.approx(summary[name], abs=1e-9), name


def test_each_resample_equals_cocoeval_on_the_resampled_images(small_coco):
    gt, run_a, _ = small_coco
    section, _ = coco_eval_matches(gt, run_a)
    weights = resample_weights(len(section["image_ids"]), 3, seed=7)
    resampled = coco_metrics(section, weights)
    assert any(np.any(w > 1) for w in weights)  # duplicates are exercised
    for b in range(len(weights)):
        gt_b, dets_b = _duplicated(gt, run_a, section["image_ids"], weights[b])
        _, expected = coco_eval_matches(gt_b, dets_b)
        for name in COCO_NAMES:
            assert resampled[name][b] == pytest.approx(expected[name], abs=1e-6), (b, name)


def test_crowd_and_area_ignores_are_kept():
    gt, run_a, _ = generated_coco_comparison(num_images=30, dets_per_image=10, num_categories=3, seed=5,
                                             score_decimals=None)
    for a in gt["annotations"][::5]:
        a["iscrowd"] = 1  # many crowd regions: detections on them are ignored, not false
    section, summary = coco_eval_matches(gt, run_a)
    assert unpack_bits(section["ign"], 10).any()
    again = coco_metrics(section, np.ones((1, 30), np.float32))
    assert [again[n][0] for n in COCO_NAMES] == pytest.approx([summary[n] for n in COCO_NAMES], abs=1e-9)


def test_known_difference_lies_in_the_interval():
    """One class, one box per image; a run finds it (score above every false box) on the images
    whose draw u < p. The population AP is (floor(100 p) + 1) / 101 for every IoU threshold, so
    runs with p = 0.5 and 0.7 differ by 19.80 points; 400 sampled images must bracket it."""
    rng = np.random.default_rng(11)
    n = 400
    u = rng.random(n)
    images = [{"id": i + 1, "width": 200, "height": 200} for i in range(n)]
    gt = {"images": images, "categories": [{"id": 1, "name": "thing"}],
          "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [20, 20, 80, 80], "area": 6400,
                           "iscrowd": 0} for i in range(n)]}

    def run(p):
        out = []
        for i in range(n):
            if u[i] < p:
                out.append({"image_id": i + 1, "category_id": 1, "bbox": [20, 20, 80, 80],
                            "score": 0.5 + 0.5 * rng.random()})
            out.append({"image_id": i + 1, "category_id": 1, "bbox": [150, 150, 40, 40], "score": 0.4 * rng.random()})
        return out

    (sec_a, _), (sec_b, _) = coco_eval_matches(gt, run(0.5)), coco_eval_matches(gt, run(0.7))
    weights = resample_weights(n, 1000, seed=0)
    truth = 100 * (71 - 51) / 101
    for name in ("AP", "AP50"):
        low, high, used = paired_interval(coco_metrics(sec_a, weights)[name], coco_metrics(sec_b, weights)[name])
        assert used == 1000 and low < truth < high, (name, low, high)
        assert 2 < high - low < 15  # the Δ of 400 images is a few points wide, not degenerate


def test_identical_runs_give_a_zero_width_interval(small_coco):
    gt, run_a, _ = small_coco
    section, _ = coco_eval_matches(gt, run_a)
    weights = resample_weights(40, 200, seed=1)
    a, b = coco_metrics(section, weights), coco_metrics(section, weights)
    assert paired_interval(a["AP"], b["AP"])[:2] == (0.0, 0.0)


def test_voc_resamples_equal_the_devkit_on_duplicated_records():
    rng = np.random.default_rng(2)
    records, detections = [], {0: [], 1: []}
    for i in range(25):
        boxes = rng.uniform(0, 60, (3, 2))
        anns = [{"bbox": [x, y, 30, 30], "category_id": int(k % 2), "difficult": int(k == 2 and i % 3 == 0)}
                for k, (x, y) in enumerate(boxes)]
        records.append({"image_id": f"img{i}", "annotations": anns})
        for a in anns:
            x, y, w, h = a["bbox"]
            jitter = rng.normal(0, 4, 4)
            detections[a["category_id"]].append((f"img{i}", float(rng.random()),
                                                 [x + jitter[0], y + jitter[1], x + w + jitter[2], y + h + jitter[3]]))
        detections[int(rng.integers(2))].append((f"img{i}", float(rng.random()), [0, 0, 10, 10]))
    per_image = {}
    full = evaluate_voc(records, detections, ["a", "b"], per_image=per_image)
    section = per_image["bbox"]
    keys = ("AP50", "AP50_11point", "AP50_allpoint", "AP", "AP75")
    again = voc_metrics(section, np.ones((1, 25), np.float32))
    assert [again[k][0] for k in keys] == pytest.approx([full[k] for k in keys], abs=1e-9)
    weights = resample_weights(25, 3, seed=4)
    resampled = voc_metrics(section, weights)
    for b in range(3):
        dup_records, dup_dets = [], {0: [], 1: []}
        for i, count in enumerate(weights[b]):
            for c in range(int(count)):
                new = f"img{i}-{c}"
                dup_records.append(dict(records[i], image_id=new))
                for cls in (0, 1):
                    dup_dets[cls] += [(new, s, box) for image_id, s, box in detections[cls] if image_id == f"img{i}"]
        expected = evaluate_voc(dup_records, dup_dets, ["a", "b"])
        assert [resampled[k][b] for k in keys] == pytest.approx([expected[k] for k in keys], abs=1e-6), b


def _maps(rng, n, size=16):
    preds = [(rng.random((size, size)) * 255).astype(np.uint8) for _ in range(n)]
    gts = []
    for _ in range(n):
        gt = np.zeros((size, size), np.uint8)
        y, x = rng.integers(0, size // 2, 2)
        gt[y:y + size // 2, x:x + size // 2] = 255
        gts.append(gt)
    return preds, gts


def test_saliency_resamples_match_a_brute_force_loop():
    rng = np.random.default_rng(0)
    preds, gts = _maps(rng, 8)
    metrics = SaliencyMetrics()
    for i, (p, g) in enumerate(zip(preds, gts)):
        metrics.update(p, g, name=f"dir/im{i}.png")
    section = metrics.per_image()
    assert list(section["image_ids"]) == [f"im{i}" for i in range(8)]
    weights = resample_weights(8, 40, seed=2)
    fast = saliency_metrics(section, weights)
    brute = {k: [] for k in fast}
    for w in weights:
        again = SaliencyMetrics()
        for i, count in enumerate(w):
            for _ in range(int(count)):
                again.update(preds[i], gts[i])
        for k, v in again.summary().items():
            brute[k].append(v)
    for k in fast:
        assert fast[k] == pytest.approx(np.array(brute[k]), abs=1e-6), k
    # the interval against a second "run" is the same from either computation
    other = SaliencyMetrics()
    for i, (p, g) in enumerate(zip(preds[::-1], gts)):
        other.update(p, g, name=f"im{i}")
    brute_other = []
    for w in weights:
        again = SaliencyMetrics()
        for i, count in enumerate(w):
            for _ in range(int(count)):
                again.update(preds[::-1][i], gts[i])
        brute_other.append(again.summary()["maxF"])
    fast_interval = paired_interval(fast["maxF"], saliency_metrics(other.per_image(), weights)["maxF"])
    assert fast_interval == pytest.approx(paired_interval(np.array(brute["maxF"]), np.array(brute_other)), abs=1e-6)


def test_wsol_and_pxap_resamples_match_a_brute_force_loop():
    rng = np.random.default_rng(1)
    n = 7
    cams = rng.random((n, 20, 20)) ** 3
    boxes = [np.array([[rng.integers(0, 8), rng.integers(0, 8), rng.integers(10, 19), rng.integers(10, 19)]])
             for _ in range(n)]
    labels, predicted = rng.integers(0, 3, n), rng.integers(0, 3, n)
    masks = [cam > 0.5 for cam in rng.random((n, 20, 20))]
    thresholds = np.arange(0, 1, 0.05)

    def evaluate(counts):
        box_eval, pix_eval = WSOLEvaluator(thresholds), PixelEvaluator(thresholds)
        for i, c in enumerate(counts):
            for _ in range(int(c)):
                box_eval.process(cams[i:i + 1], [boxes[i]], [labels[i]], [predicted[i]])
                pix_eval.process(cams[i:i + 1], [masks[i]])
        return box_eval, pix_eval

    box_eval, pix_eval = evaluate(np.ones(n))
    ids = [f"i{k}" for k in range(n)]
    section = {**box_eval.per_image(ids), **pix_eval.per_image(ids)}
    weights = resample_weights(n, 12, seed=3)
    fast = cam_metrics(section, weights)
    for b, w in enumerate(weights):
        be, pe = evaluate(w)
        expected = {**be.evaluate(), **pe.evaluate()}
        for key in ("max_box_acc", "gt_known_loc", "max_box_acc_v2", "top1_cls", "top1_loc", "pxap", "piou"):
            assert fast[key][b] == pytest.approx(expected[key], abs=1e-9), (b, key)


def test_ranked_ap_checks_and_per_image_files_round_trip(tmp_path):
    flags = np.random.default_rng(0).random((10, 33)) < 0.5
    assert (unpack_bits(pack_bits(flags), 10) == flags).all()
    path = save_per_image(str(tmp_path / "x.per_image.npz"), {"a/b": {"image_ids": np.array(["p", "q"]),
                                                                      "v": np.arange(2.0)}})
    assert load_per_image(path)["a/b"]["v"].tolist() == [0.0, 1.0]
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        load_per_image(str(tmp_path / "bad.npz"))
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_per_image(str(tmp_path / "missing.npz"))


def test_groups_without_detections_count_as_zero():
    """A class with ground truth and no true positive has AP 0 (not absent); one whose images
    all drop out of a resample has no ground truth there (positives 0: left out of the mean)."""
    section = {"image_ids": np.array([1, 2]), "groups": np.array(["x", "y"]), "thresholds": np.array([0.5]),
               "det_group": np.array([0, 0], np.int32), "det_image": np.array([0, 1], np.int32),
               "tp": np.array([1, 0], np.uint16), "ign": np.array([0, 0], np.uint16),
               "pos_group": np.array([0, 0, 1], np.int32), "pos_image": np.array([0, 1, 1], np.int32),
               "pos_count": np.array([1, 1, 1], np.int32)}
    ap, positives = ranked_ap(section, np.array([[1, 1], [2, 0]], np.float32))
    assert positives.tolist() == [[2, 1], [2, 0]]
    assert ap[0, 0, 0] == pytest.approx(51 / 101)  # recall 1/2 at precision 1, then a false positive
    assert ap[1, 0, 0] == pytest.approx(1.0)  # image 1 left out: its miss and its false positive go
    assert ap[0, 1, 0] == 0.0
