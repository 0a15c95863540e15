"""tools/predict_saliency.py and tools/eval_saliency.py on tiny data."""
import importlib.util
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.config.saliency import build_saliency_model
from res2net_det.modeling.weights import CheckpointError
from tests.helpers import REPO, write_pair

TINY_CONFIG = """
_BASE_: "{base}"
MODEL:
  DEVICE: "cpu"
  WEIGHTS: ""
  RES2NET:
    WIDTH_PER_GROUP: 4
    NORM: "BN"
    OUT_FEATURES: ["res2", "res3"]
  SALIENCY:
    IN_FEATURES: ["stem", "res2", "res3"]
    CONVERT_CHANNELS: [8, 8, 8]
INPUT:
  SALIENCY:
    RESIZE: [32, 32]
"""


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sodtools")
    cfg_file = root / "tiny.yaml"
    cfg_file.write_text(TINY_CONFIG.format(base=REPO / "configs" / "sod" / "Base-PoolNet-Res2Net.yaml"))
    torch.manual_seed(0)
    model = build_saliency_model(merge_config_file(get_cfg(), str(cfg_file)))
    weights = root / "model.pth"
    torch.save({"model": model.state_dict(), "iteration": 3}, weights)
    for i, size in enumerate([(40, 56), (37, 41), (64, 30)]):
        write_pair(root / "ECSSD" / "Image", root / "ECSSD" / "Mask", f"img{i}", size=size, seed=i)
    return root, cfg_file, weights


def test_predict_writes_one_png_per_image_at_original_size(setup, capsys):
    root, cfg_file, weights = setup
    out = root / "pred" / "ECSSD"
    rc = _tool("predict_saliency").main([
        "--config-file", str(cfg_file), "--weights", str(weights),
        "--input", str(root / "ECSSD" / "Image"), "--output", str(out), "--no-progress",
    ])
    assert rc == 0
    for i, (h, w) in enumerate([(40, 56), (37, 41), (64, 30)]):
        img = Image.open(out / f"img{i}.png")
        assert img.mode == "L" and img.size == (w, h)
    assert "wrote 3 saliency maps" in capsys.readouterr().out


def test_predict_rejects_weights_of_another_model(setup, tmp_path):
    root, cfg_file, _ = setup
    bad = tmp_path / "bad.pth"
    torch.save({"model": {"backbone.conv1.weight": torch.zeros(1)}}, bad)
    with pytest.raises(CheckpointError, match=r"bad\.pth does not fit this model: key 'backbone\.conv1\.weight'"):
        _tool("predict_saliency").main([
            "--config-file", str(cfg_file), "--weights", str(bad),
            "--input", str(root / "ECSSD" / "Image"), "--output", str(tmp_path / "o"), "--no-progress",
        ])


def test_eval_compares_methods_on_data_sets(setup, tmp_path, capsys):
    root, _, _ = setup
    gt = root / "ECSSD" / "Mask"
    # method "perfect": the masks themselves; method "flat": grey maps
    for method in ("perfect", "flat"):
        for name in ("ECSSD", "SOD"):
            (tmp_path / method / name).mkdir(parents=True)
    for f in sorted(os.listdir(gt)):
        mask = np.asarray(Image.open(gt / f))
        for name in ("ECSSD", "SOD"):
            Image.fromarray(mask).save(tmp_path / "perfect" / name / f)
            Image.fromarray(np.full_like(mask, 100)).save(tmp_path / "flat" / name / f)
    out = tmp_path / "report"
    rc = _tool("eval_saliency").main([
        "--pred", str(tmp_path / "perfect"), str(tmp_path / "flat"),
        "--gt", str(gt), str(gt), "--dataset", "ECSSD", "SOD", "--output", str(out), "--no-progress",
    ])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.split()[:1] in (["ECSSD"], ["SOD"])]
    assert [r[:3] for r in rows] == [["ECSSD", "perfect", "3"], ["ECSSD", "flat", "3"],
                                     ["SOD", "perfect", "3"], ["SOD", "flat", "3"]]
    assert float(rows[0][3]) == 0.0  # MAE of the perfect method
    data = json.loads((out / "saliency_results.json").read_text())
    assert data["perfect"]["SOD"]["metrics"]["maxF"] == pytest.approx(1.0)
    assert data["flat"]["SOD"]["metrics"]["maxF"] < 0.9
    assert (out / "pr_curves.png").is_file() and (out / "fmeasure_curves.png").is_file()


def test_eval_names_missing_prediction_files(setup, tmp_path, capsys):
    root, _, _ = setup
    gt = root / "ECSSD" / "Mask"
    pred = tmp_path / "pred"
    pred.mkdir()
    Image.fromarray(np.asarray(Image.open(gt / "img0.png"))).save(pred / "img0.png")
    rc = _tool("eval_saliency").main(["--pred", str(pred), "--gt", str(gt), "--no-progress", "--no-plot",
                                      "--output", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "misses predictions for 2 of 3 masks" in err and "img1.png" in err and "img2.png" in err


def test_sod_benchmark_runs_both_backbones():
    """A smoke test of `tools/benchmark.py sod` on a tiny input; it checks what is timed, not speed."""
    from res2net_det.evaluation.benchmark import benchmark_saliency

    timings = benchmark_saliency(batch=1, size=(64, 64), repeats=1, warmup=0)
    assert list(timings) == ["Res2Net-50 PoolNet", "ResNet-50 PoolNet"]
    assert all(len(t.seconds) == 1 and t.seconds[0] > 0 for t in timings.values())


def test_collect_images_rejects_missing_and_clashing_inputs(tmp_path):
    from res2net_det.evaluation.saliency_inference import collect_images

    write_pair(tmp_path / "a", tmp_path / "am", "x")
    write_pair(tmp_path / "b", tmp_path / "bm", "x")
    (tmp_path / "empty").mkdir()
    assert collect_images([str(tmp_path / "a")]) == [str(tmp_path / "a" / "x.jpg")]
    with pytest.raises(ValueError, match="same saliency map x.png"):
        collect_images([str(tmp_path / "a"), str(tmp_path / "b" / "x.jpg")])
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        collect_images([str(tmp_path / "nope.jpg")])
    with pytest.raises(ValueError, match="empty contains no"):
        collect_images([str(tmp_path / "empty")])
