"""Issue 12: a checkpoint from the internet must never run code.

A ``.pth`` whose unpickling would create a marker file is fed to every entry point that reads
weights or checkpoints; each refuses it with UnsafeCheckpointError naming the file, and the
marker never appears. A config file with a Python YAML tag is refused the same way.
"""
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

import res2net_det
from res2net_det.config import get_cfg, merge_config_file
from res2net_det.engines import default_argument_parser
from res2net_det.engines import main as train_net_main
from res2net_det.engines.torchvision.predictor import Predictor
from res2net_det.modeling.cam import parse_model_spec, save_model_card
from res2net_det.modeling.convert import convert_file
from res2net_det.modeling.weights import UnsafeCheckpointError
from tests.helpers import REPO, tiny_sod_cfg, write_pair


class _Payload:
    """Unpickled with weights_only=False, this creates the file ``marker`` (``open(marker, "w")``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def evil(tmp_path):
    """``(path of the malicious checkpoint, marker path)``; the file otherwise looks like ours."""
    marker = tmp_path / "MARKER_code_ran"
    path = tmp_path / "downloaded.pth"
    state = res2net_det.create_model("res2net50_26w_4s", num_classes=0, layers=(1, 1, 1, 1), base_width=4).state_dict()
    torch.save({"model": state, "iteration": 3, "extra": _Payload(marker)}, path)
    yield str(path), marker
    assert not marker.exists(), "unpickling ran code from the checkpoint"


def _refused(evil_path, call):
    with pytest.raises(UnsafeCheckpointError) as err:
        call()
    message = str(err.value)
    assert evil_path in message and "would need unsafe unpickling" in message
    assert "weights_only=False" in message and "torch.save" in message  # the conversion one-liner
    return message


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sod_config(tmp_path, **extra):
    cfg = tiny_sod_cfg()
    cfg.ENGINE = "torchvision"
    cfg.OUTPUT_DIR = str(tmp_path / "out")
    for key, value in extra.items():
        cfg.merge_from_list([key, value])
    path = tmp_path / "tiny_sod.yaml"
    path.write_text(cfg.dump())
    return str(path)


def test_the_payload_is_real(tmp_path):
    """The unsafe loader would run it: what the other tests refuse is a live threat."""
    marker = tmp_path / "sanity_marker"
    path = tmp_path / "sanity.pth"
    torch.save({"x": _Payload(marker)}, path)
    code = ("import sys, torch; sys.path.insert(0, sys.argv[2]); import tests.tools.test_unsafe_checkpoints; "
            "torch.load(sys.argv[1], weights_only=False)")
    subprocess.run([sys.executable, "-c", code, str(path), str(REPO)], check=True)
    assert marker.exists()


def test_create_model_weights(evil):
    path, _ = evil
    _refused(path, lambda: res2net_det.create_model("res2net50_26w_4s", weights=path))


def test_cam_model_specs_and_cards(evil, tmp_path):
    path, _ = evil
    _refused(path, lambda: parse_model_spec(f"res2net50_26w_4s={path}", 4))
    _refused(path, lambda: parse_model_spec(f"torchvision:resnet18={path}", 4))
    card = save_model_card(str(tmp_path / "card.json"), torch.nn.Linear(1, 1), "res2net50_26w_4s", 4)
    os.replace(path, tmp_path / "card.pth")  # the card's weights are the downloaded file
    _refused(str(tmp_path / "card.pth"), lambda: parse_model_spec(card, 4))


def test_convert_weights(evil, tmp_path, capsys):
    path, _ = evil
    _refused(path, lambda: convert_file(path, str(tmp_path / "converted.pth")))
    assert _tool("convert_weights").main([path, str(tmp_path / "converted.pth")]) == 1
    assert "would need unsafe unpickling" in capsys.readouterr().err
    assert not (tmp_path / "converted.pth").exists()


def test_predict_saliency_weights(evil, tmp_path):
    path, _ = evil
    write_pair(tmp_path / "images", tmp_path / "masks", "a")
    tool = _tool("predict_saliency")
    _refused(path, lambda: tool.main(["--config-file", _sod_config(tmp_path), "--weights", path,
                                      "--input", str(tmp_path / "images"), "--output", str(tmp_path / "o"),
                                      "--no-progress"]))
    assert not (tmp_path / "o").exists() or not os.listdir(tmp_path / "o")


def test_model_weights_on_the_torchvision_engine(evil, tmp_path):
    path, _ = evil
    config = _sod_config(tmp_path, **{"MODEL.WEIGHTS": path, "SOLVER.MAX_ITER": 1})
    for extra in ([], ["--eval-only"]):
        args = default_argument_parser().parse_args(["--config-file", config, *extra])
        _refused(path, lambda: train_net_main(args))
    cfg = merge_config_file(get_cfg(), config)
    _refused(path, lambda: Predictor(cfg))  # tools/demo.py's loader


def test_resume_on_the_torchvision_engine(evil, tmp_path):
    path, _ = evil
    config = _sod_config(tmp_path, **{"SOLVER.MAX_ITER": 1})
    out = tmp_path / "out"
    out.mkdir()
    os.replace(path, out / "model_0000003.pth")
    (out / "last_checkpoint").write_text("model_0000003.pth")
    args = default_argument_parser().parse_args(["--config-file", config, "--resume"])
    _refused(str(out / "model_0000003.pth"), lambda: train_net_main(args))


def test_the_conversion_command_makes_a_safe_file(tmp_path):
    """For a file the user trusts (here: one holding an argparse.Namespace, common in research
    checkpoints), the printed command converts it and the result loads."""
    import argparse
    import shlex

    path = tmp_path / "research.pth"
    state = res2net_det.create_model("res2net50_26w_4s", num_classes=0, layers=(1, 1, 1, 1), base_width=4).state_dict()
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=0.1), "epoch": 100}, path)
    message = _refused(str(path), lambda: res2net_det.create_model(
        "res2net50_26w_4s", weights=str(path), num_classes=0, layers=(1, 1, 1, 1), base_width=4))
    assert "argparse.Namespace" in message
    command = message.strip().splitlines()[-1].strip()
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    subprocess.run([sys.executable, "-c", argv[2]], check=True)
    converted = tmp_path / "research.state_dict.pth"
    model = res2net_det.create_model("res2net50_26w_4s", weights=str(converted), num_classes=0,
                                     layers=(1, 1, 1, 1), base_width=4)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])


def test_config_yaml_stays_safe(tmp_path):
    marker = tmp_path / "yaml_marker"
    config = tmp_path / "evil.yaml"
    config.write_text(f"SEED: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ValueError, match="evil.yaml"):
        merge_config_file(get_cfg(), str(config))
    assert not marker.exists()
