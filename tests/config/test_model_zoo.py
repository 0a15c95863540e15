import os
import sys

import pytest

from res2net_det import model_zoo
from res2net_det.config import get_cfg, merge_config_file
from res2net_det.engines import default_argument_parser
from tests.helpers import REPO


def test_every_repository_config_is_in_the_zoo():
    on_disk = sorted(
        os.path.relpath(os.path.join(d, f), REPO / "configs").replace(os.sep, "/")
        for d, _, files in os.walk(REPO / "configs") for f in files if f.endswith(".yaml")
    )
    assert model_zoo.list_configs() == on_disk
    assert "faster_rcnn_r2_50.yaml" in on_disk and "sod/quickstart.yaml" in on_disk


def test_names_resolve_to_files_inside_the_package():
    path = model_zoo.get_config_file("faster_rcnn_r2_50.yaml")
    assert os.path.isfile(path)
    assert os.path.dirname(os.path.dirname(path)) == os.path.dirname(model_zoo.__file__)
    assert model_zoo.get_config_file("configs/sod/quickstart.yaml") == model_zoo.get_config_file("sod/quickstart.yaml")


def test_an_unknown_name_lists_the_zoo():
    with pytest.raises(FileNotFoundError, match="faster_rcnn_r2_50.yaml"):
        model_zoo.get_config_file("faster_rcnn_r2_5.yaml")
    assert model_zoo.resolve_config_file("no_such.yaml") == "no_such.yaml"
    with pytest.raises(FileNotFoundError, match="no_such.yaml.*model_zoo"):
        merge_config_file(get_cfg(), "no_such.yaml")


def test_tools_and_configs_accept_zoo_names(tmp_path):
    args = default_argument_parser().parse_args(["--config-file", "sod/quickstart.yaml"])
    assert args.config_file == model_zoo.get_config_file("sod/quickstart.yaml")
    # A name with a _BASE_ chain merges like the file (bases are relative to the shipped file).
    by_name = merge_config_file(get_cfg(), "faster_rcnn_r2_50.yaml")
    by_path = merge_config_file(get_cfg(), str(REPO / "configs" / "faster_rcnn_r2_50.yaml"))
    assert by_name == by_path
    local = tmp_path / "mine.yaml"
    local.write_text("SOLVER:\n  MAX_ITER: 7\n")
    assert model_zoo.resolve_config_file(str(local)) == str(local)


def test_lazy_configs_are_listed_apart_and_name_their_yaml_twin():
    on_disk = sorted(f"lazy/{f}" for f in os.listdir(REPO / "configs" / "lazy") if f.endswith(".py"))
    assert model_zoo.list_configs(lazy=True) == on_disk and "lazy/quickstart.py" in on_disk
    assert not any(n.startswith("lazy/") for n in model_zoo.list_configs())
    for name in on_disk:  # configs/lazy/NAME.py is the twin of configs/NAME.yaml
        assert os.path.isfile(model_zoo.get_config_file(name[len("lazy/"):-len(".py")] + ".yaml")), name


def test_get_config_without_detectron2_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2.config", None)  # import fails as if Detectron2 were absent
    with pytest.raises(ImportError, match=r"lazy/faster_rcnn_r2_50.py.*needs Detectron2.*tools/train_net.py"):
        model_zoo.get_config("lazy/faster_rcnn_r2_50.py")
    with pytest.raises(ValueError, match="YAML config.*build_config"):
        model_zoo.get_config("faster_rcnn_r2_50.yaml")
