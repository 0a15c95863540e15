"""compare_runs: tables with Δ per task and data set from run folders of every task, the files it
writes, and clear errors for missing or unfinished runs."""
import importlib.util
import json
import shutil

import pytest

from res2net_det.evaluation.compare import (
    RunNotFinishedError,
    compare_runs,
    format_markdown,
    read_run,
    write_comparison,
)
from tests.helpers import REPO


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _detection_run(root, ap, mask=False, final=True):
    bbox = {"AP": ap, "AP50": ap + 20, "AP75": ap + 2, "APs": ap - 15, "APm": ap, "APl": None, "AP-cat": 1.0}
    data = {"bbox": bbox, **({"segm": {"AP": ap - 3}} if mask else {})}
    _write(root / "inference" / "coco_2017_val" / "coco_eval_results.json", data)
    (root / "last_checkpoint").write_text("model_final.pth" if final else "model_0004999.pth")
    return root


def _saliency(root, maxf, mae, datasets=("ecssd", "sod")):
    for d in datasets:
        _write(root / "inference" / d / "saliency_results.json",
               {"model": {d: {"num_images": 3,
                              "metrics": {"MAE": mae, "maxF": maxf, "Sm": 0.9, "maxE": 0.95, "wF": 0.8},
                              "curves": {}}}})
    return root


def _cam(root, loc):
    rows = [{"model": "baseline", "method": "whole image", "gt_known_loc": 5.0},
            {"model": "res2net-small", "method": "gradcam", "top1_loc": loc, "gt_known_loc": loc + 5,
             "max_box_acc_v2": loc - 5, "deletion_auc": 0.2, "insertion_auc": 0.8}]
    _write(root / "results.json", {"settings": {}, "rows": rows})
    return root


def test_detection_table_has_delta_against_the_first_run(tmp_path):
    a = _detection_run(tmp_path / "r50", 31.1, mask=True)
    b = _detection_run(tmp_path / "r2_50", 33.7, mask=True)
    comparison = compare_runs([str(a), str(b)], ["R-50", "R2-50"])
    (table,) = comparison["tables"]
    assert (table["task"], table["dataset"]) == ("detection", "coco_2017_val")
    # APl is null (pycocotools had no large object) in both: the column is left out
    assert table["columns"] == ["AP", "AP50", "AP75", "APs", "APm", "mask AP"]
    assert table["values"]["R2-50"]["AP"] == 33.7
    assert table["delta"]["R2-50"]["AP"] == pytest.approx(2.6)
    assert table["delta"]["R2-50"]["mask AP"] == pytest.approx(2.6)
    md = format_markdown(comparison)
    assert "| metric | R-50 | R2-50 | Δ |" in md
    assert "| AP | 31.1 | 33.7 | +2.6 |" in md


