"""Checkpoint files: the official formats load, and every kind of bad file gets a clear error."""
import pytest
import torch

import res2net_det
from res2net_det.modeling.weights import CheckpointError, describe_state_dict, load_weights, read_state_dict

from tests.helpers import randomize_norm_

NAME = "res2net50_26w_4s"


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return randomize_norm_(res2net_det.create_model(NAME)).eval()


def _outputs_equal(model, reference):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        return torch.equal(model.eval()(x), reference(x))


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "module_prefix", "state_dict_module_prefix", "model"])
def test_official_checkpoint_formats(reference, tmp_path, wrap):
    state = reference.state_dict()
    if "module_prefix" in wrap:  # saved from DataParallel
        state = {f"module.{k}": v for k, v in state.items()}
    if wrap.startswith("state_dict"):
        state = {"state_dict": state, "epoch": 100, "arch": NAME}
    if wrap == "model":  # timm / Detectron2 training checkpoints
        state = {"model": state, "optimizer": {}}
    path = tmp_path / "ckpt.pth"
    torch.save(state, path)
    model = res2net_det.create_model(NAME, weights=str(path))
    assert _outputs_equal(model, reference)


def test_v1b_checkpoint_keys(tmp_path):
    torch.manual_seed(0)
    ref = randomize_norm_(res2net_det.create_model("res2net50_v1b_26w_4s")).eval()
    state = ref.state_dict()
    for key in ["conv1.0.weight", "conv1.1.weight", "conv1.3.weight", "conv1.4.weight", "conv1.6.weight",
                "layer3.0.downsample.1.weight", "layer3.0.downsample.2.running_var"]:
        assert key in state
    path = tmp_path / "v1b.pth"
    torch.save({"state_dict": state}, path)
    report = load_weights(res2net_det.create_model("res2net50d"), str(path))
    assert not report.missing and not report.unexpected
    assert _outputs_equal(res2net_det.create_model("res2net50d", weights=str(path)), ref)


def test_other_variant_names_key_and_shapes(tmp_path):
    path = tmp_path / "res2net50_26w_8s.pth"
    torch.save(res2net_det.create_model("res2net50_26w_8s").state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        res2net_det.create_model(NAME, weights=str(path))
    msg = str(err.value)
    assert str(path) in msg
    assert "'layer1.0.conv1.weight'" in msg
    assert "(208, 64, 1, 1) in the checkpoint but (104, 64, 1, 1) in the model" in msg
    assert "26w x 8s" in msg and "26w x 4s" in msg


def test_depth_mismatch_reports_keys(tmp_path, caplog):
    """A 101-layer checkpoint in a 50-layer model: the extra blocks are reported as unexpected."""
    state = {k: v for k, v in res2net_det.create_model(NAME).state_dict().items()}
    state["layer3.6.conv1.weight"] = torch.zeros(104, 1024, 1, 1)
    del state["layer4.2.bn3.bias"]
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    model = res2net_det.create_model(NAME)
    report = load_weights(model, str(path))
    assert report.unexpected == ["layer3.6.conv1.weight"]
    assert report.missing == ["layer4.2.bn3.bias"]
    assert "layer3.6.conv1.weight" in caplog.text and "layer4.2.bn3.bias" in caplog.text
    with pytest.raises(CheckpointError, match="layer4.2.bn3.bias"):
        load_weights(model, str(path), strict=True)


def test_classifier_of_another_size_is_skipped(reference, tmp_path):
    path = tmp_path / "imagenet.pth"
    torch.save(reference.state_dict(), path)
    model = res2net_det.create_model(NAME, weights=str(path), num_classes=5).eval()
    report = load_weights(model, str(path))
    assert report.skipped_classifier == ["fc.weight", "fc.bias"]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.forward_features(x)["res5"], reference.forward_features(x)["res5"])
    backbone = res2net_det.create_model(NAME, weights=str(path), num_classes=0)
    assert "fc.weight" not in backbone.state_dict()


def test_truncated_file(reference, tmp_path):
    path = tmp_path / "truncated.pth"
    torch.save(reference.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pth.*truncated"):
        res2net_det.create_model(NAME, weights=str(path))


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("this is not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.txt.*not a PyTorch checkpoint"):
        res2net_det.create_model(NAME, weights=str(path))


def test_checkpoint_without_tensors(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="empty.pth holds no tensors"):
        read_state_dict(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        res2net_det.create_model(NAME, weights=str(tmp_path / "nowhere.pth"))


def test_describe_state_dict_names_variants():
    def describe(name):
        return describe_state_dict(res2net_det.create_model(name).state_dict())

    assert describe("res2net50_26w_4s") == "depth 50, 26w x 4s, 7x7 stem"
    assert describe("res2next50") == "depth 50, 4w x 4s, cardinality 8, 7x7 stem"
    assert describe("res2net101d") == "depth 101, 26w x 4s, deep stem"
    assert describe("resnet50") == "depth 50, 64w x 1s, 7x7 stem"
    assert describe_state_dict({"weight": torch.zeros(3)}).startswith("not a Res2Net checkpoint")
