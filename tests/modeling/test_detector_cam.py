"""DetectorCamExtractor: CAMs of a Faster R-CNN per FPN level and combined, on tiny random detectors."""
import numpy as np
import pytest
import torch

from res2net_det.modeling.cam import COMBINED, DetectorCamExtractor, NameNotFoundError
from tests.helpers import tiny_detector


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(1)
    return torch.rand(3, 64, 64)


def test_levels_and_combined_maps_and_the_backbone_comes_back(image):
    model = tiny_detector(0)
    backbone = model.backbone
    with DetectorCamExtractor(model, "eigencam") as extractor:
        assert extractor.levels == ["p2", "p3", "p4"]  # p4: the max-pooled top level
        detections = extractor.detect(image)
        maps = extractor(image, detections["boxes"][:1].numpy(), detections["labels"][:1].numpy())
    assert list(maps) == ["p2", "p3", "p4", COMBINED]
    for m in maps.values():
        assert m.shape == (64, 64) and m.min() >= 0 and m.max() <= 1 + 1e-6
    assert model.backbone is backbone
    with pytest.raises(NameNotFoundError, match="p9"):
        DetectorCamExtractor(model, "eigencam", levels=["p9"])
    with DetectorCamExtractor(model, "gradcam") as extractor, pytest.raises(ValueError, match="at least one box"):
        extractor(image, np.zeros((0, 4)), [])


def test_gradcam_of_each_level_uses_that_levels_gradient(image):
    """Grad-CAM of p2 by hand (gradient of the box-score target with respect to p2's features,
    averaged over space, weighting p2's features): the extractor gives the same map, which a
    library call with every level as a target layer does not (it pairs levels' gradients wrongly)."""
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

    model = tiny_detector(0)
    with DetectorCamExtractor(model, "gradcam", align_to_input=False) as extractor:
        detections = extractor.detect(image)
        boxes, labels = detections["boxes"][:2].numpy(), detections["labels"][:2].numpy()
        maps = extractor(image, boxes, labels)
    kept = {}
    handle = model.backbone.register_forward_hook(lambda m, i, out: kept.update(out))
    try:
        outputs = GeneralizedRCNN.forward(model, [image])
    finally:
        handle.remove()
    score = FasterRCNNBoxScoreTarget(labels=list(labels), bounding_boxes=boxes)(outputs[0])
    for level in ("p2", "p3"):
        (grad,) = torch.autograd.grad(score, kept[level], retain_graph=True, allow_unused=False)
        cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * kept[level]).sum(1)).detach().numpy()
        # the library's output for one target layer: scaled and resized, then scaled again (its layer mean)
        expected = scale_cam_image(scale_cam_image(cam, (64, 64)))[0]
        assert np.abs(maps[level] - expected).max() < 1e-5, level
    assert maps["p2"].max() > 0 or maps["p3"].max() > 0
