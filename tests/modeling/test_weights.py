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


# ---------------------------------------------------------------------------- the one loader
def _tiny(name=NAME, **kw):
    return res2net_det.create_model(name, layers=(1, 1, 1, 1), **kw)


def test_unsafe_file_is_refused_with_a_conversion_command(tmp_path):
    import fractions

    from res2net_det.modeling.weights import UnsafeCheckpointError, load_checkpoint

    path = tmp_path / "pickled_model.pth"
    torch.save({"lr": fractions.Fraction(1, 3)}, path)  # any object the weights-only loader does not know
    with pytest.raises(UnsafeCheckpointError, match=r"pickled_model\.pth would need unsafe unpickling .*Fraction") as e:
        load_checkpoint(str(path))
    assert "python -c" in str(e.value) and "pickled_model.state_dict.pth" in str(e.value)


def test_backbone_file_goes_to_the_models_res2net(tmp_path):
    """A plain Res2Net file into a model holding one as ``backbone`` (saliency, classifier) or
    ``backbone.bottom_up`` (detector); the report names the model's keys."""
    source = _tiny(num_classes=0)
    path = tmp_path / "backbone.pth"
    torch.save(source.state_dict(), path)
    holder = torch.nn.Module()
    holder.backbone = _tiny(num_classes=0)
    holder.head = torch.nn.Conv2d(4, 1, 1)
    report = load_weights(holder, str(path))
    assert report.prefix == "backbone." and "backbone.conv1.weight" in report.loaded
    assert torch.equal(holder.backbone.conv1.weight, source.conv1.weight)
    detector = torch.nn.Module()
    detector.backbone = torch.nn.Module()
    detector.backbone.bottom_up = _tiny(num_classes=0)
    assert load_weights(detector, str(path)).prefix == "backbone.bottom_up."
    with pytest.raises(CheckpointError, match=r"no tensor of .*backbone\.pth fits"):  # never passes for a whole model
        load_weights(holder, str(path), strict=True)


def test_mismatched_shapes_error_or_skip_and_strict(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save(_tiny(base_width=8, num_classes=0).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"wide\.pth does not fit.*8w x 4s.*26w x 4s"):
        load_weights(_tiny(num_classes=0), str(path))
    report = load_weights(_tiny(num_classes=0), str(path), skip_mismatched=True)
    assert report.skipped_shape and "layer1.0.conv1.weight (32, 64, 1, 1) -> (104, 64, 1, 1)" in report.skipped_shape
    torch.save({"unrelated.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match=r"no tensor of .*other\.pth fits the model"):
        load_weights(_tiny(num_classes=0), str(tmp_path / "other.pth"))


def test_layout_hook(tmp_path):
    """Another project's layout (here: every key under "encoder.") is taught once with register_layout."""
    from res2net_det.modeling import weights

    source = _tiny(num_classes=0)
    torch.save({f"encoder.{k}": v for k, v in source.state_dict().items()}, tmp_path / "paper.pth")
    with pytest.raises(CheckpointError):
        load_weights(_tiny(num_classes=0), str(tmp_path / "paper.pth"))
    strip = lambda state: {k[len("encoder."):]: v for k, v in state.items()}  # noqa: E731
    report = load_weights(_tiny(num_classes=0), str(tmp_path / "paper.pth"), convert=strip)
    assert not report.missing and report.layouts == ["given"]
    weights.register_layout("test encoder", lambda state, model: any(k.startswith("encoder.") for k in state), strip)
    try:
        report = load_weights(_tiny(num_classes=0), str(tmp_path / "paper.pth"))
        assert not report.missing and "test encoder" in report.layouts
    finally:
        weights._LAYOUTS[:] = [e for e in weights._LAYOUTS if e[0] != "test encoder"]


def test_one_architecture_guesser():
    from res2net_det.modeling.res2net import variant_args
    from res2net_det.modeling.weights import infer_res2net_args

    for name in ("res2net50_26w_4s", "res2next50", "res2net50d", "resnet50"):
        args = infer_res2net_args(res2net_det.create_model(name).state_dict())
        for key, value in variant_args(name).items():
            if key in args:
                assert args[key] == (tuple(value) if key == "layers" else value), (name, key)
    with pytest.raises(CheckpointError, match="not a Res2Net/ResNet backbone"):
        infer_res2net_args({"weight": torch.zeros(3)})
