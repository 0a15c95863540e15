"""Weights by name: the table, and fetching from a local HTTP server on 127.0.0.1 (the tests reach
nothing else): cache, checksums, mirror, failures, concurrent processes, the three file layouts."""
import dataclasses
import hashlib
import multiprocessing
import os
from types import MappingProxyType

import pytest
import torch
from torchvision.models import ResNet50_Weights, ResNet101_Weights

from res2net_det.modeling import pretrained
from res2net_det.modeling.pretrained import OFFICIAL_HOSTS, WEIGHTS, weights_entry, weights_source
from res2net_det.modeling.res2net import MODEL_TABLE, Res2Net, create_model
from res2net_det.modeling.weights import load_weights, resolve_weights
from res2net_det.utils.download import ChecksumError, DownloadError, mirrored
from tests.helpers import FileServer, file_bytes


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RES2NET_DET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RES2NET_DET_WEIGHTS_MIRROR", raising=False)
    return tmp_path / "cache"


def _files_under(folder):
    return sorted(os.path.relpath(os.path.join(root, f), folder) for root, _, files in os.walk(folder) for f in files
                  if not f.endswith(".lock"))


def _tiny_state(seed=0):
    torch.manual_seed(seed)
    return Res2Net((1, 1, 1, 1), base_width=4, scale=4, num_classes=0).state_dict()


def _hashed(name, body):
    return f"{name}-{hashlib.sha256(body).hexdigest()[:8]}.pth"


# ---------------------------------------------------------------------------- the table
def test_every_published_row_has_its_official_file_under_every_host():
    for variant, row in MODEL_TABLE.items():
        if not row.checkpoint:
            assert f"res2net://{variant}" not in WEIGHTS
            continue
        entry = WEIGHTS[f"res2net://{variant}"]
        assert entry.urls == tuple(host + row.checkpoint for host in OFFICIAL_HOSTS)
        assert entry.sha256_prefix == row.checkpoint.rsplit("-", 1)[1].split(".")[0]
        assert weights_entry(f"/some/dir/{row.checkpoint}") is entry  # known by its file name too


