"""compare_runs: tables with Δ per task and data set from run folders of every task, the files it
writes, and clear errors for missing or unfinished runs."""
import importlib.util
import json

import pytest

from res2net_det.evaluation.compare import RunNotFinishedError, compare_runs, format_markdown, read_run, write_comparison
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
               {"model": {d: {"num_images": 3, "metrics": {"MAE": mae, "maxF": maxf, "Sm": 0.9, "maxE": 0.95, "wF": 0.8},
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
