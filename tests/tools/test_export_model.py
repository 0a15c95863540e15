"""tools/export_model.py on small models: a backbone, a Faster R-CNN and a saliency model, each
exported and run back through onnxruntime at a second input size."""
import importlib.util
import re

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.config.saliency import build_saliency_model
from res2net_det.engines.torchvision.checkpoint import load_model_weights
from res2net_det.modeling.res2net import Res2Net
from tests.helpers import REPO, randomize_norm_

TINY_SALIENCY = """
_BASE_: "{base}"
MODEL:
  WEIGHTS: ""
  RES2NET:
    WIDTH_PER_GROUP: 4
    NORM: "BN"
    OUT_FEATURES: ["res2", "res3"]
  SALIENCY:
    IN_FEATURES: ["stem", "res2", "res3"]
    CONVERT_CHANNELS: [8, 8, 8]
"""


def _tool():
    spec = importlib.util.spec_from_file_location("export_model", REPO / "tools" / "export_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _needs_onnxruntime():
    pytest.importorskip("onnx", reason="ONNX tests need the export extra: pip install -e '.[export]'")
    pytest.importorskip("onnxruntime", reason="ONNX tests need the export extra: pip install -e '.[export]'")


def _diffs(line: str) -> dict:
    return {k: float(v) for k, v in re.findall(r"(\w+) ([-+.e\d]+|nan|inf)(?=,| \()", line.split("pytorch|:")[1])}


def test_backbone_by_variant(tmp_path, monkeypatch, capsys):
    tool = _tool()
    calls = []

    def tiny_create_model(name, weights=None, num_classes=1000):
        calls.append((name, weights, num_classes))
        return randomize_norm_(Res2Net((1, 1, 1, 1), base_width=4, scale=2, num_classes=num_classes))

    monkeypatch.setattr(tool, "create_model", tiny_create_model)  # res2net50 would take minutes here
    rc = tool.main(["--variant", "res2net50_26w_4s", "--weights", "w.pth", "--output", str(tmp_path),
                    "--size", "64", "96", "--format", "onnx,torchscript"])
    assert rc == 0 and calls == [("res2net50_26w_4s", "w.pth", 0)]
    lines = capsys.readouterr().out.splitlines()
    onnx_line = next(line for line in lines if line.startswith("onnx "))
    assert "input 3x3x32x160" in onnx_line and onnx_line.endswith("OK")  # default check size: H - 32, W + 64
    diffs = _diffs(onnx_line)
    assert set(diffs) == {"res2", "res3", "res4", "res5"} and max(diffs.values()) <= 1e-4
    assert any(line.startswith("torchscript ") and line.endswith("OK") for line in lines)
    assert (tmp_path / "res2net50_26w_4s.onnx").is_file() and (tmp_path / "res2net50_26w_4s.torchscript.pt").is_file()


def test_faster_rcnn_from_config(tmp_path, capsys):
    rc = _tool().main(["--config-file", str(REPO / "configs" / "quickstart.yaml"), "--output", str(tmp_path),
                       "--size", "128", "160", "--check-size", "160", "224",
                       "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"])  # random weights: keep every detection
    out = capsys.readouterr().out
    assert rc == 0, out
    line = next(line for line in out.splitlines() if line.startswith("onnx "))
    assert "input 3x160x224" in line and line.endswith("OK")
    assert _diffs(line)["boxes"] <= 1e-3
    pytorch, exported, matched = map(int, re.search(r"pytorch (\d+), export (\d+), matched (\d+)", out).groups())
    assert pytorch > 10 and matched >= 0.9 * max(pytorch, exported)


def test_torch_export_of_a_detector_fails_with_the_reason(tmp_path, capsys):
    rc = _tool().main(["--config-file", str(REPO / "configs" / "quickstart.yaml"), "--output", str(tmp_path),
                       "--format", "export"])
    assert rc == 1 and "NMS" in capsys.readouterr().out


def test_saliency_from_config_with_weights(tmp_path, capsys):
    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(TINY_SALIENCY.format(base=REPO / "configs" / "sod" / "Base-PoolNet-Res2Net.yaml"))
    cfg = merge_config_file(get_cfg(), str(cfg_file))
    torch.manual_seed(1)
    trained = randomize_norm_(build_saliency_model(cfg), seed=1)
    weights = tmp_path / "model.pth"
    torch.save({"model": trained.state_dict()}, weights)

    rc = _tool().main(["--config-file", str(cfg_file), "--weights", str(weights), "--output", str(tmp_path),
                       "--name", "sal", "--size", "64", "64", "--check-size", "48", "80", "--check-batch", "2"])
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("onnx "))
    assert rc == 0 and "input 2x3x48x80" in line and line.endswith("OK")
    assert _diffs(line)["saliency"] <= 1e-4

    # the file holds the checkpoint's weights, not the random ones
    from res2net_det.modeling.export import onnx_session

    model = build_saliency_model(cfg)
    load_model_weights(model, str(weights))
    image = torch.rand(3, 56, 72) * 255
    (maps,) = onnx_session(str(tmp_path / "sal.onnx")).run(None, {"images": image[None].numpy()})
    with torch.no_grad():
        expected = model.eval()([{"image": image}])[0]["saliency"]
    assert torch.allclose(torch.from_numpy(maps[0, 0]), expected, atol=1e-4)


@pytest.mark.parametrize("argv, message", [
    (["--variant", "res2net50_26w_4s", "--opset", "13"], "--opset must be >= 17"),
    (["--variant", "res2net50_26w_4s", "MODEL.DEVICE", "cpu"], "need --config-file"),
    (["--variant", "res2net50_26w_4s", "--format", "onnx,tflite"], "unknown format"),
])
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _tool().main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
