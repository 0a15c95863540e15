"""No evaluation of a half-loaded detector: --eval-only, the predictor (tools/demo.py) and the export
refuse a checkpoint that leaves part of the detector unloaded, naming the parts and what the file
is; MODEL.WEIGHTS_ALLOW_PARTIAL runs it on purpose; training from a backbone-only file says so once."""
import os
import subprocess
import sys

import pytest
import torch

from res2net_det.config import get_cfg, merge_config_file, merge_config_list
from res2net_det.engines.export import export_spec_from_config
from res2net_det.engines.torchvision.checkpoint import load_model_weights
from res2net_det.engines.torchvision.modeling import build_rcnn
from res2net_det.engines.torchvision.predictor import Predictor
from res2net_det.modeling.weights import CheckpointError
from tests.helpers import REPO

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
BACKBONE = "backbone.bottom_up."


def _cfg(*opts):
    return merge_config_list(merge_config_file(get_cfg(), QUICKSTART), ["MODEL.DEVICE", "cpu", *opts])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A trained-looking detector checkpoint of the quickstart and what tools/convert_weights.py
    makes of an ImageNet Res2Net (backbone only), plus that same backbone in the official layout."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    state = build_rcnn(_cfg()).state_dict()
    paths = {name: str(folder / f"{name}.pth") for name in ("detector", "backbone", "official")}
    torch.save({"model": state, "iteration": 9}, paths["detector"])
    backbone = {k: v for k, v in state.items() if k.startswith(BACKBONE)}
    torch.save({"model": backbone, "matching_heuristics": False}, paths["backbone"])
    torch.save({k[len(BACKBONE):]: v for k, v in backbone.items()}, paths["official"])
    return paths


@pytest.mark.parametrize("name", ["backbone", "official"])
def test_inference_refuses_a_backbone_only_file_naming_what_is_missing(files, name):
    model = build_rcnn(_cfg())
    with pytest.raises(CheckpointError) as e:
        load_model_weights(model, files[name], inference=True)
    message = str(e.value)
    assert f"MODEL.WEIGHTS {files[name]} leaves the FPN, RPN, box head, box predictor of this Faster R-CNN unloaded" \
        in message
    assert "a backbone-only Res2Net file" in message and "MODEL.WEIGHTS_ALLOW_PARTIAL True" in message
    load_model_weights(model, files[name], inference=True, allow_partial=True)  # on purpose
    load_model_weights(model, files["detector"], inference=True)  # a whole detector


def test_inference_refuses_a_head_of_another_shape(files):
    model = build_rcnn(_cfg("MODEL.ROI_HEADS.NUM_CLASSES", "5"))
    with pytest.raises(CheckpointError, match=r"leaves the box predictor .* 4 of them have another shape"):
        load_model_weights(model, files["detector"], inference=True)


def test_inference_refuses_a_mask_rcnn_without_its_mask_head(files):
    model = build_rcnn(_cfg("MODEL.MASK_ON", "True"))
    with pytest.raises(CheckpointError, match=r"leaves the mask head of this Mask R-CNN unloaded .* "
                                              r"the file looks like a Faster R-CNN in the torchvision-engine layout"):
        load_model_weights(model, files["detector"], inference=True)


def test_training_from_a_backbone_only_file_says_so_once(files, caplog):
    model = build_rcnn(_cfg())
    with caplog.at_level("INFO"):
        load_model_weights(model, files["backbone"])
    notes = [r.getMessage() for r in caplog.records if "start from their initialisation" in r.getMessage()]
    assert len(notes) == 1 and "is a backbone-only Res2Net file" in notes[0]
    assert "the FPN, RPN, box head, box predictor of this Faster R-CNN (22 tensors) start" in notes[0]


def test_predictor_and_export_refuse_it_too(files):
    with pytest.raises(CheckpointError, match="leaves the FPN, RPN, box head, box predictor"):
        Predictor(_cfg("MODEL.WEIGHTS", files["backbone"]))
    with pytest.raises(CheckpointError, match="leaves the FPN, RPN, box head, box predictor"):
        export_spec_from_config(_cfg(), files["backbone"])
    Predictor(_cfg("MODEL.WEIGHTS", files["detector"]))


def test_eval_only_exits_non_zero_with_the_message(files, tmp_path):
    """tools/train_net.py --eval-only ENGINE torchvision MODEL.WEIGHTS <backbone-only file>: the case
    that used to evaluate random heads (AP50 0.01) and exit 0."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    run = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", QUICKSTART, "--eval-only",
         "ENGINE", "torchvision", "MODEL.WEIGHTS", files["backbone"], "MODEL.DEVICE", "cpu",
         "OUTPUT_DIR", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300,
    )
    assert run.returncode != 0
    assert "leaves the FPN, RPN, box head, box predictor of this Faster R-CNN unloaded" in run.stderr
    assert "a backbone-only Res2Net file" in run.stderr
    assert "Traceback" not in run.stderr  # one clear error line, not a stack
    assert not (tmp_path / "out" / "inference").exists()
