"""Every detection config, built by a real Detectron2: a training step, an inference, converted
weights loaded with no missing backbone key (skipped without Detectron2)."""
import glob
import os

import pytest
import torch

pytest.importorskip(
    "detectron2",
    reason="Detectron2 is not installed; build it from source (README.md, section Detectron2) to run these tests",
)

import torchvision  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

import res2net_det  # noqa: E402
from res2net_det.engines.detectron2.train_net import build_config  # noqa: E402
from res2net_det.modeling.convert import BACKBONE_PREFIX, convert_file  # noqa: E402

CONFIGS = sorted(
    os.path.basename(p) for p in glob.glob("configs/*.yaml") if not os.path.basename(p).startswith("Base-")
)
# Small enough for one CPU thread: tiny images, few proposals and ROI samples.
TINY = [
    "MODEL.WEIGHTS", "",
    "MODEL.ROI_HEADS.NUM_CLASSES", "3", "MODEL.RETINANET.NUM_CLASSES", "3",
    "INPUT.MIN_SIZE_TEST", "64", "INPUT.MAX_SIZE_TEST", "96",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "64", "MODEL.RPN.POST_NMS_TOPK_TRAIN", "32",
    "MODEL.RPN.PRE_NMS_TOPK_TEST", "64", "MODEL.RPN.POST_NMS_TOPK_TEST", "32",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE", "32", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16",
]


torch.set_num_threads(1)  # the project's tests run on one thread (shared 2-core machines)


def test_every_paper_row_has_a_config():
    assert {
        "faster_rcnn_r2_50.yaml", "faster_rcnn_r2_50_3x.yaml", "faster_rcnn_r2_101.yaml",
        "faster_rcnn_r2_50_14w_8s.yaml", "faster_rcnn_r2_50_26w_8s.yaml", "faster_rcnn_r2_50_v1b.yaml",
        "mask_rcnn_r2_50.yaml", "faster_rcnn_r_50.yaml", "faster_rcnn_r2_50_dcn.yaml",
    } <= set(CONFIGS)


@pytest.mark.parametrize(
    "config", sorted(glob.glob("configs/**/*.yaml", recursive=True)), ids=lambda p: os.path.relpath(p, "configs")
)
def test_every_shipped_config_loads_in_detectron2(config):
    """One config language: every task's config merges into Detectron2's get_cfg() + our keys."""
    cfg = build_config(config)
    assert cfg.MODEL.META_ARCHITECTURE


def _training_input(height=64, width=96, with_masks=False, with_sem_seg=False):
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    instances = Instances((height, width))
    boxes = torch.tensor([[4.0, 6.0, 40.0, 50.0], [30.0, 10.0, 90.0, 60.0]])
    instances.gt_boxes = Boxes(boxes)
    instances.gt_classes = torch.tensor([0, 2])
    if with_masks:
        masks = torch.zeros(2, height, width, dtype=torch.bool)
        for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
            masks[i, y0:y1, x0:x1] = True
        instances.gt_masks = BitMasks(masks)
    sample = {"image": image, "instances": instances}
    if with_sem_seg:  # Panoptic FPN: stuff map, things 0, one stuff class below, unlabelled border
        sem_seg = torch.zeros(height, width, dtype=torch.long)
        sem_seg[height // 2:] = 1
        sem_seg[:, :2] = 255
        sample["sem_seg"] = sem_seg
    return sample


@pytest.mark.parametrize("config", CONFIGS)
def test_config_builds_trains_and_infers(config):
    cfg = build_config(os.path.join("configs", config), TINY)
    assert cfg.INPUT.FORMAT == "RGB" and list(cfg.MODEL.PIXEL_STD) == [58.395, 57.12, 57.375]
    torch.manual_seed(0)
    model = build_model(cfg)
    assert any(k.startswith(BACKBONE_PREFIX) for k in model.state_dict())

    model.train()
    with EventStorage():  # Detectron2's heads log training statistics there
        losses = model([_training_input(with_masks=cfg.MODEL.MASK_ON,
                                        with_sem_seg=cfg.MODEL.META_ARCHITECTURE == "PanopticFPN")])
    if cfg.MODEL.META_ARCHITECTURE == "RetinaNet":
        expected = {"loss_cls", "loss_box_reg"}
    else:
        boxes = {"loss_cls", "loss_box_reg"}
        if cfg.MODEL.ROI_HEADS.NAME == "CascadeROIHeads":  # one classifier and box loss per stage
            boxes = {f"{loss}_stage{k}" for loss in boxes for k in range(len(cfg.MODEL.ROI_BOX_CASCADE_HEAD.IOUS))}
        expected = {"loss_rpn_cls", "loss_rpn_loc"} | boxes | ({"loss_mask"} if cfg.MODEL.MASK_ON else set())
        expected |= {"loss_sem_seg"} if cfg.MODEL.META_ARCHITECTURE == "PanopticFPN" else set()
    assert set(losses) == expected
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    bottom_up = model.backbone.bottom_up
    # MODEL.BACKBONE.FREEZE_AT: the stem and the first stages stay put, the later ones learn
    used = ["res2", "res3", "res4", "res5"].index(bottom_up.out_features[-1]) + 1
    for idx, layer in enumerate([bottom_up.layer1, bottom_up.layer2, bottom_up.layer3, bottom_up.layer4][:used],
                                start=2):
        if idx <= cfg.MODEL.BACKBONE.FREEZE_AT:
            assert all(p.grad is None for p in layer.parameters()), idx
        else:
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters()), idx

    model.eval()
    with torch.no_grad():
        (output,) = model([{"image": torch.randint(0, 256, (3, 60, 80), dtype=torch.uint8),
                            "height": 120, "width": 160}])
    instances = output["instances"]
    assert instances.image_size == (120, 160)  # rescaled to the requested output size
    assert instances.pred_boxes.tensor.shape[1] == 4 and len(instances.scores) == len(instances)
    assert all(0 <= c < 3 for c in instances.pred_classes.tolist())
    if cfg.MODEL.MASK_ON:
        assert instances.has("pred_masks")


