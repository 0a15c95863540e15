"""tools/cam_detector.py end to end on the quickstart detector with random weights: two
checkpoints side by side, the JSON of scores with intervals and a figure per method."""
import importlib.util
import json

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.engines.torchvision.registry import get_task
from tests.helpers import REPO


def _tool():
    spec = importlib.util.spec_from_file_location("cam_detector", REPO / "tools" / "cam_detector.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _checkpoint(path, seed):
    import res2net_det.engines.torchvision.detection  # noqa: F401  (registers the R-CNN task)

    cfg = merge_config_file(get_cfg(), str(REPO / "configs" / "quickstart.yaml"))
    torch.manual_seed(seed)
    torch.save({"model": get_task(cfg.MODEL.META_ARCHITECTURE).build_model(cfg).state_dict()}, path)
    return str(path)


def test_two_checkpoints_scored_and_drawn(tmp_path, capsys):
    a, b = _checkpoint(tmp_path / "a.pth", 0), _checkpoint(tmp_path / "b.pth", 1)
    config = str(REPO / "configs" / "quickstart.yaml")
    out = tmp_path / "out"
    argv = ["--config-file", config, config, "--weights", a, b, "--labels", "base", "res2", "--output", str(out),
            "--num-images", "2", "--figure-images", "1", "--methods", "eigencam", "--bootstrap", "20",
            "MODEL.DEVICE", "cpu",
            "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96"]  # small pictures: a fast test
    assert _tool().main(argv) == 0
    result = json.loads((out / "cam_detector.json").read_text())
    assert result["settings"]["models"] == ["base", "res2"] and len(result["images"]) == 2
    assert set(result["summary"]["res2"]["eigencam"]) == {"p2", "p3", "p4", "combined"}
    assert "ci95" in result["comparison"]["res2"]["eigencam"]["combined"]["energy"]
    assert (out / "cams_eigencam.png").is_file()
    assert "Δ vs base" in capsys.readouterr().out


def test_a_missing_checkpoint_is_named(tmp_path, capsys):
    config = str(REPO / "configs" / "quickstart.yaml")
    assert _tool().main(["--config-file", config, "--output", str(tmp_path), "MODEL.WEIGHTS",
                         str(tmp_path / "nowhere.pth")]) == 2
    assert "nowhere.pth" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _tool().main(["--config-file", config, config, "--weights", "one.pth"])
