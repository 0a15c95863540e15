"""Top-k accuracy on a hand-made case, over a data loader in every ImageNet layout, the published
table, and checkpoint loading that refuses a partial load or another class count."""
import pytest
import torch
from torch.utils.data import DataLoader

from res2net_det import create_model
from res2net_det.data.imagenet import ImageNetValDataset, eval_transform, find_imagenet_val
from res2net_det.evaluation.classification import (
    PUBLISHED_ACCURACY,
    accuracy_row,
    evaluate_topk,
    format_accuracy_table,
    load_evaluation_weights,
    published_accuracy,
    topk_accuracy,
    topk_correct,
)
from res2net_det.modeling import VARIANTS, CheckpointError
from tests.helpers import ColourClassifier, imagenet_labels, write_imagenet_val


def test_topk_hand_made_case():
    # 4 samples, 7 classes; the label ranks 1st, 3rd, 5th and 6th.
    logits = torch.tensor([
        [0.1, 9.0, 0.2, 0.3, 0.4, 0.5, 0.6],  # label 1: top-1
        [5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.0],  # label 2: 3rd
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],  # label 2: 5th
        [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # label 5: 6th
    ])
    labels = torch.tensor([1, 2, 2, 5])
    assert topk_correct(logits, labels, ks=(1, 2, 3, 5)) == {1: 1, 2: 1, 3: 2, 5: 3}
    assert topk_accuracy(logits, labels) == {"top1": 25.0, "top5": 75.0}
    assert topk_accuracy(logits, labels, ks=(6,)) == {"top6": 100.0}


def test_topk_with_fewer_classes_than_k_counts_every_class():
    logits = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    assert topk_accuracy(logits, torch.tensor([0, 2])) == {"top1": 0.0, "top5": 100.0}


@pytest.mark.parametrize("logits, labels, message", [
    (torch.zeros(2, 3), torch.tensor([0, 3]), "labels must lie in 0..2"),
    (torch.zeros(2, 3), torch.tensor([0]), r"expected logits \(N, C\) and labels \(N,\)"),
    (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), "no samples"),
])
def test_topk_bad_input(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        topk_accuracy(logits, labels)


def test_evaluate_topk_same_numbers_in_every_layout(tmp_path):
    pytest.importorskip("scipy")
    roots = write_imagenet_val(tmp_path)
    results = {}
    for layout, root in roots.items():
        val = find_imagenet_val(str(root))
        loader = DataLoader(ImageNetValDataset(val, eval_transform()), batch_size=3)  # 3 + 3 + 1
        results[layout] = evaluate_topk(ColourClassifier(), loader, torch.device("cpu"), ks=(1, 2))
        names = {i: val.samples[i][0].rsplit("/", 1)[-1] for i in results[layout]["predictions"]}
        # every image evaluated once, with its own label
        assert sorted(names.values()) == sorted(imagenet_labels())
    # Known outputs (tests/helpers.py): images 1-3 read as their class, 4-7 don't; the second
    # channel is B, or G for blue images, so images 6 and 7 are right at top-2 and 4, 5 are not.
    assert results["class"]["top1"] == pytest.approx(300 / 7)
    assert results["class"]["top2"] == pytest.approx(500 / 7)
    assert results["class"]["num_images"] == 7
    assert results["loc"] == results["class"] == results["devkit"]


def test_published_table_and_rows():
    assert set(PUBLISHED_ACCURACY) <= set(VARIANTS)
    assert published_accuracy("res2net50d") == PUBLISHED_ACCURACY["res2net50_v1b_26w_4s"]  # timm alias
    row = accuracy_row("res2net50_14w_8s", {"top1": 78.0, "top5": 94.0}, 50000)
    assert row["delta_top1"] == pytest.approx(78.0 - 78.14) and row["delta_top5"] == pytest.approx(94.0 - 93.85)
    table = format_accuracy_table([row, accuracy_row("res2net152_v1b_26w_4s", {"top1": 76.0, "top5": 93.0}, 50000),
                                   accuracy_row("resnet50", {"top1": 76.0, "top5": 93.0}, 50000)])
    assert "-0.14" in table and "+0.15" in table
    assert table.splitlines()[2].split()[3] == "-"  # no published weights for Res2Net-152
    assert table.splitlines()[3].split()[3] == "76.13"  # the baseline's torchvision IMAGENET1K_V1 file


def _tiny(num_classes):
    return create_model("res2net50_26w_4s", num_classes=num_classes, layers=(1, 1, 1, 1), base_width=4)


def test_load_evaluation_weights_refuses_another_class_count_or_a_partial_load(tmp_path):
    path = str(tmp_path / "tiny.pth")
    torch.save(_tiny(5).state_dict(), path)
    load_evaluation_weights(_tiny(5), path, 5, "labels.csv")
    with pytest.raises(CheckpointError, match=f"{path} has a classifier for 5 classes, but labels.csv has 3 classes"):
        load_evaluation_weights(_tiny(3), path, 3, "labels.csv")
    state = _tiny(5).state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("fc.")}, path)
    with pytest.raises(CheckpointError, match=f"{path} has no classifier"):
        load_evaluation_weights(_tiny(5), path, 5, "labels.csv")
    torch.save({k: v for k, v in state.items() if k != "layer4.0.bn3.running_var"}, path)
    with pytest.raises(CheckpointError, match="(?s)partial load.*missing in checkpoint.*layer4.0.bn3.running_var"):
        load_evaluation_weights(_tiny(5), path, 5, "labels.csv")
