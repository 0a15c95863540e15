import argparse

import pytest

import res2net_det.engines as engines
from res2net_det.config import get_cfg


@pytest.fixture
def no_detectron2(monkeypatch):
    monkeypatch.setattr(engines, "detectron2_available", lambda: False)


@pytest.fixture
def with_detectron2(monkeypatch):
    monkeypatch.setattr(engines, "detectron2_available", lambda: True)


def test_auto_follows_importability(no_detectron2):
    assert engines.select_engine("auto") == "torchvision"
    assert engines.select_engine(None) == "torchvision"


def test_auto_prefers_detectron2(with_detectron2):
    assert engines.select_engine("auto") == "detectron2"
    assert engines.select_engine("torchvision") == "torchvision"


def test_detectron2_requested_but_missing(no_detectron2):
    with pytest.raises(RuntimeError, match="Detectron2 is not installed"):
        engines.select_engine("detectron2")


def test_bad_engine_name():
    with pytest.raises(ValueError, match="tensorflow"):
        engines.select_engine("tensorflow")


def test_from_cfg_and_from_args(tmp_path, with_detectron2):
    cfg = get_cfg()
    cfg.ENGINE = "torchvision"
    assert engines.select_engine(cfg) == "torchvision"
    path = tmp_path / "c.yaml"
    path.write_text("ENGINE: torchvision\n")
    args = engines.default_argument_parser().parse_args(["--config-file", str(path)])
    assert engines.select_engine(args) == "torchvision"
    # a command-line ENGINE wins over the file
    args = engines.default_argument_parser().parse_args(["--config-file", str(path), "ENGINE", "auto"])
    assert engines.select_engine(args) == "detectron2"


def test_parser_has_detectron2_flags():
    args = engines.default_argument_parser().parse_args(
        ["--config-file", "a.yaml", "--resume", "--eval-only", "--num-gpus", "2", "--num-machines", "1",
         "--machine-rank", "0", "--dist-url", "tcp://1.2.3.4:5", "SOLVER.BASE_LR", "0.1"])
    assert args.resume and args.eval_only and args.num_gpus == 2
    assert args.opts == ["SOLVER.BASE_LR", "0.1"]


def test_main_dispatches_to_the_selected_engine(monkeypatch, no_detectron2):
    import res2net_det.engines.torchvision.train_net as tv_train_net

    called = {}
    monkeypatch.setattr(tv_train_net, "main", lambda args: called.setdefault("tv", args))
    args = argparse.Namespace(config_file="", opts=[])
    engines.main(args)
    assert called["tv"] is args


def test_torchvision_engine_refuses_num_gpus_without_torchrun(monkeypatch):
    from res2net_det.engines.torchvision import train_net

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args = engines.default_argument_parser().parse_args(["--num-gpus", "2"])
    with pytest.raises(SystemExit, match="torchrun --nproc_per_node 2"):
        train_net.main(args)
