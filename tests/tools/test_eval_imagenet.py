"""tools/eval_imagenet.py on the tiny generated ImageNet set: a tiny Res2Net whose classifier is
fitted to give designed logits on these images, run through the tool in every layout."""
import importlib.util
import json
import os
from functools import partial

import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from res2net_det import create_model
from res2net_det.modeling import CheckpointError
from res2net_det.modeling.res2net import OFFICIAL_CHECKPOINTS
from tests.helpers import IMAGENET_CLASSES, REPO, imagenet_labels, write_imagenet_val

pytest.importorskip("scipy")

TINY = dict(layers=(1, 1, 1, 1), base_width=4)
VARIANTS = ("res2net50_26w_4s", "res2net50_14w_8s")
# File name -> the class the tiny model is made to predict first: right for images 2, 4, 5 and 7.
DESIGNED = {"ILSVRC2012_val_0000000%d.JPEG" % (i + 1): c for i, c in enumerate([0, 2, 2, 1, 0, 0, 1])}


def _tool():
    spec = importlib.util.spec_from_file_location("eval_imagenet", REPO / "tools" / "eval_imagenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _designed_model(variant, image_dir, seed):
    """A tiny Res2Net whose fc maps each image's pooled features to logits 6 for its designed
    class, 3 for the next and 0 for the last (least squares: 7 images, 2048 features)."""
    torch.manual_seed(seed)
    model = create_model(variant, num_classes=len(IMAGENET_CLASSES), **TINY).eval()
    # The official preprocessing, written out independently of the package.
    reference = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                                    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    names = sorted(DESIGNED)
    images = torch.stack([reference(Image.open(os.path.join(image_dir, n)).convert("RGB")) for n in names])
    fc, model.fc = model.fc, nn.Identity()
    with torch.no_grad():
        features = model(images).double()
    model.fc = fc
    targets = torch.zeros(len(names), 3, dtype=torch.float64)
    for row, name in enumerate(names):
        targets[row, DESIGNED[name]] = 6.0
        targets[row, (DESIGNED[name] + 1) % 3] = 3.0
    weight = torch.linalg.lstsq(features, targets).solution.T
    with torch.no_grad():
        model.fc.weight.copy_(weight.float())
        model.fc.bias.zero_()
        assert torch.allclose(model(images), targets.float(), atol=1e-2)  # the designed outputs hold
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imagenet")
    roots = write_imagenet_val(tmp / "data")
    weights = tmp / "weights"
    weights.mkdir()
    for seed, variant in enumerate(VARIANTS):
        model = _designed_model(variant, roots["loc"] / "ILSVRC2012_img_val", seed)
        torch.save(model.state_dict(), weights / OFFICIAL_CHECKPOINTS[variant])
    return roots, weights, tmp


def _run(setup, layout, *extra):
    roots, weights, tmp = setup
    output = tmp / f"{layout}-{len(extra)}.json"
    argv = ["--data", str(roots[layout]), "--num-workers", "0", "--batch-size", "3", "--output", str(output), *extra]
    argv += [a for v in VARIANTS for a in ("--variant", v)] if "--variant" not in extra else []
    argv += ["--weights", str(weights)] if "--weights" not in extra else []
    rows = _tool().main(argv, build_model=partial(create_model, **TINY))
    return rows, json.loads(output.read_text())


def test_every_layout_gives_the_designed_numbers(setup, capsys):
    results = {layout: _run(setup, layout) for layout in ("class", "loc", "devkit")}
    rows, report = results["loc"]
    for row in rows:
        assert row["top1"] == pytest.approx(400 / 7) and row["top5"] == 100.0 and row["num_images"] == 7
        assert row["delta_top1"] == pytest.approx(400 / 7 - row["published_top1"])
    labels = {name: IMAGENET_CLASSES[c] for name, c in imagenet_labels().items()}
    for variant in VARIANTS:
        predictions = report["predictions"][variant]
        assert {p["file"]: p["label"] for p in predictions} == labels
        assert {p["file"]: p["top5"][0] for p in predictions} == {n: IMAGENET_CLASSES[c] for n, c in DESIGNED.items()}
    assert report["data"]["interpolation"] == "bilinear" and report["data"]["num_classes"] == 3
    for layout in ("class", "devkit"):
        assert [{k: v for k, v in r.items() if k != "weights"} for r in results[layout][0]] == \
               [{k: v for k, v in r.items() if k != "weights"} for r in rows]
        assert results[layout][1]["predictions"] == report["predictions"]
    table = capsys.readouterr().out
    assert "res2net50_14w_8s" in table and "78.14" in table and f"{400 / 7 - 78.14:+.2f}" in table


def test_limit_workers_and_one_file_per_variant(setup):
    roots, weights, _ = setup
    path = str(weights / OFFICIAL_CHECKPOINTS[VARIANTS[0]])
    extra = ("--variant", VARIANTS[0], "--weights", path, "--limit", "3", "--num-workers", "2")
    for layout in ("class", "devkit"):
        (row,), report = _run(setup, layout, *extra)
        assert row["num_images"] == 3 and row["top1"] == pytest.approx(100 / 3)  # images 1-3: only 2 is right
        assert [p["file"] for p in report["predictions"][VARIANTS[0]]] == sorted(DESIGNED)[:3]


def test_class_count_other_than_the_weights_names_the_file(setup, tmp_path):
    roots, _, _ = setup
    path = tmp_path / "five.pth"
    torch.save(create_model(VARIANTS[0], num_classes=5, **TINY).state_dict(), path)
    with pytest.raises(CheckpointError,
                       match=f"{path} has a classifier for 5 classes, but .*LOC_val_solution.csv has 3"):
        _run(setup, "loc", "--variant", VARIANTS[0], "--weights", str(path))


def test_weights_must_pair_with_variants(setup):
    with pytest.raises(SystemExit, match="one --weights per --variant"):
        _run(setup, "loc", "--variant", VARIANTS[0], "--variant", VARIANTS[1], "--weights", "a.pth")
