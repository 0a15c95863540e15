"""Deletion / insertion (RISE) against hand-computed curves, and the library's ROAD."""
import numpy as np
import pytest
import torch

from res2net_det.evaluation.faithfulness import (
    blur_substrate,
    curve_auc,
    deletion_insertion,
    perturbation_curves,
    road_combined,
)


def mean_model(x):
    """A 'classifier' whose only score is the image's mean value (no softmax)."""
    return x.mean(dim=(1, 2, 3)).view(-1, 1)


def _image(values):
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 2, 2).expand(1, 3, 2, 2).clone()


def test_deletion_curve_and_auc_by_hand():
    image = _image([4.0, 3.0, 2.0, 1.0])
    saliency = np.array([[[4, 3], [2, 1]]], np.float32)  # delete 4, then 3, 2, 1
    curve = perturbation_curves(mean_model, image, torch.zeros_like(image), saliency, [0], num_steps=4, softmax=False)
    assert curve[0].tolist() == pytest.approx([10 / 4, 6 / 4, 3 / 4, 1 / 4, 0.0])
    # trapezoids with dx 1/4: (2.5/2 + 1.5 + 0.75 + 0.25 + 0/2) / 4
    assert curve_auc(curve, 4)[0] == pytest.approx(0.9375)
    # the reverse order deletes the small values first: a larger area, a worse saliency map
    worse = perturbation_curves(mean_model, image, torch.zeros_like(image), saliency[:, ::-1, ::-1].copy(), [0],
                                num_steps=4, softmax=False)
    assert worse[0].tolist() == pytest.approx([2.5, 2.25, 1.75, 1.0, 0.0])
    assert curve_auc(worse, 4)[0] == pytest.approx((1.25 + 2.25 + 1.75 + 1.0) / 4)


def test_insertion_and_uneven_steps_by_hand():
    image = _image([4.0, 3.0, 2.0, 1.0])
    saliency = np.array([[[4, 3], [2, 1]]], np.float32)
    # insertion from zeros, 3 steps of ceil(4/3) = 2 pixels: 0, (4+3)/4, 10/4, 10/4
    curve = perturbation_curves(mean_model, torch.zeros_like(image), image, saliency, [0], num_steps=3, softmax=False)
    assert curve[0].tolist() == pytest.approx([0.0, 1.75, 2.5, 2.5])
    # exact x positions 0, 0.5, 1, 1: (0 + 1.75)/2 * 0.5 + (1.75 + 2.5)/2 * 0.5 + 0
    assert curve_auc(curve, 4)[0] == pytest.approx(0.4375 + 1.0625)
    # RISE's evenly spaced x: dx 1/3
    assert curve_auc(curve)[0] == pytest.approx((0 + 2 * 1.75 + 2 * 2.5 + 2.5) / 2 / 3)


def test_batch_size_does_not_change_curves():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 5, 5)
    saliency = np.random.default_rng(0).random((2, 5, 5)).astype(np.float32)
    a = perturbation_curves(mean_model, images, torch.zeros_like(images), saliency, [0, 0], 7, batch_size=3,
                            softmax=False)
    b = perturbation_curves(mean_model, images, torch.zeros_like(images), saliency, [0, 0], 7, batch_size=64,
                            softmax=False)
    assert np.allclose(a, b)
    assert a.shape == (2, 8) and np.allclose(a[:, -1], 0.0)


def test_deletion_insertion_rank_a_true_map_above_its_inverse():
    """A linear classifier that looks only at the top-left quadrant: the quadrant's map must
    delete faster and insert faster than the inverse map."""
    torch.manual_seed(0)
    weight = torch.zeros(2, 3, 8, 8)
    weight[0, :, :4, :4] = 0.05
    model = lambda x: torch.einsum("bchw,kchw->bk", x, weight)  # noqa: E731
    model.eval = lambda: None
    images = torch.rand(1, 3, 8, 8) + 0.5
    good = np.zeros((1, 8, 8), np.float32)
    good[0, :4, :4] = 1.0
    bad = 1.0 - good
    zeros = torch.zeros_like(images)
    g = deletion_insertion(model, images, good, [0], num_steps=8, insertion_substrate=zeros)
    b = deletion_insertion(model, images, bad, [0], num_steps=8, insertion_substrate=zeros)
    assert g["deletion"][0] < b["deletion"][0]
    assert g["insertion"][0] > b["insertion"][0]


def test_blur_substrate_keeps_a_constant_image():
    x = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(blur_substrate(x), x)


def test_road_from_the_library_prefers_the_true_map():
    torch.manual_seed(0)
    weight = torch.zeros(2, 3, 16, 16)
    weight[0, :, :8, :8] = 0.005
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 2, bias=False))
    model[1].weight.data = weight.view(2, -1)
    # The class evidence is a bright quadrant on a dark image: imputing it from its
    # neighbours removes it, imputing the background changes little.
    images = torch.rand(1, 3, 16, 16) * 0.1
    images[..., :8, :8] += 4.0
    good = np.zeros((1, 16, 16), np.float32)
    good[0, :8, :8] = 1.0
    good += np.linspace(0, 0.01, 256, dtype=np.float32).reshape(1, 16, 16)  # break ties
    assert road_combined(model, images, good, [0])[0] > road_combined(model, images, 1.0 - good, [0])[0]