def test_timm_entries_match_timms_own_pretrained_cfgs():
    timm = pytest.importorskip("timm")
    timm_entries = [w for w in WEIGHTS.values() if w.source == "timm"]
    assert len(timm_entries) == sum(1 for r in MODEL_TABLE.values() if r.checkpoint and r.timm_name) + 1
    for entry in timm_entries:
        cfg = timm.models.get_pretrained_cfg(entry.name[len("timm://"):])
        assert entry.urls == (f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/model.safetensors",)
        assert entry.preprocessing.mean == cfg.mean and entry.preprocessing.std == cfg.std
        assert entry.preprocessing.interpolation == cfg.interpolation
        assert entry.preprocessing.crop / entry.preprocessing.resize == cfg.crop_pct
        assert entry.license == cfg.license


@pytest.mark.parametrize("variant, v1, file", [
    ("resnet50", ResNet50_Weights.IMAGENET1K_V1, "resnet50-0676ba61.pth"),
    ("resnet101", ResNet101_Weights.IMAGENET1K_V1, "resnet101-63fe2227.pth"),
])
def test_torchvision_baseline_is_the_classic_v1_file(variant, v1, file):
    entry = WEIGHTS[f"torchvision://{variant}"]
    assert entry.urls == (v1.url,) and entry.file == file and entry.sha256_prefix == file[-12:-4]
    t = v1.transforms()
    assert (entry.preprocessing.mean, entry.preprocessing.std) == (tuple(t.mean), tuple(t.std))
    assert (entry.preprocessing.resize, entry.preprocessing.crop) == (t.resize_size[0], t.crop_size[0])
    assert entry.row.top1 == v1.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    assert entry.row.params == v1.meta["num_params"]
    assert entry.row.gmacs == round(v1.meta["_ops"], 2) and (entry.row.depth, entry.row.scale) == (int(variant[6:]), 1)


def test_names_aliases_and_errors():
    assert weights_entry("res2net://res2net50d").name == "res2net://res2net50_v1b_26w_4s"
    assert weights_entry("timm://res2net50_v1b_26w_4s").name == "timm://res2net50d.in1k"
    assert weights_entry("timm://res2net50d.in1k") is weights_entry("timm://res2net50d")
    assert weights_entry("timm://resnet50").name == "timm://resnet50.tv_in1k"
    assert weights_entry("output/run/model_final.pth") is None and weights_entry("model.safetensors") is None
    with pytest.raises(KeyError, match="torchvision://resnet50"):
        weights_entry("res2net://resnet50")
    with pytest.raises(KeyError, match="torchvision://resnet101"):
        weights_entry("res2net://resnet101")
    with pytest.raises(KeyError, match="res2net://res2net50_26w_4s"):
        weights_entry("res2net://nope")


@pytest.mark.parametrize("variant", ["res2net50_26w_4s", "res2next50", "resnet50"])
def test_params_and_macs_of_the_table_are_the_models(variant):
    from res2net_det.evaluation.complexity import model_complexity

    row = MODEL_TABLE[variant]
    counted = model_complexity(variant)
    assert row.params == counted.params
    fc_macs = 2048 * 1000 / 1e9
    assert row.gmacs == round(counted.gflops_conv + fc_macs, 2)


def test_params_of_every_row_are_the_models():
    for variant, row in MODEL_TABLE.items():
        with torch.device("meta"):
            model = create_model(variant)
        assert row.params == sum(p.numel() for p in model.parameters()), variant


def test_mirror_keeps_the_path():
    url = "https://shanghuagao.oss-cn-beijing.aliyuncs.com/res2net/x-0123abcd.pth"
    assert mirrored(url, "http://127.0.0.1:9/base/") == "http://127.0.0.1:9/base/res2net/x-0123abcd.pth"
    assert mirrored(url, "") == url


# ---------------------------------------------------------------------------- fetching
def test_url_with_hash_is_downloaded_once_checked_and_cached(cache, caplog):
    body = file_bytes(_tiny_state())
    name = _hashed("tiny", body)
    with FileServer({f"/w/{name}": body}) as server:
        url = f"{server.url}/w/{name}"
        with caplog.at_level("INFO"):
            path = resolve_weights(url)
        assert open(path, "rb").read() == body and path.startswith(str(cache))
        assert hashlib.sha256(body).hexdigest() in caplog.text  # the log names the digest
        assert resolve_weights(url) == path
        model = Res2Net((1, 1, 1, 1), base_width=4, scale=4, num_classes=0)
        assert load_weights(model, url).loaded  # load_weights takes the URL too
        assert server.requests == {f"/w/{name}": 1}  # the second and third uses make no request
    assert _files_under(cache) == [os.path.relpath(path, cache)]  # no .partial, no record for a hashed name


def test_wrong_content_under_a_hashed_name_is_refused_and_not_cached(cache):
    body = file_bytes(_tiny_state())
    with FileServer({"/w/tiny-deadbeef.pth": body}) as server:
        url = f"{server.url}/w/tiny-deadbeef.pth"
        with pytest.raises(ChecksumError) as e:
            resolve_weights(url)
    message = str(e.value)
    assert url in message and "deadbeef" in message and hashlib.sha256(body).hexdigest() in message
    assert os.path.join(str(cache), "urls") in message and "WEIGHTS_ACCEPT_CHECKSUM_MISMATCH" in message
    assert _files_under(cache) == []


def test_not_found_and_connection_refused_name_the_url_the_mirror_and_the_cache_path(cache, monkeypatch):
    with FileServer() as server:
        missing = f"{server.url}/w/none-0123abcd.pth"
        with pytest.raises(DownloadError) as e:
            resolve_weights(missing)
        closed_port = server.url  # the server stops at the end of this block
    assert missing in str(e.value) and "404" in str(e.value) and "RES2NET_DET_WEIGHTS_MIRROR" in str(e.value)
    assert os.path.join(str(cache), "urls", server.url.split("//")[1].replace(":", "_"), "w", "none-0123abcd.pth") \
        in str(e.value)
    monkeypatch.setenv("RES2NET_DET_WEIGHTS_MIRROR", closed_port)
    with pytest.raises(DownloadError) as e:
        resolve_weights("res2net://res2net50_26w_4s")
    urls, path, _ = weights_source("res2net://res2net50_26w_4s")
    assert len(urls) == len(OFFICIAL_HOSTS) and all(u in str(e.value) for u in urls)
    assert "refused" in str(e.value).lower() and path in str(e.value) and closed_port in str(e.value)
    assert _files_under(cache) == []


def test_a_transfer_cut_halfway_leaves_no_file(cache):
    body = file_bytes(_tiny_state())
    with FileServer({"/w/model.safetensors": body}) as server:
        server.cut.add("/w/model.safetensors")
        with pytest.raises(DownloadError, match="cut"):
            resolve_weights(f"{server.url}/w/model.safetensors")
    assert _files_under(cache) == []


def test_a_page_that_is_no_checkpoint_is_not_cached(cache):
    with FileServer({"/w/model.pth": b"<html>please log in</html>"}) as server:
        with pytest.raises(DownloadError, match="does not read as a checkpoint"):
            resolve_weights(f"{server.url}/w/model.pth")
    assert _files_under(cache) == []


def _fetch_in_process(url, cache_dir, queue):
    os.environ["RES2NET_DET_CACHE"] = cache_dir
    queue.put(resolve_weights(url))


def test_two_processes_fetching_at_once_end_with_one_good_file_and_one_download(cache):
    body = file_bytes(_tiny_state())
    name = _hashed("tiny", body)
    with FileServer({f"/w/{name}": body}) as server:
        server.delay = 1.0  # both processes ask while the first download is still under way
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        procs = [context.Process(target=_fetch_in_process, args=(f"{server.url}/w/{name}", str(cache), queue))
                 for _ in range(2)]
        for p in procs:
            p.start()
        paths = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0, 0]
        assert server.requests == {f"/w/{name}": 1}
    assert paths[0] == paths[1] and open(paths[0], "rb").read() == body
    assert _files_under(cache) == [os.path.relpath(paths[0], cache)]


