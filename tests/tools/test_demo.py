"""tools/demo.py: every image extension in any case, an empty folder is an error, no picture is overwritten."""
import importlib.util
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.data.image_io import ImageReadError
from res2net_det.engines.torchvision.modeling import build_rcnn
from tests.helpers import REPO


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cfg = merge_config_list(merge_config_file(get_cfg(), str(REPO / "configs" / "quickstart.yaml")),
                            ["MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("demo") / "model_final.pth"
    torch.save({"model": build_rcnn(cfg).state_dict(), "iteration": 0}, path)
    return str(path)


def _demo(monkeypatch, weights, *inputs, output):
    spec = importlib.util.spec_from_file_location("demo", REPO / "tools" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.setattr(sys, "argv", ["demo.py", "--config-file", str(REPO / "configs" / "quickstart.yaml"),
                                      "--input", *inputs, "--output", output,
                                      "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", weights])
    demo.main()


def _write(path, image_format):
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(path, format=image_format)


def test_demo_reads_every_extension_and_refuses_clashes_and_empty_folders(tmp_path, monkeypatch, weights):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, fmt in (("a.JPEG", "JPEG"), ("b.jpeg", "JPEG"), ("c.BMP", "BMP"), ("d.webp", "WEBP"), ("e.PNG", "PNG")):
        _write(photos / name, fmt)
    (photos / "notes.txt").write_text("not an image")
    _demo(monkeypatch, weights, str(photos), output=str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "b.png", "c.png", "d.png", "e.png"]

    other = tmp_path / "other"
    other.mkdir()
    _write(other / "a.jpg", "JPEG")
    with pytest.raises(ValueError, match=r"same picture a\.png: .*a\.JPEG and .*a\.jpg"):
        _demo(monkeypatch, weights, str(photos), str(other), output=str(tmp_path / "out2"))
    assert not (tmp_path / "out2").exists()

    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError, match="empty contains no"):
        _demo(monkeypatch, weights, str(tmp_path / "empty"), output=str(tmp_path / "out3"))