def _randomized(model):
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return model


@pytest.mark.parametrize(
    "config, source",
    [
        ("faster_rcnn_r2_50.yaml", "official"),
        ("faster_rcnn_r2_50_v1b.yaml", "official"),
        ("faster_rcnn_r2_50_14w_8s.yaml", "official"),
        ("faster_rcnn_r_50.yaml", "torchvision"),
        ("faster_rcnn_r2_50_dcn.yaml", "official"),
    ],
)
def test_converted_weights_load_with_no_missing_backbone_key(config, source, tmp_path):
    cfg = build_config(os.path.join("configs", config), TINY)
    variant = {"faster_rcnn_r2_50.yaml": "res2net50_26w_4s", "faster_rcnn_r2_50_v1b.yaml": "res2net50_v1b_26w_4s",
               "faster_rcnn_r2_50_dcn.yaml": "res2net50_26w_4s",
               "faster_rcnn_r2_50_14w_8s.yaml": "res2net50_14w_8s", "faster_rcnn_r_50.yaml": "resnet50"}[config]
    if source == "official":  # an ImageNet classifier saved as the official repository does
        state = _randomized(res2net_det.create_model(variant)).state_dict()
    else:
        state = _randomized(torchvision.models.resnet50()).state_dict()
    src, dst = tmp_path / "imagenet.pth", tmp_path / "detection.pth"
    torch.save(state, src)
    report = convert_file(str(src), str(dst), variant=variant)
    assert sorted(k for k in report.dropped if k.startswith("fc.")) == ["fc.bias", "fc.weight"]

    model = build_model(cfg)
    checkpointer = DetectionCheckpointer(model)
    checkpointer.load(str(dst))
    incompatible = checkpointer._load_model(torch.load(str(dst), weights_only=True))
    missing = [k for k in incompatible.missing_keys if k.startswith(BACKBONE_PREFIX)]
    if any(cfg.MODEL.RES2NET.DEFORM_ON_PER_STAGE):
        # only the zero-initialised offset convs, which no ImageNet file has
        assert missing and all(".conv_offset." in k for k in missing), missing
    else:
        assert not missing
    assert not incompatible.unexpected_keys
    # every backbone tensor now holds the file's value (the model's own init was different)
    own = model.state_dict()
    backbone_keys = [k for k in own if k.startswith(BACKBONE_PREFIX)]
    assert backbone_keys
    tv_names = {"convs.0.": "conv2.", "bns.0.": "bn2."} if source == "torchvision" else {}
    for key in backbone_keys:
        if ".conv_offset." in key:
            continue
        name = key[len(BACKBONE_PREFIX):]
        for ours, theirs in tv_names.items():
            name = name.replace(ours, theirs)
        assert torch.equal(own[key], state[name]), key