def test_every_task_reads_and_draws(tmp_path):
    a, b = tmp_path / "base", tmp_path / "res2"
    for run, ap, maxf, mae, loc in ((a, 30.0, 0.94, 0.042, 50.0), (b, 32.0, 0.947, 0.036, 55.0)):
        _detection_run(run, ap)
        _write(run / "inference" / "voc_2007_test" / "voc_eval_results.json",
               {"bbox": {"AP": ap, "AP50": ap + 40, "AP75": ap, "AP50_allpoint": ap + 42}})
        _saliency(run, maxf, mae)
        _cam(run, loc)
    comparison = compare_runs([str(a), str(b)])
    kinds = [(t["task"], t["dataset"]) for t in comparison["tables"]]
    assert kinds == [("detection", "coco_2017_val"), ("detection-voc", "voc_2007_test"), ("saliency", "ecssd"),
                     ("saliency", "sod"), ("cam", "gradcam")]
    voc = comparison["tables"][1]
    assert voc["values"]["res2"]["mAP"] == 72.0 and voc["delta"]["res2"]["mAP"] == pytest.approx(2.0)
    sal = comparison["tables"][2]
    assert sal["delta"]["res2"]["MAE"] == pytest.approx(-0.006) and sal["higher_is_better"]["MAE"] is False
    cam = comparison["tables"][4]
    assert cam["columns"] == ["Top-1 Loc", "GT-known Loc", "MaxBoxAccV2", "Deletion", "Insertion"]
    assert cam["delta"]["res2"]["Top-1 Loc"] == pytest.approx(5.0)
    md = format_markdown(comparison)
    assert "| MAE ↓ | 0.042 | 0.036 | -0.006 |" in md
    # percentages with one decimal, AUCs with three, whatever the size of the difference
    assert "| Top-1 Loc | 50.0 | 55.0 | +5.0 |" in md and "| Deletion ↓ | 0.200 | 0.200 | +0.000 |" in md
    paths = write_comparison(comparison, str(tmp_path / "cmp"))
    assert json.loads(open(paths["json"]).read())["tables"][0]["values"]["base"]["AP"] == 30.0
    assert open(paths["markdown"]).read() == md
    with open(paths["figure"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_three_runs_get_a_delta_each(tmp_path):
    runs = [_detection_run(tmp_path / n, ap) for n, ap in (("a", 30.0), ("b", 31.0), ("c", 29.5))]
    comparison = compare_runs([str(r) for r in runs])
    assert comparison["tables"][0]["delta"]["c"]["AP"] == pytest.approx(-0.5)
    assert "| metric | a | b | Δ b | c | Δ c |" in format_markdown(comparison)


def test_missing_and_unfinished_runs_name_the_folder(tmp_path):
    with pytest.raises(RunNotFinishedError, match="run folder not found: .*nowhere"):
        read_run(str(tmp_path / "nowhere"))
    started = _detection_run(tmp_path / "started", 30.0, final=False)
    with pytest.raises(RunNotFinishedError, match=r"started.*unfinished run.*model_0004999.pth"):
        read_run(str(started))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFinishedError, match=r"empty: no results"):
        read_run(str(tmp_path / "empty"))


def test_tool_prints_the_table_and_refuses_unfinished_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("compare_runs", REPO / "tools" / "compare_runs.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    a, b = _saliency(tmp_path / "r50", 0.94, 0.042), _saliency(tmp_path / "r2", 0.947, 0.036)
    assert tool.main([str(a), str(b), "--labels", "R-50", "R2-50", "--output", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "salient object detection: ecssd" in out and "| maxF | 0.940 | 0.947 | +0.007 |" in out
    assert (tmp_path / "out" / "comparison.png").is_file()
    assert tool.main([str(a), str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert tool.main([str(a), str(b), "--labels", "only-one"]) == 2


# ---------------------------------------------------------------------------- bootstrap intervals
def _coco_run(root, gt_json, detections):
    """A run folder as the COCO evaluator leaves it: the metrics and their per-image matches."""
    from res2net_det.evaluation.coco import evaluate_coco_results
    from res2net_det.evaluation.per_image import per_image_path, save_per_image

    per_image = {}
    metrics = evaluate_coco_results(str(gt_json), detections, "bbox", per_image=per_image)
    path = root / "inference" / "shapes_val" / "coco_eval_results.json"
    _write(path, {"bbox": metrics})
    save_per_image(per_image_path(str(path)), per_image)
    (root / "last_checkpoint").write_text("model_final.pth")
    return root


@pytest.fixture(scope="module")
def coco_runs(tmp_path_factory):
    from res2net_det.evaluation.bootstrap_benchmark import generated_coco_comparison

    root = tmp_path_factory.mktemp("coco_runs")
    gt, run_a, run_b = generated_coco_comparison(num_images=60, dets_per_image=12, num_categories=3, seed=1)
    gt_json = root / "gt.json"
    gt_json.write_text(json.dumps(gt))
    a, b = _coco_run(root / "a", gt_json, run_a), _coco_run(root / "b", gt_json, run_b)
    same = _coco_run(root / "a_again", gt_json, run_a)
    return a, b, same


def test_intervals_of_every_coco_metric(coco_runs, tmp_path):
    a, b, _ = coco_runs
    comparison = compare_runs([str(a), str(b)], ["A", "B"], bootstrap=300, seed=0)
    (table,) = comparison["tables"]
    assert comparison["bootstrap"] == {"resamples": 300, "seed": 0, "level": 0.95} and not comparison["notes"]
    for column in table["columns"]:
        low, high = table["ci95"]["B"][column]
        assert low <= table["delta"]["B"][column] <= high, column
        assert table["n_images"]["B"][column] == 60
        assert table["significant"]["B"][column] == (low > 0 or high < 0)
    md = format_markdown(comparison)
    ap = table["ci95"]["B"]["AP"]
    assert ap[0] > 0  # run B localises better (the generator's smaller jitter): the interval says so
    assert f"| AP | {table['values']['A']['AP']:.1f} | {table['values']['B']['AP']:.1f} | " \
           f"{table['delta']['B']['AP']:+.1f} [{ap[0]:+.1f}, {ap[1]:+.1f}]*" in md
    assert "paired bootstrap over the 60 test images (300 resamples, seed 0)" in md
    # the same seed gives the same intervals; JSON and picture carry them
    assert compare_runs([str(a), str(b)], ["A", "B"], bootstrap=300, seed=0)["tables"][0]["ci95"] == table["ci95"]
    paths = write_comparison(comparison, str(tmp_path / "cmp"))
    assert json.loads(open(paths["json"]).read())["tables"][0]["ci95"]["B"]["AP"] == pytest.approx(ap)
    assert open(paths["figure"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_identical_runs_have_a_zero_width_interval(coco_runs):
    a, _, same = coco_runs
    table = compare_runs([str(a), str(same)], ["A", "A2"], bootstrap=100)["tables"][0]
    assert all(table["ci95"]["A2"][c] == [0.0, 0.0] and not table["significant"]["A2"][c] for c in table["columns"])
    assert "| AP | " in format_markdown({"runs": [{"label": "A"}, {"label": "A2"}], "tables": [table],
                                        "bootstrap": {"resamples": 100, "seed": 0}})


def test_no_interval_without_per_image_data_or_with_bootstrap_off(coco_runs, tmp_path):
    a, b, _ = coco_runs
    assert "ci95" not in compare_runs([str(a), str(b)], bootstrap=0)["tables"][0]
    old = _detection_run(tmp_path / "old", 30.0)
    old_layout = old / "inference" / "shapes_val"
    (old / "inference" / "coco_2017_val").rename(old_layout)
    comparison = compare_runs([str(a), str(old)], bootstrap=50)
    assert "ci95" not in comparison["tables"][0]
    (note,) = comparison["notes"]
    assert "no per-image data" in note and "coco_eval_results.per_image.npz" in note
    assert "note: " in format_markdown(comparison)


def test_runs_on_different_images_are_refused_an_interval(coco_runs, tmp_path):
    from res2net_det.evaluation.per_image import load_per_image, per_image_path, save_per_image

    a, _, _ = coco_runs
    other = tmp_path / "other"
    shutil.copytree(a, other)
    path = per_image_path(str(other / "inference" / "shapes_val" / "coco_eval_results.json"))
    sections = load_per_image(path)
    sections["bbox"]["image_ids"] = sections["bbox"]["image_ids"] + 1000
    save_per_image(path, sections)
    (note,) = compare_runs([str(a), str(other)], bootstrap=50)["notes"]
    assert "evaluated on different images" in note


def test_saliency_and_cam_tables_get_intervals(tmp_path):
    import numpy as np

    from res2net_det.evaluation.cam_comparison import write_cam_results
    from res2net_det.evaluation.saliency import SaliencyMetrics, write_results
    from res2net_det.evaluation.wsol import WSOLEvaluator

    rng = np.random.default_rng(0)
    gts = [np.where(rng.random((12, 12)) < 0.3, 255, 0).astype(np.uint8) for _ in range(10)]
    cams = rng.random((10, 12, 12))
    boxes = [np.array([[2, 2, 8, 8]])] * 10
    runs = []
    for name, noise in (("r50", 0.6), ("r2", 0.3)):
        metrics = SaliencyMetrics()
        for i, gt in enumerate(gts):
            pred = np.clip(gt + rng.normal(0, 255 * noise, gt.shape), 0, 255).astype(np.uint8)
            metrics.update(pred, gt, name=f"img{i}.png")
        write_results({"model": {"ecssd": metrics}}, str(tmp_path / name / "inference" / "ecssd"), plot=False)
        evaluator = WSOLEvaluator(np.arange(0, 1, 0.1))
        evaluator.process(np.clip(cams + noise * rng.random(cams.shape), 0, 1) / (1 + noise), boxes,
                          list(range(10)), list(range(10)))
        row = {"model": "small", "method": "gradcam", **evaluator.evaluate(), "per_image": "small|gradcam"}
        write_cam_results({"settings": {}, "rows": [row]}, str(tmp_path / name / "cam_results.json"),
                          {"small|gradcam": evaluator.per_image([f"img{i}" for i in range(10)])})
        runs.append(str(tmp_path / name))
    comparison = compare_runs(runs, bootstrap=200)
    saliency, cam = comparison["tables"]
    assert not comparison["notes"]
    assert set(saliency["ci95"]["r2"]) == {"maxF", "MAE", "S-measure", "maxE"}
    assert all(v is not None for v in saliency["ci95"]["r2"].values())
    assert cam["ci95"]["r2"]["GT-known Loc"] is not None and cam["n_images"]["r2"]["Top-1 Loc"] == 10
