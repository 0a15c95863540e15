"""The authors' released PoolNet files as they are: predict_saliency.py --weights, MODEL.WEIGHTS and
convert_weights.py recognise the layout (and say so), load it, and refuse what would give other maps."""
import importlib.util
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from res2net_det.config import get_cfg, merge_config_file
from res2net_det.config.saliency import build_saliency_model
from res2net_det.engines.torchvision.checkpoint import load_model_weights
from res2net_det.evaluation.saliency_inference import load_inference_weights
from res2net_det.modeling.saliency import ours_to_official_poolnet
from res2net_det.modeling.weights import CheckpointError
from tests.helpers import REPO, randomize_norm_, write_pair

TINY = """
_BASE_: "{base}"
MODEL:
  DEVICE: "cpu"
  WEIGHTS: ""
  RES2NET:
    WIDTH_PER_GROUP: 4
    NORM: "BN"
  SALIENCY:
    CONVERT_CHANNELS: [8, 8, 16, 16, 16]
"""


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _authors_file(state, path):
    """Our weights as the authors' solver saves them: their keys, plus what their model has and ours not."""
    theirs = ours_to_official_poolnet(state)
    theirs["base.resnet.fc.weight"] = torch.randn(1000, 2048)
    theirs["base.resnet.fc.bias"] = torch.randn(1000)
    torch.save(theirs, path)
    return theirs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("authors")
    cfg_file = root / "tiny.yaml"
    cfg_file.write_text(TINY.format(base=REPO / "configs" / "sod" / "Base-PoolNet-Res2Net.yaml"))
    cfg = merge_config_file(get_cfg(), str(cfg_file))
    torch.manual_seed(0)
    model = randomize_norm_(build_saliency_model(cfg)).eval()
    ours = root / "ours.pth"
    torch.save({"model": model.state_dict()}, ours)
    authors = root / "final.pth"
    _authors_file(model.state_dict(), authors)
    for i, size in enumerate([(45, 67), (64, 64)]):
        write_pair(root / "img", root / "mask", f"im{i}", size=size, seed=i)
    return root, cfg_file, cfg, model, ours, authors


def _predict(cfg_file, weights, images, out, *opts):
    return _tool("predict_saliency").main(["--config-file", str(cfg_file), "--weights", str(weights), "--input",
                                           str(images), "--output", str(out), "--no-progress", *opts])


def test_predict_reads_the_authors_file_as_it_is(setup, tmp_path, caplog):
    root, cfg_file, _, _, ours, authors = setup
    with caplog.at_level(logging.INFO):
        assert _predict(cfg_file, authors, root / "img", tmp_path / "theirs") == 0
    assert "Res2Net-PoolNet (Res2Net authors' release) layout" in caplog.text
    assert _predict(cfg_file, ours, root / "img", tmp_path / "ours") == 0
    for i, (h, w) in enumerate([(45, 67), (64, 64)]):
        a = np.asarray(Image.open(tmp_path / "theirs" / f"im{i}.png"))
        b = np.asarray(Image.open(tmp_path / "ours" / f"im{i}.png"))
        assert a.shape == (h, w) and np.array_equal(a, b)


def test_predict_refuses_a_config_that_is_not_their_network(setup, tmp_path):
    root, cfg_file, _, _, _, authors = setup
    with pytest.raises(CheckpointError, match=r"final\.pth.*MAXPOOL_CEIL_MODE.*poolnet_r2_50_duts\.yaml"):
        _predict(cfg_file, authors, root / "img", tmp_path / "o", "MODEL.RES2NET.MAXPOOL_CEIL_MODE", "False")


def test_a_file_in_neither_layout_names_the_file_and_its_keys(setup, tmp_path):
    root, cfg_file, _, _, _, _ = setup
    bad = tmp_path / "other.pth"
    torch.save({"head.conv.weight": torch.zeros(1), "neck.conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(CheckpointError, match=r"other\.pth.*head\.conv\.weight"):
        _predict(cfg_file, bad, root / "img", tmp_path / "o")


def test_model_weights_load_the_authors_file(setup, caplog):
    _, _, cfg, model, _, authors = setup
    fresh = build_saliency_model(cfg)
    with caplog.at_level(logging.INFO):
        load_model_weights(fresh, str(authors))
    assert "Res2Net-PoolNet (Res2Net authors' release) layout" in caplog.text
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_model_weights_refuse_an_authors_file_that_does_not_fit(setup, tmp_path):
    _, _, cfg, model, _, _ = setup
    state = dict(model.state_dict())
    state["score.weight"] = torch.zeros(1, 4, 1, 1)  # another width: a partial load would give other maps
    bad = tmp_path / "narrow.pth"
    _authors_file(state, bad)
    with pytest.raises(CheckpointError, match=r"narrow\.pth.*score\.weight"):
        load_model_weights(build_saliency_model(cfg), str(bad))


def test_convert_weights_writes_our_layout(setup, tmp_path, capsys):
    _, _, cfg, model, _, authors = setup
    dst = tmp_path / "converted.pth"
    assert _tool("convert_weights").main([str(authors), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "Res2Net-PoolNet (Res2Net authors' release)" in out and "base.resnet.fc.bias" in out
    fresh = build_saliency_model(cfg)
    load_inference_weights(fresh, str(dst))  # strict
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
