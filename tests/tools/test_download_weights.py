"""tools/download_weights.py and tools/convert_weights.py with weights names, against a local HTTP
server on 127.0.0.1 reached through RES2NET_DET_WEIGHTS_MIRROR."""
import os
import subprocess
import sys

import torch

from res2net_det.modeling.pretrained import WEIGHTS
from res2net_det.modeling.res2net import create_model
from res2net_det.modeling.weights import load_weights, read_state_dict
from tests.helpers import REPO, FileServer, file_bytes

HUB = "/timm/res2net50_26w_4s.in1k/resolve/main/model.safetensors"


def _run(tool, *args, env):
    return subprocess.run([sys.executable, str(REPO / "tools" / tool), *args], capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=300)


def _env(tmp_path, mirror):
    env = dict(os.environ, RES2NET_DET_CACHE=str(tmp_path / "cache"), RES2NET_DET_WEIGHTS_MIRROR=mirror,
               PYTHONPATH=str(REPO))
    return env


def test_list_prints_every_name_with_its_checksum_and_preprocessing(tmp_path):
    out = _run("download_weights.py", "--list", env=_env(tmp_path, "")).stdout
    for name, entry in WEIGHTS.items():
        assert name in out and entry.file in out
    assert "res2net50_26w_4s-06e79181.pth" in out and "0676ba61" in out
    assert "PIXEL_MEAN [123.675, 116.28, 103.53]" in out and str(tmp_path / "cache") in out


def test_fetch_ahead_then_convert_by_name_to_safetensors(tmp_path):
    torch.manual_seed(0)
    state = create_model("res2net50_26w_4s").state_dict()
    body = file_bytes(state, "safetensors")
    with FileServer({HUB: body}) as server:
        env = _env(tmp_path, server.url)
        fetched = _run("download_weights.py", "timm://res2net50_26w_4s", "res2net://nope", env=env)
        assert fetched.returncode == 1  # one name unknown: said, and the other still fetched
        assert "res2net://nope: FAILED" in fetched.stderr
        cached = tmp_path / "cache" / "timm" / "res2net50_26w_4s.in1k" / "model.safetensors"
        assert f"timm://res2net50_26w_4s: {cached}" in fetched.stdout and open(cached, "rb").read() == body
        out = tmp_path / "r2.safetensors"
        converted = _run("convert_weights.py", "timm://res2net50_26w_4s", str(out), "--variant", "res2net50_26w_4s",
                         env=env)
        assert converted.returncode == 0, converted.stderr
        assert server.requests == {HUB: 1}  # the conversion read the cache
    assert open(out, "rb").read(9)[8:9] == b"{"  # a safetensors file: no pickle
    converted_state = read_state_dict(str(out))
    assert set(converted_state) == {f"backbone.bottom_up.{k}" for k in state
                                    if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    detector_backbone = create_model("res2net50_26w_4s", num_classes=0)
    report = load_weights(detector_backbone, {k[len("backbone.bottom_up."):]: v for k, v in converted_state.items()})
    assert not report.missing and not report.unexpected


def test_evaluation_and_saliency_loaders_take_urls(tmp_path, monkeypatch):
    from res2net_det.evaluation.classification import load_evaluation_weights
    from res2net_det.evaluation.saliency_inference import load_inference_weights
    from res2net_det.modeling.res2net import Res2Net

    monkeypatch.setenv("RES2NET_DET_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    source = Res2Net((1, 1, 1, 1), base_width=4, scale=4, num_classes=5)
    with FileServer({"/w/model.pth": file_bytes(source.state_dict())}) as server:
        for load in (lambda m, u: load_evaluation_weights(m, u, 5, "test data"), load_inference_weights):
            model = Res2Net((1, 1, 1, 1), base_width=4, scale=4, num_classes=5)
            load(model, f"{server.url}/w/model.pth")
            assert torch.equal(model.fc.weight, source.fc.weight)
        assert server.requests == {"/w/model.pth": 1}
