"""Weights names in Detectron2: our PathHandler in Detectron2's PathManager feeds Detectron2's own
DetectionCheckpointer, and our checkpointer puts a plain backbone file into a classifier's Res2Net
(files served from 127.0.0.1; skipped without Detectron2)."""
import dataclasses
import hashlib
from types import MappingProxyType

import pytest
import torch

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.utils.file_io import PathManager  # noqa: E402

from res2net_det.config import get_cfg as get_our_cfg  # noqa: E402
from res2net_det.config import merge_config_file  # noqa: E402
from res2net_det.config.classification import build_classifier_model  # noqa: E402
from res2net_det.engines.detectron2 import Res2NetDetectionCheckpointer  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_config  # noqa: E402
from res2net_det.modeling import pretrained  # noqa: E402
from res2net_det.modeling.pretrained import OFFICIAL_HOSTS, WEIGHTS  # noqa: E402
from res2net_det.modeling.res2net import create_model  # noqa: E402
from tests.helpers import REPO, FileServer, file_bytes  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def served_official_file(tmp_path, monkeypatch):
    """res2net://res2net50_26w_4s served through the mirror under a name whose hash is true."""
    monkeypatch.setenv("RES2NET_DET_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    state = create_model("res2net50_26w_4s").state_dict()
    body = file_bytes(state)
    name = f"res2net50_26w_4s-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    entry = WEIGHTS["res2net://res2net50_26w_4s"]
    patched = dataclasses.replace(entry, file=name, urls=tuple(host + name for host in OFFICIAL_HOSTS))
    monkeypatch.setattr(pretrained, "WEIGHTS", MappingProxyType({**WEIGHTS, entry.name: patched}))
    with FileServer({"/res2net/" + name: body}) as server:
        monkeypatch.setenv("RES2NET_DET_WEIGHTS_MIRROR", server.url)
        yield state, server


def test_detectron2s_own_checkpointer_loads_res2net_names_through_path_manager(served_official_file):
    state, server = served_official_file
    local = PathManager.get_local_path("res2net://res2net50_26w_4s")
    assert local.endswith("_detectron2.pth") and PathManager.isfile("res2net://res2net50_26w_4s")
    cfg = build_config(str(REPO / "configs" / "faster_rcnn_r2_50.yaml"),
                       ["MODEL.DEVICE", "cpu", "MODEL.ROI_HEADS.NUM_CLASSES", "3"])
    model = build_model(cfg)
    DetectionCheckpointer(model).load("res2net://res2net50_26w_4s")  # upstream's class
    loaded = model.state_dict()
    for key, value in state.items():
        if not key.startswith("fc.") and not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[f"backbone.bottom_up.{key}"], value), key
    assert sum(server.requests.values()) == 1  # fetched once for get_local_path, isfile and load


def test_our_checkpointer_puts_a_plain_backbone_file_into_a_classifiers_res2net(served_official_file):
    state, server = served_official_file
    cfg = merge_config_file(get_our_cfg(), str(REPO / "configs" / "cam" / "res2net50_finetune.yaml"))
    cfg.MODEL.CLASSIFIER.NUM_CLASSES = 1000
    model = build_classifier_model(cfg)
    Res2NetDetectionCheckpointer(model).load("res2net://res2net50_26w_4s")
    loaded = model.state_dict()
    for key, value in state.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[f"backbone.{key}"], value), key