def test_a_file_placed_by_hand_in_the_cache_is_used_without_a_request(cache, monkeypatch):
    body = file_bytes(_tiny_state())
    with FileServer() as server:
        monkeypatch.setenv("RES2NET_DET_WEIGHTS_MIRROR", server.url)
        path = WEIGHTS["timm://res2net50_26w_4s.in1k"].cache_path
        os.makedirs(os.path.dirname(path))
        open(path, "wb").write(body)
        assert resolve_weights("timm://res2net50_26w_4s") == path
        assert server.requests == {}
    assert open(path + ".sha256").read().split()[0] == hashlib.sha256(body).hexdigest()  # checked from now on


# ---------------------------------------------------------------------------- the three layouts
def test_timm_safetensors_through_the_mirror_give_timms_outputs(cache, monkeypatch):
    timm = pytest.importorskip("timm")
    reference = timm.create_model("res2net50_26w_4s", pretrained=False).eval()
    body = file_bytes(reference.state_dict(), "safetensors")
    hub_path = "/timm/res2net50_26w_4s.in1k/resolve/main/model.safetensors"
    with FileServer({hub_path: body}) as server:
        monkeypatch.setenv("RES2NET_DET_WEIGHTS_MIRROR", server.url)
        ours = create_model("res2net50_26w_4s", weights="timm://res2net50_26w_4s").eval()
        path = resolve_weights("timm://res2net50_26w_4s")
        assert server.requests == {hub_path: 1}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5, rtol=1e-4)
    # No published checksum: the first download's sha256 is recorded, and later reads are held to it.
    assert open(path + ".sha256").read().split()[0] == hashlib.sha256(body).hexdigest()
    with open(path, "r+b") as f:
        f.seek(len(body) - 4)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ChecksumError, match="recorded at its first download"):
        resolve_weights("timm://res2net50_26w_4s")


def test_official_file_fetched_from_the_next_host_when_the_first_is_down(cache, monkeypatch):
    state = create_model("res2net50_26w_4s", num_classes=1000).state_dict()
    body = file_bytes(state)
    name = _hashed("res2net50_26w_4s", body)  # a hash-true name stands in for the official one
    entry = WEIGHTS["res2net://res2net50_26w_4s"]
    patched = dataclasses.replace(entry, file=name, urls=tuple(host + name for host in OFFICIAL_HOSTS))
    monkeypatch.setattr(pretrained, "WEIGHTS", MappingProxyType({**WEIGHTS, entry.name: patched}))
    second_host = "/projects/res2net/pretrainmodels/" + name
    with FileServer({second_host: body}) as server:
        monkeypatch.setenv("RES2NET_DET_WEIGHTS_MIRROR", server.url)
        model = create_model("res2net50_26w_4s", weights="res2net://res2net50_26w_4s")
        assert server.requests == {"/res2net/" + name: 1, second_host: 1}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items() if not k.endswith("tracked"))


def test_torchvision_file_refused_under_its_official_name_then_accepted_on_purpose(cache, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    reference = torchvision.models.resnet50().eval()
    body = file_bytes(reference.state_dict())
    path_on_server = "/models/resnet50-0676ba61.pth"  # our generated file can't have that sha256 prefix
    with FileServer({path_on_server: body}) as server:
        monkeypatch.setenv("RES2NET_DET_WEIGHTS_MIRROR", server.url)
        with pytest.raises(ChecksumError, match="0676ba61"):
            resolve_weights("torchvision://resnet50")
        assert _files_under(cache) == []
        path = resolve_weights("torchvision://resnet50", accept_checksum_mismatch=True)
        ours = create_model("resnet50", weights="torchvision://resnet50").eval()  # trusted from now on
        assert server.requests == {path_on_server: 2}
    assert open(path + ".sha256").read().split()[0] == hashlib.sha256(body).hexdigest()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5, rtol=1e-4)


def test_torchvision_resnet101_file_loads_into_the_resnet101_variant(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    reference = torchvision.models.resnet101().eval()
    path = tmp_path / "resnet101.pth"
    torch.save(reference.state_dict(), path)
    ours = create_model("resnet101", weights=str(path)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(x), reference(x), atol=1e-5, rtol=1e-4)
