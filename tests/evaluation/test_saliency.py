import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from res2net_det.evaluation.saliency import (
    METRIC_NAMES,
    SaliencyEvaluator,
    SaliencyMetrics,
    evaluate_folder,
    format_table,
    to_uint8,
    write_results,
)
from tests.helpers import SHARED_SOD

# pysodmetrics' names in the shared expected values -> ours
_SHARED_NAMES = {"MAE": "MAE", "Smeasure": "Sm", "wFmeasure": "wF", "adpEm": "adpE", "meanEm": "meanE",
                 "maxEm": "maxE", "adpFm": "adpF", "meanFm": "meanF", "maxFm": "maxF"}


@pytest.mark.skipif(not SHARED_SOD.is_dir(), reason=f"shared SOD test data absent ({SHARED_SOD})")
def test_matches_pysodmetrics_reference_values():
    """Three real masks (ECSSD, PASCAL-S graded, background-only SOC) with one method's maps."""
    expected = json.loads((SHARED_SOD / "expected.json").read_text())["metrics"]
    metrics = evaluate_folder(str(SHARED_SOD / "preds"), str(SHARED_SOD / "masks"))
    got = metrics.summary()
    assert metrics.num_images == 3
    for theirs, ours in _SHARED_NAMES.items():
        assert got[ours] == pytest.approx(expected[theirs], abs=1e-10), ours


@pytest.mark.skipif(not SHARED_SOD.is_dir(), reason=f"shared SOD test data absent ({SHARED_SOD})")
def test_missing_prediction_is_an_error_naming_it(tmp_path):
    preds = tmp_path / "preds"
    shutil.copytree(SHARED_SOD / "preds", preds)
    os.remove(preds / "19.png")
    with pytest.raises(FileNotFoundError, match=r"misses predictions for 1 of 3 masks.*19\.png"):
        evaluate_folder(str(preds), str(SHARED_SOD / "masks"))


def _square(h=20, w=20):
    gt = np.zeros((h, w), np.uint8)
    gt[5:15, 5:15] = 255
    return gt


def test_perfect_and_inverted_predictions():
    gt = _square()
    perfect = SaliencyMetrics()
    perfect.update(gt.copy(), gt)
    s = perfect.summary()
    assert list(s) == list(METRIC_NAMES)
    assert s["MAE"] == 0 and s["maxF"] == pytest.approx(1) and s["Sm"] == pytest.approx(1)
    # pysodmetrics' E-measure normalises by (n - 1), so a perfect map scores slightly above 1.
    assert s["maxE"] == pytest.approx(1, abs=0.01) and s["wF"] == pytest.approx(1)
    inverted = SaliencyMetrics()
    inverted.update(255 - gt, gt)
    assert inverted.summary()["MAE"] == pytest.approx(1)
    assert inverted.summary()["maxF"] < 0.5


def test_hand_computed_mae_and_f_measure():
    gt = _square()  # 100 foreground pixels of 400
    pred = np.zeros_like(gt)
    pred[5:15, 5:10] = 255  # half the object
    pred[0, :10] = 255  # 10 false positives
    m = SaliencyMetrics()
    m.update(pred, gt)
    s = m.summary()
    assert s["MAE"] == pytest.approx((50 + 10) / 400)
    precision, recall = 50 / 60, 50 / 100
    f = 1.3 * precision * recall / (0.3 * precision + recall)  # beta^2 = 0.3
    assert s["maxF"] == pytest.approx(f)
    c = m.curves()
    assert c["precision"][255] == pytest.approx(precision) and c["recall"][255] == pytest.approx(recall)
    assert c["recall"][0] == pytest.approx(1.0)  # threshold 0 keeps every pixel


def test_prediction_of_other_size_is_an_error():
    with pytest.raises(ValueError, match="img3.png: prediction is 10x20 but the mask is 20x20"):
        SaliencyMetrics().update(np.zeros((20, 10), np.uint8), _square(), name="img3.png")


def test_merge_equals_one_accumulator():
    rng = np.random.default_rng(0)
    preds = [rng.integers(0, 256, (20, 20), dtype=np.uint8) for _ in range(4)]
    one, a, b = SaliencyMetrics(), SaliencyMetrics(), SaliencyMetrics()
    for i, p in enumerate(preds):
        one.update(p, _square())
        (a if i < 2 else b).update(p, _square())
    a.merge(b)
    assert a.num_images == 4 and a.summary() == one.summary()


def test_evaluator_equals_folder_evaluation_of_saved_pngs(tmp_path):
    """Training-time evaluation and the tool read the same numbers."""
    rng = np.random.default_rng(1)
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    ev = SaliencyEvaluator("toy", output_dir=str(tmp_path / "out"))
    for i in range(3):
        gt_path = tmp_path / "gt" / f"{i}.png"
        Image.fromarray(_square()).save(gt_path)
        sal = torch.from_numpy(rng.uniform(size=(20, 20))).float()
        ev.process([{"file_name": f"{i}.jpg", "sem_seg_file_name": str(gt_path)}], [{"saliency": sal}])
        Image.fromarray(to_uint8(sal)).save(tmp_path / "pred" / f"{i}.png")
    res = ev.evaluate()
    assert res["saliency"] == dict(evaluate_folder(str(tmp_path / "pred"), str(tmp_path / "gt")).summary())
    assert (tmp_path / "out" / "saliency_results.json").is_file()
    assert (tmp_path / "out" / "pr_curves.png").is_file()


def test_table_json_and_plots_compare_methods(tmp_path):
    a, b = SaliencyMetrics(), SaliencyMetrics()
    a.update(_square(), _square())
    b.update(np.full((20, 20), 128, np.uint8), _square())
    results = {"Res2Net-50": {"ecssd": a, "sod": a}, "ResNet-50": {"ecssd": b}}
    table = format_table(results).splitlines()
    assert table[0].split()[:3] == ["Dataset", "Method", "#img"]
    assert [line.split()[:2] for line in table[2:]] == [["ecssd", "Res2Net-50"], ["ecssd", "ResNet-50"],
                                                        ["sod", "Res2Net-50"]]
    paths = write_results(results, str(tmp_path))
    data = json.loads(open(paths["json"]).read())
    assert data["ResNet-50"]["ecssd"]["metrics"]["MAE"] == pytest.approx(b.summary()["MAE"])
    assert len(data["Res2Net-50"]["sod"]["curves"]["precision"]) == 256
    for kind in ("pr", "fmeasure"):
        assert os.path.getsize(paths[kind]) > 1000


def test_several_data_sets_need_one_sub_folder_each(tmp_path):
    from res2net_det.evaluation.saliency import evaluate_methods

    for name in ("A", "B"):
        (tmp_path / "gt" / name).mkdir(parents=True)
        Image.fromarray(_square()).save(tmp_path / "gt" / name / "0.png")
    (tmp_path / "m" / "A").mkdir(parents=True)
    Image.fromarray(_square()).save(tmp_path / "m" / "A" / "0.png")
    gts = [str(tmp_path / "gt" / "A"), str(tmp_path / "gt" / "B")]
    with pytest.raises(FileNotFoundError, match=r"method 'm' for data set 'B'.*one sub-folder per data set"):
        evaluate_methods([str(tmp_path / "m")], gts, ["A", "B"])
    with pytest.raises(ValueError, match="2 data set names for 1 mask folders"):
        evaluate_methods([str(tmp_path / "m")], gts[:1], ["A", "B"])
    res = evaluate_methods([str(tmp_path / "m" / "A")], gts[:1])
    assert list(res) == ["A"] and list(res["A"]) == ["gt"]  # default names: folder names
