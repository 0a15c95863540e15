"""MODEL.WEIGHTS as a URL on both engines: trained and evaluated from a local HTTP server on
127.0.0.1; the same file under a wrong hash is refused with nothing cached (the Detectron2 rows
skip without Detectron2)."""
import hashlib
import json
import logging
import os

import pytest
import torch

from res2net_det.engines import detectron2_available
from res2net_det.engines import main as train_net_main
from res2net_det.modeling.res2net import Res2Net, stage_blocks
from res2net_det.utils.download import ChecksumError
from tests.helpers import FileServer, file_bytes, tiny_retinanet_args

ENGINES = [
    "torchvision",
    pytest.param("detectron2", marks=pytest.mark.skipif(
        not detectron2_available(), reason="Detectron2 is not installed; build it from source to run this")),
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RES2NET_DET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RES2NET_DET_WEIGHTS_MIRROR", raising=False)
    return tmp_path / "cache"


def _backbone_file():
    """An ImageNet-style backbone file of the tiny RetinaNet's Res2Net (depth 50, 4w x 4s), with its fc."""
    torch.manual_seed(0)
    state = Res2Net(stage_blocks(50), base_width=4, scale=4, num_classes=1000).state_dict()
    body = file_bytes(state)
    return body, f"tiny_res2net-{hashlib.sha256(body).hexdigest()[:8]}.pth", state


@pytest.mark.parametrize("engine", ENGINES)
def test_a_url_trains_and_evaluates_and_a_wrong_hash_is_refused(engine, tmp_path, cache, caplog):
    body, name, state = _backbone_file()
    with FileServer({f"/w/{name}": body, "/w/tiny_res2net-0badc0de.pth": body}) as server:
        url = f"{server.url}/w/{name}"
        args = tiny_retinanet_args(tmp_path, engine, iterations=2)
        # FrozenBN keeps the file's statistics, so what was loaded is still there after training.
        args.opts += ["MODEL.WEIGHTS", url, "MODEL.RES2NET.NORM", "FrozenBN", "MODEL.BACKBONE.FREEZE_AT", "2"]
        with caplog.at_level(logging.INFO):
            train_net_main(args)
        assert server.requests == {f"/w/{name}": 1}
        log_file = tmp_path / "out" / "log.txt"
        logged = caplog.text + (log_file.read_text() if log_file.is_file() else "")
        assert f"{url}: " in logged and hashlib.sha256(body).hexdigest() in logged  # source, file, digest
        test_set = args.opts[args.opts.index("DATASETS.TEST") + 1].strip("(',)")
        evaluation = json.loads((tmp_path / "out" / "inference" / test_set / "coco_eval_results.json").read_text())
        assert "AP50" in json.dumps(evaluation)
        final = torch.load(tmp_path / "out" / "model_final.pth", map_location="cpu", weights_only=True)["model"]
        for key in ("conv1.weight", "bn1.running_var", "layer1.0.bn1.running_mean"):  # frozen: as in the file
            assert torch.equal(final[f"backbone.bottom_up.{key}"], state[key]), key

        cached = sorted(os.listdir(cache / "urls" / server.url.split("//")[1].replace(":", "_") / "w"))
        bad = tiny_retinanet_args(tmp_path / "bad", engine, iterations=2)
        bad.opts += ["MODEL.WEIGHTS", f"{server.url}/w/tiny_res2net-0badc0de.pth"]
        with pytest.raises(ChecksumError, match="0badc0de"):
            train_net_main(bad)
        after = sorted(os.listdir(cache / "urls" / server.url.split("//")[1].replace(":", "_") / "w"))
        assert [f for f in after if not f.endswith(".lock")] == [f for f in cached if not f.endswith(".lock")]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("eval_only", [False, True])
def test_caffe_preprocessing_with_imagenet_weights_is_refused_before_anything_runs(engine, eval_only, tmp_path, cache):
    args = tiny_retinanet_args(tmp_path, engine)
    args.eval_only = eval_only
    args.opts += ["MODEL.WEIGHTS", "res2net://res2net50_26w_4s", "INPUT.FORMAT", "BGR",
                  "MODEL.PIXEL_MEAN", "[103.53, 116.28, 123.675]", "MODEL.PIXEL_STD", "[1.0, 1.0, 1.0]"]
    with pytest.raises(ValueError, match="INPUT.FORMAT: 'BGR', the weights' 'RGB'.*WEIGHTS_ALLOW_OTHER_PREPROCESSING"):
        train_net_main(args)
    assert not os.path.exists(cache)  # refused before any download
